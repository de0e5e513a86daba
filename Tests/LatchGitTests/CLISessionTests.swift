import Foundation
import LatchAge
import Testing
@testable import LatchGit

/// Drives the built `agent-vault` executable the way agent-vault's own users do, in a
/// temporary Git repository with HOME pointed at a temporary directory.
@Suite struct CLISessionTests {
    struct Session {
        let dir: URL, repo: URL, home: URL
        let executable: URL
        let environment: [String: String]

        init() throws {
            let built = Bundle.module.bundleURL.deletingLastPathComponent().appendingPathComponent("agent-vault")
            guard FileManager.default.isExecutableFile(atPath: built.path) else {
                Issue.record("the agent-vault executable was not found at \(built.path); run `swift build` first")
                throw VectorMissing(name: "agent-vault")
            }
            executable = built
            dir = try temporaryDirectory("gitvault-cli")
            repo = dir.appendingPathComponent("repo")
            home = dir.appendingPathComponent("home")
            try FileManager.default.createDirectory(at: repo, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
            environment = ["HOME": home.path, "USER": "tester", "LC_ALL": "C",
                           "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"]
        }

        @discardableResult
        func run(_ args: String..., env extra: [String: String] = [:], in directory: URL? = nil) async throws -> ProcessResult {
            try await runProcess(executable, args, in: directory ?? repo, environment: environment.merging(extra) { $1 })
        }

        func git(_ args: String...) async throws -> ProcessResult {
            guard let git = tool("git") else { throw VectorMissing(name: "git") }
            return try await runProcess(git, args, in: repo, environment: environment)
        }

        func ageDecrypt(_ file: String, key: URL) async throws -> ProcessResult {
            guard let age = tool("age") else { throw VectorMissing(name: "age") }
            return try await runProcess(age, ["-d", "-i", key.path, repo.appendingPathComponent(file).path],
                                  in: repo, environment: environment)
        }

        func text(_ relative: String) throws -> String {
            try String(contentsOf: repo.appendingPathComponent(relative), encoding: .utf8)
        }
        func bytes(_ relative: String) throws -> Data { try Data(contentsOf: repo.appendingPathComponent(relative)) }
        var ownerKey: URL { home.appendingPathComponent(".agent-vault/owner.key") }
        func agentKey(_ name: String) -> URL { home.appendingPathComponent(".agent-vault/agents/\(name).key") }
        func mode(_ url: URL) throws -> Int? {
            try FileManager.default.attributesOfItem(atPath: url.path)[.posixPermissions] as? Int
        }
        func vaultFiles() throws -> [String] {
            try LocalFileSystem().regularFiles(under: repo.appendingPathComponent(".agent-vault"))
        }
    }

    nonisolated(unsafe) static let timestampLine = #/^(created|rotated|expires): \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3}|\.\d{6}|\.\d{9})?Z$/#

    func expectMeta(_ session: Session, _ path: String, group: String, agents: [String], expires: String? = nil) throws {
        let text = try session.text(VaultLayout.metadataFile(path))
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines[0] == "name: \(path)")
        #expect(lines[1] == "group: \(group)")
        #expect(lines[2].wholeMatch(of: Self.timestampLine) != nil && lines[2].hasPrefix("created: "), "\(lines[2])")
        #expect(lines[3].wholeMatch(of: Self.timestampLine) != nil && lines[3].hasPrefix("rotated: "), "\(lines[3])")
        var next = 4
        if let expires {
            #expect(lines[4] == "expires: \(expires)")
            next = 5
        }
        let agentLines = agents.isEmpty ? ["authorized_agents: []"] : ["authorized_agents:"] + agents.map { "- \($0)" }
        #expect(Array(lines[next...]) == agentLines + [""])
    }

