import Foundation
import LatchAge

/// A git-mode vault: the `.agent-vault/` directory of a Git work tree, read and written
/// exactly as agent-vault 0.1.0 does. Every changing operation ends in one commit naming what
/// it did. Decrypted values only ever live in memory.
///
/// The clock, the random source, the file system and git are passed in; the command line uses
/// the system ones, tests may use others.
public struct GitVault: Sendable {
    public let layout: VaultLayout
    public let environment: VaultEnvironment
    public let fileSystem: any VaultFileSystem
    public let git: any VaultGit
    public let clock: any VaultClock

    public init(layout: VaultLayout, environment: VaultEnvironment, fileSystem: any VaultFileSystem,
                git: any VaultGit, clock: any VaultClock) {
        self.layout = layout
        self.environment = environment
        self.fileSystem = fileSystem
        self.git = git
        self.clock = clock
    }

    /// Opens the vault in `directory` or the nearest parent holding `.agent-vault/`.
    public static func open(from directory: URL, environment: VaultEnvironment,
                            fileSystem: any VaultFileSystem = LocalFileSystem(), git: any VaultGit,
                            clock: any VaultClock = SystemVaultClock()) throws -> GitVault {
        guard let layout = VaultLayout.discover(from: directory, fileSystem: fileSystem) else {
            throw GitVaultError.vaultNotFound(searchedFrom: directory.path)
        }
        return GitVault(layout: layout, environment: environment, fileSystem: fileSystem, git: git, clock: clock)
    }

    var keys: HomeKeyLocations { environment.keys }
    var resolver: IdentityResolver { IdentityResolver(environment: environment, fileSystem: fileSystem) }

    // MARK: - file helpers

    func read(_ relative: String) throws -> Data { try fileSystem.read(layout.url(relative)) }
    func readText(_ relative: String) throws -> String { String(decoding: try read(relative), as: UTF8.self) }
    func write(_ data: Data, _ relative: String) throws {
        try fileSystem.write(data, to: layout.url(relative), privateFile: false)
    }
    func exists(_ relative: String) -> Bool { fileSystem.fileExists(layout.url(relative)) }

    public func loadManifest() throws -> VaultManifest {
        try VaultManifest(yaml: readText(VaultLayout.manifestFile))
    }

    func saveManifest(_ manifest: VaultManifest) throws {
        try write(Data(manifest.yaml().utf8), VaultLayout.manifestFile)
    }

    public func loadConfig() throws -> VaultConfig { try VaultConfig(yaml: readText(VaultLayout.configFile)) }

    public func ownerRecipient() throws -> AgeX25519Recipient {
        try VaultKeyFile.parseRecipient(read(VaultLayout.ownerPublicKeyFile), file: VaultLayout.ownerPublicKeyFile)
    }

    public func agentRecipient(_ name: String) throws -> AgeX25519Recipient? {
        let file = VaultLayout.agentPublicKeyFile(name)
        guard exists(file) else { return nil }
        return try VaultKeyFile.parseRecipient(read(file), file: file)
    }

    public func loadMetadata(_ secretPath: String) throws -> SecretMetadata {
        let file = VaultLayout.metadataFile(secretPath)
        return try SecretMetadata(yaml: readText(file), file: file)
    }

    func commit(changed: [String], removed: [String] = [], message: String) throws {
        try git.commit(root: layout.root, changed: changed, removed: removed, message: message)
    }

    /// Commits `changed` plus the files of a re-encryption. When the re-encryption staged its
    /// files as it went, `changed` goes through the same `update-index` (one index write).
    func commit(changed: [String], reencrypted: Reencrypted, removed: [String] = [], message: String) throws {
        if let stager = reencrypted.stager {
            stager.stage(changed)
            try stager.finish()
            try git.commit(root: layout.root, changed: [], removed: removed, message: message,
                           alreadyStaged: reencrypted.staged + changed)
        } else {
            try git.commit(root: layout.root, changed: changed + reencrypted.unstaged, removed: removed,
                           message: message, alreadyStaged: reencrypted.staged)
        }
    }

    // MARK: - init

