import ArgumentParser
import Foundation
import LatchClient
import LatchCrypto
import LatchWire
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// The client side of `latch`: each command is a thin call into LatchClient.

/// `--profile` on every client command.
public struct ProfileOption: ParsableArguments {
    @Option(name: .long, help: "Profile to use (default: $LATCH_PROFILE, else \"default\").")
    public var profile: String?

    public init() {}

    public var environment: [String: String] { client.environment }

    public func connect(sync: Bool = true) async throws -> Latch { try await client.connect(sync: sync) }

    var client: ClientProfile { ClientProfile(name: profile) }
}

/// `--out FILE [--overwrite]` of a command that receives a secret once (an API key, an agent's
/// runtime config): checked before anything is asked of the server, so that a secret is never
/// issued with nowhere to go, then written with mode 0600 and shown nowhere else.
struct SecretOutput: ParsableArguments {
    @Option(help: "File to write it to, mode 0600 (it cannot be shown again).") var out: String
    @Flag(help: "Replace --out if it exists.") var overwrite = false

    /// Refuses an --out that exists (without --overwrite) or whose directory does not.
    func checkWritable() throws {
        if FileManager.default.fileExists(atPath: out) && !overwrite {
            throw LatchError(.conflict, "\(out) exists", hint: "choose another --out or pass --overwrite")
        }
        let dir = (out as NSString).deletingLastPathComponent
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir.isEmpty ? "." : dir, isDirectory: &isDir), isDir.boolValue else {
            throw LatchError(.usage, "the directory of --out (\(dir)) does not exist", hint: "create it first, or choose another --out")
        }
    }

    func write(_ data: Data) throws { try SecureFile.write(data, to: out, mode: 0o600) }
    func write(line: String) throws { try write(Data((line + "\n").utf8)) }
}

/// The profile a client command connects with (nil: `LATCH_PROFILE`, else "default"). A plain
/// value, so that `latch get`'s quick path builds no ArgumentParser model (`ProfileOption`'s
/// property wrapper does, which was a scan of every conformance record at each start).
struct ClientProfile {
    var name: String?
    /// Read once: `get` (LATCH_TIMING) and `run` (the child's environment) look at it again
    /// after connecting.
    let environment: [String: String]

    init(name: String?, environment: [String: String] = CLI.environment()) {
        self.name = name
        self.environment = environment
    }

    /// A command is a short process that waits on each answer: its requests block the calling
    /// thread rather than start one of their own.
    func connect(sync: Bool = true) async throws -> Latch {
        try await Latch.create(profile: name, environment: environment, transport: DefaultHTTPTransport(blocksCallingThread: true), sync: sync)
    }
}

public enum CLI {
    public static func stderr(_ line: String) {
        FileHandle.standardError.write(Data(utf8Of: line + "\n"))
    }

    public static func stdout(_ text: String) {
        FileHandle.standardOutput.write(Data(utf8Of: text))
    }

    /// The process environment, read from `environ` (the first of a name that appears twice, as
    /// `getenv` finds). `ProcessInfo`'s first use costs a short process more than this.
    public static func environment() -> [String: String] {
        var out: [String: String] = [:]
        var entry = environ
        while let p = entry.pointee {
            if let eq = strchr(p, 0x3D) {   // =
                let name = String(decoding: UnsafeRawBufferPointer(start: p, count: eq - p), as: UTF8.self)
                if out[name] == nil { out[name] = String(cString: eq + 1) }
            }
            entry += 1
        }
        return out
    }

    public static func json(_ value: some Encodable) throws {
        let data = try LatchJSON.encoder().encode(value)
        stdout(String(decoding: data, as: UTF8.self) + "\n")
    }

    /// Run a command body; a failure becomes one line on stderr and its exit code.
    public static func run(_ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let e as LatchError {
            stderr("latch: error: \(e.description)")
            throw ExitCode(e.exitCode.rawValue)
        } catch let e as LatchCryptoError {
            stderr("latch: error: \(e.description)")
            throw ExitCode(LatchExitCode.verificationFailed.rawValue)
        } catch let e as ExitCode {
            throw e
        } catch {
            stderr("latch: error: \(error)")
            throw ExitCode(LatchExitCode.failure.rawValue)
        }
    }

    /// Pins the server's transparency log key for a new profile (the served key on first use,
    /// or `--log-key`/`LATCH_LOG_KEY`, which the server must serve) and checks the profile's own
    /// key is logged.
    static func pinLog(profile: String, home: String, logKey: String?, environment: [String: String]) async throws {
        let config = try ConfigurationResolver.resolve(ExplicitConfiguration(profile: profile, home: home, logKey: logKey), environment: environment)
        let report = try await Latch.create(configuration: config, sync: false).pinLog()
        stderr("latch: transparency log key \(report.pinnedNow ? "pinned" : "already pinned"): \(report.logKey) (tree size \(report.treeSize))")
    }

    public static func table(_ rows: [[String]], header: [String]) -> String {
        let all = [header] + rows
        var widths = [Int](repeating: 0, count: header.count)
        for r in all { for (i, c) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], c.count) } }
        return all.map { r in
            r.enumerated().map { i, c in i == r.count - 1 ? c : c.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
                .joined(separator: "  ")
        }.joined(separator: "\n") + "\n"
    }
}

/// `latch get NAME`, `latch env` and `latch run -- CMD`, the commands an agent runs on every
/// start, parsed by hand when their command line is one of the plain forms, then run by the same
/// code as their commands. The plain forms: `--profile P` (or `--profile=P`) on each; `--format
/// F` on env; `--prefix P` and `--no-masking` on run, whose command follows `--`. ArgumentParser
/// builds its model of a command by reflection, which costs a sixth of the instructions of a
/// whole `latch get`. Every other command line, help and mistakes included, goes to
/// ArgumentParser, so its messages and exit codes stay the only ones.
public enum QuickCommands {
    /// The options and flags each plain form takes (arrays, not sets: see `Daemon.commands`).
    static func form(_ command: String) -> (options: [String], flags: [String])? {
        switch command {
        case "get": (["profile"], [])
        case "env": (["profile", "format"], [])
        case "run": (["profile", "prefix"], ["no-masking"])
        default: nil
        }
    }

