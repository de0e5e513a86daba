import Foundation
import Testing
@testable import LatchGit

/// `latch get --repo`, `latch run --repo` and `latch mcp --repo`, driven through the built
/// `latch` executable against a vault made by the built `agent-vault`.
@Suite struct LatchRepoClientTests {
    /// A vault with bot1 granted `stripe` (two secrets), bot2 with no groups, and `db/prod/url`
    /// readable by the owner only.
    struct Fixture {
        let s: CLISessionTests.Session
        let latch: URL

        init() async throws {
            s = try CLISessionTests.Session()
            let built = s.executable.deletingLastPathComponent().appendingPathComponent("latch")
            guard FileManager.default.isExecutableFile(atPath: built.path) else {
                Issue.record("the latch executable was not found at \(built.path); run `swift build` first")
                throw VectorMissing(name: "latch")
            }
            latch = built
            #expect(try await s.git("init", "-q", "-b", "main").status == 0)
            for args in [["init"], ["add-agent", "bot1"], ["add-agent", "bot2"], ["set", "stripe/api-key", "sk_live_123"],
                         ["set", "stripe/webhook-secret", "whsec_456"], ["set", "db/prod/url", "postgres://u@h/db"],
                         ["grant", "bot1", "stripe"]] {
                let r = try await runProcess(s.executable, args, in: s.repo, environment: s.environment)
                #expect(r.status == 0, "\(args): \(r.stderr)")
            }
        }

        /// Runs `latch` from the scratch directory (not inside the repository), so `--repo` matters.
        func latch(_ args: [String], env extra: [String: String] = [:]) async throws -> ProcessResult {
            try await runProcess(latch, args, in: s.dir, environment: s.environment.merging(extra) { $1 })
        }
    }

    @Test func getFromRepo() async throws {
        let f = try await Fixture()
        defer { cleanup(f.s.dir) }
        let repo = f.s.repo.path
        // Owner (~/.agent-vault/owner.key): every secret, the exact bytes.
        var r = try await f.latch(["get", "db/prod/url", "--repo", repo])
        #expect(r.status == 0 && r.stdout == Data("postgres://u@h/db".utf8), "\(r.stderr)")
        // Agent with --key, and with AGENT_VAULT_KEY (a path, then the raw key).
        r = try await f.latch(["get", "stripe/api-key", "--repo", repo, "--key", f.s.agentKey("bot1").path])
        #expect(r.status == 0 && r.stdout == Data("sk_live_123".utf8), "\(r.stderr)")
        r = try await f.latch(["get", "stripe/webhook-secret", "--repo", repo], env: ["AGENT_VAULT_KEY": f.s.agentKey("bot1").path])
        #expect(r.status == 0 && r.stdout == Data("whsec_456".utf8), "\(r.stderr)")
        let bot1Key = try String(contentsOf: f.s.agentKey("bot1"), encoding: .utf8)
        r = try await f.latch(["get", "stripe/api-key", "--repo", repo], env: ["AGENT_VAULT_KEY": bot1Key])
        #expect(r.status == 0 && r.stdout == Data("sk_live_123".utf8), "\(r.stderr)")
        // Errors with agent-vault's exit codes and messages; never a value.
        r = try await f.latch(["get", "db/prod/url", "--repo", repo, "--key", f.s.agentKey("bot1").path])
        #expect(r.status == GitVaultExitCode.notAuthorized && r.stdout.isEmpty)
        #expect(r.stderr.contains("not authorised") && !r.stderr.contains("postgres"), "\(r.stderr)")
        r = try await f.latch(["get", "stripe/nope", "--repo", repo])
        #expect(r.status == GitVaultExitCode.secretNotFound && r.stderr.contains("secret 'stripe/nope' not found"), "\(r.stderr)")
        r = try await f.latch(["get", "stripe/api-key", "--repo", f.s.dir.path])
        #expect(r.status == GitVaultExitCode.vaultNotFound, "\(r.stderr)")
        try FileManager.default.removeItem(at: f.s.ownerKey)
        r = try await f.latch(["get", "stripe/api-key", "--repo", repo])
        #expect(r.status == GitVaultExitCode.noKey && r.stderr.contains("no identity key"), "\(r.stderr)")
        r = try await f.latch(["get", "stripe/api-key", "--key", f.s.agentKey("bot1").path])
        #expect(r.status == 64, "--key without --repo is a usage error: \(r.stderr)")
    }

