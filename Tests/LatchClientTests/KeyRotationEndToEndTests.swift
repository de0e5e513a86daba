import Foundation
import LatchClient
import LatchCrypto
import Testing

/// `latch agent rotate-key` through the real CLI against a real `latch serve` (issue 5).
@Suite(.serialized) struct KeyRotationEndToEndTests {
    struct RotateOut: Decodable {
        var principalId: String
        var previousKeyId: String
        var keyId: String
        var rewrappedVaults: [String]
        var verifiedVaults: Int
    }

    @Test func agentRotatesItsKeyAndKeepsReading() async throws {
        let server = try TestServer()
        defer { server.stop() }
        let home = server.dir + "/home"
        let env = ["PATH": "/usr/bin:/bin", "LATCH_HOME": home, "HOME": server.dir]
        func latch(_ args: String..., stdin: String? = nil, extra: [String: String] = [:]) async throws -> LatchProcess.Result {
            try await LatchProcess.run(args, env: env.merging(extra) { $1 }, stdin: stdin)
        }
        func json(_ r: LatchProcess.Result) throws -> [String: Any] {
            try #require(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any], "\(r.out)\(r.err)")
        }

        // operator: three vaults, the agent reads two of them
        #expect(try await latch("init", "--server", server.url, "--token", server.token, "--name", "alice").code == 0)
        for v in ["prod", "staging", "private"] { #expect(try await latch("vault", "create", v).code == 0) }
        #expect(try await latch("secret", "set", "prod", "database", stdin: "pg-rotate-0001").code == 0)
        #expect(try await latch("secret", "set", "staging", "api", stdin: "api-rotate-0002").code == 0)
        #expect(try await latch("secret", "set", "private", "later", stdin: "later-rotate-0003").code == 0)
        let bot = server.dir + "/bot.json"
        let create = try await latch("agent", "create", "bot", "--vault", "prod", "--vault", "staging", "--out", bot)
        #expect(create.code == 0, "\(create.err)")
        #expect(try await latch("configure", "agent", "--config", bot, "--profile", "bot").code == 0)
        #expect(try await latch("get", "DATABASE", "--profile", "bot").out == "pg-rotate-0001")
        #expect(try await latch("verify", "--profile", "bot").code == 0)   // pins the log head before the rotation

        let profileDir = home + "/profiles/bot"
        let keyPath = profileDir + "/private-key.pem"
        let oldPEM = try String(contentsOfFile: keyPath, encoding: .utf8)
        let oldKeyId = try PrincipalPrivateKey(pem: oldPEM).publicKey.keyId
        let vaults = try json(try await latch("vault", "list", "--json"))["vaults"] as? [[String: Any]] ?? []
        let ids = Dictionary(uniqueKeysWithValues: vaults.compactMap { v in (v["name"] as? String).map { ($0, v["id"] as? String ?? "") } })

        // rotate
        let rotate = try await latch("agent", "rotate-key", "--profile", "bot", "--json")
        #expect(rotate.code == 0, "\(rotate.err)")
        #expect(!rotate.out.contains("PRIVATE KEY") && !rotate.err.contains("PRIVATE KEY"))
        let out = try JSONDecoder().decode(RotateOut.self, from: Data(rotate.out.utf8))
        #expect(out.previousKeyId == oldKeyId && out.keyId != oldKeyId)
        #expect(Set(out.rewrappedVaults) == Set([ids["prod"], ids["staging"]].compactMap { $0 }) && out.verifiedVaults == 2)

        // the profile holds the new key only (0600), and says so
        let newPEM = try String(contentsOfFile: keyPath, encoding: .utf8)
        #expect(try PrincipalPrivateKey(pem: newPEM).publicKey.keyId == out.keyId)
        #expect((try FileManager.default.attributesOfItem(atPath: keyPath)[.posixPermissions] as? Int) == 0o600)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: profileDir).filter { $0.contains("rotating") || $0.hasPrefix(".tmp") }
        #expect(leftovers.isEmpty, "\(leftovers)")
        let profileJSON = try String(contentsOfFile: profileDir + "/profile.json", encoding: .utf8)
        #expect(profileJSON.contains(out.keyId) && !profileJSON.contains(oldKeyId))

        // the agent still reads both vaults with the new key
        #expect(try await latch("get", "DATABASE", "--profile", "bot").out == "pg-rotate-0001")
        #expect(try await latch("get", "API", "--profile", "bot").out == "api-rotate-0002")

        // the server: /me and the signer directory show the new key; the old key's wraps are gone
        let me = try json(try await latch("machine", "request", "GET", "/me", "--profile", "bot"))
        #expect((me["publicKey"] as? [String: Any])?["keyId"] as? String == out.keyId)
        for name in ["prod", "staging"] {
            let id = try #require(ids[name])
            let wraps = try json(try await latch("machine", "request", "GET", "/vault/\(id)/wrapped-key", "--profile", "bot"))
            let recipients = (wraps["wrappedKeys"] as? [[String: Any]] ?? []).compactMap { $0["recipientKeyId"] as? String }
            #expect(recipients == [out.keyId], "\(name): \(recipients)")
            // the directory lists the new key, with the continuity statement signed by the old one
            let dir = try json(try await latch("machine", "request", "GET", "/vault/\(id)/public-keys", "--profile", "bot"))
            let entry = try #require((dir["publicKeys"] as? [[String: Any]])?.first { $0["principalId"] as? String == out.principalId })
            #expect(entry["keyId"] as? String == out.keyId)
            let links = entry["rotations"] as? [[String: Any]] ?? []
            #expect(links.count == 1)
            let statement = try JSONDecoder().decode(SignedEnvelope<KeyRotationStatement>.self, from: Data((links.first?["statement"] as? String ?? "").utf8))
            #expect(statement.signerKeyId == oldKeyId && statement.checkpoint.newKeyId == out.keyId)
        }
        let agents = try await latch("agent", "list", "--json")
        #expect(agents.out.contains(out.keyId) && !agents.out.contains(oldKeyId))

        // the new key is in the transparency log, consistent with the head pinned before
        let verify = try await latch("verify", "--profile", "bot", "--json")
        #expect(verify.code == 0, "\(verify.out)\(verify.err)")

        // the old runtime config (old private key) no longer opens anything
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: bot))) as? [String: String] ?? [:]
        let oldKeyFile = server.dir + "/old.pem"
        try oldPEM.write(toFile: oldKeyFile, atomically: true, encoding: .utf8)
        let stale = try await LatchProcess.run(["get", "DATABASE"], env: [
            "PATH": "/usr/bin:/bin", "LATCH_HOME": server.dir + "/empty-home", "HOME": server.dir,
            "LATCH_API_KEY": (config["accessKey"] ?? "") + "." + (config["accessSecret"] ?? ""),
            "LATCH_PRIVATE_KEY_PATH": oldKeyFile, "LATCH_BASE_URL": config["baseUrl"] ?? "",
        ])
        #expect(stale.code == 67, "\(stale.err)")

        // sharing after the rotation wraps to the new key
        #expect(try await latch("share", "private", "--agent", "bot").code == 0)
        #expect(try await latch("get", "LATER", "--profile", "bot").out == "later-rotate-0003")

        // a second rotation works from the rotated key
        let again = try await latch("agent", "rotate-key", "--profile", "bot")
        #expect(again.code == 0, "\(again.err)")
        #expect(again.out.contains("rotated key \(out.keyId) -> ") && again.out.contains("re-wrapped 3 vault key(s)"))
        #expect(try await latch("get", "LATER", "--profile", "bot").out == "later-rotate-0003")
    }

    /// A refused rotation leaves the profile's key in place: here the operator's key signed the
    /// vault checkpoints, which members verify against it, so the server refuses.
    @Test func refusedRotationKeepsTheOldKey() async throws {
        let server = try TestServer()
        defer { server.stop() }
        let home = server.dir + "/home"
        let env = ["PATH": "/usr/bin:/bin", "LATCH_HOME": home, "HOME": server.dir]
        func latch(_ args: String..., stdin: String? = nil) async throws -> LatchProcess.Result {
            try await LatchProcess.run(args, env: env, stdin: stdin)
        }
        #expect(try await latch("init", "--server", server.url, "--token", server.token).code == 0)
        #expect(try await latch("vault", "create", "prod").code == 0)
        #expect(try await latch("secret", "set", "prod", "token", stdin: "tok-keep-0001").code == 0)
        let keyPath = home + "/profiles/default/private-key.pem"
        let before = try Data(contentsOf: URL(fileURLWithPath: keyPath))
        let profileBefore = try Data(contentsOf: URL(fileURLWithPath: home + "/profiles/default/profile.json"))

        let r = try await latch("agent", "rotate-key")
        #expect(r.code == 1, "\(r.out)\(r.err)")
        #expect(r.err.contains("rotation_orphans_signatures") || r.err.contains("unverifiable"), "\(r.err)")
        #expect(!r.err.contains("PRIVATE KEY"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: keyPath)) == before)
        #expect(try Data(contentsOf: URL(fileURLWithPath: home + "/profiles/default/profile.json")) == profileBefore)
        let files = try FileManager.default.contentsOfDirectory(atPath: home + "/profiles/default")
        #expect(!files.contains { $0.contains("rotating") || $0.hasPrefix(".tmp") }, "\(files)")
        #expect(try await latch("get", "TOKEN").out == "tok-keep-0001")
    }
}