    /// The exit code, or nil when `arguments` (without the executable) is not a plain form.
    public static func run(_ arguments: [String]) async -> Int32? {
        guard let command = arguments.first, let form = form(command) else { return nil }
        var options: [String: String] = [:]
        var flags: [String] = []
        var positional: [String] = []
        var passthrough: [String]?
        var rest = arguments.dropFirst()[...]
        while let token = rest.popFirst() {
            if token == "--" {
                guard command == "run" else { return nil }
                passthrough = Array(rest)
                break
            } else if token.hasPrefix("--") {
                let parts = token.dropFirst(2).split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let name = String(parts[0])
                if form.flags.contains(name) {
                    guard parts.count == 1, !flags.contains(name) else { return nil }
                    flags.append(name)
                    continue
                }
                guard form.options.contains(name), options[name] == nil else { return nil }
                if parts.count == 2 { options[name] = String(parts[1]) } else {
                    guard let value = rest.popFirst(), !value.hasPrefix("-") else { return nil }
                    options[name] = value
                }
                guard options[name]?.isEmpty == false else { return nil }
            } else if token.hasPrefix("-") {
                return nil
            } else {
                positional.append(token)
            }
        }
        let profile = ClientProfile(name: options["profile"])
        do {
            switch (command, positional.count, passthrough) {
            case ("get", 1, nil): try await GetCommand.print(positional[0], profile)
            case ("env", 0, nil): try await EnvCommand.print(format: options["format"] ?? "dotenv", profile)
            case ("run", 0, let command?) where !command.isEmpty:
                return try await RunCommand.execute(command, prefix: options["prefix"] ?? "", masking: !flags.contains("no-masking"), profile)
            default: return nil
            }
            return 0
        } catch let e as ExitCode {
            return e.rawValue
        } catch {
            CLI.stderr("latch: error: \(error)")
            return LatchExitCode.failure.rawValue
        }
    }
}

// MARK: - init, configure

struct InitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "init",
        abstract: "Generate the admin key pair locally and bootstrap a new server.")
    @Option(help: "Server URL, e.g. http://127.0.0.1:8484.") var server: String
    @Option(help: "The one-time bootstrap token the server printed.") var token: String
    @Option(help: "Profile to create (default \"default\").") var profile: String?
    @Option(help: "Organisation name.") var org: String = "default"
    @Option(help: "Tenant name.") var tenant: String = "default"
    @Option(help: "Admin user name.") var name: String = NSUserName()
    @Option(name: .customLong("log-key"), help: "The server's transparency log key to pin (name+keyid+base64; also LATCH_LOG_KEY). Without it the key the server serves now is pinned.")
    var logKey: String?

    func run() async throws {
        try await CLI.run {
            let env = ProcessInfo.processInfo.environment
            let home = ConfigurationResolver.home(environment: env)
            let name = profile ?? ProfileStore.defaultProfileName
            let r = try await Latch.bootstrap(server: server, token: token, profile: name, home: home,
                                              organisation: org, tenant: tenant, user: self.name)
            CLI.stderr("latch: bootstrapped \(server) as \(self.name); profile \"\(name)\" saved in \(ProfileStore(home: home).directory(for: name))")
            CLI.stdout("keyId: \(r.response.keyId)\n")
            try await CLI.pinLog(profile: name, home: home, logKey: logKey, environment: env)
        }
    }
}

struct ConfigureCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "configure", abstract: "Import credentials.",
                                                    subcommands: [ConfigureAgent.self, ConfigureAPIKey.self])
    struct ConfigureAPIKey: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "api-key",
            abstract: "Switch a profile to another API key of its principal (from `latch apikey create --out FILE`).",
            discussion: "The key is checked with the server first. The profile's old key keeps working until it is revoked (`latch apikey revoke`).")
        @Option(help: "File holding the key ({accessKey}.{secret}), as `latch apikey create` writes it.") var fromFile: String
        @Option(help: "Profile to change (default \"default\").") var profile: String?
        func run() async throws {
            try await CLI.run {
                let env = ProcessInfo.processInfo.environment
                let name = ConfigurationResolver.profileName(explicit: profile, environment: env)
                let key = String(decoding: try SecureFile.read(fromFile), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                let me = try await ProfileStore(home: ConfigurationResolver.home(environment: env)).adoptAPIKey(key, profile: name)
                CLI.stderr("latch: profile \"\(name)\" now uses key \(me.accessKey) (\(me.scope)) of \(me.principal.name)")
                if let mode = SecureFile.mode(of: fromFile), mode & 0o077 != 0 {
                    CLI.stderr("latch: warning: \(fromFile) is readable by others (mode \(String(mode, radix: 8))); delete it now that it is imported")
                }
            }
        }
    }
    struct ConfigureAgent: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "agent",
            abstract: "Import an agent runtime config JSON into a profile (directory 0700, key 0600).")
        @Option(help: "The runtime config JSON written by `latch agent create`.") var config: String
        @Option(help: "Profile to write (default \"default\"; never changes the default).") var profile: String?
        @Flag(help: "Replace an existing profile of that name.") var overwrite = false
        @Option(name: .customLong("log-key"), help: "The server's transparency log key to pin (name+keyid+base64; also LATCH_LOG_KEY). Without it the key the server serves now is pinned.")
        var logKey: String?

        func run() async throws {
            try await CLI.run {
                let env = ProcessInfo.processInfo.environment
                let home = ConfigurationResolver.home(environment: env)
                let data = try SecureFile.read((config as NSString).expandingTildeInPath)
                let rc = try RuntimeConfig.parse(data)
                let key: PrincipalPrivateKey
                do { key = try PrincipalPrivateKey(pem: rc.privateKey) } catch {
                    throw LatchError(.configuration, "runtime config privateKey cannot be loaded: \(error)")
                }
                let name = profile ?? ProfileStore.defaultProfileName
                let store = ProfileStore(home: home)
                try store.importRuntimeConfig(rc, as: name, keyId: key.publicKey.keyId, overwrite: overwrite)
                CLI.stderr("latch: agent \(rc.agentId) saved as profile \"\(name)\" in \(store.directory(for: name))")
                if let mode = SecureFile.mode(of: config), mode & 0o077 != 0 {
                    CLI.stderr("latch: warning: \(config) is readable by others (mode \(String(mode, radix: 8))); delete it now that it is imported")
                }
                if overwrite { try? FileManager.default.removeItem(atPath: store.logTrustPath(name)) }   // a new identity pins afresh
                try await CLI.pinLog(profile: name, home: home, logKey: logKey, environment: env)
            }
        }
    }
}

// MARK: - agent side

struct GetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "get",
        abstract: "Print one secret value (no newline added when stdout is not a terminal).")
    @OptionGroup var options: ProfileOption
    @Argument(help: "Env name (ITEM_FIELD or ITEM), or ITEM/FIELD, or VAULT/ITEM/FIELD; with --repo, a secret path.") var name: String
    @OptionGroup var repoOptions: RepoReadOptions

    func run() async throws {
        if let repo = repoOptions.repo { return try RepoClient.get(name, repo: repo, key: repoOptions.key) }
        try await Self.print(name, options.client)
    }

    static func print(_ name: String, _ options: ClientProfile) async throws {
        try await CLI.run {
            let started = Date()
            let latch = try await options.connect()
            let value = try latch.get(name)
            CLI.stdout(value + (isatty(1) == 1 ? "\n" : ""))
            if options.environment["LATCH_TIMING"] == "1" {
                let t = latch.timings.milliseconds
                let f = { (k: String) in String(format: "%.1f", t[k] ?? 0) }
                CLI.stderr("latch: timing ms: keyLoad=\(f("keyLoad")) http=\(f("http")) verify+decrypt=\(f("verify")) log=\(f("log")) total-in-client=\(String(format: "%.1f", Date().timeIntervalSince(started) * 1000)) requests=\(latch.timings.counts["requests"] ?? 0)")
            }
        }
    }
}