    @Test func scriptedSession() async throws {
        let s = try Session()
        defer { cleanup(s.dir) }
        #expect(try await s.git("init", "-q", "-b", "main").status == 0)

        // init
        var r = try await s.run("init")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("Vault initialized"))
        #expect(try s.text(".agent-vault/config.yaml") == vector("config.yaml"))
        #expect(try s.text(".agent-vault/.gitignore") == vector("gitignore"))
        #expect(try s.text(".agent-vault/manifest.yaml") == vector("manifest-new.yaml").replacingOccurrences(of: "alice", with: "tester"))
        let ownerKeyText = try String(contentsOf: s.ownerKey, encoding: .utf8)
        let ownerPub = try s.text(".agent-vault/owner.pub")
        #expect(ownerKeyText.hasPrefix("AGE-SECRET-KEY-1") && ownerKeyText.count == 74)
        #expect(ownerPub.hasPrefix("age1") && ownerPub.count == 62)
        #expect(try AgeX25519Identity(string: ownerKeyText).recipient.string == ownerPub)
        #expect(try s.mode(s.ownerKey) == 0o600)
        #expect(try s.text(".git/hooks/pre-commit").contains(PreCommitHook.marker))
        #expect(try await s.run("init").status == GitVaultExitCode.failure)            // already initialized

        // add-agent
        r = try await s.run("add-agent", "bot1")
        #expect(r.status == 0 && r.stderr.contains("Agent 'bot1' created"), "\(r.stderr)")
        #expect(try await s.run("add-agent", "bot2").status == 0)
        #expect(try await s.run("add-agent", "bot1").status == GitVaultExitCode.failure)
        for agent in ["bot1", "bot2"] {
            let key = try String(contentsOf: s.agentKey(agent), encoding: .utf8)
            #expect(key.hasPrefix("AGE-SECRET-KEY-1") && key.count == 74)
            #expect(try s.mode(s.agentKey(agent)) == 0o600)
            #expect(try s.text(".agent-vault/agents/\(agent)/public.key") == AgeX25519Identity(string: key).recipient.string)
            // The escrow is the private key string encrypted to the owner only.
            let escrow = try s.bytes(".agent-vault/agents/\(agent)/private.key.escrow")
            #expect(escrow.starts(with: Data("age-encryption.org/v1\n".utf8)))
            let opened = try await s.ageDecrypt(".agent-vault/agents/\(agent)/private.key.escrow", key: s.ownerKey)
            #expect(opened.status == 0 && opened.stdout == Data(key.utf8))
        }

