import Foundation
import LatchClient
import LatchCrypto
import Testing

/// The vault's signed writer set (issue 5) through the real CLI against a real `latch serve`:
/// `latch share --level WRITE` signs a writer in, its writes verify for every reader, and a
/// writer the ADMIN demotes is refused by clients even where the server would still let it in.
@Suite(.serialized) struct WriterSetEndToEndTests {
    @Test func adminSignsWritersInAndOut() async throws {
        let server = try TestServer()
        defer { server.stop() }
        let env = ["PATH": "/usr/bin:/bin", "LATCH_HOME": server.dir + "/home", "HOME": server.dir]
        func latch(_ args: String..., stdin: String? = nil) async throws -> LatchProcess.Result {
            try await LatchProcess.run(args, env: env, stdin: stdin)
        }
        func must(_ args: String..., stdin: String? = nil) async throws -> LatchProcess.Result {
            let r = try await LatchProcess.run(args, env: env, stdin: stdin)
            #expect(r.code == 0, "latch \(args.joined(separator: " ")): \(r.out)\(r.err)")
            return r
        }

        _ = try await must("init", "--server", server.url, "--token", server.token, "--name", "alice")
        _ = try await must("vault", "create", "prod")
        _ = try await must("secret", "set", "prod", "database", stdin: "pg-writer-0001")
        for (name, perms) in [("deployer", ["--permission", "machine.vault.read", "--permission", "machine.vault.secret.read",
                                            "--permission", "machine.vault.write"]), ("reader", [])] {
            let out = server.dir + "/\(name).json"
            let create = try await LatchProcess.run(["agent", "create", name, "--vault", "prod", "--out", out] + perms, env: env)
            #expect(create.code == 0, "\(create.err)")
            _ = try await must("configure", "agent", "--config", out, "--profile", name)
        }

        // READ (the default): the server refuses the write outright.
        let denied = try await latch("secret", "set", "prod", "database", "--profile", "deployer", stdin: "pg-writer-0002")
        #expect(denied.code != 0, "a READ member wrote: \(denied.out)")

        // The ADMIN signs the deployer in as WRITE: its write now verifies for the reader too.
        _ = try await must("share", "prod", "--agent", "deployer", "--level", "WRITE")
        let vaultId = try #require(try await vaultIds(env)["prod"])
        _ = try await must("secret", "set", "prod", "database", "--profile", "deployer", stdin: "pg-writer-0003")
        #expect(try await latch("get", "DATABASE", "--profile", "reader").out == "pg-writer-0003")
        #expect(try await latch("get", "DATABASE").out == "pg-writer-0003")
        let report = try await must("verify", "--profile", "reader")
        #expect(report.out.contains("writer sets"), "\(report.out)")

        // Signed out again, but the server's grant is left at WRITE behind the ADMIN's back (as
        // a hostile or stale server would): the server takes the write, every client refuses it.
        _ = try await must("share", "prod", "--agent", "deployer", "--level", "READ")
        let deployerId = try #require(try await agentIds(env)["deployer"])
        let current = try await must("machine", "request", "GET", "/api/v1/machine/permissions/VAULT/\(vaultId)")
        var grants = (try JSONSerialization.jsonObject(with: Data(current.out.utf8)) as? [String: Any])?["permissions"] as? [[String: Any]] ?? []
        #expect(grants.count == 3, "\(current.out)")
        grants = grants.map { g in
            var g = g
            if g["granteeId"] as? String == deployerId { g["level"] = "WRITE" }
            return ["granteeType": g["granteeType"] ?? "", "granteeId": g["granteeId"] ?? "", "level": g["level"] ?? ""]
        }
        let body = String(decoding: try JSONSerialization.data(withJSONObject: ["permissions": grants]), as: UTF8.self)
        let regrant = try await latch("machine", "request", "POST", "/api/v1/machine/permissions/VAULT/\(vaultId)/set-permissions", "--body", body)
        #expect(regrant.code == 0, "\(regrant.err)")
        // The deployer's own client will not sign what every reader would refuse.
        let refused = try await latch("secret", "set", "prod", "database", "--profile", "deployer", stdin: "pg-writer-0004")
        #expect(refused.code == 77 && refused.err.contains("not a writer in vault prod's signed writer set (v3)"), "\(refused.out)\(refused.err)")
        #expect(try await latch("get", "DATABASE", "--profile", "reader").out == "pg-writer-0003")

        // Revoking a writer signs it out of the writer set too.
        _ = try await must("share", "prod", "--agent", "deployer", "--level", "WRITE")
        _ = try await must("revoke", "prod", "--agent", "deployer")
        let dir = try await must("machine", "request", "GET", "/api/v1/machine/vault/\(vaultId)/public-keys")
        let links = (try JSONSerialization.jsonObject(with: Data(dir.out.utf8)) as? [String: Any])?["writers"] as? [[String: Any]] ?? []
        #expect(links.count == 5)
        let newest = try #require(links.last?["statement"] as? String)
        #expect(newest.contains("\"version\":5") && !newest.contains(deployerId), "\(newest)")
        #expect(try await latch("get", "DATABASE", "--profile", "reader").out == "pg-writer-0003")

        // `latch vault rotate-key` (what finishes an interrupted revoke): a new DEK, same values.
        let rotated = try await must("vault", "rotate-key", "prod", "--json")
        let dek = (try JSONSerialization.jsonObject(with: Data(rotated.out.utf8)) as? [String: Any])?["dekVersion"] as? Int
        #expect(dek == 4, "\(rotated.out)")   // 1, 2 (demotion), 3 (revoke), 4
        #expect(try await latch("get", "DATABASE", "--profile", "reader").out == "pg-writer-0003")
    }

    func vaultIds(_ env: [String: String]) async throws -> [String: String] {
        let r = try await LatchProcess.run(["vault", "list", "--json"], env: env)
        let vaults = (try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any])?["vaults"] as? [[String: Any]] ?? []
        return Dictionary(uniqueKeysWithValues: vaults.compactMap { v in (v["name"] as? String).map { ($0, v["id"] as? String ?? "") } })
    }

    func agentIds(_ env: [String: String]) async throws -> [String: String] {
        let r = try await LatchProcess.run(["agent", "list", "--json"], env: env)
        let agents = (try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any])?["agents"] as? [[String: Any]] ?? []
        return Dictionary(uniqueKeysWithValues: agents.compactMap { a in (a["name"] as? String).map { ($0, a["id"] as? String ?? "") } })
    }
}
