import Foundation
import LatchClient
import LatchCrypto
import LatchDomain
import LatchStoreSQLite
import Testing

/// `latch revoke` and `latch agent remove` through the real CLI against a real `latch serve`
/// (issue 5): wraps go at once, the DEK is rotated, the exposed secrets are listed.
@Suite(.serialized) struct RevocationEndToEndTests {
    struct Report: Decodable {
        struct Vault: Decodable { var vaultId: String; var vault: String; var dekVersion: Int?; var rewrapped: [String]; var pending: [String] }
        struct Secret: Decodable { var vaultId: String; var vault: String; var item: String; var fields: [String]; var envNames: [String] }
        var principalType: String
        var principalId: String
        var principalName: String
        var vaults: [Vault]
        var exposedSecrets: [Secret]
    }

    final class Session: @unchecked Sendable {
        let server: TestServer
        let env: [String: String]
        init() throws {
            server = try TestServer()
            env = ["PATH": "/usr/bin:/bin", "LATCH_HOME": server.dir + "/home", "HOME": server.dir]
        }
        func latch(_ args: [String], stdin: String? = nil) async throws -> LatchProcess.Result {
            try await LatchProcess.run(args, env: env, stdin: stdin)
        }
        @discardableResult
        func must(_ args: String..., stdin: String? = nil) async throws -> LatchProcess.Result {
            let r = try await latch(args, stdin: stdin)
            #expect(r.code == 0, "latch \(args.joined(separator: " ")): \(r.out)\(r.err)")
            return r
        }
        func json(_ r: LatchProcess.Result) throws -> [String: Any] {
            try #require(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any], "\(r.out)\(r.err)")
        }
        func get(_ name: String, _ profile: String) async throws -> LatchProcess.Result {
            try await latch(["get", name, "--profile", profile])
        }
        /// Creates an agent reading `vaults` and configures profile `name` for it; returns its id.
        func agent(_ name: String, vaults: [String]) async throws -> String {
            let out = server.dir + "/\(name).json"
            let r = try await must(["agent", "create", name, "--out", out] + vaults.flatMap { ["--vault", $0] })
            try await must("configure", "agent", "--config", out, "--profile", name)
            return r.out.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        func must(_ args: [String]) async throws -> LatchProcess.Result {
            let r = try await latch(args)
            #expect(r.code == 0, "latch \(args.joined(separator: " ")): \(r.out)\(r.err)")
            return r
        }
        func vaultId(_ name: String) async throws -> String {
            let vaults = try json(try await must("vault", "list", "--json"))["vaults"] as? [[String: Any]] ?? []
            return try #require(vaults.first { $0["name"] as? String == name }?["id"] as? String)
        }
        /// The profile's unwrap memo, opened with its private key (nil: none, or it does not open).
        func memo(_ profile: String) throws -> UnwrapMemo? {
            let dir = server.dir + "/home/profiles/" + profile
            guard let data = FileManager.default.contents(atPath: dir + "/unwrap-memo") else { return nil }
            #expect(SecureFile.mode(of: dir + "/unwrap-memo") == 0o600)
            let pem = try String(contentsOfFile: dir + "/private-key.pem", encoding: .utf8)
            return UnwrapMemo.open(data, with: try UnwrapMemo.SealingKey(privateKeyPEM: pem))
        }
        func store<T: Sendable>(_ body: @Sendable (any StoreTransaction) async throws -> T) async throws -> T {
            let store = try await SQLiteLatchStore.open(path: server.dir + "/data/latch.sqlite", readers: 1)
            do { let r = try await store.read(body); await store.close(); return r } catch { await store.close(); throw error }
        }
    }

