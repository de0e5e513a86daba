import Foundation
import Testing
import LatchClient
#if canImport(Glibc)
import Glibc
#endif

/// Drives the real `latch` binary (built next to this test bundle) against a real
/// `latch serve` on a free port with a temporary data dir and LATCH_HOME.
struct LatchProcess {
    static func binary() throws -> String {
        if let explicit = ProcessInfo.processInfo.environment["LATCH_BIN"] { return explicit }
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("latch").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        struct Missing: Error, CustomStringConvertible { var description: String }
        throw Missing(description: "the latch executable was not found next to the test bundle (\(CommandLine.arguments[0])); run `swift build` first or set LATCH_BIN")
    }

    struct Result { var code: Int32; var out: String; var err: String }

    /// Runs `latch args…`, waiting on a thread of its own: a test blocked on a child must not
    /// hold one of the few threads all async tests share.
    static func run(_ args: [String], env: [String: String], stdin: String? = nil) async throws -> Result {
        try await withCheckedThrowingContinuation { k in
            Thread { k.resume(with: Swift.Result { try runBlocking(args, env: env, stdin: stdin) }) }.start()
        }
    }

    static func runBlocking(_ args: [String], env: [String: String], stdin: String? = nil) throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try binary())
        p.arguments = args
        p.environment = env
        let out = Pipe(), err = Pipe(), input = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = input
        try p.run()
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        try input.fileHandleForWriting.close()
        let errData = LockedData()
        let t = Thread { errData.set(err.fileHandleForReading.readDataToEndOfFile()) }
        t.start()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        while !errData.done { usleep(1000) }
        return Result(code: p.terminationStatus, out: String(decoding: o, as: UTF8.self), err: String(decoding: errData.value, as: UTF8.self))
    }
}

final class LockedData: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    private var finished = false
    func set(_ d: Data) { lock.lock(); data = d; finished = true; lock.unlock() }
    var done: Bool { lock.lock(); defer { lock.unlock() }; return finished }
    var value: Data { lock.lock(); defer { lock.unlock() }; return data }
}

/// A running `latch serve` with its own data dir.
final class TestServer: @unchecked Sendable {
    let process = Process()
    let dir: String
    let url: String
    let token: String