    /// Creates `.agent-vault/` in `directory` (running `git init` first when it is not in a
    /// work tree), writes the owner key to `~/.agent-vault/owner.key` (0600), installs the
    /// pre-commit hook and commits `agent-vault: initialize vault`.
    public static func initialize(
        in directory: URL, environment: VaultEnvironment, fileSystem: any VaultFileSystem = LocalFileSystem(),
        git: any VaultGit, clock: any VaultClock = SystemVaultClock(), using rng: inout some RandomNumberGenerator
    ) throws -> GitVault {
        let layout = VaultLayout(root: directory)
        if fileSystem.isDirectory(layout.vaultDirectory) {
            throw GitVaultError.alreadyInitialized(layout.vaultDirectory.path)
        }
        try fileSystem.createDirectory(directory)
        if !git.isWorkTree(directory) { try git.initialize(directory) }
        let vault = GitVault(layout: layout, environment: environment, fileSystem: fileSystem, git: git, clock: clock)

        try fileSystem.createDirectory(layout.url(VaultLayout.agentsDirectory))
        try fileSystem.createDirectory(layout.url(VaultLayout.secretsDirectory))
        let owner = AgeX25519Identity.generate(using: &rng)
        try fileSystem.write(VaultKeyFile.privateKeyData(owner), to: environment.keys.ownerKey, privateFile: true)
        try vault.write(VaultKeyFile.publicKeyData(owner.recipient), VaultLayout.ownerPublicKeyFile)
        try vault.write(Data(VaultConfig().yaml().utf8), VaultLayout.configFile)
        try vault.saveManifest(VaultManifest(owners: [.init(name: environment.userName)]))
        try vault.write(Data(VaultLayout.gitignoreContents.utf8), VaultLayout.gitignoreFile)
        try PreCommitHook.install(into: git.hooksDirectory(root: layout.root), fileSystem: fileSystem)
        try vault.commit(changed: [VaultLayout.configFile, VaultLayout.ownerPublicKeyFile,
                                   VaultLayout.manifestFile, VaultLayout.gitignoreFile],
                         message: "agent-vault: initialize vault")
        return vault
    }

    public static func initialize(in directory: URL, environment: VaultEnvironment,
                                  fileSystem: any VaultFileSystem = LocalFileSystem(), git: any VaultGit,
                                  clock: any VaultClock = SystemVaultClock()) throws -> GitVault {
        var rng = SystemRandomNumberGenerator()
        return try initialize(in: directory, environment: environment, fileSystem: fileSystem, git: git,
                              clock: clock, using: &rng)
    }

    // MARK: - agents

    /// Generates the agent's key pair, saves the private key to `~/.agent-vault/agents/<name>.key`
    /// (0600), writes `public.key` and the escrow (the private key string encrypted to the
    /// owner only), adds the agent with no groups, and commits. Returns the key's location.
    @discardableResult
    public func addAgent(_ name: String, using rng: inout some RandomNumberGenerator) throws -> URL {
        try VaultIdentifier.validateAgent(name)
        if fileSystem.isDirectory(layout.url(VaultLayout.agentDirectory(name))) {
            throw GitVaultError.agentExists(name)
        }
        var manifest = try loadManifest()
        try manifest.addAgent(name)
        let owner = try ownerRecipient()
        let identity = AgeX25519Identity.generate(using: &rng)
        let keyURL = keys.agentKey(name)
        try fileSystem.write(VaultKeyFile.privateKeyData(identity), to: keyURL, privateFile: true)
        try writeAgentFiles(name, identity: identity, owner: owner, using: &rng)
        try saveManifest(manifest)
        try commit(changed: [VaultLayout.agentPublicKeyFile(name), VaultLayout.agentEscrowFile(name),
                             VaultLayout.manifestFile],
                   message: "agent-vault: add agent '\(name)'")
        return keyURL
    }

    func writeAgentFiles(_ name: String, identity: AgeX25519Identity, owner: AgeX25519Recipient,
                         using rng: inout some RandomNumberGenerator) throws {
        try write(VaultKeyFile.publicKeyData(identity.recipient), VaultLayout.agentPublicKeyFile(name))
        let escrow: Data
        do {
            escrow = try Age.encrypt(VaultKeyFile.privateKeyData(identity), to: [owner], using: &rng)
        } catch { throw GitVaultError.crypto("cannot write the escrow of '\(name)': \(error)") }
        try write(escrow, VaultLayout.agentEscrowFile(name))
    }