    @Test func revokeAnAgentThenAGroup() async throws {
        let s = try Session()
        defer { s.server.stop() }
        try await s.must("init", "--server", s.server.url, "--token", s.server.token, "--name", "alice")
        try await s.must("vault", "create", "prod")
        try await s.must("secret", "set", "prod", "database", stdin: "pg-revoke-0001")
        try await s.must("secret", "set", "prod", "api", stdin: "api-revoke-0002")
        try await s.must("secret", "set", "prod", "stripe", "--field", "key", stdin: "sk-revoke-0003")
        try await s.must("secret", "set", "prod", "stripe", "--field", "webhook", stdin: "wh-revoke-0004")
        let prod = try await s.vaultId("prod")
        let a1 = try await s.agent("a1", vaults: ["prod"])
        let a2 = try await s.agent("a2", vaults: ["prod"])
        for p in ["a1", "a2"] {
            #expect(try await s.get("DATABASE", p).out == "pg-revoke-0001")
            #expect(try await s.get("stripe/webhook", p).out == "wh-revoke-0004")
        }
        // each agent's memo holds the one DEK it reads; an altered memo is ignored and written afresh
        let a2KeyId = try PrincipalPrivateKey(pem: String(contentsOfFile: s.server.dir + "/home/profiles/a2/private-key.pem", encoding: .utf8)).publicKey.keyId
        #expect(try s.memo("a2")?.keyId == a2KeyId && s.memo("a2")?.count == 1 && s.memo("a1")?.count == 1)
        let memoPath = s.server.dir + "/home/profiles/a2/unwrap-memo"
        var altered = try Data(contentsOf: URL(fileURLWithPath: memoPath))
        altered[altered.count - 1] ^= 1
        try altered.write(to: URL(fileURLWithPath: memoPath))
        #expect(try s.memo("a2") == nil)
        #expect(try await s.get("DATABASE", "a2").out == "pg-revoke-0001")
        #expect(try s.memo("a2")?.count == 1)

        // revoke a1: JSON lists every secret it could read, with its env names
        let r = try await s.must("revoke", "prod", "--agent", "a1", "--json")
        let report = try JSONDecoder().decode(Report.self, from: Data(r.out.utf8))
        #expect(report.principalId == a1 && report.principalType == "AGENT")
        #expect(report.vaults.count == 1 && report.vaults.first?.dekVersion == 2 && report.vaults.first?.vaultId == prod)
        #expect(Set(report.exposedSecrets.map(\.item)) == ["database", "api", "stripe"])
        #expect(report.exposedSecrets.first { $0.item == "stripe" }?.fields.sorted() == ["key", "webhook"])
        let env = Set(report.exposedSecrets.flatMap(\.envNames))
        #expect(env.isSuperset(of: ["DATABASE", "API"]) && env.count == 4, "\(env)")
        #expect(!r.out.contains("revoke-000"), "values must never be printed")

        // a1 is refused (and the refusal is audited); a2 still reads every value
        let denied = try await s.get("DATABASE", "a1")
        #expect(denied.code != 0 && !denied.out.contains("pg-revoke"), "\(denied.out)\(denied.err)")
        let direct = try await s.latch(["machine", "request", "GET", "/vault/\(prod)/environment-fields", "--profile", "a1"])
        #expect(direct.code == 66 && !direct.out.contains("\"v\":3"), "\(direct.out)\(direct.err)")
        let events = try s.json(try await s.must("audit", "--json"))["events"] as? [[String: Any]] ?? []
        #expect(events.contains { $0["principalId"] as? String == a1 && $0["outcome"] as? String == "not_found" && $0["assetId"] as? String == prod })
        #expect(events.contains { $0["action"] as? String == "vault.dek_rotate" && $0["outcome"] as? String == "success" })
        for (name, value) in [("DATABASE", "pg-revoke-0001"), ("API", "api-revoke-0002"), ("stripe/key", "sk-revoke-0003"), ("stripe/webhook", "wh-revoke-0004")] {
            #expect(try await s.get(name, "a2").out == value, "\(name)")
        }
        #expect(try await s.get("DATABASE", "default").out == "pg-revoke-0001")
        try await s.must("verify", "--profile", "a2")

        // the store: DEK v2 only, no a1 wrap, every envelope opens only under v2
        let (vault, wraps, fields) = try await s.store { tx in
            (try await tx.vault(prod), try await tx.wrappedKeys(vaultId: prod), try await tx.fields(vaultId: prod))
        }
        #expect(vault?.currentDekVersion == 2)
        #expect(wraps.allSatisfy { $0.dekVersion == 2 } && !wraps.contains { $0.principalId == a1 } && wraps.contains { $0.principalId == a2 })
        #expect(fields.count == 4)
        let a2Key = try PrincipalPrivateKey(pem: String(contentsOfFile: s.server.dir + "/home/profiles/a2/private-key.pem", encoding: .utf8))
        let a2Wrap = try #require(wraps.first { $0.principalId == a2 })
        let a2Wrapped = try #require(Data(base64Encoded: a2Wrap.wrappedKey))
        let dek2 = try a2Key.unwrap(a2Wrapped, version: 2)
        // a2's memo now holds the v2 DEK only; a1's, whose sync found nothing to open, nothing
        let a2Memo = try #require(try s.memo("a2"))
        let memoDek = try #require(a2Memo.dek(unwrapping: a2Wrapped, version: 2))
        let a1Memo = try s.memo("a1")
        #expect(a2Memo.count == 1 && a1Memo?.count == 0)
        for f in fields {
            for key in [dek2, memoDek] {
                _ = try FieldEnvelope(string: f.envelope).open(key: key, context: EnvelopeContext(vaultId: prod, itemId: f.itemId, fieldId: f.id, dekVersion: 2))
            }
        }

        // errors: no grant any more, unknown principal, unknown vault
        let again = try await s.latch(["revoke", "prod", "--agent", "a1"])
        #expect(again.code == 66 && again.err.contains("no direct grant"), "\(again.err)")
        #expect(try await s.latch(["revoke", "prod", "--agent", "nobody"]).code == 66)
        #expect(try await s.latch(["revoke", "nowhere", "--agent", "a2"]).code == 66)
        #expect(try await s.latch(["revoke", "prod"]).code == 64)

        // a group: a3 reads prod through group "deployers", then the group is revoked
        let a3 = try await s.agent("a3", vaults: [])
        let group = try s.json(try await s.must("machine", "request", "POST", "/groups", "--body", #"{"name":"deployers"}"#))
        let gid = try #require(group["id"] as? String)
        try await s.must("machine", "request", "PUT", "/groups/\(gid)/members", "--body", #"{"members":["\#(a3)"]}"#)
        let perms = try s.json(try await s.must("machine", "request", "GET", "/permissions/VAULT/\(prod)"))["permissions"] as? [[String: Any]] ?? []
        let entries = perms.map { ["granteeType": $0["granteeType"] ?? "", "granteeId": $0["granteeId"] ?? "", "level": $0["level"] ?? ""] }
            + [["granteeType": "GROUP", "granteeId": gid, "level": "READ"]]
        let body = String(decoding: try JSONSerialization.data(withJSONObject: ["permissions": entries]), as: UTF8.self)
        try await s.must("machine", "request", "POST", "/permissions/VAULT/\(prod)/set-permissions", "--body", body)
        try await s.must("pending", "--fulfil")
        #expect(try await s.get("API", "a3").out == "api-revoke-0002")
        let g = try await s.must("revoke", "prod", "--group", "deployers")
        #expect(g.out.contains("DEK v3") && g.out.contains("DATABASE") && g.out.contains("rotate them"), "\(g.out)")
        #expect(try await s.get("API", "a3").code != 0)
        #expect(try await s.get("API", "a2").out == "api-revoke-0002")
        let a3Wraps = try await s.store { tx in try await tx.wrappedKeys(principalId: a3) }
        #expect(a3Wraps.isEmpty)
    }

    @Test func removingAnAgentRotatesEveryVaultItOpened() async throws {
        let s = try Session()
        defer { s.server.stop() }
        try await s.must("init", "--server", s.server.url, "--token", s.server.token, "--name", "alice")
        for v in ["prod", "staging", "other"] { try await s.must("vault", "create", v) }
        try await s.must("secret", "set", "prod", "database", stdin: "pg-remove-0001")
        try await s.must("secret", "set", "staging", "api", stdin: "api-remove-0002")
        try await s.must("secret", "set", "other", "unrelated", stdin: "other-remove-0003")
        let gone = try await s.agent("gone", vaults: ["prod", "staging"])
        _ = try await s.agent("stays", vaults: ["prod"])
        #expect(try await s.get("API", "gone").out == "api-remove-0002")

        let r = try await s.must("agent", "remove", "gone", "--json")
        let report = try JSONDecoder().decode(Report.self, from: Data(r.out.utf8))
        #expect(report.principalId == gone)
        #expect(Set(report.vaults.map(\.vault)) == ["prod", "staging"] && report.vaults.allSatisfy { $0.dekVersion == 2 })
        #expect(Set(report.exposedSecrets.map(\.item)) == ["database", "api"])

        // its key is revoked (auth fails, exit 67), it is gone from the list, the others read on
        #expect(try await s.get("API", "gone").code == 67)
        #expect(!(try await s.must("agent", "list")).out.contains("gone"))
        #expect(try await s.get("DATABASE", "stays").out == "pg-remove-0001")
        #expect(try await s.get("UNRELATED", "default").out == "other-remove-0003")
        let (wraps, other) = try await s.store { tx in
            (try await tx.wrappedKeys(principalId: gone), try await tx.vault(try await tx.vaults(tenantId: (try await tx.principal(gone))?.tenantId ?? "").first { $0.name == "other" }?.id ?? ""))
        }
        #expect(wraps.isEmpty)
        #expect(other?.currentDekVersion == 1)   // a vault it could not open is left alone
        let events = try s.json(try await s.must("audit", "--json"))["events"] as? [[String: Any]] ?? []
        #expect(events.contains { $0["action"] as? String == "agent.remove" && $0["outcome"] as? String == "success" })
        #expect(events.contains { $0["principalId"] as? String == gone && $0["outcome"] as? String == "invalid_api_key" })
    }
}