    /// A new server in a new directory, or (`reusing`) a restart on an existing server's
    /// directory and data; `environment` adds variables (e.g. `LATCH_LOG_KEY_FILE`).
    init(reusing existing: String? = nil, environment extra: [String: String] = [:]) throws {
        dir = existing ?? testRoot + "/latch-e2e-\(UUID().uuidString.lowercased())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let log = dir + (existing == nil ? "/serve.log" : "/serve-\(UUID().uuidString.lowercased()).log")
        guard FileManager.default.createFile(atPath: log, contents: nil) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: log])
        }
        process.executableURL = URL(fileURLWithPath: try LatchProcess.binary())
        process.arguments = ["serve", "--data-dir", dir + "/data", "--port", "0", "--rate-limit", "0"]
        process.environment = ["PATH": "/usr/bin:/bin", "LATCH_HOME": dir + "/server-home"].merging(extra) { $1 }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        var found: String? = nil
        for _ in 0..<600 {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            if let r = text.range(of: "listening on http") {
                let rest = text[text.index(r.upperBound, offsetBy: -4)...]
                found = String(rest.prefix { !$0.isWhitespace })
                break
            }
            if !process.isRunning { break }
            usleep(50_000)
        }
        guard let found, let token = existing != nil ? "" : try? String(contentsOfFile: dir + "/data/bootstrap-token", encoding: .utf8) else {
            process.terminate()
            struct StartFailed: Error, CustomStringConvertible { var description: String }
            throw StartFailed(description: "latch serve did not start: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        }
        url = found
        self.token = token.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// SIGTERM, then up to 25 s for a graceful exit; a server still running then is killed and
    /// the test fails, rather than the whole test run hanging.
    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        let deadline = Date().addingTimeInterval(25)
        while process.isRunning && Date() < deadline { usleep(50_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            Issue.record("latch serve did not exit within 25 s of SIGTERM; killed")
        }
    }
}

@Suite(.serialized) struct EndToEndTests {
    @Test("reads answered just before latch serve is killed (SIGKILL) are in the audit chain once it restarts")
    func readAuditSurvivesKill() async throws {
        let server = try TestServer()
        defer { server.stop() }
        let env = ["PATH": "/usr/bin:/bin", "LATCH_HOME": server.dir + "/home", "HOME": server.dir]
        func latch(_ args: String..., stdin: String? = nil, url: String? = nil) async throws -> LatchProcess.Result {
            try await LatchProcess.run(args, env: url.map { env.merging(["LATCH_BASE_URL": $0]) { $1 } } ?? env, stdin: stdin)
        }
        func syncs(_ url: String? = nil) async throws -> Int {
            let r = try await latch("audit", "--json", url: url)
            #expect(r.code == 0, "\(r.err)")
            return r.out.components(separatedBy: "\"vault.sync\"").count - 1
        }
        #expect(try await latch("init", "--server", server.url, "--token", server.token, "--name", "alice").code == 0)
        #expect(try await latch("vault", "create", "prod").code == 0)
        #expect(try await latch("secret", "set", "prod", "database", "--field", "password", stdin: "pw-0001\n").code == 0)
        let before = try await syncs()
        for _ in 0..<3 {
            let r = try await latch("env", "--format", "json")
            #expect(r.code == 0 && r.out.contains("pw-0001"), "\(r.err)")
        }
        let threeGets = try await syncs() - before   // the syncs of three runs
        #expect(threeGets >= 3)
        for _ in 0..<3 { #expect(try await latch("env", "--format", "json").code == 0) }
        kill(server.process.processIdentifier, SIGKILL)   // at once: the last reads' events may be in the journal only
        while server.process.isRunning { usleep(10_000) }
        let again = try TestServer(reusing: server.dir)
        defer { again.stop() }
        #expect(try await syncs(again.url) == before + 2 * threeGets)
        #expect(try await latch("verify", url: again.url).code == 0)
    }

    @Test func operatorAndAgentStory() async throws {
        let server = try TestServer()
        defer { server.stop() }
        let home = server.dir + "/home"
        let env = ["PATH": "/usr/bin:/bin", "LATCH_HOME": home, "HOME": server.dir]
        func latch(_ args: String..., stdin: String? = nil, extra: [String: String] = [:]) async throws -> LatchProcess.Result {
            try await LatchProcess.run(args, env: env.merging(extra) { $1 }, stdin: stdin)
        }

        // operator
        let initR = try await latch("init", "--server", server.url, "--token", server.token, "--name", "alice")
        #expect(initR.code == 0, "\(initR.err)")
        #expect(try await latch("init", "--server", server.url, "--token", server.token).code != 0)   // token is single-use / profile exists
        let vault = try await latch("vault", "create", "prod")
        #expect(vault.code == 0, "\(vault.err)")
        let set1 = try await latch("secret", "set", "prod", "database", "--field", "password", stdin: "pg-pass-0001\n")
        #expect(set1.code == 0, "\(set1.err)")
        #expect(try await latch("secret", "set", "prod", "database", "--field", "username", stdin: "app_user").code == 0)
        let keyFile = server.dir + "/openai.txt"
        try "sk-openai-abcdef".write(toFile: keyFile, atomically: true, encoding: .utf8)
        #expect(try await latch("secret", "set", "prod", "openai", "--from-file", keyFile).code == 0)
        let withValue = try await latch("secret", "set", "prod", "stripe", "--value", "sk-stripe-999")
        #expect(withValue.code == 0)
        #expect(withValue.err.contains("warning"))
        let list = try await latch("vault", "list", "--json")
        #expect(list.out.contains("\"prod\""))
        let items = try await latch("vault", "items", "prod", "--json")
        #expect(items.out.contains("database") && !items.out.contains("pg-pass-0001"))

        let bot = server.dir + "/bot.json"
        let create = try await latch("agent", "create", "bot", "--vault", "prod", "--out", bot)
        #expect(create.code == 0, "\(create.err)")
        #expect(create.out.count > 30)
        let attrs = try FileManager.default.attributesOfItem(atPath: bot)
        #expect((attrs[.posixPermissions] as? Int) == 0o600)
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: bot))) as? [String: String] ?? [:]
        for key in ["agentId", "accessKey", "accessSecret", "privateKey", "baseUrl"] { #expect(config[key]?.isEmpty == false, "\(key)") }
        try expectOpenSSLLoads(config["privateKey"] ?? "", dir: server.dir)

        // agent
        #expect(try await latch("configure", "agent", "--config", bot, "--profile", "bot").code == 0)
        let whoami = try await latch("whoami", "--profile", "bot")
        #expect(whoami.out.contains("bot"))
        let get = try await latch("get", "DATABASE_PASSWORD", "--profile", "bot")
        #expect(get.code == 0, "\(get.err)")
        #expect(get.out == "pg-pass-0001")
        #expect(try await latch("get", "OPENAI", "--profile", "bot").out == "sk-openai-abcdef")
        let envJSON = try await latch("env", "--format", "json", "--profile", "bot")
        let decoded = try JSONDecoder().decode([String: String].self, from: Data(envJSON.out.utf8))
        #expect(decoded == ["DATABASE_PASSWORD": "pg-pass-0001", "DATABASE_USERNAME": "app_user", "OPENAI": "sk-openai-abcdef", "STRIPE": "sk-stripe-999"])
        let search = try await latch("search", "data", "--profile", "bot", "--json")
        #expect(search.out.contains("DATABASE_PASSWORD") && !search.out.contains("pg-pass-0001"))

        let run = try await latch("run", "--profile", "bot", "--", "sh", "-c", "echo \"key=$OPENAI\"; echo \"pw=$DATABASE_PASSWORD\" >&2; exit 7")
        #expect(run.code == 7)
        #expect(run.out == "key=<concealed by latch>\n")
        #expect(run.err == "pw=<concealed by latch>\n")
        let plain = try await latch("run", "--profile", "bot", "--no-masking", "--prefix", "APP_", "--", "sh", "-c", "printf %s \"$APP_OPENAI\"")
        #expect(plain.code == 0)
        #expect(plain.out == "sk-openai-abcdef")
        let signalled = try await latch("run", "--profile", "bot", "--", "sh", "-c", "kill -KILL $$")
        #expect(signalled.code == 128 + 9)

        // update: the agent sees the new value
        #expect(try await latch("secret", "set", "prod", "database", "--field", "password", stdin: "pg-pass-0002").code == 0)
        #expect(try await latch("get", "DATABASE_PASSWORD", "--profile", "bot").out == "pg-pass-0002")

        // second agent: nothing until shared
        let bot2 = server.dir + "/bot2.json"
        #expect(try await latch("agent", "create", "bot2", "--out", bot2).code == 0)
        #expect(try await latch("configure", "agent", "--config", bot2, "--profile", "bot2").code == 0)
        #expect(try await latch("get", "OPENAI", "--profile", "bot2").code == 66)
        let share = try await latch("share", "prod", "--agent", "bot2")
        #expect(share.code == 0, "\(share.err)")
        #expect(try await latch("get", "OPENAI", "--profile", "bot2").out == "sk-openai-abcdef")
        let agents = try await latch("agent", "list", "--json")
        #expect(agents.out.contains("bot2"))

        // R4 aliases only (no profile, empty LATCH_HOME)
        let keyPath = server.dir + "/bot.pem"
        try (config["privateKey"] ?? "").write(toFile: keyPath, atomically: true, encoding: .utf8)
        let r4 = try await LatchProcess.run(["get", "OPENAI"], env: [
            "PATH": "/usr/bin:/bin", "LATCH_HOME": server.dir + "/empty-home", "HOME": server.dir,
            "R4_API_KEY": (config["accessKey"] ?? "") + "." + (config["accessSecret"] ?? ""),
            "R4_PRIVATE_KEY_PATH": keyPath, "R4_BASE_URL": config["baseUrl"] ?? "",
        ])
        #expect(r4.code == 0, "\(r4.err)")
        #expect(r4.out == "sk-openai-abcdef")

        // exit codes
        let missing = try await latch("get", "NOPE", "--profile", "bot")
        #expect(missing.code == 66)
        #expect(missing.err.hasPrefix("latch: error: ") && missing.err.split(separator: "\n").count == 1)
        #expect(try await latch("get", "OPENAI", extra: ["LATCH_API_KEY": "wrong.key"], ).code == 67)
        #expect(try await latch("get").code == 64)
        // `get` and `env` in their plain forms skip ArgumentParser (QuickCommands); every other
        // form still gets its parse, messages and exit codes.
        let equalsForm = try await latch("get", "--profile=bot", "OPENAI")
        #expect(equalsForm.code == 0 && equalsForm.out == "sk-openai-abcdef", "\(equalsForm.err)")
        let help = try await latch("get", "--help")
        #expect(help.code == 0 && help.out.contains("USAGE: latch get"))
        let noValue = try await latch("get", "OPENAI", "--profile")
        #expect(noValue.code == 64 && noValue.err.contains("Missing value for '--profile"), "\(noValue.err)")
        #expect(try await latch("get", "A", "B", "--profile", "bot").code == 64)
        #expect(try await latch("env", "--format", "yaml", "--profile", "bot").code == 64)
        #expect(try await latch("run", "--profile", "bot").code == 64)                      // no `--`, no command
        #expect(try await latch("run", "--profile", "bot", "--bogus", "--", "true").code == 64)
        let prefixed = try await latch("run", "--prefix=X_", "--profile=bot", "--", "sh", "-c", "printf %s \"$X_OPENAI\"")
        #expect(prefixed.code == 0 && prefixed.out == "<concealed by latch>", "\(prefixed.out)\(prefixed.err)")
        let json = try await latch("env", "--format=json", "--profile", "bot")
        #expect(json.code == 0 && json.out.replacingOccurrences(of: " ", with: "").contains("\"OPENAI\":\"sk-openai-abcdef\""), "\(json.out)")
        #expect(try await latch("get", "X", "--profile", "nobody").code == 78)
        #expect(try await latch("get", "X", extra: ["LATCH_BASE_URL": "http://127.0.0.1:1"]).code == 69)
        let machine = try await latch("machine", "request", "GET", "/me", "--profile", "bot")
        #expect(machine.code == 0 && machine.out.contains("\"principal\""))
        let pending = try await latch("pending", "--fulfil", "--json")
        #expect(pending.code == 0, "\(pending.err)")
        #expect(pending.out.contains("\"pendingGrants\""))
        let audit = try await latch("audit", "--json")
        #expect(audit.code == 0, "\(audit.err)")
        #expect(audit.out.contains("\"events\""))
        let doctor = try await latch("doctor", "--profile", "bot")
        #expect(doctor.code == 0, "\(doctor.out)\(doctor.err)")

        // revoke: the agent can no longer read
        #expect(try await latch("revoke", "prod", "--agent", "bot").code == 0)
        let after = try await latch("get", "OPENAI", "--profile", "bot")
        #expect(after.code != 0)
        #expect(try await latch("get", "OPENAI", "--profile", "bot2").out == "sk-openai-abcdef")

        // nothing secret on disk in LATCH_HOME besides the key and API-secret files
        for file in FileManager.default.enumerator(atPath: home)?.allObjects as? [String] ?? [] {
            let bytes = FileManager.default.contents(atPath: home + "/" + file) ?? Data()   // binary files too (the unwrap memo)
            for value in ["pg-pass-0001", "pg-pass-0002", "sk-openai-abcdef", "app_user", "sk-stripe-999"] {
                #expect(bytes.range(of: Data(value.utf8)) == nil, "\(file) holds a secret value")
            }
        }
    }

    @Test func runForwardsSignals() async throws {
        let server = try TestServer()
        defer { server.stop() }
        let home = server.dir + "/home"
        let env = ["PATH": "/usr/bin:/bin", "LATCH_HOME": home, "HOME": server.dir]
        #expect(try await LatchProcess.run(["init", "--server", server.url, "--token", server.token], env: env).code == 0)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try LatchProcess.binary())
        let marker = server.dir + "/ready"
        p.arguments = ["run", "--", "sh", "-c", "trap 'exit 42' TERM; touch \(marker); while :; do sleep 0.05; done"]
        p.environment = env
        try p.run()
        for _ in 0..<400 where !FileManager.default.fileExists(atPath: marker) { usleep(25_000) }
        #expect(FileManager.default.fileExists(atPath: marker))
        kill(p.processIdentifier, SIGTERM)
        p.waitUntilExit()
        #expect(p.terminationStatus == 42)
    }
}

