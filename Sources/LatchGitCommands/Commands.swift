import ArgumentParser
import Foundation
import LatchGit

/// agent-vault's command line, shared by the `agent-vault` executable and `latch repo`.
public struct AgentVaultCommand: ParsableCommand {
    public static let subcommandTypes: [any ParsableCommand.Type] = [
        InitCommand.self, CheckCommand.self, AddAgentCommand.self, RemoveAgentCommand.self,
        ListAgentsCommand.self, RecoverAgentCommand.self, RestoreAgentCommand.self, SetCommand.self,
        GetCommand.self, ListCommand.self, GrantCommand.self, RevokeCommand.self, CompletionsCommand.self,
    ]

    public static let configuration = CommandConfiguration(
        commandName: "agent-vault",
        abstract: "Zero-trust credential manager for AI agents: an age-encrypted vault in a Git repository.",
        discussion: """
            Exit status: 0 success; 1 failure (and `check` finding errors); 2 secret not found; \
            3 not authorised (this key cannot decrypt the secret); 4 vault not found; \
            5 no identity key configured.
            """,
        version: "0.1.0",
        subcommands: subcommandTypes
    )

    public init() {}
}

/// What every command needs from the process: environment, working directory, git.
struct CommandContext {
    let environment: VaultEnvironment
    let workingDirectory: URL
    let git: SystemGit

    static func current() throws -> CommandContext {
        let variables = ProcessInfo.processInfo.environment
        return CommandContext(
            environment: try VaultEnvironment(variables: variables),
            workingDirectory: URL(fileURLWithPath: FileManager.default.currentDirectoryPath, isDirectory: true),
            git: try SystemGit(environment: variables))
    }

    func openVault() throws -> GitVault {
        try GitVault.open(from: workingDirectory, environment: environment, git: git)
    }
}

/// Runs `body`, turning a `GitVaultError` into one line on stderr and its exit status.
func reporting(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as GitVaultError {
        Console.error("error: \(error)")
        throw ExitCode(error.exitCode)
    }
}

enum Console {
    static func error(_ line: String = "") {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
    static func out(_ line: String = "") {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }
    static func rawOut(_ data: Data) {
        FileHandle.standardOutput.write(data)
    }
}

public struct InitCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "init", abstract: "Initialize a new vault in the current (or given) directory.")
    @Argument(help: "Directory to initialize (default: the current directory).")
    var directory: String?
    public init() {}

    public func run() throws {
        try reporting {
            let context = try CommandContext.current()
            let root = directory.map { URL(fileURLWithPath: $0, relativeTo: context.workingDirectory).standardizedFileURL }
                ?? context.workingDirectory
            _ = try GitVault.initialize(in: root, environment: context.environment, git: context.git)
            Console.error("Vault initialized in \(root.path)")
            Console.error()
            Console.error("WARNING: the owner key was saved to ~/.agent-vault/owner.key.")
            Console.error("It is the vault's master recovery key: back it up somewhere safe.")
            Console.error("Without it no secret can be recovered.")
        }
    }
}

public struct AddAgentCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(commandName: "add-agent", abstract: "Add a new agent to the vault.")
    @Argument(help: "Name of the agent.") var name: String
    public init() {}

    public func run() throws {
        try reporting {
            let vault = try CommandContext.current().openVault()
            let key = try vault.addAgent(name)
            Console.error("Agent '\(name)' created.")
            Console.error("Private key saved to: \(key.path)")
            Console.error("It has no group access yet: run `agent-vault grant \(name) <group>`.")
        }
    }
}

public struct RemoveAgentCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(commandName: "remove-agent", abstract: "Remove an agent from the vault.")
    @Argument(help: "Name of the agent.") var name: String
    public init() {}

    public func run() throws {
        try reporting {
            let vault = try CommandContext.current().openVault()
            let change = try vault.removeAgent(name)
            Console.error("Agent '\(name)' removed.")
            if !change.groups.isEmpty {
                Console.error()
                Console.error("WARNING: '\(name)' could read the groups \(change.groups.joined(separator: ", ")).")
                Console.error("Their secrets were re-encrypted without it, but it may hold decrypted copies.")
                if !change.secrets.isEmpty {
                    Console.error("Rotate these credentials at their source:")
                    for secret in change.secrets { Console.error("  - \(secret)") }
                }
            }
        }
    }
}