    @Test func runFromRepo() async throws {
        let f = try await Fixture()
        defer { cleanup(f.s.dir) }
        let repo = f.s.repo.path
        let show = ["sh", "-c", #"printf '%s|%s|%s' "$STRIPE_API_KEY" "${STRIPE_WEBHOOK_SECRET-unset}" "${DB_PROD_URL-unset}""#]
        // Owner: every secret, named snake(path); masked in the output by default.
        var r = try await f.latch(["run", "--repo", repo, "--no-masking", "--"] + show)
        #expect(r.status == 0 && r.out == "sk_live_123|whsec_456|postgres://u@h/db", "\(r.stderr)")
        r = try await f.latch(["run", "--repo", repo, "--"] + show)
        #expect(r.status == 0 && r.out == "<concealed by latch>|<concealed by latch>|<concealed by latch>", "\(r.stderr)")
        // --group and --prefix.
        r = try await f.latch(["run", "--repo", repo, "--group", "db", "--prefix", "X_", "--no-masking", "--",
                               "sh", "-c", #"printf '%s|%s' "$X_DB_PROD_URL" "${X_STRIPE_API_KEY-unset}""#])
        #expect(r.status == 0 && r.out == "postgres://u@h/db|unset", "\(r.stderr)")
        // Agent: only what it may read; the rest is left out with a note.
        r = try await f.latch(["run", "--repo", repo, "--key", f.s.agentKey("bot1").path, "--no-masking", "--"] + show)
        #expect(r.status == 0 && r.out == "sk_live_123|whsec_456|unset", "\(r.stderr)")
        #expect(r.stderr.contains("1 secret(s) this key cannot read were left out") && !r.stderr.contains("postgres"))
        // An agent that can read nothing of the selection: not authorised; the command does not run.
        r = try await f.latch(["run", "--repo", repo, "--key", f.s.agentKey("bot2").path, "--", "sh", "-c", "echo ran"])
        #expect(r.status == GitVaultExitCode.notAuthorized && !r.out.contains("ran"), "\(r.stderr)")
        r = try await f.latch(["run", "--repo", repo, "--group", "nope", "--", "true"])
        #expect(r.status == GitVaultExitCode.failure && r.stderr.contains("group 'nope' not found"), "\(r.stderr)")
        // The child's exit status passes through.
        r = try await f.latch(["run", "--repo", repo, "--", "sh", "-c", "exit 7"])
        #expect(r.status == 7)
    }

    @Test func completionScriptsForEveryShell() async throws {
        let s = try CLISessionTests.Session()
        defer { cleanup(s.dir) }
        for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
            let r = try await s.run("completions", shell)
            #expect(r.status == 0 && r.out.contains("grant") && r.out.contains("restore-agent"), "\(shell): \(r.stderr)")
        }
        #expect(try await s.run("completions", "powershell").out.contains("Register-ArgumentCompleter -Native -CommandName 'agent-vault'"))
        let elvish = try await s.run("completions", "elvish").out
        #expect(elvish.contains("set edit:completion:arg-completer[agent-vault]") && elvish.contains("&set=['--from-file' '--group'"))
        #expect(try await s.run("completions", "tcsh").status == GitVaultExitCode.failure)
    }

    @Test func mcpServesAgentVaultTools() async throws {
        let f = try await Fixture()
        defer { cleanup(f.s.dir) }
        let lines = [
            #"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"test","version":"1"}}}"#,
            #"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            #"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
            #"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"agent_vault_get","arguments":{"secret":"stripe/api-key"}}}"#,
            #"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"agent_vault_get","arguments":{"secret":"db/prod/url"}}}"#,
            #"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"agent_vault_get","arguments":{"secret":"stripe/nope"}}}"#,
            #"{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"agent_vault_list","arguments":{"group":"stripe"}}}"#,
            #"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"agent_vault_list","arguments":{}}}"#,
        ]
        // As bot1 (granted stripe only), key given with --key.
        let answers = try await mcpSession(f, ["mcp", "--repo", f.s.repo.path, "--key", f.s.agentKey("bot1").path], lines: lines, expecting: 7)
        let tools = ((answers[2]?["result"] as? [String: Any])?["tools"] as? [[String: Any]]) ?? []
        let names = Set(tools.compactMap { $0["name"] as? String })
        #expect(names.isSuperset(of: ["agent_vault_get", "agent_vault_list", "latch_get_secret"]), "\(names)")
        let getTool = tools.first { $0["name"] as? String == "agent_vault_get" }
        #expect((getTool?["inputSchema"] as? [String: Any])?["required"] as? [String] == ["secret"])
        func result(_ id: Int) -> (text: String, isError: Bool, exitCode: Int?) {
            let r = answers[id]?["result"] as? [String: Any]
            let text = (r?["content"] as? [[String: Any]])?.first?["text"] as? String ?? ""
            return (text, r?["isError"] as? Bool ?? false, (r?["structuredContent"] as? [String: Any])?["exitCode"] as? Int)
        }
        #expect(result(3).text == "sk_live_123" && !result(3).isError)
        #expect(result(4).isError && result(4).text.contains("not authorised") && result(4).exitCode == 3, "\(result(4))")
        #expect(!result(4).text.contains("postgres"))
        #expect(result(5).isError && result(5).text.contains("not found") && result(5).exitCode == 2, "\(result(5))")
        let stripe = result(6).text.split(separator: "\n").map(String.init)
        #expect(stripe.count == 2 && stripe[0].hasPrefix("stripe/api-key  group=stripe  agents=[bot1]  rotated="), "\(stripe)")
        #expect(result(7).text.contains("db/prod/url  group=db  agents=[]") && !result(7).text.contains("sk_live"))

        // Without any key (no --key, no AGENT_VAULT_KEY, no owner.key): the no-key error, per call.
        try FileManager.default.removeItem(at: f.s.ownerKey)
        let noKey = try await mcpSession(f, ["mcp", "--repo", f.s.repo.path], lines: Array(lines.prefix(4)), expecting: 3)
        let r = noKey[3]?["result"] as? [String: Any]
        #expect(r?["isError"] as? Bool == true)
        #expect(((r?["content"] as? [[String: Any]])?.first?["text"] as? String ?? "").contains("no identity key"))
        #expect((r?["structuredContent"] as? [String: Any])?["exitCode"] as? Int == 5)
    }

    /// Feeds `lines` to `latch mcp …` on stdin and collects the answers by id.
    func mcpSession(_ f: Fixture, _ args: [String], lines: [String], expecting count: Int) async throws -> [Int: [String: Any]] {
        try await withCheckedThrowingContinuation { k in
            Thread {
                k.resume(with: Result { try mcpSessionBlocking(f, args, lines: lines, expecting: count) })
            }.start()
        }
    }

    func mcpSessionBlocking(_ f: Fixture, _ args: [String], lines: [String], expecting count: Int) throws -> [Int: [String: Any]] {
        let p = Process()
        p.executableURL = f.latch
        p.arguments = args
        p.currentDirectoryURL = f.s.dir
        p.environment = f.s.environment
        let input = Pipe(), output = Pipe()
        p.standardInput = input
        p.standardOutput = output
        p.standardError = FileHandle.nullDevice
        try p.run()
        for line in lines { input.fileHandleForWriting.write(Data((line + "\n").utf8)) }
        var answers: [Int: [String: Any]] = [:]
        var buffer = Data()
        var stray: [String] = []
        let deadline = Date().addingTimeInterval(60)
        while answers.count < count && Date() < deadline {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            buffer.append(chunk)
            while let nl = buffer.firstIndex(of: 10) {
                let line = buffer[buffer.startIndex..<nl]
                buffer = Data(buffer[(nl + 1)...])
                guard let obj = try? JSONSerialization.jsonObject(with: line) as? [String: Any], obj["jsonrpc"] as? String == "2.0" else {
                    stray.append(String(decoding: line, as: UTF8.self)); continue
                }
                if let id = obj["id"] as? Int { answers[id] = obj }
            }
        }
        try input.fileHandleForWriting.close()
        p.terminate()
        p.waitUntilExit()
        #expect(stray.isEmpty, "non-protocol output on stdout: \(stray)")
        #expect(answers.count == count, "answers: \(answers.keys.sorted())")
        return answers
    }
}