extension EndToEndTests {
    @Test func mcpServerSpeaksJSONRPC() async throws {
        let server = try TestServer()
        defer { server.stop() }
        let env = ["PATH": "/usr/bin:/bin", "LATCH_HOME": server.dir + "/home", "HOME": server.dir]
        #expect(try await LatchProcess.run(["init", "--server", server.url, "--token", server.token], env: env).code == 0)
        #expect(try await LatchProcess.run(["vault", "create", "ops"], env: env).code == 0)
        #expect(try await LatchProcess.run(["secret", "set", "ops", "deploy-token"], env: env, stdin: "tok-mcp-424242").code == 0)

        let lines = [
            #"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"test","version":"1"}}}"#,
            #"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            #"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
            #"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"latch_search_secrets","arguments":{"query":"deploy"}}}"#,
            #"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"latch_get_secret","arguments":{"name":"DEPLOY_TOKEN"}}}"#,
            #"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"latch_get_secret","arguments":{"name":"NOT_THERE"}}}"#,
        ]
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try LatchProcess.binary())
        p.arguments = ["mcp"]
        p.environment = env
        let input = Pipe(), output = Pipe()
        p.standardInput = input
        p.standardOutput = output
        p.standardError = FileHandle.nullDevice
        try p.run()
        for line in lines { input.fileHandleForWriting.write(Data((line + "\n").utf8)) }
        // read until every request with an id has been answered
        var answers: [Int: [String: Any]] = [:]
        var buffer = Data()
        var stray: [String] = []
        var updated = false
        let deadline = Date().addingTimeInterval(60)
        while answers.count < 6 && Date() < deadline {
            if answers.count == 5 && !updated {
                // update the secret, then ask again over the same session (delta sync)
                updated = true
                #expect(try await LatchProcess.run(["secret", "set", "ops", "deploy-token"], env: env, stdin: "tok-mcp-777777").code == 0)
                let again = #"{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"latch_get_secret","arguments":{"name":"DEPLOY_TOKEN"}}}"#
                input.fileHandleForWriting.write(Data((again + "\n").utf8))
            }
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
        #expect(answers.count == 6)
        let tools = ((answers[2]?["result"] as? [String: Any])?["tools"] as? [[String: Any]]) ?? []
        let names = Set(tools.compactMap { $0["name"] as? String })
        #expect(names.isSuperset(of: ["latch_auth_status", "latch_list_vaults", "latch_list_vault_items", "latch_search_secrets",
                                      "latch_get_secret", "latch_list_projects", "latch_get_project", "latch_submit_feedback"]))
        #expect(!names.contains("latch_machine_request"))
        let getTool = tools.first { $0["name"] as? String == "latch_get_secret" }
        #expect((getTool?["annotations"] as? [String: Any])?["readOnlyHint"] as? Bool == true)
        #expect((getTool?["inputSchema"] as? [String: Any])?["required"] as? [String] == ["name"])
        func text(_ id: Int) -> (String, Bool) {
            let r = answers[id]?["result"] as? [String: Any]
            let content = (r?["content"] as? [[String: Any]])?.first?["text"] as? String ?? ""
            return (content, r?["isError"] as? Bool ?? false)
        }
        #expect(text(3).0.contains("DEPLOY_TOKEN"))
        #expect(!text(3).0.contains("tok-mcp-424242"))
        #expect(text(4) == ("tok-mcp-424242", false))
        #expect(text(5).1 == true)
        #expect(text(5).0.contains("NOT_THERE"))
        #expect(text(6) == ("tok-mcp-777777", false))
    }
}