        // set
        #expect(try await s.run("set", "stripe/api-key", "sk_live_123").status == 0)
        let webhookValue = Data("whsec_456\nsecond line\n".utf8)
        let valueFile = s.dir.appendingPathComponent("webhook.txt")
        try webhookValue.write(to: valueFile)
        r = try await s.run("set", "stripe/webhook-secret", "--from-file", valueFile.path)
        #expect(r.status == 0, "\(r.stderr)")
        r = try await s.run("set", "db/prod/url", "postgres://u@h/db", "--group", "db", "--expires", "2099-01-01T00:00:00Z")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try await s.run("set", "stripe/x").status != 0)                            // no value
        #expect(try await s.run("set", "../escape", "v").status == GitVaultExitCode.failure)

        // grant
        r = try await s.run("grant", "bot1", "stripe")
        #expect(r.status == 0 && r.stderr.contains("Re-encrypted 2 secret(s)"), "\(r.stderr)")
        #expect(try s.text(".agent-vault/manifest.yaml") == """
            version: 1
            owners:
            - name: tester
              public_key: owner.pub
            agents:
            - name: bot1
              groups:
              - stripe
            - name: bot2
              groups: []
            groups:
            - name: stripe
              secrets:
              - stripe/api-key
              - stripe/webhook-secret
            - name: db
              secrets:
              - db/prod/url

            """)
        try expectMeta(s, "stripe/api-key", group: "stripe", agents: ["bot1"])
        try expectMeta(s, "stripe/webhook-secret", group: "stripe", agents: ["bot1"])
        try expectMeta(s, "db/prod/url", group: "db", agents: [], expires: "2099-01-01T00:00:00Z")

        // get as owner and as agent: the value only, exact bytes.
        r = try await s.run("get", "stripe/api-key")
        #expect(r.status == 0 && r.stdout == Data("sk_live_123".utf8), "\(r.stderr)")
        r = try await s.run("get", "stripe/webhook-secret", "--key", s.agentKey("bot1").path)
        #expect(r.status == 0 && r.stdout == webhookValue)
        let bot1Key = try String(contentsOf: s.agentKey("bot1"), encoding: .utf8)
        r = try await s.run("get", "stripe/api-key", env: ["AGENT_VAULT_KEY": bot1Key])
        #expect(r.status == 0 && r.stdout == Data("sk_live_123".utf8))
        r = try await s.run("get", "stripe/api-key", env: ["AGENT_VAULT_KEY": s.agentKey("bot1").path])
        #expect(r.status == 0 && r.stdout == Data("sk_live_123".utf8))
        // The real age decrypts the agent's files with its key.
        for (path, value) in [("stripe/api-key", Data("sk_live_123".utf8)), ("stripe/webhook-secret", webhookValue)] {
            let opened = try await s.ageDecrypt(VaultLayout.secretFile(path), key: s.agentKey("bot1"))
            #expect(opened.status == 0 && opened.stdout == value, "\(opened.stderr)")
            #expect(try s.bytes(VaultLayout.secretFile(path)).starts(with: Data("age-encryption.org/v1\n-> X25519 ".utf8)))
        }
        #expect(try await s.ageDecrypt(VaultLayout.secretFile("db/prod/url"), key: s.agentKey("bot1")).status != 0)

        // An agent key without the grant: not authorised, with its exit code.
        r = try await s.run("get", "stripe/api-key", "--key", s.agentKey("bot2").path)
        #expect(r.status == GitVaultExitCode.notAuthorized && r.stdout.isEmpty)
        #expect(r.stderr.contains("not authorised") && !r.stderr.contains("sk_live"))
        #expect(try await s.ageDecrypt(VaultLayout.secretFile("stripe/api-key"), key: s.agentKey("bot2")).status != 0)

        // list / list-agents
        r = try await s.run("list", "--json")
        let listed = try JSONSerialization.jsonObject(with: r.stdout) as? [[String: Any]]
        #expect(listed?.map { $0["name"] as? String } == ["db/prod/url", "stripe/api-key", "stripe/webhook-secret"])
        r = try await s.run("list", "--group", "stripe")
        #expect(r.out.contains("stripe/api-key") && r.out.contains("group=stripe") && !r.out.contains("db/prod"))
        r = try await s.run("list-agents")
        #expect(r.out == "bot1  [stripe]\nbot2  (no groups)\n")
        r = try await s.run("list-agents", "--json")
        #expect(r.out == "[\n  {\n    \"groups\": [\n      \"stripe\"\n    ],\n    \"name\": \"bot1\"\n  },\n  {\n    \"groups\": [],\n    \"name\": \"bot2\"\n  }\n]\n")

        // revoke; get fails as the agent
        r = try await s.run("revoke", "bot1", "stripe")
        #expect(r.status == 0 && r.stderr.contains("  - stripe/api-key") && r.stderr.contains("  - stripe/webhook-secret"))
        r = try await s.run("get", "stripe/api-key", "--key", s.agentKey("bot1").path)
        #expect(r.status == GitVaultExitCode.notAuthorized && r.stdout.isEmpty)
        try expectMeta(s, "stripe/api-key", group: "stripe", agents: [])
        #expect(try await s.run("get", "stripe/api-key").stdout == Data("sk_live_123".utf8))

        // recover-agent: a new key pair; the old key stops working, the new one works.
        #expect(try await s.run("grant", "bot1", "stripe").status == 0)
        let oldKey = s.dir.appendingPathComponent("old-bot1.key")
        try FileManager.default.copyItem(at: s.agentKey("bot1"), to: oldKey)
        r = try await s.run("recover-agent", "bot1")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try await s.run("get", "stripe/api-key", "--key", oldKey.path).status == GitVaultExitCode.notAuthorized)
        #expect(try await s.run("get", "stripe/api-key", "--key", s.agentKey("bot1").path).stdout == Data("sk_live_123".utf8))
        let newKey = try String(contentsOf: s.agentKey("bot1"), encoding: .utf8)
        #expect(try newKey != String(contentsOf: oldKey, encoding: .utf8))
        #expect(try s.text(".agent-vault/agents/bot1/public.key") == AgeX25519Identity(string: newKey).recipient.string)

        // restore-agent writes the escrowed (current) key, mode 0600.
        let restored = s.dir.appendingPathComponent("restored.key")
        r = try await s.run("restore-agent", "bot1", "--to", restored.path)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try String(contentsOf: restored, encoding: .utf8) == newKey)
        #expect(try s.mode(restored) == 0o600)

        // check: healthy apart from warnings.
        r = try await s.run("check")
        #expect(r.status == 0)
        #expect(r.out.contains("WARNING: Agent 'bot2' has no group access"))
        #expect(r.out.contains("WARNING: Group 'db' has no agents assigned"))
        r = try await s.run("check", "--json")
        let report = try JSONSerialization.jsonObject(with: r.stdout) as? [String: [String]]
        #expect(report?["errors"] == [] && report?["warnings"]?.count == 2)

        // Errors a script can tell apart.
        #expect(try await s.run("get", "nope/nothing").status == GitVaultExitCode.secretNotFound)
        #expect(try await s.run("list", in: s.dir).status == GitVaultExitCode.vaultNotFound)
        let emptyHome = s.dir.appendingPathComponent("empty-home")
        #expect(try await s.run("get", "stripe/api-key", env: ["HOME": emptyHome.path]).status == GitVaultExitCode.noKey)
        #expect(try await s.run("get", "stripe/api-key", "--key", "/nonexistent.key").status == GitVaultExitCode.noKey)

        // Every file against the layout, all committed, no private key in git.
        #expect(try s.vaultFiles() == [
            ".gitignore", "agents/bot1/private.key.escrow", "agents/bot1/public.key",
            "agents/bot2/private.key.escrow", "agents/bot2/public.key", "config.yaml", "manifest.yaml", "owner.pub",
            "secrets/db/prod/url.enc", "secrets/db/prod/url.meta", "secrets/stripe/api-key.enc",
            "secrets/stripe/api-key.meta", "secrets/stripe/webhook-secret.enc", "secrets/stripe/webhook-secret.meta",
        ])
        #expect(try await s.git("status", "--porcelain").out == "")
        let fsck = try await s.git("fsck", "--strict")
        #expect(fsck.status == 0, "\(fsck.stderr)")
        let tracked = try await s.git("ls-files").out.split(separator: "\n").map(String.init)
        #expect(tracked == (try s.vaultFiles()).map { ".agent-vault/" + $0 })
        let log = try await s.git("log", "--format=%s").out.split(separator: "\n").map(String.init)
        #expect(log.reversed() == [
            "agent-vault: initialize vault", "agent-vault: add agent 'bot1'", "agent-vault: add agent 'bot2'",
            "agent-vault: set secret 'stripe/api-key'", "agent-vault: set secret 'stripe/webhook-secret'",
            "agent-vault: set secret 'db/prod/url'", "agent-vault: grant 'bot1' access to 'stripe'",
            "agent-vault: revoke 'bot1' access to 'stripe'", "agent-vault: grant 'bot1' access to 'stripe'",
            "agent-vault: recover agent 'bot1' with new keypair",
        ])

        // remove-agent re-encrypts without it and deletes its files, in one commit.
        r = try await s.run("remove-agent", "bot1")
        #expect(r.status == 0 && r.stderr.contains("  - stripe/api-key"))
        #expect(!FileManager.default.fileExists(atPath: s.repo.appendingPathComponent(".agent-vault/agents/bot1").path))
        #expect(try await s.git("status", "--porcelain").out == "")
        #expect(try await !s.git("ls-files").out.contains("agents/bot1"))
        #expect(try await s.git("log", "-1", "--format=%s").out == "agent-vault: remove agent 'bot1'\n")
        #expect(try await s.ageDecrypt(VaultLayout.secretFile("stripe/api-key"), key: s.agentKey("bot1")).status != 0)

        // A broken vault: check exits 1 and says why.
        try FileManager.default.removeItem(at: s.repo.appendingPathComponent(".agent-vault/secrets/db/prod/url.enc"))
        r = try await s.run("check", "--json")
        #expect(r.status == GitVaultExitCode.failure)
        let broken = try JSONSerialization.jsonObject(with: r.stdout) as? [String: [String]]
        #expect(broken?["errors"]?.contains { $0.contains("db/prod/url") } == true)
    }

    @Test func commitsLeaveUnrelatedStagedChangesStaged() async throws {
        let s = try Session()
        defer { cleanup(s.dir) }
        #expect(try await s.git("init", "-q", "-b", "main").status == 0)
        #expect(try await s.run("init").status == 0)
        try "draft".write(to: s.repo.appendingPathComponent("notes.txt"), atomically: true, encoding: .utf8)
        #expect(try await s.git("add", "notes.txt").status == 0)
        #expect(try await s.run("set", "app/token", "v1").status == 0)
        #expect(try await s.git("log", "-1", "--format=%s").out == "agent-vault: set secret 'app/token'\n")
        #expect(try await !s.git("ls-tree", "-r", "--name-only", "HEAD").out.contains("notes.txt"))
        #expect(try await s.git("diff", "--cached", "--name-only").out == "notes.txt\n")
        #expect(try await s.git("ls-tree", "-r", "--name-only", "HEAD").out.contains(".agent-vault/secrets/app/token.enc"))
        // Still staged after a re-encrypting command too.
        #expect(try await s.run("add-agent", "bot").status == 0)
        #expect(try await s.run("grant", "bot", "app").status == 0)
        #expect(try await s.git("diff", "--cached", "--name-only").out == "notes.txt\n")
        #expect(try await s.git("status", "--porcelain").out == "A  notes.txt\n")
    }

    @Test func getFastForwardsFromTheRemote() async throws {
        let s = try Session()
        defer { cleanup(s.dir) }
        #expect(try await s.git("init", "-q", "-b", "main").status == 0)
        #expect(try await s.run("init").status == 0)
        #expect(try await s.run("set", "app/token", "v1").status == 0)
        // A clone that will fall behind.
        let clone = s.dir.appendingPathComponent("clone")
        guard let git = tool("git") else { return }
        #expect(try await runProcess(git, ["clone", "-q", s.repo.path, clone.path], in: s.dir, environment: s.environment).status == 0)
        #expect(try await s.run("set", "app/token", "v2").status == 0)
        var r = try await s.run("get", "app/token", in: clone)
        #expect(r.status == 0 && r.stdout == Data("v2".utf8), "\(r.stderr)")
        // An unreachable remote: a warning, then the local copy.
        #expect(try await runProcess(git, ["remote", "set-url", "origin", s.dir.appendingPathComponent("gone").path],
                               in: clone, environment: s.environment).status == 0)
        r = try await s.run("get", "app/token", in: clone)
        #expect(r.status == 0 && r.stdout == Data("v2".utf8))
        #expect(r.stderr.contains("warning: could not fast-forward"))
    }
}
