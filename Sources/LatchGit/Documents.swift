import Foundation
import Yams

/// `.agent-vault/config.yaml`: `version: 1` and `encryption: {format: age}`.
public struct VaultConfig: Sendable, Equatable {
    public var version: Int
    public var encryptionFormat: String

    public init(version: Int = 1, encryptionFormat: String = "age") {
        self.version = version
        self.encryptionFormat = encryptionFormat
    }

    public init(yaml: String) throws {
        let reader = YAMLReader(file: "config.yaml")
        let root = try reader.mapping(reader.compose(yaml), "config.yaml")
        version = try reader.integer(root, "version")
        guard let encryption = reader.optional(root, "encryption") else {
            throw GitVaultError.malformed(file: "config.yaml", reason: "missing field `encryption`")
        }
        encryptionFormat = try reader.string(reader.mapping(encryption, "`encryption`"), "format")
    }

    public func yaml() throws -> String {
        try AgentVaultYAML.emit(AgentVaultYAML.mapping([
            ("version", AgentVaultYAML.integer(version)),
            ("encryption", AgentVaultYAML.mapping([("format", AgentVaultYAML.string(encryptionFormat))])),
        ]))
    }
}

/// `.agent-vault/manifest.yaml`: who may read which group, and which secrets each group holds.
/// Order is kept as written; agent-vault appends.
public struct VaultManifest: Sendable, Equatable {
    public struct Owner: Sendable, Equatable {
        public var name: String
        public var publicKey: String          // the file name, `owner.pub`
        public init(name: String, publicKey: String = "owner.pub") {
            self.name = name
            self.publicKey = publicKey
        }
    }

    public struct Agent: Sendable, Equatable {
        public var name: String
        public var groups: [String]
        public init(name: String, groups: [String] = []) {
            self.name = name
            self.groups = groups
        }
    }

    public struct Group: Sendable, Equatable {
        public var name: String
        public var secrets: [String]          // full secret paths
        public init(name: String, secrets: [String] = []) {
            self.name = name
            self.secrets = secrets
        }
    }

    public var version: Int
    public var owners: [Owner]
    public var agents: [Agent]
    public var groups: [Group]

    public init(version: Int = 1, owners: [Owner] = [], agents: [Agent] = [], groups: [Group] = []) {
        self.version = version
        self.owners = owners
        self.agents = agents
        self.groups = groups
    }

    /// Parses and validates every name in it.
    public init(yaml: String) throws {
        let reader = YAMLReader(file: "manifest.yaml")
        let root = try reader.mapping(reader.compose(yaml), "manifest.yaml")
        version = try reader.integer(root, "version")
        owners = try reader.mappings(root, "owners").map {
            Owner(name: try reader.string($0, "name"), publicKey: try reader.string($0, "public_key"))
        }
        agents = try reader.mappings(root, "agents").map {
            Agent(name: try reader.string($0, "name"), groups: try reader.strings($0, "groups"))
        }
        groups = try reader.mappings(root, "groups").map {
            Group(name: try reader.string($0, "name"), secrets: try reader.strings($0, "secrets"))
        }
        try validate()
    }

    public func yaml() throws -> String {
        typealias Y = AgentVaultYAML
        return try Y.emit(Y.mapping([
            ("version", Y.integer(version)),
            ("owners", Y.sequence(owners.map {
                Y.mapping([("name", Y.string($0.name)), ("public_key", Y.string($0.publicKey))])
            })),
            ("agents", Y.sequence(agents.map {
                Y.mapping([("name", Y.string($0.name)), ("groups", Y.sequence($0.groups.map(Y.string)))])
            })),
            ("groups", Y.sequence(groups.map {
                Y.mapping([("name", Y.string($0.name)), ("secrets", Y.sequence($0.secrets.map(Y.string)))])
            })),
        ]))
    }

    public func validate() throws {
        for agent in agents {
            try VaultIdentifier.validateAgent(agent.name)
            for group in agent.groups { try VaultIdentifier.validateGroup(group) }
        }
        for group in groups {
            try VaultIdentifier.validateGroup(group.name)
            for secret in group.secrets { try VaultIdentifier.validateSecretPath(secret) }
        }
    }

    // MARK: queries

    public func agent(named name: String) -> Agent? { agents.first { $0.name == name } }
    public func group(named name: String) -> Group? { groups.first { $0.name == name } }

    /// Agents granted `group`, in manifest order.
    public func agents(inGroup group: String) -> [String] {
        agents.filter { $0.groups.contains(group) }.map(\.name)
    }

    public func secrets(inGroup group: String) -> [String] {
        self.group(named: group)?.secrets ?? []
    }

    /// Agents that may read `secretPath` through any group holding it, sorted, without repeats.
    public func authorizedAgents(forSecret secretPath: String) -> [String] {
        let holding = Set(groups.filter { $0.secrets.contains(secretPath) }.map(\.name))
        return Array(Set(agents.filter { !holding.isDisjoint(with: $0.groups) }.map(\.name))).sorted()
    }