    /// Agents and their groups, in manifest order.
    public func listAgents() throws -> [VaultManifest.Agent] { try loadManifest().agents }

    /// What a revoke, remove or recover touched: the groups involved and every secret that was
    /// re-encrypted (the ones to rotate at their source after a revoke or removal).
    public struct AccessChange: Sendable, Equatable {
        public var groups: [String]
        public var secrets: [String]
    }

    /// Removes the agent from the manifest, re-encrypts the secrets of its groups without it,
    /// deletes `agents/<name>/` and commits.
    public func removeAgent(_ name: String, using rng: inout some RandomNumberGenerator) throws -> AccessChange {
        try VaultIdentifier.validateAgent(name)
        var manifest = try loadManifest()
        let groups = try manifest.removeAgent(name)
        var secrets: [String] = []
        for group in groups {
            for secret in manifest.secrets(inGroup: group) where !secrets.contains(secret) { secrets.append(secret) }
        }
        let changed = try reencrypt(secrets, manifest: manifest, using: &rng)
        try saveManifest(manifest)
        try fileSystem.remove(layout.url(VaultLayout.agentDirectory(name)))
        try commit(changed: [VaultLayout.manifestFile], reencrypted: changed, removed: [VaultLayout.agentDirectory(name)],
                   message: "agent-vault: remove agent '\(name)'")
        return AccessChange(groups: groups, secrets: secrets)
    }

    /// Gives the agent a new key pair (new `public.key`, escrow and `~/.agent-vault/agents/<name>.key`)
    /// and re-encrypts the secrets of its groups for it. Returns the new key's location.
    @discardableResult
    public func recoverAgent(_ name: String, using rng: inout some RandomNumberGenerator) throws -> URL {
        try VaultIdentifier.validateAgent(name)
        let manifest = try loadManifest()
        guard let agent = manifest.agent(named: name), exists(VaultLayout.agentEscrowFile(name)) else {
            throw GitVaultError.agentNotFound(name)
        }
        let owner = try ownerRecipient()
        let ownerIdentity = try resolver.ownerIdentity()
        let identity = AgeX25519Identity.generate(using: &rng)
        let keyURL = keys.agentKey(name)
        try fileSystem.write(VaultKeyFile.privateKeyData(identity), to: keyURL, privateFile: true)
        try writeAgentFiles(name, identity: identity, owner: owner, using: &rng)
        var secrets: [String] = []
        for group in agent.groups {
            for secret in manifest.secrets(inGroup: group) where !secrets.contains(secret) { secrets.append(secret) }
        }
        let changed = try reencrypt(secrets, manifest: manifest, ownerIdentity: ownerIdentity, using: &rng)
        try commit(changed: [VaultLayout.agentPublicKeyFile(name), VaultLayout.agentEscrowFile(name)], reencrypted: changed,
                   message: "agent-vault: recover agent '\(name)' with new keypair")
        return keyURL
    }

    /// Decrypts the agent's escrow with the owner key and writes the original private key
    /// to `destination` (0600). Nothing is committed.
    public func restoreAgent(_ name: String, to destination: URL) throws {
        try VaultIdentifier.validateAgent(name)
        let escrowFile = VaultLayout.agentEscrowFile(name)
        guard exists(escrowFile) else { throw GitVaultError.agentNotFound(name) }
        let owner = try resolver.ownerIdentity()
        let plaintext: Data
        do { plaintext = try Age.decrypt(read(escrowFile), identities: [owner]) } catch AgeError.noMatch {
            throw GitVaultError.notAuthorized(secret: escrowFile)
        } catch let error as GitVaultError {
            throw error
        } catch { throw GitVaultError.crypto("cannot open the escrow of '\(name)': \(error)") }
        // Check it is a key before writing it anywhere.
        let identity = try VaultKeyFile.parseIdentity(String(decoding: plaintext, as: UTF8.self), source: escrowFile)
        try fileSystem.write(VaultKeyFile.privateKeyData(identity), to: destination, privateFile: true)
    }

    // MARK: - secrets