public struct ListAgentsCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(commandName: "list-agents", abstract: "List all agents in the vault.")
    @Flag(help: "Output as JSON.") var json = false
    public init() {}

    public func run() throws {
        try reporting {
            let agents = try CommandContext.current().openVault().listAgents()
            if json {
                Console.out(JSONText.pretty(.array(agents.map {
                    .object([("groups", .array($0.groups.map(JSONText.string))), ("name", .string($0.name))])
                })))
                return
            }
            if agents.isEmpty {
                Console.out("No agents configured.")
                return
            }
            for agent in agents {
                Console.out(agent.groups.isEmpty ? "\(agent.name)  (no groups)"
                            : "\(agent.name)  [\(agent.groups.joined(separator: ", "))]")
            }
        }
    }
}

public struct GrantCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(commandName: "grant", abstract: "Grant an agent access to a group.")
    @Argument(help: "Agent name.") var agent: String
    @Argument(help: "Group name.") var group: String
    public init() {}

    public func run() throws {
        try reporting {
            let secrets = try CommandContext.current().openVault().grant(agent: agent, group: group)
            Console.error("Granted '\(agent)' access to group '\(group)'.")
            if !secrets.isEmpty { Console.error("Re-encrypted \(secrets.count) secret(s).") }
        }
    }
}

public struct RevokeCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(commandName: "revoke", abstract: "Revoke an agent's access to a group.")
    @Argument(help: "Agent name.") var agent: String
    @Argument(help: "Group name.") var group: String
    public init() {}

    public func run() throws {
        try reporting {
            let secrets = try CommandContext.current().openVault().revoke(agent: agent, group: group)
            Console.error("Revoked '\(agent)' access to group '\(group)'.")
            if !secrets.isEmpty {
                Console.error("Re-encrypted \(secrets.count) secret(s).")
                Console.error()
                Console.error("WARNING: '\(agent)' could read these secrets and may hold decrypted copies.")
                Console.error("Rotate them at their source:")
                for secret in secrets { Console.error("  - \(secret)") }
            }
        }
    }
}

public struct SetCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "set", abstract: "Set (create or update) a secret.",
        discussion: "A value given on the command line can leak through shell history; prefer --from-file.")
    @Argument(help: "Secret path (e.g. stripe/api-key).") var path: String
    @Argument(help: "Secret value.") var value: String?
    @Option(name: .customLong("from-file"), help: "Read the value from this file (its exact bytes).")
    var fromFile: String?
    @Option(help: "Group to put the secret in (default: the first component of the path).")
    var group: String?
    @Option(help: "Expiry date, RFC 3339 (e.g. 2026-12-31T00:00:00Z) or YYYY-MM-DD.")
    var expires: String?
    @Option(help: "Also encrypt for these agents (comma-separated), beside the group's.")
    var agents: [String] = []
    public init() {}

    public func validate() throws {
        if value == nil && fromFile == nil { throw ValidationError("provide a value or --from-file") }
        if value != nil && fromFile != nil { throw ValidationError("provide either a value or --from-file, not both") }
    }

    public func run() throws {
        try reporting {
            let context = try CommandContext.current()
            let bytes: Data
            if let fromFile {
                let url = URL(fileURLWithPath: fromFile, relativeTo: context.workingDirectory)
                bytes = try LocalFileSystem().read(url)
            } else {
                bytes = Data((value ?? "").utf8)
            }
            var expiry: VaultTimestamp?
            if let expires {
                guard let parsed = VaultTimestamp(userInput: expires) else {
                    throw GitVaultError.usage("invalid --expires date '\(expires)': use RFC 3339, e.g. 2026-12-31T00:00:00Z, or YYYY-MM-DD")
                }
                expiry = parsed
            }
            let extra = agents.flatMap { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
                .filter { !$0.isEmpty }
            let vault = try context.openVault()
            let meta = try vault.setSecret(path, value: bytes, group: group, expires: expiry,
                                           extraAgents: extra.isEmpty ? nil : extra)
            if extra.isEmpty {
                Console.error("Secret '\(path)' set in group '\(meta.group)'.")
            } else {
                Console.error("Secret '\(path)' set in group '\(meta.group)' (also encrypted for: \(extra.joined(separator: ", "))).")
            }
        }
    }
}

public struct GetCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "get", abstract: "Get (decrypt) a secret; prints the value only.",
        discussion: "Key: --key, else AGENT_VAULT_KEY (a key file path or an AGE-SECRET-KEY- string), else ~/.agent-vault/owner.key.")
    @Argument(help: "Secret path (e.g. stripe/api-key).") var path: String
    @Option(help: "Path to the private key file.") var key: String?
    public init() {}

    public func run() throws {
        try reporting {
            let context = try CommandContext.current()
            let vault = try context.openVault()
            if let warning = vault.pull() { Console.error("warning: \(warning)") }
            let identity = try IdentityResolver(environment: context.environment).resolve(keyOption: key).identity
            Console.rawOut(try vault.getSecret(path, identity: identity))
        }
    }
}