    /// `authorizedAgents(forSecret:)` for many secrets at once: one pass over the manifest
    /// instead of one per secret (a grant on a group of N secrets was O(N²)).
    public func authorizedAgentsIndex() -> (String) -> [String] {
        var groupsOfSecret: [String: Set<String>] = [:]
        for group in groups { for secret in group.secrets { groupsOfSecret[secret, default: []].insert(group.name) } }
        var cache: [Set<String>: [String]] = [:]
        var result: [String: [String]] = [:]
        for (secret, holding) in groupsOfSecret {
            if let known = cache[holding] { result[secret] = known; continue }
            let agents = Array(Set(agents.filter { !holding.isDisjoint(with: $0.groups) }.map(\.name))).sorted()
            cache[holding] = agents
            result[secret] = agents
        }
        return { result[$0] ?? [] }
    }

    // MARK: edits (agent-vault's semantics)

    public mutating func addAgent(_ name: String) throws {
        try VaultIdentifier.validateAgent(name)
        guard agent(named: name) == nil else { throw GitVaultError.agentExists(name) }
        agents.append(Agent(name: name))
    }

    /// Removes the agent; returns the groups it had.
    public mutating func removeAgent(_ name: String) throws -> [String] {
        guard let index = agents.firstIndex(where: { $0.name == name }) else {
            throw GitVaultError.agentNotFound(name)
        }
        return agents.remove(at: index).groups
    }

    public mutating func grant(agent name: String, group: String) throws {
        guard self.group(named: group) != nil else { throw GitVaultError.groupNotFound(group) }
        guard let index = agents.firstIndex(where: { $0.name == name }) else {
            throw GitVaultError.agentNotFound(name)
        }
        if !agents[index].groups.contains(group) { agents[index].groups.append(group) }
    }

    public mutating func revoke(agent name: String, group: String) throws {
        guard let index = agents.firstIndex(where: { $0.name == name }) else {
            throw GitVaultError.agentNotFound(name)
        }
        agents[index].groups.removeAll { $0 == group }
    }

    /// Creates the group when needed and appends the secret to it unless already there.
    public mutating func addSecret(_ secretPath: String, toGroup group: String) throws {
        try VaultIdentifier.validateGroup(group)
        try VaultIdentifier.validateSecretPath(secretPath)
        if let index = groups.firstIndex(where: { $0.name == group }) {
            if !groups[index].secrets.contains(secretPath) { groups[index].secrets.append(secretPath) }
        } else {
            groups.append(Group(name: group, secrets: [secretPath]))
        }
    }
}

/// `.agent-vault/secrets/<group>/<name>.meta`: readable facts about one secret.
public struct SecretMetadata: Sendable, Equatable {
    public var name: String                   // the full secret path, e.g. `stripe/api-key`
    public var group: String
    public var created: VaultTimestamp
    public var rotated: VaultTimestamp
    public var expires: VaultTimestamp?
    public var authorizedAgents: [String]

    public init(name: String, group: String, created: VaultTimestamp, rotated: VaultTimestamp,
                expires: VaultTimestamp? = nil, authorizedAgents: [String]) {
        self.name = name
        self.group = group
        self.created = created
        self.rotated = rotated
        self.expires = expires
        self.authorizedAgents = authorizedAgents
    }

    public init(yaml: String, file: String = ".meta file") throws {
        if let fast = Self.fastParse(yaml) {   // canonical text: MetadataFastPath.swift
            self = fast
            return
        }
        try self.init(yamsYAML: yaml, file: file)
    }

    /// The general reader (Yams), for any YAML.
    init(yamsYAML yaml: String, file: String = ".meta file") throws {
        let reader = YAMLReader(file: file)
        let root = try reader.mapping(reader.compose(yaml), file)
        name = try reader.string(root, "name")
        group = try reader.string(root, "group")
        created = try reader.timestamp(root, "created")
        rotated = try reader.timestamp(root, "rotated")
        expires = reader.optional(root, "expires") == nil ? nil : try reader.timestamp(root, "expires")
        authorizedAgents = try reader.strings(root, "authorized_agents")
    }

    public func yaml() throws -> String {
        if let fast = fastYAML() { return fast }   // plain-safe values: MetadataFastPath.swift
        return try yamsYAML()
    }

    /// The general writer (Yams), for any values.
    func yamsYAML() throws -> String {
        typealias Y = AgentVaultYAML
        var pairs: [(String, Node)] = [
            ("name", Y.string(name)),
            ("group", Y.string(group)),
            ("created", Y.string(created.description)),
            ("rotated", Y.string(rotated.description)),
        ]
        if let expires { pairs.append(("expires", Y.string(expires.description))) }
        pairs.append(("authorized_agents", Y.sequence(authorizedAgents.map(Y.string))))
        return try Y.emit(Y.mapping(pairs))
    }
}
