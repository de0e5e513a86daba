import Foundation
import LatchAge
import Testing
@testable import LatchGit

/// The model against a temp directory, with commits recorded instead of run.
@Suite struct ModelTests {
    struct Fixture {
        let root: URL
        let home: URL
        let git = RecordingGit()
        var clock = FixedVaultClock(VaultTimestamp(seconds: 1_800_000_000))
        var vault: GitVault
        var rng = SeededGenerator(state: 42)

        init() throws {
            root = try temporaryDirectory("gitvault-model")
            home = root.appendingPathComponent("home")
            var rng = SeededGenerator(state: 7)
            vault = try GitVault.initialize(
                in: root.appendingPathComponent("repo"), environment: VaultEnvironment(home: home, userName: "alice"),
                git: git, clock: clock, using: &rng)
        }

        func file(_ relative: String) -> URL { vault.layout.url(relative) }
        func text(_ relative: String) throws -> String { try String(contentsOf: file(relative), encoding: .utf8) }
    }

    @Test func initWritesTheLayout() throws {
        let f = try Fixture()
        defer { cleanup(f.root) }
        #expect(try f.text(VaultLayout.configFile) == vector("config.yaml"))
        #expect(try f.text(VaultLayout.manifestFile) == vector("manifest-new.yaml"))
        #expect(try f.text(VaultLayout.gitignoreFile) == vector("gitignore"))
        let ownerKey = try String(contentsOf: f.vault.environment.keys.ownerKey, encoding: .utf8)
        let ownerPub = try f.text(VaultLayout.ownerPublicKeyFile)
        #expect(ownerKey.hasPrefix("AGE-SECRET-KEY-1") && !ownerKey.hasSuffix("\n"))
        #expect(try AgeX25519Identity(string: ownerKey).recipient.string == ownerPub)
        let mode = try FileManager.default.attributesOfItem(atPath: f.vault.environment.keys.ownerKey.path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        #expect(f.git.commits.map(\.message) == ["agent-vault: initialize vault"])
        let hook = try String(contentsOf: f.root.appendingPathComponent("repo/.git/hooks/pre-commit"), encoding: .utf8)
        #expect(hook.contains(PreCommitHook.marker))
        #expect(throws: GitVaultError.alreadyInitialized(f.vault.layout.vaultDirectory.path)) {
            var rng = SeededGenerator(state: 1)
            _ = try GitVault.initialize(in: f.vault.layout.root, environment: f.vault.environment, git: f.git, using: &rng)
        }
    }

