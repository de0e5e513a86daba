import Foundation
import LatchClient
import LatchDomain
import Testing

/// `latch share VAULT --group`, `latch agent create --group` and the `latch doctor` clock line,
/// through the real CLI against a real `latch serve` (issue 4).
@Suite(.serialized) struct GroupShareEndToEndTests {
    typealias Session = RevocationEndToEndTests.Session

    /// Creates agent `name` with `extra` arguments and configures profile `name` for it; returns
    /// the result of `agent create`.
    @discardableResult
    func agent(_ s: Session, _ name: String, _ extra: [String]) async throws -> LatchProcess.Result {
        let out = s.server.dir + "/\(name).json"
        let r = try await s.must(["agent", "create", name, "--out", out] + extra)
        try await s.must("configure", "agent", "--config", out, "--profile", name)
        return r
    }

    @Test func shareToAGroupLetsAMemberAgentReadAtOnce() async throws {
        let s = try Session()
        defer { s.server.stop() }
        try await s.must("init", "--server", s.server.url, "--token", s.server.token, "--name", "alice")
        try await s.must("vault", "create", "prod")
        try await s.must("secret", "set", "prod", "database", stdin: "pg-group-0001")
        let prod = try await s.vaultId("prod")
        let gid = try await s.must("group", "create", "deployers").out.trimmingCharacters(in: .whitespacesAndNewlines)
        let member = try await agent(s, "member", ["--group", "deployers"])
        let memberId = member.out.trimmingCharacters(in: .whitespacesAndNewlines)
        try await agent(s, "direct", ["--vault", "prod"])
        let groups = try s.json(try await s.must("group", "list", "--json"))["groups"] as? [[String: Any]] ?? []
        #expect(groups.first { $0["id"] as? String == gid }?["members"] as? [String] == [memberId])
        #expect(try await s.get("DATABASE", "member").code != 0)   // no grant yet

        let shared = try await s.must("share", "prod", "--group", "deployers")
        #expect(shared.err.contains("group deployers has READ on prod") && shared.err.contains("wrapped to 1 member(s)"), "\(shared.err)")
        #expect(!shared.err.contains("note:"))
        #expect(try await s.get("DATABASE", "member").out == "pg-group-0001")   // at once: no `pending --fulfil`
        #expect(try await s.get("DATABASE", "direct").out == "pg-group-0001")   // the other grants are kept
        #expect((try s.json(try await s.must("pending", "--json"))["pendingGrants"] as? [Any])?.count == 0)

        // WRITE through the group: the grant changes, the signed writer set does not, and the CLI says so
        let write = try await s.must("share", "prod", "--group", "deployers", "--level", "WRITE")
        #expect(write.err.contains("group members can read at once; to let one sign writes, an ADMIN shares to it directly with --level WRITE"), "\(write.err)")
        let perms = try s.json(try await s.must("machine", "request", "GET", "/permissions/VAULT/\(prod)"))["permissions"] as? [[String: Any]] ?? []
        #expect(perms.filter { $0["granteeType"] as? String == "GROUP" }.map { $0["level"] as? String } == ["WRITE"])
        #expect(perms.contains { $0["granteeType"] as? String == "AGENT" }, "\(perms)")   // the direct grant is kept
        let vault = try await s.store { tx in try await tx.vault(prod) }
        #expect(vault?.writers?.count == 1)
        #expect(try await s.get("DATABASE", "member").out == "pg-group-0001")
        try await s.must("verify", "--profile", "member")

        // errors: unknown group, two targets
        #expect(try await s.latch(["share", "prod", "--group", "nobody"]).code == 66)
        #expect(try await s.latch(["share", "prod", "--group", "deployers", "--agent", "direct"]).code == 64)
    }