struct EnvCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "env", abstract: "Print every secret as environment variables.")
    @OptionGroup var options: ProfileOption
    @Option(help: "dotenv, json or shell.") var format: String = "dotenv"

    func run() async throws { try await Self.print(format: format, options.client) }

    static func print(format: String, _ options: ClientProfile) async throws {
        try await CLI.run {
            guard let f = EnvFormat(rawValue: format) else {
                throw LatchError(.usage, "unknown format \(format)", hint: "use dotenv, json or shell")
            }
            let latch = try await options.connect()
            for c in latch.collisions { CLI.stderr("latch: warning: \(c.name) from \(c.dropped) is hidden by \(c.kept)") }
            CLI.stdout(f.render(latch.env))
        }
    }
}

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run",
        abstract: "Run a command with the secrets in its environment; secret values in its output are masked.")
    @OptionGroup var options: ProfileOption
    @Option(help: "Prefix for every variable name.") var prefix: String = ""
    @Flag(name: .customLong("no-masking"), help: "Do not mask secret values in the command's output.") var noMasking = false
    @OptionGroup var repoOptions: RepoReadOptions
    @Option(help: "With --repo: only the secrets of this group.") var group: String?
    @Argument(parsing: .postTerminator, help: "The command and its arguments, after --.") var command: [String] = []

    func run() async throws {
        var code: Int32 = 0
        try await CLI.run {
            guard !command.isEmpty else { throw LatchError(.usage, "no command given", hint: "use `latch run -- CMD ARGS...`") }
            if let repo = repoOptions.repo {
                code = try RepoClient.run(command, repo: repo, key: repoOptions.key, group: group, prefix: prefix,
                                          masking: !noMasking, environment: ProcessInfo.processInfo.environment)
                return
            }
            guard group == nil else { throw LatchError(.usage, "--group needs --repo", hint: "use `latch run --repo DIR --group G -- CMD`") }
        }
        if repoOptions.repo == nil { code = try await Self.execute(command, prefix: prefix, masking: !noMasking, options.client) }
        if code != 0 { throw ExitCode(code) }
    }

    /// Runs `command` with the profile's secrets in its environment; its exit code.
    static func execute(_ command: [String], prefix: String, masking: Bool, _ options: ClientProfile) async throws -> Int32 {
        var code: Int32 = 0
        try await CLI.run {
            var env = options.environment
            let latch = try await options.connect()
            let secrets = latch.env
            for (k, v) in secrets { env[prefix + k] = v }
            let supervisor = Supervisor(arguments: command, environment: env, maskedValues: Array(secrets.values), masking: masking)
            do {
                code = try supervisor.run()
            } catch let e as LatchError where e.kind == .process {
                CLI.stderr("latch: error: \(e.description)")
                throw ExitCode(Int32(e.status ?? 126))
            }
        }
        return code
    }
}

struct SearchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "search", abstract: "Find secrets by name (never shows values).")
    @OptionGroup var options: ProfileOption
    @Argument var query: String = ""
    @Flag(help: "JSON output.") var json = false

    func run() async throws {
        try await CLI.run {
            let found = try await options.connect().search(query)
            if json { try CLI.json(["secrets": found]); return }
            CLI.stdout(CLI.table(found.map { [$0.name, $0.vault, $0.item, $0.field] }, header: ["NAME", "VAULT", "ITEM", "FIELD"]))
        }
    }
}

struct WhoamiCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "whoami", abstract: "Show who the configured credentials are.")
    @OptionGroup var options: ProfileOption
    @Flag(help: "JSON output.") var json = false

    func run() async throws {
        try await CLI.run {
            let latch = try await options.connect(sync: false)
            if json { try CLI.json(latch.identity); return }
            let p = latch.identity.principal
            CLI.stdout("""
                name:      \(p.name)
                id:        \(p.id)
                type:      \(p.type)
                role:      \(p.role)
                tenant:    \(p.tenantId)
                accessKey: \(latch.identity.accessKey)\(latch.identity.expiresAt.map { " (expires \(LatchJSON.utcString($0)))" } ?? "")
                keyId:     \(latch.keyId)
                server:    \(latch.configuration.baseURL.absoluteString)
                profile:   \(latch.configuration.profileName)

                """)
        }
    }
}

struct DoctorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "doctor",
        abstract: "Check configuration, key file permissions, server reachability, key registration and clock.")
    @OptionGroup var options: ProfileOption

    func run() async throws {
        var failed = false
        func report(_ ok: Bool, _ what: String) {
            CLI.stdout("\(ok ? "ok  " : "FAIL") \(what)\n")
            if !ok { failed = true }
        }
        try await CLI.run {
            let config = try ConfigurationResolver.resolve(ExplicitConfiguration(profile: options.profile), environment: options.environment)
            report(true, "configuration: API key from \(config.apiKeySource), key from \(config.privateKeySource), server \(config.baseURL.absoluteString) from \(config.baseURLSource)")
            if let path = config.privateKeyPath, let mode = SecureFile.mode(of: path) {
                report(mode & 0o077 == 0, "private key file \(path) mode \(String(mode, radix: 8))\(mode & 0o077 == 0 ? "" : " (run chmod 600)")")
            }
            if case .profile(let name) = config.apiKeySource {
                let store = ProfileStore(home: config.home)
                let dirMode = SecureFile.mode(of: store.directory(for: name)) ?? 0
                report(dirMode & 0o077 == 0, "profile directory mode \(String(dirMode, radix: 8))")
                let secretMode = SecureFile.mode(of: store.apiSecretPath(name)) ?? 0
                report(secretMode & 0o077 == 0, "API secret file mode \(String(secretMode, radix: 8))")
            }
            let key = try PrincipalPrivateKey(pem: config.privateKeyPEM)
            report(true, "private key loads (\(key.bits) bits, keyId \(key.publicKey.keyId.prefix(16))…)")
            let started = Date()
            let http = LatchHTTPClient(baseURL: config.baseURL, apiKey: config.apiKey)
            let clock: ClockSkew?
            do {
                clock = try await http.clockSkew(path: LatchRoutes.healthz)   // reachability and the server's Date header
                report(true, "server reachable (\(Int(Date().timeIntervalSince(started) * 1000)) ms)")
            } catch let e as LatchError {
                report(false, "server reachable: \(e.description)")
                throw ExitCode(e.exitCode.rawValue)
            }
            if let clock {
                CLI.stdout("\(clock.warn ? "warn" : "ok  ") clock: \(clock.summary)\n")   // a warning, not a failure
            } else {
                CLI.stdout("warn clock: not checked (the server sent no Date header)\n")
            }
            let me = try await http.getJSON(MeResponse.self, LatchRoutes.me)
            report(true, "authenticated as \(me.principal.name) (\(me.principal.type))")
            if let expiry = me.expiresAt {
                let left = expiry.timeIntervalSinceNow
                let soon = left < 7 * 86400
                CLI.stdout("\(soon ? "warn" : "ok  ") API key \(me.accessKey) expires \(LatchJSON.utcString(expiry))\(soon ? " (in \(Self.span(left))): issue the next one with `latch apikey create` and switch with `latch configure api-key`" : "")\n")
            }
            if let k = me.publicKey {
                report(k.keyId == key.publicKey.keyId, "public key registered\(k.keyId == key.publicKey.keyId ? "" : " but it is a different key (\(k.keyId.prefix(16))…)")")
            } else {
                report(false, "public key not registered yet (the first `latch get` registers it)")
            }
        }
        if failed { throw ExitCode(LatchExitCode.failure.rawValue) }
    }

    /// A rough duration: `45 min`, `5 h`, `3 d`.
    static func span(_ seconds: TimeInterval) -> String {
        seconds < 3600 ? "\(max(1, Int(seconds / 60))) min" : seconds < 2 * 86400 ? "\(Int(seconds / 3600)) h" : "\(Int(seconds / 86400)) d"
    }
}

struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "verify",
        abstract: "Verify everything the profile can read against the server's transparency log and print what was checked.",
        discussion: """
            Opens the server's signed tree head with the pinned log key, proves it consistent with the last tree \
            head this profile verified (a smaller tree or a failed proof is a rollback or fork), verifies every \
            vault, and proves every accepted summary and detail checkpoint and every member key included in the \
            log. Exits non-zero with the error when anything fails.
            """)
    @OptionGroup var options: ProfileOption
    @Option(name: .customLong("log-key"), help: "The log key to pin when none is pinned yet, or to check the pinned one against (also LATCH_LOG_KEY).")
    var logKey: String?
    @Flag(help: "JSON output.") var json = false
    @Option(help: "A file holding another client's signed tree head (its `latch verify --print-head`): check both are views of one log (repeatable).")
    var witness: [String] = []
    @Flag(help: "Print only this profile's verified signed tree head, for other clients to check with --witness.")
    var printHead = false

    struct Out: Encodable {
        var log: LogReport
        var vaults: [String]
        var unavailableVaults: [String]
        var trustFile: String
        var witnesses: [Int64]
    }

    func run() async throws {
        try await CLI.run {
            let config = try ConfigurationResolver.resolve(ExplicitConfiguration(profile: options.profile, logKey: logKey),
                                                           environment: options.environment)
            let latch = try await Latch.create(configuration: config, sync: false)
            let r = try await latch.verifyEverything()
            if printHead {
                guard let head = try latch.verifiedHead() else { throw LatchError(.other, "no verified tree head") }
                CLI.stdout(head.hasSuffix("\n") ? head : head + "\n")
                return
            }
            var witnesses: [Int64] = []
            for path in witness {
                let note: String
                do { note = try String(contentsOfFile: path, encoding: .utf8) } catch {
                    throw LatchError(.usage, "cannot read the witness file \(path): \(error.localizedDescription)")
                }
                witnesses.append(try await latch.compareWitness(note).witnessSize)
            }
            let out = Out(log: r, vaults: latch.verifiedVaults.map(\.id), unavailableVaults: latch.unavailableVaults.keys.sorted(),
                          trustFile: latch.trustFilePath, witnesses: witnesses)
            if json { try CLI.json(out); return }
            let consistency = r.previousTreeSize.map { from in
                from == r.treeSize ? "tree unchanged since size \(from) (same root)" : "\(from) → \(r.treeSize) verified"
            } ?? "none needed (no earlier tree head)"
            CLI.stdout("""
                log key:      \(r.logKey)\(r.pinnedNow ? " (pinned now)" : " (pinned)")
                tree head:    size \(r.treeSize), root \(r.rootHash), signature verified
                consistency:  \(consistency)
                inclusion:    \(r.inclusionProofs) proofs verified (\(r.vaultSummaries) vault summaries, \(r.itemDetails) item details, \(r.publicKeys) public keys, \(r.writerSets) writer sets)
                vaults:       \(out.vaults.count) verified\(out.unavailableVaults.isEmpty ? "" : ", \(out.unavailableVaults.count) without a key for this profile")
                items:        \(latch.verifiedVaults.map(\.items.count).reduce(0, +)) verified
                trust file:   \(out.trustFile)\(witnesses.map { "\nwitness:      tree head of size \($0) is consistent with this one" }.joined())
                ok

                """)
        }
    }
}

struct MachineCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "machine", abstract: "Raw machine API access.",
                                                    subcommands: [Request.self])
    struct Request: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "request",
            abstract: "Send one authenticated request and print the JSON answer.")
        @OptionGroup var options: ProfileOption
        @Argument(help: "GET, POST, PATCH, PUT or DELETE.") var method: String
        @Argument(help: "Path under /api/v1/machine (or a full /api/... path).") var path: String
        @Option(help: "JSON request body.") var body: String?

        func run() async throws {
            try await CLI.run {
                if let body, (try? JSONSerialization.jsonObject(with: Data(body.utf8), options: [.fragmentsAllowed])) == nil {
                    throw LatchError(.usage, "--body is not valid JSON")
                }
                let latch = try await options.connect(sync: false)
                let data = try await latch.request(method: method, path: path, body: body.map { Data($0.utf8) })
                CLI.stdout(String(decoding: data, as: UTF8.self) + "\n")
            }
        }
    }
}

// MARK: - operator side

