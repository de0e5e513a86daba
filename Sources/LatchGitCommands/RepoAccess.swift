import Foundation
import LatchAge
import LatchGit

/// Read access to a git-mode vault from outside `agent-vault`'s own command line: `latch get
/// --repo`, `latch run --repo` and the `agent_vault_get`/`agent_vault_list` tools of `latch mcp
/// --repo`. Same vault discovery (DIR or its nearest parent holding `.agent-vault/`), same key
/// resolution (`--key`, then `AGENT_VAULT_KEY`, then `~/.agent-vault/owner.key`), same
/// fast-forward before reading, same errors and exit codes as `agent-vault get`.
///
/// The key is resolved on every read, so a key file created or replaced while a long-running
/// MCP server is up is picked up, and a missing key is reported per call.
public struct RepoAccess: Sendable {
    public let vault: GitVault
    public let keyOption: String?

    /// Opens the vault in `repo` (relative paths against `workingDirectory`).
    public init(repo: String, key: String?, variables: [String: String] = ProcessInfo.processInfo.environment,
                workingDirectory: URL = URL(fileURLWithPath: FileManager.default.currentDirectoryPath, isDirectory: true)) throws {
        let environment = try VaultEnvironment(variables: variables)
        let directory = URL(fileURLWithPath: repo, relativeTo: workingDirectory).standardizedFileURL
        vault = try GitVault.open(from: directory, environment: environment, git: SystemGit(environment: variables))
        keyOption = key.map { URL(fileURLWithPath: $0, relativeTo: workingDirectory).standardizedFileURL.path }
    }

    public func identity() throws -> AgeX25519Identity {
        try IdentityResolver(environment: vault.environment, fileSystem: vault.fileSystem).resolve(keyOption: keyOption).identity
    }

    /// Fast-forwards from the remote (when there is one), then decrypts `path`. The warning,
    /// if any, is for stderr; the value is for the caller only.
    public func get(_ path: String, pull: Bool = true) throws -> (value: Data, warning: String?) {
        let warning = pull ? vault.pull() : nil
        let identity = try identity()
        return (try vault.getSecret(path, identity: identity), warning)
    }

    /// The secrets this key can read (optionally only `group`), as environment variables named
    /// by `name` (see `GitSecretEnvironment`). Throws `groupNotFound` when `group` selects no
    /// secret, and `notAuthorized` when there are secrets but the key can read none of them.
    public func environment(group: String?, prefix: String = "", pull: Bool = true,
                            name: (String) -> String?) throws -> (environment: GitSecretEnvironment, unreadable: [String], warning: String?) {
        let warning = pull ? vault.pull() : nil
        let identity = try identity()
        let found = try vault.readableSecrets(identity: identity, group: group)
        if let group, found.secrets.isEmpty && found.unreadable.isEmpty { throw GitVaultError.groupNotFound(group) }
        if found.secrets.isEmpty, let first = found.unreadable.first { throw GitVaultError.notAuthorized(secret: first) }
        return (GitSecretEnvironment(secrets: found.secrets, prefix: prefix, name: name), found.unreadable, warning)
    }

    /// `agent_vault_list`: one line per secret, as agent-vault's own MCP server prints it
    /// (`NAME  group=G  agents=[a, b]  rotated=YYYY-MM-DD[  expires=YYYY-MM-DD]`), or
    /// `No secrets found.`. Metadata only; nothing is decrypted.
    public func listText(group: String?) throws -> String {
        let secrets = try vault.listSecrets(group: group)
        if secrets.isEmpty { return "No secrets found." }
        return secrets.map { meta in
            let expires = meta.expires.map { "  expires=\($0.dateString)" } ?? ""
            return "\(meta.name)  group=\(meta.group)  agents=[\(meta.authorizedAgents.joined(separator: ", "))]  rotated=\(meta.rotated.dateString)\(expires)"
        }.joined(separator: "\n")
    }

    /// A git-mode failure as the command line reports it: `error: …` and its exit status
    /// (2 not found, 3 not authorised, 4 vault not found, 5 no key, 1 anything else).
    public static func report(_ error: any Error) -> (message: String, exitCode: Int32) {
        if let error = error as? GitVaultError { return ("error: \(error)", error.exitCode) }
        return ("error: \(error)", GitVaultExitCode.failure)
    }
}
