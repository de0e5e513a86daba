import Foundation

/// Where every file of a git-mode vault lives, as paths relative to the repository root
/// (the directory holding `.agent-vault/`).
public struct VaultLayout: Sendable, Equatable {
    public static let directory = ".agent-vault"
    public let root: URL

    public init(root: URL) { self.root = root.standardizedFileURL }

    public static let configFile = ".agent-vault/config.yaml"
    public static let ownerPublicKeyFile = ".agent-vault/owner.pub"
    public static let manifestFile = ".agent-vault/manifest.yaml"
    public static let gitignoreFile = ".agent-vault/.gitignore"
    public static let agentsDirectory = ".agent-vault/agents"
    public static let secretsDirectory = ".agent-vault/secrets"

    public static func agentDirectory(_ name: String) -> String { "\(agentsDirectory)/\(name)" }
    public static func agentPublicKeyFile(_ name: String) -> String { "\(agentDirectory(name))/public.key" }
    public static func agentEscrowFile(_ name: String) -> String { "\(agentDirectory(name))/private.key.escrow" }
    public static func secretFile(_ secretPath: String) -> String {
        "\(secretsDirectory)/\(VaultIdentifier.storagePath(forSecretPath: secretPath)).enc"
    }
    public static func metadataFile(_ secretPath: String) -> String {
        "\(secretsDirectory)/\(VaultIdentifier.storagePath(forSecretPath: secretPath)).meta"
    }

    /// The exact `.agent-vault/.gitignore` agent-vault writes.
    public static let gitignoreContents = """
        # agent-vault: block unencrypted key material
        *.key
        *.pem
        **/private.*
        !**/*.escrow

        """

    public func url(_ relative: String) -> URL { root.appendingPathComponent(relative) }
    /// `url` for a path known to name a file: no `stat` to find out whether it is a directory
    /// (a grant builds 2,000 of these).
    func fileURL(_ relative: String) -> URL { root.appending(path: relative, directoryHint: .notDirectory) }
    public var vaultDirectory: URL { url(Self.directory) }

    /// Finds the vault from `directory` upward: the first directory holding `.agent-vault/`.
    public static func discover(from directory: URL, fileSystem: any VaultFileSystem) -> VaultLayout? {
        var current = directory.standardizedFileURL
        while true {
            if fileSystem.isDirectory(current.appendingPathComponent(Self.directory)) {
                return VaultLayout(root: current)
            }
            let parent = current.deletingLastPathComponent().standardizedFileURL
            if parent.path == current.path { return nil }
            current = parent
        }
    }
}

/// The private keys agent-vault keeps outside the repository, under `$HOME/.agent-vault/`.
public struct HomeKeyLocations: Sendable, Equatable {
    public let home: URL
    public init(home: URL) { self.home = home }

    public var directory: URL { home.appendingPathComponent(".agent-vault") }
    public var ownerKey: URL { directory.appendingPathComponent("owner.key") }
    public func agentKey(_ name: String) -> URL {
        directory.appendingPathComponent("agents").appendingPathComponent("\(name).key")
    }
}

/// What the vault needs from the process environment, passed in rather than read deep inside.
public struct VaultEnvironment: Sendable {
    public var home: URL
    /// `AGENT_VAULT_KEY`: a key file path or a raw `AGE-SECRET-KEY-1…` string.
    public var agentVaultKey: String?
    /// The owner's name written into a new manifest (`$USER`, `$USERNAME`, else `owner`).
    public var userName: String

    public init(home: URL, agentVaultKey: String? = nil, userName: String = "owner") {
        self.home = home
        self.agentVaultKey = agentVaultKey
        self.userName = userName
    }

    /// Reads `HOME`, `AGENT_VAULT_KEY`, `USER`/`USERNAME` from `variables`.
    public init(variables: [String: String]) throws {
        guard let home = variables["HOME"], !home.isEmpty else {
            throw GitVaultError.noIdentityKey("HOME is not set, so ~/.agent-vault cannot be found")
        }
        self.home = URL(fileURLWithPath: home, isDirectory: true)
        self.agentVaultKey = variables["AGENT_VAULT_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        self.userName = variables["USER"].flatMap { $0.isEmpty ? nil : $0 }
            ?? variables["USERNAME"].flatMap { $0.isEmpty ? nil : $0 } ?? "owner"
    }

    public var keys: HomeKeyLocations { HomeKeyLocations(home: home) }
}