struct VaultCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "vault", abstract: "Create and list vaults, and rotate a vault's key.",
                                                    subcommands: [Create.self, List.self, Items.self, RotateKey.self])
    struct RotateKey: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rotate-key",
            abstract: "Rotate a vault's key: a new DEK, every value re-encrypted, wrapped to every current member (finishes an interrupted revoke).")
        @OptionGroup var options: ProfileOption
        @Argument(help: "Vault name or id.") var vault: String
        @Flag(help: "JSON output.") var json = false
        func run() async throws {
            try await CLI.run {
                let latch = try await options.connect()
                let r = try await latch.rotateVaultKey(try await latch.dekHolder(try await latch.vaultInfo(vault)))
                if json { try CLI.json(r); return }
                CLI.stdout("vault \(r.vault): key rotated to DEK v\(r.dekVersion.map(String.init) ?? "?"); wrapped to \(r.rewrapped.joined(separator: ", "))"
                           + (r.pending.isEmpty ? "" : "; pending (no key yet): \(r.pending.joined(separator: ", "))") + "\n")
            }
        }
    }
    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "create", abstract: "Create a vault (its key is made and wrapped here).")
        @OptionGroup var options: ProfileOption
        @Argument var name: String
        @Option(help: "Project id.") var project: String?
        @Option(help: "PUBLIC, INTERNAL, CONFIDENTIAL or CUI.") var classification: String = "CONFIDENTIAL"
        @Flag(help: "JSON output.") var json = false
        func run() async throws {
            try await CLI.run {
                let v = try await options.connect().createVault(name: name, projectId: project, dataClassification: classification)
                if json { try CLI.json(v) } else { CLI.stdout("\(v.id)\n") }
            }
        }
    }
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list", abstract: "List vaults you can see.",
            discussion: "A vault whose key this profile holds is verified and shown under the name its signed summary gives it (VERIFIED yes); any other under the server's name for it.")
        @OptionGroup var options: ProfileOption
        @Flag(help: "JSON output.") var json = false
        /// A listed vault and whether its name is the one its verified summary checkpoint signs.
        struct Row: Encodable {
            var vault: VaultInfo
            var verified: Bool
            enum K: String, CodingKey { case verified }
            func encode(to encoder: any Encoder) throws {
                try vault.encode(to: encoder)
                var c = encoder.container(keyedBy: K.self)
                try c.encode(verified, forKey: .verified)
            }
        }
        func run() async throws {
            try await CLI.run {
                // Synced, so that each vault this key can open shows its signed name.
                let latch = try await options.connect()
                let rows = try await latch.listVaults().map { Row(vault: $0, verified: latch.signedName(ofVault: $0.id) != nil) }
                if json { try CLI.json(["vaults": rows]); return }
                CLI.stdout(CLI.table(rows.map { [$0.vault.id, $0.vault.name, $0.vault.dataClassification, "v\($0.vault.summaryVersion)",
                                                 $0.verified ? "yes" : "no"] },
                                     header: ["ID", "NAME", "CLASSIFICATION", "VERSION", "VERIFIED"]))
            }
        }
    }
    struct Items: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "items", abstract: "List a vault's items and fields (verified; no values).")
        @OptionGroup var options: ProfileOption
        @Argument(help: "Vault name or id.") var vault: String
        @Flag(help: "JSON output.") var json = false
        struct Row: Encodable { var id: String; var name: String; var type: String; var version: Int; var fields: [String] }
        struct Out: Encodable { var vaultId: String; var vault: String; var items: [Row] }
        func run() async throws {
            try await CLI.run {
                let v = try await options.connect().verifiedVault(vault)
                let rows = v.items.map { Row(id: $0.id, name: $0.name, type: $0.type, version: $0.version, fields: $0.fields.map(\.name)) }
                if json { try CLI.json(Out(vaultId: v.id, vault: v.name, items: rows)); return }
                CLI.stdout(CLI.table(rows.map { [$0.id, $0.name, $0.type, "v\($0.version)", $0.fields.joined(separator: ",")] },
                                     header: ["ID", "NAME", "TYPE", "VERSION", "FIELDS"]))
            }
        }
    }
}

struct SecretCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "secret", abstract: "Write secrets.", subcommands: [Set.self])
    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "set",
            abstract: "Set a secret from standard input or --from-file (a new item, or a new version of an existing one).")
        @OptionGroup var options: ProfileOption
        @Argument(help: "Vault name or id.") var vault: String
        @Argument(help: "Item name.") var item: String
        @Option(help: "Field name (default \"value\").") var field: String?
        @Option(help: "Item type for a new item: LOGIN, API_KEY, DATABASE, SSH_KEY, SERVER, SECURE_NOTE, CREDIT_CARD, CUSTOM.") var type: String = "API_KEY"
        @Option(name: .customLong("from-file"), help: "Read the value from this file.") var fromFile: String?
        @Option(help: "The value itself (visible in shell history and process lists; avoid).") var value: String?

        func run() async throws {
            try await CLI.run {
                var secret: String
                if let value {
                    CLI.stderr("latch: warning: --value puts the secret in your shell history and the process list; prefer standard input or --from-file")
                    secret = value
                } else if let fromFile {
                    secret = String(decoding: try SecureFile.read(fromFile), as: UTF8.self)
                } else {
                    if isatty(0) == 1 { CLI.stderr("latch: reading the value from standard input (end with Ctrl-D)") }
                    secret = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
                    if secret.hasSuffix("\n") { secret.removeLast() }
                    if secret.hasSuffix("\r") { secret.removeLast() }
                }
                guard !secret.isEmpty else { throw LatchError(.usage, "the value is empty") }
                let r = try await options.connect().setSecret(vault: vault, item: item, field: field, itemType: type.uppercased(), value: secret)
                CLI.stderr("latch: \(item) saved (version \(r.version))")
            }
        }
    }
}

