import ArgumentParser
import Foundation
import LatchClient
import LatchGit
import LatchGitCommands
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `--repo DIR [--key FILE]` on `latch get`, `latch run` and `latch mcp`: read a git-mode vault
/// instead of a server. The logic is `RepoAccess` (LatchGitCommands); this only wires it up.
public struct RepoReadOptions: ParsableArguments {
    @Option(help: "Read the git-mode vault in this directory (or its nearest parent holding .agent-vault/) instead of a server.")
    public var repo: String?
    @Option(help: "With --repo: the age identity file (default: AGENT_VAULT_KEY, then ~/.agent-vault/owner.key).")
    public var key: String?

    public init() {}

    public func validate() throws {
        if key != nil && repo == nil { throw ValidationError("--key needs --repo") }
    }
}

/// Git-mode `get` and `run`. Failures are one `latch: error: …` line on stderr with agent-vault's
/// exit status (2 not found, 3 not authorised, 4 vault not found, 5 no key, 1 other), exactly
/// as `latch repo get` reports them.
public enum RepoClient {
    public static func failing<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as GitVaultError {
            let report = RepoAccess.report(error)
            CLI.stderr("latch: \(report.message)")
            throw ExitCode(report.exitCode)
        }
    }

    static func get(_ path: String, repo: String, key: String?) throws {
        let (value, warning) = try failing { try RepoAccess(repo: repo, key: key).get(path) }
        if let warning { CLI.stderr("latch: warning: \(warning)") }
        FileHandle.standardOutput.write(value)
        if isatty(1) == 1 { CLI.stdout("\n") }
    }

    /// Runs `command` with every secret the key can read as `PREFIX + snake(path)` (see
    /// `GitSecretEnvironment`); returns the child's exit status.
    static func run(_ command: [String], repo: String, key: String?, group: String?, prefix: String,
                    masking: Bool, environment: [String: String]) throws -> Int32 {
        let found = try failing {
            try RepoAccess(repo: repo, key: key, variables: environment)
                .environment(group: group, prefix: prefix, name: EnvNames.screamingSnake)
        }
        if let warning = found.warning { CLI.stderr("latch: warning: \(warning)") }
        for c in found.environment.collisions { CLI.stderr("latch: warning: \(c.name) from \(c.dropped) is hidden by \(c.kept)") }
        for path in found.environment.unnamed { CLI.stderr("latch: warning: \(path) has no environment variable name; left out") }
        if !found.unreadable.isEmpty {
            CLI.stderr("latch: note: \(found.unreadable.count) secret(s) this key cannot read were left out")
        }
        var env = environment
        for variable in found.environment.variables { env[variable.name] = variable.value }
        let supervisor = Supervisor(arguments: command, environment: env,
                                    maskedValues: found.environment.variables.map(\.value), masking: masking)
        do {
            return try supervisor.run()
        } catch let e as LatchError where e.kind == .process {
            CLI.stderr("latch: error: \(e.description)")
            throw ExitCode(Int32(e.status ?? 126))
        }
    }
}