    /// Encrypts `value` to the owner first, then the group's agents (manifest order), then any
    /// `extraAgents` not already among them; writes `.enc` and `.meta` (keeping `created` on
    /// update), registers the secret in its group and commits `agent-vault: set secret '<path>'`.
    public func setSecret(_ path: String, value: some DataProtocol, group: String? = nil,
                          expires: VaultTimestamp? = nil, extraAgents: [String]? = nil,
                          using rng: inout some RandomNumberGenerator) throws -> SecretMetadata {
        try VaultIdentifier.validateSecretPath(path)
        let group = group ?? VaultIdentifier.defaultGroup(forSecretPath: path)
        try VaultIdentifier.validateGroup(group)
        for agent in extraAgents ?? [] { try VaultIdentifier.validateAgent(agent) }
        var manifest = try loadManifest()
        try manifest.addSecret(path, toGroup: group)
        var agents = manifest.agents(inGroup: group)
        for agent in extraAgents ?? [] {
            guard manifest.agent(named: agent) != nil else { throw GitVaultError.agentNotFound(agent) }
            if !agents.contains(agent) { agents.append(agent) }
        }
        let ciphertext = try encrypt(value, for: agents, what: path, using: &rng)
        let now = clock.now()
        let metaFile = VaultLayout.metadataFile(path)
        var meta: SecretMetadata
        if exists(metaFile) {
            meta = try loadMetadata(path)
            meta.rotated = now
            meta.authorizedAgents = agents
        } else {
            meta = SecretMetadata(name: path, group: group, created: now, rotated: now, authorizedAgents: agents)
        }
        if let expires { meta.expires = expires }
        try write(ciphertext, VaultLayout.secretFile(path))
        try write(Data(meta.yaml().utf8), metaFile)
        try saveManifest(manifest)
        try commit(changed: [VaultLayout.secretFile(path), metaFile, VaultLayout.manifestFile],
                   message: "agent-vault: set secret '\(path)'")
        return meta
    }

    /// Recipients: the owner, then each named agent that has a `public.key`.
    func recipients(for agents: [String]) throws -> [any AgeRecipient] {
        var recipients: [any AgeRecipient] = [try ownerRecipient()]
        for agent in agents {
            if let recipient = try agentRecipient(agent) { recipients.append(recipient) }
        }
        return recipients
    }

    func encrypt(_ value: some DataProtocol, for agents: [String], what: String,
                 using rng: inout some RandomNumberGenerator) throws -> Data {
        let recipients = try recipients(for: agents)
        do { return try Age.encrypt(value, to: recipients, using: &rng) } catch {
            throw GitVaultError.crypto("cannot encrypt '\(what)': \(error)")
        }
    }

    /// Fast-forwards from the remote when there is one; returns a warning when that failed.
    public func pull() -> String? { git.fastForward(root: layout.root) }

    /// Decrypts a secret in memory. Throws `secretNotFound` when there is no `.enc`,
    /// `notAuthorized` when `identity` is not one of its recipients.
    public func getSecret(_ path: String, identity: AgeX25519Identity) throws -> Data {
        try VaultIdentifier.validateSecretPath(path)
        let file = VaultLayout.secretFile(path)
        guard exists(file) else { throw GitVaultError.secretNotFound(path) }
        return try decrypt(read(file), identity: identity, what: path)
    }

    func decrypt(_ ciphertext: Data, identity: AgeX25519Identity, what: String) throws -> Data {
        do { return try Age.decrypt(ciphertext, identities: [identity]) } catch AgeError.noMatch {
            throw GitVaultError.notAuthorized(secret: what)
        } catch { throw GitVaultError.crypto("cannot decrypt '\(what)': \(error)") }
    }

    /// Metadata of every secret (optionally of those whose `.meta` names `group`, as the SDKs
    /// filter), sorted by file path. Nested paths are included; an unparsable `.meta` is an error.
    public func listSecrets(group: String? = nil) throws -> [SecretMetadata] {
        if let group { try VaultIdentifier.validateGroup(group) }
        let files = try fileSystem.regularFiles(under: layout.url(VaultLayout.secretsDirectory))
        var result: [SecretMetadata] = []
        for file in files where file.hasSuffix(".meta") {
            let relative = VaultLayout.secretsDirectory + "/" + file
            let meta = try SecretMetadata(yaml: readText(relative), file: relative)
            if let group, meta.group != group { continue }
            result.append(meta)
        }
        return result
    }