struct AgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "agent", abstract: "Create and list agents; rotate this profile's key.",
                                                    subcommands: [Create.self, List.self, Remove.self, RotateKey.self])
    struct RotateKey: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rotate-key",
            abstract: "Rotate this profile's key pair (agent or user): new key made here, every vault key re-wrapped, one atomic server change.",
            discussion: """
                Generates an RSA-3072 key pair locally, signs a key-rotation statement with the current key, re-wraps                 the current DEK of every vault this key opens (each vault is verified first) to the new key, and sends it                 all in one request; the server applies it all or nothing and retires the old key. The new private key                 replaces the profile's private-key.pem (0600) only after the server accepted; on failure the profile                 keeps the old key. A key that signed checkpoints or wraps other members rely on cannot be rotated yet                 (rotation_orphans_signatures). An operator rotates an agent's key only by issuing a new runtime config.
                """)
        @OptionGroup var options: ProfileOption
        @Flag(help: "JSON output.") var json = false

        struct Out: Encodable {
            var principalId: String
            var previousKeyId: String
            var keyId: String
            var rewrappedVaults: [String]
            var verifiedVaults: Int
        }

        func run() async throws {
            try await CLI.run {
                let r = try await Latch.rotateProfileKey(profile: options.profile, environment: options.environment)
                // Prove the profile works with the new key: a full verified sync.
                let check = try await Latch.create(profile: options.profile, environment: options.environment)
                guard check.identity.publicKey?.keyId == r.newKeyId else {
                    throw LatchError(.verification, "after the rotation the server reports key \(check.identity.publicKey?.keyId.prefix(16) ?? "none"), not \(r.newKeyId.prefix(16))")
                }
                let out = Out(principalId: r.principalId, previousKeyId: r.previousKeyId, keyId: r.newKeyId,
                              rewrappedVaults: r.vaults.map(\.id), verifiedVaults: check.verifiedVaults.count)
                if json { try CLI.json(out); return }
                CLI.stdout("rotated key \(r.previousKeyId) -> \(r.newKeyId)\n")
                CLI.stdout("re-wrapped \(r.vaults.count) vault key(s)\(r.vaults.isEmpty ? "" : ": " + r.vaults.map(\.name).joined(separator: ", "))\n")
                CLI.stdout("verified \(check.verifiedVaults.count) vault(s) with the new key; the old key is retired\n")
            }
        }
    }
    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "create", abstract: "Create an agent; its key pair is generated here and the one-time runtime config written to --out (0600).")
        @OptionGroup var options: ProfileOption
        @Argument var name: String
        @Option(name: .customLong("vault"), help: "Vault to grant READ on (repeatable).") var vaults: [String] = []
        @Option(name: .customLong("group"), help: "Security group to add the agent to (repeatable).") var groups: [String] = []
        @Option(name: .customLong("permission"), help: "Machine permission for the agent's API key (repeatable; default: machine.vault.read, machine.vault.secret.read, machine.feedback.write).")
        var permissions: [String] = []
        @OptionGroup var output: SecretOutput

        func run() async throws {
            try await CLI.run {
                try output.checkWritable()
                let latch = try await options.connect()
                var found: [GroupInfo] = []
                for g in groups { found.append(try await latch.group(named: g)) }   // every group resolves before the agent is made
                let made = try await latch.createAgent(name: name, vaults: vaults, groups: found, permissions: permissions.isEmpty ? nil : permissions)
                let config = made.config
                try output.write(try config.encoded())
                CLI.stderr("latch: agent \(name) (\(config.agentId)) created; runtime config written to \(output.out) (0600). It cannot be downloaded again.")
                if !found.isEmpty {
                    CLI.stderr("latch: added to group(s) \(found.map(\.name).joined(separator: ", ")); vault key wrapped for \(made.wrapped.count) vault(s) shared to them\(made.pending.isEmpty ? "" : ", \(made.pending.count) pending")")
                }
                CLI.stdout("\(config.agentId)\n")
            }
        }
    }
    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "remove",
            abstract: "Remove an agent: its grants and wraps go, its API keys are revoked, and every vault key it could open is rotated.")
        @OptionGroup var options: ProfileOption
        @Argument(help: "Agent name or id.") var name: String
        @Flag(help: "JSON output.") var json = false
        func run() async throws {
            try await CLI.run {
                let latch = try await options.connect()
                let report = try await latch.removeAgent(try await latch.principal(named: name, type: "AGENT"))
                try RevokeCommand.print(report, json: json, verb: "removed; revoked from")
            }
        }
    }
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List agents.")
        @OptionGroup var options: ProfileOption
        @Flag(help: "JSON output.") var json = false
        func run() async throws {
            try await CLI.run {
                let agents = try await options.connect(sync: false).listAgents()
                if json { try CLI.json(["agents": agents]); return }
                CLI.stdout(CLI.table(agents.map { [$0.id, $0.name, $0.role, $0.activeKeyId.map { String($0.prefix(16)) } ?? "-"] },
                                     header: ["ID", "NAME", "ROLE", "KEY"]))
            }
        }
    }
}

struct APIKeyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "apikey",
        abstract: "Issue, list and revoke API keys (USER, AGENT, TENANT administration and ORG keys).",
        subcommands: [Create.self, List.self, Revoke.self, Rotate.self])

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rotate",
            abstract: "Rotate this user profile's API key: a new one with the same permissions, the profile switched to it, the old one revoked.",
            discussion: "An agent's next key is issued by its operators: `latch apikey create --agent NAME --out FILE`, then `latch configure api-key --from-file FILE` on the agent's host.")
        @OptionGroup var options: ProfileOption
        @Option(help: "The new key stops working after this long (90m, 12h, 30d). Default: never.") var expiresIn: String?
        func run() async throws {
            try await CLI.run {
                let lifetime = try expiresIn.map(Create.seconds)
                let r = try await Latch.rotateProfileAPIKey(profile: options.profile, expiresAt: lifetime.map { Date().addingTimeInterval($0) },
                                                            environment: options.environment)
                CLI.stdout("rotated \(r.previousAccessKey) -> \(r.key.accessKey)\n")
                if let e = r.revocationError {
                    CLI.stderr("latch: warning: the profile uses the new key, but revoking \(r.previousAccessKey) failed (\(e)); revoke it with `latch apikey revoke \(r.previousAccessKey)`")
                    throw ExitCode(LatchExitCode.failure.rawValue)
                }
            }
        }
    }

    /// `--user NAME` or `--agent NAME` (names or ids); neither: this profile's own principal.
    struct Target: ParsableArguments {
        @Option(help: "The agent (name or id) whose keys to act on.") var agent: String?
        @Option(help: "The user (name or id) whose keys to act on.") var user: String?
        func resolve(_ latch: Latch) async throws -> PrincipalInfo? {
            switch (agent, user) {
            case (nil, nil): return nil
            case (let a?, nil): return try await latch.principal(named: a, type: "AGENT")
            case (nil, let u?): return try await latch.principal(named: u, type: "USER")
            default: throw LatchError(.usage, "--agent and --user name one principal together", hint: "pass one of them")
            }
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "create",
            abstract: "Issue an API key; it is written to --out (0600) and cannot be shown again.",
            discussion: """
                Without --agent or --user the key is this profile's principal's own. --scope TENANT issues a tenant \
                administration key (a TENANT_ADMIN's; administration permissions only, no secret reads or writes); \
                --scope ORG an organisation key (an owner's: an admin of the founding tenant), for `latch org` only. \
                A key never gets a permission the profile's key lacks.
                """)
        @OptionGroup var options: ProfileOption
        @OptionGroup var target: Target
        @Option(help: "USER, AGENT, TENANT or ORG (default: the principal's type).") var scope: String?
        @Option(name: .customLong("permission"), help: "Machine permission (repeatable; default depends on the scope).") var permissions: [String] = []
        @Option(help: "The key stops working after this long: a whole number and s, m, h or d (90m, 12h, 30d). Default: never.")
        var expiresIn: String?
        @OptionGroup var output: SecretOutput
        func run() async throws {
            try await CLI.run {
                try output.checkWritable()
                let lifetime = try expiresIn.map(Self.seconds)
                let latch = try await options.connect(sync: false)
                let k = try await latch.issueAPIKey(for: try await target.resolve(latch), scope: scope?.uppercased(),
                                                    permissions: permissions.isEmpty ? nil : permissions,
                                                    expiresAt: lifetime.map { Date().addingTimeInterval($0) })
                guard let key = k.apiKey else { throw LatchError(.invalidResponse, "the server issued \(k.accessKey) but did not return it") }
                try output.write(line: key)
                let until = k.expiresAt.map { ", expires \(LatchJSON.utcString($0))" } ?? ""
                CLI.stderr("latch: \(k.scope) key \(k.accessKey) issued (\(k.permissions.joined(separator: ", "))\(until)); written to \(output.out) (0600). It cannot be shown again.")
                CLI.stdout("\(k.accessKey)\n")
            }
        }

        /// `90m`, `12h`, `30d`, `45s` as seconds.
        static func seconds(_ text: String) throws -> TimeInterval {
            let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86400]
            guard let unit = text.last.flatMap({ units[$0] }), let n = Int(text.dropLast()), n > 0, n <= 36_500 * 86400 / Int(unit) else {
                throw LatchError(.usage, "--expires-in '\(text)' is not a duration", hint: "a whole number above 0 and s, m, h or d: 90m, 12h, 30d")
            }
            return Double(n) * unit
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List API keys (never their secrets).")
        @OptionGroup var options: ProfileOption
        @OptionGroup var target: Target
        @Flag(help: "Every key of the tenant, with its principal (TENANT_ADMIN).") var all = false
        @Flag(help: "JSON output.") var json = false
        func run() async throws {
            try await CLI.run {
                let latch = try await options.connect(sync: false)
                if all && (target.agent != nil || target.user != nil) {
                    throw LatchError(.usage, "--all lists every key of the tenant", hint: "leave out --agent and --user")
                }
                let keys = try await latch.listAPIKeys(of: try await target.resolve(latch), wholeTenant: all)
                if json { try CLI.json(APIKeyListResponse(apiKeys: keys)); return }
                let now = Date()
                CLI.stdout(CLI.table(keys.map { k in
                    [k.accessKey, k.principalId, k.scope, k.revoked ? "revoked" : k.expiresAt.map { $0 <= now } == true ? "expired" : "active",
                     LatchJSON.utcString(k.createdAt), k.expiresAt.map(LatchJSON.utcString) ?? "-",
                     k.permissions.map { $0.replacingOccurrences(of: "machine.", with: "") }.joined(separator: ",")]
                }, header: ["ACCESS KEY", "PRINCIPAL", "SCOPE", "STATE", "CREATED", "EXPIRES", "PERMISSIONS"]))
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "revoke", abstract: "Revoke an API key at once.")
        @OptionGroup var options: ProfileOption
        @Argument(help: "The access key (lk_…, the part before the dot).") var accessKey: String
        func run() async throws {
            try await CLI.run {
                guard !accessKey.contains(".") else {
                    throw LatchError(.usage, "pass only the access key, the part before the dot", hint: "the secret after it is never needed to revoke")
                }
                let k = try await options.connect(sync: false).revokeAPIKey(accessKey: accessKey)
                CLI.stdout("revoked \(k.accessKey) (\(k.scope))\n")
            }
        }
    }
}