/// The client's continuity check on signer-directory keys (`SeenState.acceptMemberKey`).
@Suite("Member key continuity")
struct MemberKeyContinuityTests {
    static let keys: [PrincipalPrivateKey] = (0..<4).map { _ in
        do { return try PrincipalPrivateKey.generate(bits: 2048) } catch { fatalError("RSA key generation failed: \(error)") }
    }

    func entry(_ key: PrincipalPrivateKey, principal: String = "p1",
               chain: [(PrincipalPrivateKey, KeyRotationStatement)] = []) throws -> DirectoryKey {
        var e = DirectoryKey(principalId: principal, publicKey: key.publicKey, accessLevel: "ADMIN", name: "alice")
        e.rotations = try chain.map { ($0.0.publicKey, try SignedEnvelope.sign($0.1, with: $0.0)) }
        return e
    }

    func step(_ from: PrincipalPrivateKey, _ to: PrincipalPrivateKey, principal: String = "p1") -> (PrincipalPrivateKey, KeyRotationStatement) {
        (from, KeyRotationStatement(principalId: principal, previousKeyId: from.publicKey.keyId, newKeyId: to.publicKey.keyId))
    }

    @Test func firstKeyIsPinnedAndAChainOfRotationsIsFollowed() throws {
        let k = Self.keys
        var seen = SeenState()
        try seen.acceptMemberKey(try entry(k[0]), vaultLabel: "vault v")
        #expect(seen.memberKeys == ["p1": k[0].publicKey.keyId])
        // two rotations while this client was away
        try seen.acceptMemberKey(try entry(k[2], chain: [step(k[0], k[1]), step(k[1], k[2])]), vaultLabel: "vault v")
        #expect(seen.memberKeys == ["p1": k[2].publicKey.keyId])
        // the same key again needs nothing
        try seen.acceptMemberKey(try entry(k[2]), vaultLabel: "vault v")
    }