    // MARK: - access

    /// Adds the group to the agent and re-encrypts the group's secrets for the new recipient
    /// list. Returns the secrets re-encrypted.
    public func grant(agent: String, group: String, using rng: inout some RandomNumberGenerator) throws -> [String] {
        try VaultIdentifier.validateAgent(agent)
        try VaultIdentifier.validateGroup(group)
        var manifest = try loadManifest()
        try manifest.grant(agent: agent, group: group)
        let secrets = manifest.secrets(inGroup: group)
        let changed = try reencrypt(secrets, manifest: manifest, using: &rng)
        try saveManifest(manifest)
        try commit(changed: [VaultLayout.manifestFile], reencrypted: changed,
                   message: "agent-vault: grant '\(agent)' access to '\(group)'")
        return secrets
    }

    /// Removes the group from the agent and re-encrypts the group's secrets without it.
    /// Returns the secrets re-encrypted: the ones to rotate at their source.
    public func revoke(agent: String, group: String, using rng: inout some RandomNumberGenerator) throws -> [String] {
        try VaultIdentifier.validateAgent(agent)
        try VaultIdentifier.validateGroup(group)
        var manifest = try loadManifest()
        try manifest.revoke(agent: agent, group: group)
        let secrets = manifest.secrets(inGroup: group)
        let changed = try reencrypt(secrets, manifest: manifest, using: &rng)
        try saveManifest(manifest)
        try commit(changed: [VaultLayout.manifestFile], reencrypted: changed,
                   message: "agent-vault: revoke '\(agent)' access to '\(group)'")
        return secrets
    }

    /// The files a re-encryption wrote: those a background `git update-index` staged while
    /// the others were being encrypted, and those still to stage. The stager is left running
    /// for the files the command writes next (the manifest); `commit` finishes it, and so does
    /// its deinitializer when the command fails before.
    struct Reencrypted {
        var staged: [String] = []
        var unstaged: [String] = []
        var stager: (any VaultStager)?
    }

    func reencrypt(_ secrets: [String], manifest: VaultManifest,
                   using rng: inout some RandomNumberGenerator) throws -> Reencrypted {
        guard !secrets.isEmpty else { return Reencrypted() }
        return try reencrypt(secrets, manifest: manifest, ownerIdentity: resolver.ownerIdentity(), using: &rng)
    }

    /// Decrypts each secret with the owner key and encrypts it again to the owner and the
    /// agents the manifest now authorises (sorted); updates `rotated` and `authorized_agents`.
    /// Returns the files written. Public keys are read once. With the system random source the
    /// secrets are processed on all cores (each worker draws from the system generator);
    /// with any other generator, one after another in order.
    func reencrypt(_ secrets: [String], manifest: VaultManifest, ownerIdentity: AgeX25519Identity,
                   using rng: inout some RandomNumberGenerator) throws -> Reencrypted {
        let owner = try ownerRecipient()
        var agentKeys: [String: AgeX25519Recipient] = [:]
        var pending: [(secret: String, agents: [String], recipients: [AgeX25519Recipient])] = []
        let authorizedAgents = manifest.authorizedAgentsIndex()
        for secret in secrets {
            try VaultIdentifier.validateSecretPath(secret)
            let agents = authorizedAgents(secret)
            var recipients: [AgeX25519Recipient] = [owner]
            for agent in agents {
                if agentKeys[agent] == nil, let recipient = try agentRecipient(agent) { agentKeys[agent] = recipient }
                if let recipient = agentKeys[agent] { recipients.append(recipient) }
            }
            pending.append((secret, agents, recipients))
        }
        let jobs = pending
        let now = clock.now()
        if rng is SystemRandomNumberGenerator && jobs.count > 1 {
            // Git hashes and packs each finished file while the workers encrypt the next ones.
            let stager = try git.startStaging(root: layout.root)
            let results = ReencryptResults(count: jobs.count)
            DispatchQueue.concurrentPerform(iterations: jobs.count) { index in
                var local = SystemRandomNumberGenerator()
                let job = jobs[index]
                let result = Result {
                    try reencryptOne(job.secret, agents: job.agents, recipients: job.recipients,
                                     ownerIdentity: ownerIdentity, now: now, using: &local)
                }
                if let stager, case .success(let files) = result { stager.stage(files) }
                results.set(index, result)
            }
            let files: [String]
            do { files = try results.all().flatMap { try $0.get() } } catch {
                try? stager?.finish()
                throw error
            }
            return stager == nil ? Reencrypted(unstaged: files) : Reencrypted(staged: files, stager: stager)
        }
        var changed: [String] = []
        for job in jobs {
            changed += try reencryptOne(job.secret, agents: job.agents, recipients: job.recipients,
                                        ownerIdentity: ownerIdentity, now: now, using: &rng)
        }
        return Reencrypted(unstaged: changed)
    }