struct OrgCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "org",
        abstract: "Show the organisation and add tenants, with an ORG key (`latch apikey create --scope ORG`).",
        subcommands: [Show.self, CreateTenant.self])

    /// The server from the profile (or LATCH_BASE_URL) and the ORG key from its file.
    struct Connection: ParsableArguments {
        @OptionGroup var options: ProfileOption
        @Option(help: "File holding the ORG key, as `latch apikey create --scope ORG --out FILE` wrote it.") var keyFile: String
        func client() throws -> OrganisationClient {
            let config = try ConfigurationResolver.resolve(ExplicitConfiguration(profile: options.profile), environment: options.environment)
            let key = String(decoding: try SecureFile.read(keyFile), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            return OrganisationClient(baseURL: config.baseURL, orgKey: key)
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "The organisation and its tenants.")
        @OptionGroup var connection: Connection
        @Flag(help: "JSON output.") var json = false
        func run() async throws {
            try await CLI.run {
                let org = try await connection.client().show()
                if json { try CLI.json(org); return }
                CLI.stdout("organisation \(org.organisation.name) (\(org.organisation.id))\n")
                CLI.stdout(CLI.table(org.tenants.map { [$0.id, $0.name, LatchJSON.utcString($0.createdAt)] }, header: ["TENANT", "NAME", "CREATED"]))
            }
        }
    }

    struct CreateTenant: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "create-tenant",
            abstract: "Add a tenant with its first TENANT_ADMIN; that admin's API key is written to --out (0600).",
            discussion: "The admin makes a key pair on their own host and hands over the public key (SPKI PEM); the private key never travels.")
        @OptionGroup var connection: Connection
        @Argument(help: "The tenant's name.") var name: String
        @Option(help: "The first TENANT_ADMIN's name.") var admin: String
        @Option(help: "The admin's public key, an SPKI PEM file.") var adminPublicKey: String
        @OptionGroup var output: SecretOutput
        func run() async throws {
            try await CLI.run {
                try output.checkWritable()
                let pem = String(decoding: try SecureFile.read(adminPublicKey), as: UTF8.self)
                let t = try await connection.client().createTenant(name: name, adminName: admin, adminPublicKeyPEM: pem)
                try output.write(line: t.apiKey)
                CLI.stderr("latch: tenant \(name) (\(t.tenantId)) created with admin \(admin) (\(t.userId)); the admin's API key is in \(output.out) (0600). It cannot be shown again.")
                CLI.stdout("\(t.tenantId)\n")
            }
        }
    }
}

struct GroupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "group",
        abstract: "Create and list security groups (members are added by `latch agent create --group`).",
        subcommands: [Create.self, List.self])
    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "create", abstract: "Create a security group (needs TENANT_ADMIN).")
        @OptionGroup var options: ProfileOption
        @Argument var name: String
        func run() async throws {
            try await CLI.run {
                let g = try await options.connect(sync: false).createGroup(name: name)
                CLI.stdout("\(g.id)\n")
            }
        }
    }
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List security groups and their members.")
        @OptionGroup var options: ProfileOption
        @Flag(help: "JSON output.") var json = false
        func run() async throws {
            try await CLI.run {
                let gs = try await options.connect(sync: false).listGroups()
                if json { try CLI.json(["groups": gs]); return }
                CLI.stdout(CLI.table(gs.map { [$0.id, $0.name, $0.members.joined(separator: ",")] }, header: ["ID", "NAME", "MEMBERS"]))
            }
        }
    }
}

struct ShareTarget: ParsableArguments {
    @Option(help: "Agent name or id.") var agent: String?
    @Option(help: "User name or id.") var user: String?
    @Option(help: "Security group name or id.") var group: String?

    func resolve(_ latch: Latch) async throws -> PrincipalInfo {
        let given = [agent, user, group].compactMap { $0 }
        guard given.count == 1 else { throw LatchError(.usage, "give exactly one of --agent, --user or --group") }
        if let agent { return try await latch.principal(named: agent, type: "AGENT") }
        return try await latch.principal(named: user ?? "", type: "USER")
    }
}