func expectOpenSSLLoads(_ pem: String, dir: String) throws {
    let path = dir + "/rc-key.pem"
    try pem.write(toFile: path, atomically: true, encoding: .utf8)
    let openssl = ["/usr/bin/openssl", "/usr/local/bin/openssl"].first { FileManager.default.isExecutableFile(atPath: $0) }
    guard let openssl else {
        Issue.record("the `openssl` tool is required (apt-get install openssl)")
        return
    }
    let p = Process()
    p.executableURL = URL(fileURLWithPath: openssl)
    p.arguments = ["pkey", "-in", path, "-noout", "-text_pub"]
    p.standardOutput = Pipe()
    p.standardError = Pipe()
    try p.run()
    p.waitUntilExit()
    #expect(p.terminationStatus == 0, "openssl pkey rejected the runtime config's privateKey")
}

extension EndToEndTests {
    /// Out-of-range numbers for `latch serve` are refused before anything starts, naming where
    /// they came from (a port past 65535 used to be taken modulo 65536: 99999 listened on 34463).
    @Test func serveRefusesOutOfRangeNumbers() async throws {
        let dir = NSTemporaryDirectory() + "latch-serve-args-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let base = ["PATH": "/usr/bin:/bin", "HOME": dir, "LATCH_DATA_DIR": dir + "/data"]
        let cases: [([String], [String: String], String)] = [
            (["--port", "99999"], [:], "--port must be from 0 to 65535, not 99999"),
            ([], ["LATCH_PORT": "70000"], "LATCH_PORT must be from 0 to 65535, not 70000"),
            ([], ["LATCH_PORT": "80a"], "LATCH_PORT must be a whole number from 0 to 65535, not '80a'"),
            (["--rate-limit=-5"], [:], "--rate-limit must be from 0"),
            ([], ["LATCH_MAX_BODY_SIZE": "-1"], "LATCH_MAX_BODY_SIZE must be from 0"),
        ]
        for (args, env, message) in cases {
            // Under timeout(1): a server that accepted the number would run until killed (124).
            let (status, text) = try serveUntilExit(args, environment: base.merging(env) { $1 })
            #expect(status == 64 && text.contains(message), "serve \(args) \(env): exit \(status), \(text)")
            #expect(!FileManager.default.fileExists(atPath: dir + "/data/latch.sqlite"), "a store was opened for \(args) \(env)")
        }
    }