    @Test func setEncryptsToOwnerThenGroupAgents() throws {
        var f = try Fixture()
        defer { cleanup(f.root) }
        try f.vault.addAgent("bot1", using: &f.rng)
        try f.vault.addAgent("bot2", using: &f.rng)
        _ = try f.vault.setSecret("stripe/api-key", value: Data("sk_1".utf8), using: &f.rng)
        _ = try f.vault.grant(agent: "bot2", group: "stripe", using: &f.rng)
        let meta = try f.vault.setSecret("stripe/api-key", value: Data("sk_2".utf8), extraAgents: ["bot1"], using: &f.rng)
        #expect(meta.authorizedAgents == ["bot2", "bot1"])
        #expect(meta.created == f.clock.instant)
        let ciphertext = try Data(contentsOf: f.file(VaultLayout.secretFile("stripe/api-key")))
        // Binary (not armored) age with three X25519 stanzas: owner, bot2, bot1.
        let header = String(decoding: ciphertext.prefix(600), as: UTF8.self)
        #expect(header.hasPrefix("age-encryption.org/v1\n-> X25519 "))
        #expect(header.components(separatedBy: "\n-> X25519 ").count == 4)
        let bot1 = try VaultKeyFile.parseIdentity(String(contentsOf: f.vault.environment.keys.agentKey("bot1"), encoding: .utf8), source: "bot1")
        #expect(try f.vault.getSecret("stripe/api-key", identity: bot1) == Data("sk_2".utf8))
        #expect(f.git.commits.last?.message == "agent-vault: set secret 'stripe/api-key'")
        #expect(f.git.commits.last?.changed == [".agent-vault/secrets/stripe/api-key.enc",
                                               ".agent-vault/secrets/stripe/api-key.meta", ".agent-vault/manifest.yaml"])
        #expect(throws: GitVaultError.agentNotFound("ghost")) {
            _ = try f.vault.setSecret("stripe/api-key", value: Data("x".utf8), extraAgents: ["ghost"], using: &f.rng)
        }
        #expect(throws: GitVaultError.secretNotFound("stripe/none")) {
            _ = try f.vault.getSecret("stripe/none", identity: bot1)
        }
    }

    @Test func revokeReencryptsWithoutTheAgent() throws {
        var f = try Fixture()
        defer { cleanup(f.root) }
        try f.vault.addAgent("bot1", using: &f.rng)
        _ = try f.vault.setSecret("stripe/api-key", value: Data("sk".utf8), using: &f.rng)
        _ = try f.vault.setSecret("stripe/webhook", value: Data("wh".utf8), using: &f.rng)
        #expect(try f.vault.grant(agent: "bot1", group: "stripe", using: &f.rng) == ["stripe/api-key", "stripe/webhook"])
        let bot1 = try VaultKeyFile.parseIdentity(String(contentsOf: f.vault.environment.keys.agentKey("bot1"), encoding: .utf8), source: "bot1")
        #expect(try f.vault.getSecret("stripe/webhook", identity: bot1) == Data("wh".utf8))
        #expect(try f.vault.revoke(agent: "bot1", group: "stripe", using: &f.rng) == ["stripe/api-key", "stripe/webhook"])
        #expect(throws: GitVaultError.notAuthorized(secret: "stripe/webhook")) {
            _ = try f.vault.getSecret("stripe/webhook", identity: bot1)
        }
        #expect(try f.vault.loadMetadata("stripe/webhook").authorizedAgents == [])
        #expect(f.git.commits.last?.message == "agent-vault: revoke 'bot1' access to 'stripe'")
        #expect(throws: GitVaultError.groupNotFound("nope")) { _ = try f.vault.grant(agent: "bot1", group: "nope", using: &f.rng) }
        #expect(throws: GitVaultError.agentNotFound("ghost")) { _ = try f.vault.grant(agent: "ghost", group: "stripe", using: &f.rng) }
    }

    @Test func checkFindsErrorsAndWarnings() throws {
        var f = try Fixture()
        defer { cleanup(f.root) }
        #expect(try f.vault.check() == CheckReport())
        try f.vault.addAgent("bot1", using: &f.rng)
        try f.vault.addAgent("bot2", using: &f.rng)
        _ = try f.vault.setSecret("stripe/api-key", value: Data("sk".utf8), using: &f.rng)
        _ = try f.vault.setSecret("soon/token", value: Data("t".utf8),
                                  expires: VaultTimestamp(seconds: f.clock.instant.seconds + 86_400 * 10), using: &f.rng)
        _ = try f.vault.setSecret("old/token", value: Data("t".utf8),
                                  expires: VaultTimestamp(seconds: f.clock.instant.seconds - 86_400 * 3), using: &f.rng)
        _ = try f.vault.setSecret("db/url", value: Data("u".utf8), using: &f.rng)
        _ = try f.vault.grant(agent: "bot1", group: "stripe", using: &f.rng)
        // Break things.
        try FileManager.default.removeItem(at: f.file(VaultLayout.secretFile("stripe/api-key")))
        try FileManager.default.removeItem(at: f.file(VaultLayout.agentEscrowFile("bot1")))
        try FileManager.default.removeItem(at: f.file(VaultLayout.agentPublicKeyFile("bot2")))
        try Data("x".utf8).write(to: f.file(".agent-vault/secrets/stray/file.enc"), createDirs: true)
        let meta = try f.text(VaultLayout.metadataFile("db/url")).replacingOccurrences(of: "group: db", with: "group: stripe")
        try meta.write(to: f.file(VaultLayout.metadataFile("db/url")), atomically: true, encoding: .utf8)
        try "version: [".write(to: f.file(VaultLayout.configFile), atomically: true, encoding: .utf8)
        try FileManager.default.removeItem(at: f.vault.environment.keys.ownerKey)

        let report = try f.vault.check()
        func has(_ list: [String], _ fragment: String) -> Bool { list.contains { $0.contains(fragment) } }
        #expect(has(report.errors, "config.yaml is invalid"))
        #expect(has(report.errors, "Secret 'stripe/api-key' is listed in the manifest but its .enc file is missing"))
        #expect(has(report.errors, "Agent 'bot1' is missing its escrow file"))
        #expect(has(report.errors, "Agent 'bot2' is in the manifest but its public key file is missing"))
        #expect(has(report.errors, "Secret 'old/token' expired 3 day(s) ago"))
        #expect(has(report.errors, "Secret 'db/url' metadata group 'stripe'"))
        #expect(report.errors.count == 6)
        #expect(has(report.warnings, "Agent 'bot2' has no group access"))
        #expect(has(report.warnings, "Group 'soon' has no agents assigned"))
        #expect(has(report.warnings, "Orphaned .enc file: stray/file"))
        #expect(has(report.warnings, "Secret 'soon/token' expires in 10 day(s)"))
        #expect(has(report.warnings, "Owner private key not found"))
        #expect(!has(report.warnings, "Group 'stripe'"))
    }

    @Test func identityResolutionOrder() throws {
        let f = try Fixture()
        defer { cleanup(f.root) }
        let agentKey = f.root.appendingPathComponent("agent.key")
        let agent = AgeX25519Identity.generate()
        try Data(agent.string.utf8).write(to: agentKey)
        let owner = try String(contentsOf: f.vault.environment.keys.ownerKey, encoding: .utf8)
        var env = f.vault.environment
        // 1. --key wins over everything.
        env.agentVaultKey = owner
        var resolved = try IdentityResolver(environment: env).resolve(keyOption: agentKey.path)
        #expect(resolved.identity.string == agent.string && resolved.source == .keyOption(agentKey.path))
        // 2. AGENT_VAULT_KEY as a raw key, 3. as a file path.
        env.agentVaultKey = "  \(agent.string)\n"
        resolved = try IdentityResolver(environment: env).resolve(keyOption: nil)
        #expect(resolved.identity.string == agent.string && resolved.source == .environmentValue)
        env.agentVaultKey = agentKey.path
        resolved = try IdentityResolver(environment: env).resolve(keyOption: nil)
        #expect(resolved.source == .environmentFile(agentKey.path))
        // 4. the owner key.
        env.agentVaultKey = nil
        resolved = try IdentityResolver(environment: env).resolve(keyOption: nil)
        #expect(resolved.identity.string == owner)
        // Nothing: no key configured.
        env.home = f.root.appendingPathComponent("elsewhere")
        #expect(throws: GitVaultError.self) { _ = try IdentityResolver(environment: env).resolve(keyOption: nil) }
        #expect((try? IdentityResolver(environment: env).resolve(keyOption: "/nonexistent/key")) == nil)
        env.agentVaultKey = "AGE-SECRET-KEY-1NOTAKEY"
        do {
            _ = try IdentityResolver(environment: env).resolve(keyOption: nil)
            Issue.record("a malformed key was accepted")
        } catch let error as GitVaultError {
            #expect(error.exitCode == GitVaultExitCode.noKey)
            #expect(!error.description.contains("NOTAKEY"))
        }
    }
}

extension Data {
    func write(to url: URL, createDirs: Bool) throws {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try write(to: url)
    }
}