public struct ListCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(commandName: "list", abstract: "List all secrets in the vault (metadata only).")
    @Option(help: "Only this group.") var group: String?
    @Flag(help: "Output as JSON.") var json = false
    public init() {}

    public func run() throws {
        try reporting {
            let secrets = try CommandContext.current().openVault().listSecrets(group: group)
            if json {
                Console.out(JSONText.pretty(.array(secrets.map { meta in
                    var fields: [(String, JSONText)] = [
                        ("name", .string(meta.name)), ("group", .string(meta.group)),
                        ("created", .string(meta.created.description)), ("rotated", .string(meta.rotated.description)),
                    ]
                    if let expires = meta.expires { fields.append(("expires", .string(expires.description))) }
                    fields.append(("authorized_agents", .array(meta.authorizedAgents.map(JSONText.string))))
                    return .object(fields)
                })))
                return
            }
            if secrets.isEmpty {
                Console.out("No secrets found.")
                return
            }
            for meta in secrets {
                let expires = meta.expires.map { "  expires=\($0.dateString)" } ?? ""
                Console.out("\(meta.name.padded(30)) group=\(meta.group.padded(15)) agents=[\(meta.authorizedAgents.joined(separator: ", "))]  rotated=\(meta.rotated.dateString)\(expires)")
            }
        }
    }
}

public struct CheckCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "check", abstract: "Audit the vault for problems; exits 1 when it finds errors.")
    @Flag(help: "Output as JSON: {\"errors\": [...], \"warnings\": [...]}.") var json = false
    public init() {}

    public func run() throws {
        var failed = false
        try reporting {
            let report = try CommandContext.current().openVault().check()
            failed = !report.errors.isEmpty
            if json {
                Console.out(JSONText.pretty(.object([
                    ("errors", .array(report.errors.map(JSONText.string))),
                    ("warnings", .array(report.warnings.map(JSONText.string))),
                ])))
                return
            }
            if report.isHealthy {
                Console.out("No issues found. Vault is healthy.")
                return
            }
            for error in report.errors { Console.out("ERROR: \(error)") }
            for warning in report.warnings { Console.out("WARNING: \(warning)") }
            Console.out()
            Console.out("\(report.errors.count) error(s), \(report.warnings.count) warning(s).")
        }
        if failed { throw ExitCode(GitVaultExitCode.failure) }
    }
}

public struct RecoverAgentCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "recover-agent", abstract: "Give an agent a new key pair and re-encrypt its secrets.")
    @Argument(help: "Agent name.") var name: String
    public init() {}

    public func run() throws {
        try reporting {
            let key = try CommandContext.current().openVault().recoverAgent(name)
            Console.error("Agent '\(name)' recovered with a new key pair.")
            Console.error("New private key saved to: \(key.path)")
            Console.error("Its secrets were re-encrypted for the new key.")
        }
    }
}

public struct RestoreAgentCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "restore-agent", abstract: "Restore an agent's original private key from its escrow.")
    @Argument(help: "Agent name.") var name: String
    @Option(name: .customLong("to"), help: "Where to write the restored key (mode 0600).") var toPath: String
    public init() {}

    public func run() throws {
        try reporting {
            let context = try CommandContext.current()
            let destination = URL(fileURLWithPath: toPath, relativeTo: context.workingDirectory).standardizedFileURL
            try context.openVault().restoreAgent(name, to: destination)
            Console.error("Agent '\(name)' private key restored to: \(toPath)")
        }
    }
}

public struct CompletionsCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "completions", abstract: "Print a shell completion script (bash, zsh, fish, powershell or elvish).")
    @Argument(help: "Shell: bash, zsh, fish, powershell or elvish.") var shell: String
    public init() {}

    public func run() throws {
        switch shell.lowercased() {
        case "powershell": Console.out(ExtraCompletions.powershell(command: "agent-vault"))
        case "elvish": Console.out(ExtraCompletions.elvish(command: "agent-vault"))
        default:
            guard let kind = CompletionShell(rawValue: shell.lowercased()) else {
                Console.error("error: unsupported shell '\(shell)': use bash, zsh, fish, powershell or elvish")
                throw ExitCode(GitVaultExitCode.failure)
            }
            Console.out(AgentVaultCommand.completionScript(for: kind))
        }
    }
}

extension String {
    /// Left-aligned in `width` characters (like Rust's `{:<width}`).
    func padded(_ width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
