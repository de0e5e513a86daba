import Foundation
import LatchClient
import LatchCrypto
import Testing

/// Passes requests on, except that the check of a key other than `keep` (`GET /me`) fails.
struct FailingKeyCheck: HTTPTransport {
    let inner = DefaultHTTPTransport()
    let keep: String
    func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        if request.method == "GET", request.url.path.hasSuffix("/me"), request.headers["X-API-Key"] != keep {
            throw LatchError(.unavailable, "test: the new key's check fails")
        }
        return try await inner.send(request)
    }
}

/// `latch apikey` against a real `latch serve`: keys are written to 0600 files and never printed,
/// listings show no secrets, and a revoked key stops working at once.
@Suite(.serialized) struct APIKeyEndToEndTests {
    @Test func issueListRevoke() async throws {
        let server = try TestServer()
        defer { server.stop() }
        let home = server.dir + "/home"
        let env = ["PATH": "/usr/bin:/bin", "LATCH_HOME": home, "HOME": server.dir]
        func latch(_ args: String..., extra: [String: String] = [:]) async throws -> LatchProcess.Result {
            try await LatchProcess.run(args, env: env.merging(extra) { $1 })
        }
        func secret(_ path: String) throws -> String {
            try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        /// `GET /me` with `key` in place of the profile's API key (the profile's private key stays).
        func me(_ key: String, profile: String = "default") async throws -> LatchProcess.Result {
            try await latch("machine", "request", "GET", "/me", "--profile", profile, extra: ["LATCH_API_KEY": key])
        }

        #expect(try await latch("init", "--server", server.url, "--token", server.token, "--name", "alice").code == 0)
        #expect(try await latch("agent", "create", "bot", "--out", server.dir + "/bot.json").code == 0)
        #expect(try await latch("configure", "agent", "--config", server.dir + "/bot.json", "--profile", "bot").code == 0)

        // a second USER key for the operator, narrowed
        let ownFile = server.dir + "/own.key"
        let own = try await latch("apikey", "create", "--permission", "machine.vault.read", "--out", ownFile)
        #expect(own.code == 0, "\(own.err)")
        let ownKey = try secret(ownFile)
        let ownAccess = own.out.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(ownKey.hasPrefix(ownAccess + "."))
        #expect((try FileManager.default.attributesOfItem(atPath: ownFile)[.posixPermissions] as? Int) == 0o600)
        let ownSecret = String(ownKey.split(separator: ".")[1])
        #expect(!own.out.contains(ownSecret) && !own.err.contains(ownSecret))
        let meOwn = try await me(ownKey)
        #expect(meOwn.code == 0 && meOwn.out.contains("\"USER\""), "\(meOwn.err)")
        #expect(try await latch("apikey", "create", "--out", ownFile).code != 0)   // never overwrites without --overwrite
        // nowhere to write it: refused before the server is asked, so no key is issued
        let keysBefore = try await latch("apikey", "list").out
        let nowhere = try await latch("apikey", "create", "--out", server.dir + "/no-such-dir/k.key")
        #expect(nowhere.code == 64 && nowhere.err.contains("does not exist"), "\(nowhere.err)")
        #expect(try await latch("apikey", "list").out == keysBefore)

        // a key for the agent; the listing shows it without its secret
        let botFile = server.dir + "/bot.key"
        let bot = try await latch("apikey", "create", "--agent", "bot", "--out", botFile)
        #expect(bot.code == 0, "\(bot.err)")
        let botKey = try secret(botFile)
        let list = try await latch("apikey", "list", "--agent", "bot", "--json")
        #expect(list.code == 0, "\(list.err)")
        #expect(list.out.contains(bot.out.trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(!list.out.contains(String(botKey.split(separator: ".")[1])))
        let listed = try JSONSerialization.jsonObject(with: Data(list.out.utf8)) as? [String: Any]
        #expect((listed?["apiKeys"] as? [Any])?.count == 2)
        let table = try await latch("apikey", "list")
        #expect(table.code == 0 && table.out.contains(ownAccess) && table.out.contains("USER"))
        let everyKey = try await latch("apikey", "list", "--all")
        #expect(everyKey.code == 0 && everyKey.out.contains(ownAccess) && everyKey.out.contains(bot.out.trimmingCharacters(in: .whitespacesAndNewlines)),
                "\(everyKey.out)\(everyKey.err)")
        #expect(try await latch("apikey", "list", "--all", "--agent", "bot").code == 64)

        // a TENANT administration key lists agents but cannot read a secret
        let tenantFile = server.dir + "/tenant.key"
        #expect(try await latch("apikey", "create", "--scope", "tenant", "--out", tenantFile).code == 0)
        let agents = try await latch("machine", "request", "GET", "/agents", extra: ["LATCH_API_KEY": try secret(tenantFile)])
        #expect(agents.code == 0 && agents.out.contains("bot"), "\(agents.err)")

        // the agent's profile moves to a new key; then the old one is revoked and the profile still works
        let nextFile = server.dir + "/bot-next.key"
        #expect(try await latch("apikey", "create", "--agent", "bot", "--out", nextFile).code == 0)
        let wrongPrincipal = try await latch("configure", "api-key", "--from-file", ownFile, "--profile", "bot")
        #expect(wrongPrincipal.code == 67 && wrongPrincipal.err.contains("not to this profile"), "\(wrongPrincipal.err)")
        let adopt = try await latch("configure", "api-key", "--from-file", nextFile, "--profile", "bot")
        #expect(adopt.code == 0, "\(adopt.err)")
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: server.dir + "/bot.json"))) as? [String: String] ?? [:]
        let original = try #require(config["accessKey"])
        #expect(try await latch("apikey", "revoke", original).code == 0)
        let whoami = try await latch("whoami", "--profile", "bot")
        #expect(whoami.code == 0 && whoami.out.contains("bot"), "\(whoami.err)")
        let profileJSON = try String(contentsOfFile: home + "/profiles/bot/profile.json", encoding: .utf8)
        #expect(profileJSON.contains(String(try secret(nextFile).split(separator: ".")[0])))

        // revoke: at once, by access key only
        let botAccess = String(botKey.split(separator: ".")[0])
        #expect(try await me(botKey, profile: "bot").code == 0)
        #expect(try await latch("apikey", "revoke", botKey).code == 64)   // the whole key is refused: pass the access key
        let revoke = try await latch("apikey", "revoke", botAccess)
        #expect(revoke.code == 0 && revoke.out.contains("revoked \(botAccess)"), "\(revoke.err)")
        #expect(try await me(botKey, profile: "bot").code == 67)
        #expect(try await latch("apikey", "list", "--agent", "bot").out.contains("revoked"))
        let unknown = try await latch("apikey", "revoke", "lk_00000000000000000000")
        #expect(unknown.code != 0 && unknown.err.hasPrefix("latch: error: "))
        // a key for one job: expiry shown in the listing; a bad duration is a usage error
        let shortFile = server.dir + "/short.key"
        let short = try await latch("apikey", "create", "--expires-in", "2h", "--permission", "machine.vault.read", "--out", shortFile)
        #expect(short.code == 0 && short.err.contains("expires"), "\(short.err)")
        let withExpiry = try await latch("apikey", "list", "--json")
        #expect(withExpiry.out.contains("\"expiresAt\""))
        let doctor = try await latch("doctor", extra: ["LATCH_API_KEY": try secret(shortFile)])
        #expect(doctor.out.contains("warn API key") && doctor.out.contains("expires"), "\(doctor.out)")
        let whoamiShort = try await latch("whoami", extra: ["LATCH_API_KEY": try secret(shortFile)])
        #expect(whoamiShort.code == 0 && whoamiShort.out.contains("(expires "), "\(whoamiShort.out)\(whoamiShort.err)")
        #expect(try await latch("apikey", "create", "--expires-in", "soon", "--out", server.dir + "/x.key").code == 64)
        #expect(try await latch("apikey", "create", "--expires-in", "0d", "--out", server.dir + "/x.key").code == 64)

        // a user's profile rotates its own key in one go; an agent's cannot
        let profileDir = home + "/profiles/default"
        let before = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: profileDir + "/profile.json"))) as? [String: Any]
        let oldKey = (before?["accessKey"] as? String ?? "") + "." + (try secret(profileDir + "/api-secret"))
        #expect(try await me(oldKey).code == 0)
        let rotate = try await latch("apikey", "rotate")
        #expect(rotate.code == 0 && rotate.out.hasPrefix("rotated \(before?["accessKey"] as? String ?? "?") -> lk_"), "\(rotate.out)\(rotate.err)")
        #expect(try await me(oldKey).code == 67)
        #expect(try await latch("whoami").out.contains(String(rotate.out.split(separator: " ").last ?? "").trimmingCharacters(in: .whitespacesAndNewlines)))
        // a rotation whose switch fails leaves the profile on its key and revokes the new one
        let current = try secret(profileDir + "/api-secret")   // the whole key since the rotation
        let keysBeforeFailure = try await latch("apikey", "list").out
        await #expect(throws: LatchError.self) {
            _ = try await Latch.rotateProfileAPIKey(profile: "default", environment: env, transport: FailingKeyCheck(keep: current))
        }
        do {
            _ = try await Latch.rotateProfileAPIKey(profile: "default", environment: env, transport: FailingKeyCheck(keep: current))
        } catch let e as LatchError {
            #expect(e.message.hasPrefix("rotation undone, the profile keeps its key"), "\(e)")
        }
        #expect(try secret(profileDir + "/api-secret") == current)
        #expect(try await me(current).code == 0)
        let keysAfterFailure = try await latch("apikey", "list").out
        func active(_ listing: String) -> Int { listing.split(separator: "\n").filter { $0.contains(" active ") }.count }
        #expect(active(keysAfterFailure) == active(keysBeforeFailure), "\(keysAfterFailure)")   // both new keys revoked again
        #expect(keysAfterFailure.split(separator: "\n").filter { $0.contains(" revoked ") }.count
                == keysBeforeFailure.split(separator: "\n").filter { $0.contains(" revoked ") }.count + 2)
        let agentRotate = try await latch("apikey", "rotate", "--profile", "bot")
        #expect(agentRotate.code == 64 && agentRotate.err.contains("apikey create --agent"), "\(agentRotate.err)")

        // an ORG key: the organisation's tenants; a new tenant whose admin's key pair was made elsewhere
        let orgFile = server.dir + "/org.key"
        let org = try await latch("apikey", "create", "--scope", "ORG", "--out", orgFile)
        #expect(org.code == 0, "\(org.err)")
        let show = try await latch("org", "show", "--key-file", orgFile, "--json")
        #expect(show.code == 0 && show.out.contains("\"tenants\""), "\(show.err)")
        #expect(try await latch("org", "show", "--key-file", ownFile).code == 77)   // a USER key: 403 forbidden
        let sam = try PrincipalPrivateKey.generate(bits: 2048)
        let samPub = server.dir + "/sam.pub.pem", samKeyPath = server.dir + "/sam.key.pem", samAPI = server.dir + "/sam.api"
        try sam.publicKey.pem.write(toFile: samPub, atomically: true, encoding: .utf8)
        try sam.pkcs8PEM.write(toFile: samKeyPath, atomically: true, encoding: .utf8)
        let made = try await latch("org", "create-tenant", "staging", "--admin", "sam", "--admin-public-key", samPub, "--out", samAPI, "--key-file", orgFile)
        #expect(made.code == 0, "\(made.err)")
        #expect((try FileManager.default.attributesOfItem(atPath: samAPI)[.posixPermissions] as? Int) == 0o600)
        #expect(!made.out.contains(String(try secret(samAPI).split(separator: ".")[1])))
        let samMe = try await LatchProcess.run(["whoami", "--json"], env: [
            "PATH": "/usr/bin:/bin", "LATCH_HOME": server.dir + "/sam-home", "HOME": server.dir,
            "LATCH_API_KEY": try secret(samAPI), "LATCH_PRIVATE_KEY_PATH": samKeyPath, "LATCH_BASE_URL": server.url,
        ])
        #expect(samMe.code == 0 && samMe.out.contains("TENANT_ADMIN") && samMe.out.contains(made.out.trimmingCharacters(in: .whitespacesAndNewlines)),
                "\(samMe.out)\(samMe.err)")
        #expect(try await latch("org", "show", "--key-file", orgFile).out.contains("staging"))
    }
}