    func reencryptOne(_ secret: String, agents: [String], recipients: [AgeX25519Recipient],
                      ownerIdentity: AgeX25519Identity, now: VaultTimestamp,
                      using rng: inout some RandomNumberGenerator) throws -> [String] {
        let file = VaultLayout.secretFile(secret)
        let fileURL = layout.fileURL(file)
        let plaintext = try decrypt(fileSystem.read(fileURL), identity: ownerIdentity, what: secret)
        let ciphertext: Data
        do { ciphertext = try Age.encrypt(plaintext, to: recipients.map { $0 as any AgeRecipient }, using: &rng) } catch {
            throw GitVaultError.crypto("cannot encrypt '\(secret)': \(error)")
        }
        // Rewritten in place (see VaultFileSystem.overwrite): the previous versions are in HEAD
        // until the commit, and a new inode per file made the file system the bottleneck.
        try fileSystem.overwrite(ciphertext, at: fileURL)
        let metaFile = VaultLayout.metadataFile(secret)
        let metaURL = layout.fileURL(metaFile)
        guard fileSystem.fileExists(metaURL) else { return [file] }
        var meta = try SecretMetadata(yaml: String(decoding: fileSystem.read(metaURL), as: UTF8.self), file: metaFile)
        meta.authorizedAgents = agents
        meta.rotated = now
        try fileSystem.overwrite(Data(meta.yaml().utf8), at: metaURL)
        return [file, metaFile]
    }
}

/// Per-index results of a parallel re-encryption.
final class ReencryptResults: @unchecked Sendable {
    private let lock = NSLock()
    private var results: [Result<[String], Error>?]
    init(count: Int) { results = Array(repeating: nil, count: count) }
    func set(_ index: Int, _ result: Result<[String], Error>) {
        lock.lock(); results[index] = result; lock.unlock()
    }
    func all() -> [Result<[String], Error>] {
        lock.lock(); defer { lock.unlock() }
        return results.map { $0 ?? .failure(GitVaultError.crypto("re-encryption did not run")) }
    }
}

// MARK: - system-random conveniences

extension GitVault {
    @discardableResult
    public func addAgent(_ name: String) throws -> URL {
        var rng = SystemRandomNumberGenerator()
        return try addAgent(name, using: &rng)
    }

    public func removeAgent(_ name: String) throws -> AccessChange {
        var rng = SystemRandomNumberGenerator()
        return try removeAgent(name, using: &rng)
    }

    @discardableResult
    public func recoverAgent(_ name: String) throws -> URL {
        var rng = SystemRandomNumberGenerator()
        return try recoverAgent(name, using: &rng)
    }

    @discardableResult
    public func setSecret(_ path: String, value: some DataProtocol, group: String? = nil,
                          expires: VaultTimestamp? = nil, extraAgents: [String]? = nil) throws -> SecretMetadata {
        var rng = SystemRandomNumberGenerator()
        return try setSecret(path, value: value, group: group, expires: expires, extraAgents: extraAgents, using: &rng)
    }

    public func grant(agent: String, group: String) throws -> [String] {
        var rng = SystemRandomNumberGenerator()
        return try grant(agent: agent, group: group, using: &rng)
    }

    public func revoke(agent: String, group: String) throws -> [String] {
        var rng = SystemRandomNumberGenerator()
        return try revoke(agent: agent, group: group, using: &rng)
    }
}