    @Test func agentCreatedWithAGroupReadsTheGroupsVaults() async throws {
        let s = try Session()
        defer { s.server.stop() }
        try await s.must("init", "--server", s.server.url, "--token", s.server.token, "--name", "alice")
        try await s.must("vault", "create", "staging")
        try await s.must("vault", "create", "other")
        try await s.must("secret", "set", "staging", "api", stdin: "api-group-0002")
        try await s.must("secret", "set", "other", "token", stdin: "tok-group-0003")
        try await s.must("group", "create", "ops")
        let empty = try await s.must("share", "staging", "--group", "ops")
        #expect(empty.err.contains("wrapped to 0 member(s)"), "\(empty.err)")

        let r = try await agent(s, "bot", ["--group", "ops", "--vault", "other"])
        #expect(r.err.contains("added to group(s) ops") && r.err.contains("wrapped for 1 vault(s)"), "\(r.err)")
        #expect(try await s.get("API", "bot").out == "api-group-0002")
        #expect(try await s.get("TOKEN", "bot").out == "tok-group-0003")
        try await s.must("verify", "--profile", "bot")

        // an unknown group fails before the agent is made
        let bad = try await s.latch(["agent", "create", "ghost", "--group", "nope", "--out", s.server.dir + "/ghost.json"])
        #expect(bad.code == 66 && bad.err.contains("no group named nope"), "\(bad.err)")
        #expect(!(try await s.must("agent", "list")).out.contains("ghost"))
        #expect(!FileManager.default.fileExists(atPath: s.server.dir + "/ghost.json"))
    }

    @Test func doctorPrintsTheClockLine() async throws {
        let s = try Session()
        defer { s.server.stop() }
        try await s.must("init", "--server", s.server.url, "--token", s.server.token, "--name", "alice")
        let r = try await s.must("doctor")
        let line = r.out.split(separator: "\n").first { $0.contains("clock:") }.map(String.init) ?? ""
        #expect(line.hasPrefix("ok   clock: local clock ") && line.contains("the server (±"), "\(r.out)")
    }

    @Test func clockSkewFromTheDateHeader() throws {
        let base = try #require(ClockSkew.parseHTTPDate("Sun, 06 Nov 1994 08:49:37 GMT"))
        #expect(base == Date(timeIntervalSince1970: 784_111_777))
        #expect(ClockSkew.parseHTTPDate("Sunday, 06-Nov-94 08:49:37 GMT") == base)   // RFC 850
        #expect(ClockSkew.parseHTTPDate("Sun Nov  6 08:49:37 1994") == base)         // asctime
        #expect(ClockSkew.parseHTTPDate("yesterday") == nil)
        #expect(ClockSkew.measure(serverDate: "not a date", sent: base, received: base) == nil)

        // in step: the answer came within the server's second
        let ok = try #require(ClockSkew.measure(serverDate: "Sun, 06 Nov 1994 08:49:37 GMT",
                                                sent: base.addingTimeInterval(0.3), received: base.addingTimeInterval(0.7)))
        #expect(abs(ok.seconds) < 0.01 && !ok.warn && abs(ok.uncertainty - 0.7) < 0.001)
        #expect(ok.summary.hasPrefix("local clock in step with the server (±1 s"))

        // 90 s ahead and 61 s behind warn; 59 s behind does not
        let ahead = try #require(ClockSkew.measure(serverDate: "Sun, 06 Nov 1994 08:49:37 GMT",
                                                   sent: base.addingTimeInterval(90.4), received: base.addingTimeInterval(90.6)))
        #expect(ahead.warn && ahead.summary.contains("90 s ahead of") && ahead.summary.contains("over 60 s"))
        let behind = try #require(ClockSkew.measure(serverDate: "Sun, 06 Nov 1994 08:49:37 GMT",
                                                    sent: base.addingTimeInterval(-60.6), received: base.addingTimeInterval(-60.4)))
        #expect(behind.warn && behind.summary.contains("61 s behind"))
        let close = try #require(ClockSkew.measure(serverDate: "Sun, 06 Nov 1994 08:49:37 GMT",
                                                   sent: base.addingTimeInterval(-58.6), received: base.addingTimeInterval(-58.4)))
        #expect(!close.warn && close.summary.contains("59 s behind"))
    }
}