struct ShareCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "share",
        abstract: "Grant access to a vault and wrap its key to the recipient's registered public key.")
    @OptionGroup var options: ProfileOption
    @Argument(help: "Vault name or id.") var vault: String
    @OptionGroup var target: ShareTarget
    @Option(help: "READ, WRITE or ADMIN.") var level: String = "READ"

    func run() async throws {
        try await CLI.run {
            guard ["READ", "WRITE", "ADMIN"].contains(level.uppercased()) else { throw LatchError(.usage, "--level must be READ, WRITE or ADMIN") }
            let latch = try await options.connect()
            if let name = target.group, target.agent == nil, target.user == nil {
                let r = try await latch.share(vault: vault, group: try await latch.group(named: name), level: level.uppercased())
                CLI.stderr("latch: group \(name) has \(r.level) on \(vault); vault key wrapped to \(r.wrapped.count) member(s)\(r.pending.isEmpty ? "" : ", \(r.pending.count) pending (no logged key yet; `latch pending --fulfil` later)")")
                if r.level != "READ" { CLI.stderr("latch: note: \(ShareCommand.groupWriteNote)") }
                return
            }
            let p = try await target.resolve(latch)
            try await latch.share(vault: vault, principal: p, level: level.uppercased())
            CLI.stderr("latch: \(p.name) has \(level.uppercased()) on \(vault)\(p.activeKeyId == nil ? " (pending: it has no public key yet)" : "")")
        }
    }
}

extension ShareCommand {
    static let groupWriteNote = "WRITE and ADMIN through a group are not signed into the vault's writer set: group members can read at once; to let one sign writes, an ADMIN shares to it directly with --level WRITE"
}

struct RevokeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "revoke",
        abstract: "Revoke a principal's access to a vault: its wraps go at once, the vault key is rotated, and the secrets it could read are listed.",
        discussion: """
            Removes the direct grant of --agent, --user or --group on VAULT (the server deletes the wraps it made \
            useless in the same transaction), then rotates the vault's DEK: a fresh key, every value re-encrypted \
            with new checkpoints, the new key wrapped to every remaining member whose key the transparency log \
            vouches for, in one all-or-nothing request. Needs ADMIN on the vault and its current key. Prints the \
            secrets the principal could read: rotate them where they are used.
            """)
    @OptionGroup var options: ProfileOption
    @Argument(help: "Vault name or id.") var vault: String
    @Option(help: "Agent name or id.") var agent: String?
    @Option(help: "User name or id.") var user: String?
    @Option(help: "Security group name or id.") var group: String?
    @Flag(help: "JSON output.") var json = false

    func run() async throws {
        try await CLI.run {
            let given = [agent, user, group].compactMap { $0 }
            guard given.count == 1 else { throw LatchError(.usage, "give exactly one of --agent, --user or --group") }
            let latch = try await options.connect()
            let report: RevocationReport
            if let group {
                report = try await latch.revoke(vault: vault, group: try await latch.group(named: group))
            } else if let agent {
                report = try await latch.revoke(vault: vault, principal: try await latch.principal(named: agent, type: "AGENT"))
            } else {
                report = try await latch.revoke(vault: vault, principal: try await latch.principal(named: user ?? "", type: "USER"))
            }
            try RevokeCommand.print(report, json: json, verb: "revoked from")
        }
    }

    static func print(_ r: RevocationReport, json: Bool, verb: String) throws {
        if json { try CLI.json(r); return }
        for v in r.vaults {
            if let dek = v.dekVersion {
                CLI.stdout("\(r.principalType.lowercased()) \(r.principalName) \(verb) vault \(v.vault): key rotated to DEK v\(dek), re-wrapped to \(v.rewrapped.count) member(s)\(v.pending.isEmpty ? "" : ", \(v.pending.count) pending")\n")
            } else {
                CLI.stdout("\(r.principalType.lowercased()) \(r.principalName) \(verb) vault \(v.vault): key NOT rotated: \(v.notRotated ?? "")\n")
            }
        }
        if r.exposedSecrets.isEmpty { CLI.stdout("no secrets were exposed\n"); return }
        CLI.stdout("\(r.principalName) could read these secrets; rotate them where they are used:\n")
        CLI.stdout(CLI.table(r.exposedSecrets.map { [$0.vault, $0.item, $0.fields.joined(separator: ","), $0.envNames.joined(separator: ",")] },
                             header: ["VAULT", "ITEM", "FIELDS", "ENV"]))
    }
}

struct PendingCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "pending",
        abstract: "List pending grants, and with --fulfil wrap vault keys to the principals that now have a public key.")
    @OptionGroup var options: ProfileOption
    @Flag(name: [.customLong("fulfil"), .customLong("fulfill")], help: "Wrap each vault key you hold to its pending recipients.") var fulfil = false
    @Flag(help: "JSON output.") var json = false

    func run() async throws {
        try await CLI.run {
            let latch = try await options.connect(sync: fulfil)
            if fulfil {
                let done = try await latch.fulfilPendingGrants()
                CLI.stderr("latch: fulfilled \(done.count) pending grant(s)")
            }
            let pending = try await latch.pendingGrants()
            if json { try CLI.json(["pendingGrants": pending]); return }
            CLI.stdout(CLI.table(pending.map { [$0.vaultId, $0.principalType, $0.principalId, $0.level, $0.hasPublicKey ? "yes" : "no"] },
                                 header: ["VAULT", "TYPE", "PRINCIPAL", "LEVEL", "HAS KEY"]))
        }
    }
}

struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "audit", abstract: "List audit events (needs machine.monitoring.read).")
    @OptionGroup var options: ProfileOption
    @Flag(help: "JSON output.") var json = false

    func run() async throws {
        try await CLI.run {
            let events = try await options.connect(sync: false).auditEvents()
            if json { try CLI.json(["events": events]); return }
            let f = ISO8601DateFormatter()
            CLI.stdout(CLI.table(events.map { [String($0.seq), f.string(from: $0.time), $0.action, $0.outcome, $0.principalId ?? "-", $0.assetId ?? "-"] },
                                 header: ["SEQ", "TIME", "ACTION", "OUTCOME", "PRINCIPAL", "ASSET"]))
        }
    }
}

public enum LatchVersion {
    public static let string = "0.1.0"
}

public enum ClientCommands {
    public static let all: [any ParsableCommand.Type] = [
        InitCommand.self, ConfigureCommand.self, GetCommand.self, EnvCommand.self, RunCommand.self, SearchCommand.self,
        VaultCommand.self, SecretCommand.self, AgentCommand.self, APIKeyCommand.self, OrgCommand.self, ShareCommand.self, RevokeCommand.self, GroupCommand.self,
        WhoamiCommand.self, DoctorCommand.self, VerifyCommand.self, MachineCommand.self, PendingCommand.self, AuditCommand.self,
    ]
}