    /// The files `latch serve` writes secrets to are 0600 (written 0600 from the start, not
    /// chmod-ed after), and a log key path it cannot write is refused with the reason.
    @Test func serveKeyFilesArePrivate() async throws {
        let keyDir = testRoot + "/latch-logkey-\(UUID().uuidString.lowercased())"
        try FileManager.default.createDirectory(atPath: keyDir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: keyDir) }
        let server = try TestServer(environment: ["LATCH_LOG_KEY_FILE": keyDir + "/log-key"])
        defer { server.stop() }
        #expect(SecureFile.mode(of: keyDir + "/log-key") == 0o600)
        #expect(SecureFile.mode(of: server.dir + "/data/bootstrap-token") == 0o600)
        #expect(try FileManager.default.contentsOfDirectory(atPath: keyDir) == ["log-key"], "a temporary file was left beside the key")

        let dir = NSTemporaryDirectory() + "latch-serve-key-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (status, text) = try serveUntilExit(["--port", "0"], environment: [
            "PATH": "/usr/bin:/bin", "HOME": dir, "LATCH_DATA_DIR": dir + "/data", "LATCH_LOG_KEY_FILE": dir + "/missing/log-key"])
        #expect(status == 64 && text.contains("cannot write the transparency log key to \(dir)/missing/log-key")
                && text.contains("No such file or directory"), "exit \(status): \(text)")
    }

    /// Runs `latch serve` with `args` under timeout(1) (20 s: one that started exits 124) and
    /// returns its exit status and standard error.
    private func serveUntilExit(_ args: [String], environment: [String: String]) throws -> (status: Int32, err: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/timeout")
        p.arguments = ["20", try LatchProcess.binary(), "serve"] + args
        p.environment = environment
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return (p.terminationStatus, text)
    }

    /// Runs scripts/quickstart.sh (the README quickstart) with the built `latch` on PATH.
    @Test func readmeQuickstartRunsAsWritten() async throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("scripts/quickstart.sh").path
        #expect(FileManager.default.fileExists(atPath: script), "missing \(script)")
        // The script's quickstart block must be the README's, letter for letter.
        let readme = URL(fileURLWithPath: script).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("README.md").path
        let scriptText = try String(contentsOfFile: script, encoding: .utf8)
        let readmeText = try String(contentsOfFile: readme, encoding: .utf8)
        let block = scriptText.components(separatedBy: "# --- quickstart ---\n").last?
            .components(separatedBy: "# --- end ---").first ?? ""
        #expect(block.count > 100, "scripts/quickstart.sh lost its '# --- quickstart ---' markers")
        #expect(readmeText.contains("```sh\n" + block + "```"), "README.md's quickstart differs from scripts/quickstart.sh")
        let bin = URL(fileURLWithPath: try LatchProcess.binary()).deletingLastPathComponent().path
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = [script]
        // Below Linux's ephemeral range (32768-60999), where an outgoing connection of another
        // test (a PostgreSQL pool's) can hold the port: `latch serve` then cannot bind, and the
        // quickstart's wait loop waits for ever.
        p.environment = ["PATH": bin + ":/usr/bin:/bin", "HOME": NSTemporaryDirectory(), "PORT": String(Int.random(in: 20000...32000))]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        #expect(p.terminationStatus == 0, "\(text)")
        #expect(text.contains("postgres://app:s3cret@db/prod"))
        #expect(text.contains("connecting to <concealed by latch>"))
    }
}