    @Test func aKeyChangeWithoutContinuityIsRefused() throws {
        let k = Self.keys
        var seen = SeenState()
        try seen.acceptMemberKey(try entry(k[0]), vaultLabel: "vault v")
        let cases: [(String, DirectoryKey)] = [
            ("no chain", try entry(k[1])),
            ("chain from another key", try entry(k[2], chain: [step(k[1], k[2])])),
            ("statement for another principal", try entry(k[1], chain: [step(k[0], k[1], principal: "p2")])),
            ("chain ends at another key", try entry(k[3], chain: [step(k[0], k[1])])),
        ]
        for (name, e) in cases {
            var copy = seen
            #expect(throws: LatchError.self, "\(name)") { try copy.acceptMemberKey(e, vaultLabel: "vault v") }
            #expect(copy.memberKeys == ["p1": k[0].publicKey.keyId], "\(name) moved the pin")
        }
        // a statement signed by the new key instead of the previous one
        var forged = try entry(k[1], chain: [step(k[0], k[1])])
        forged.rotations[0].statement = try SignedEnvelope.sign(forged.rotations[0].statement.checkpoint, with: k[1])
        #expect(throws: LatchError.self) { try seen.acceptMemberKey(forged, vaultLabel: "vault v") }
        #expect(seen.memberKeys == ["p1": k[0].publicKey.keyId])
    }
}
