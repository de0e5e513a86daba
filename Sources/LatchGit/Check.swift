import Foundation

/// What `check` found: errors make it exit 1, warnings do not.
public struct CheckReport: Sendable, Equatable {
    public var errors: [String] = []
    public var warnings: [String] = []
    public init(errors: [String] = [], warnings: [String] = []) {
        self.errors = errors
        self.warnings = warnings
    }
    public var isHealthy: Bool { errors.isEmpty && warnings.isEmpty }
}

extension GitVault {
    /// Audits the vault. Errors: config.yaml unparsable, a manifest secret without its `.enc`
    /// or `.meta`, a `.meta` that cannot be parsed or whose name, group or agents disagree with
    /// the manifest, an agent without `public.key` or escrow, an expired secret. Warnings: an
    /// agent without groups, a group without secrets or agents, orphaned `.enc`/`.meta` files,
    /// a secret expiring within 30 days, no owner key at `~/.agent-vault/owner.key`.
    /// An unparsable manifest is thrown, as there is nothing to check against.
    public func check() throws -> CheckReport {
        let manifest = try loadManifest()
        var report = CheckReport()

        do { _ = try loadConfig() } catch {
            report.errors.append("config.yaml is invalid: \(error)")
        }

        for agent in manifest.agents where agent.groups.isEmpty {
            report.warnings.append("Agent '\(agent.name)' has no group access")
        }
        for group in manifest.groups {
            if group.secrets.isEmpty { report.warnings.append("Group '\(group.name)' has no secrets") }
            if manifest.agents(inGroup: group.name).isEmpty {
                report.warnings.append("Group '\(group.name)' has no agents assigned")
            }
        }

        let files = try fileSystem.regularFiles(under: layout.url(VaultLayout.secretsDirectory))
        var encPaths = Set<String>(), metaPaths: [String] = []
        for file in files {
            if file.hasSuffix(".enc") { encPaths.insert(String(file.dropLast(4))) }
            if file.hasSuffix(".meta") { metaPaths.append(String(file.dropLast(5))) }
        }
        // Manifest entries as storage paths (a path without a slash lives under default/).
        var manifestPaths: [String: String] = [:]      // storage path -> secret path
        for group in manifest.groups {
            for secret in group.secrets { manifestPaths[VaultIdentifier.storagePath(forSecretPath: secret)] = secret }
        }
        for (storage, secret) in manifestPaths.sorted(by: { $0.key < $1.key }) {
            if !encPaths.contains(storage) {
                report.errors.append("Secret '\(secret)' is listed in the manifest but its .enc file is missing")
            }
            if !metaPaths.contains(storage) {
                report.errors.append("Secret '\(secret)' is listed in the manifest but its .meta file is missing")
            }
        }
        for storage in encPaths.sorted() where manifestPaths[storage] == nil {
            report.warnings.append("Orphaned .enc file: \(storage) (not in the manifest)")
        }
        for storage in metaPaths.sorted() where manifestPaths[storage] == nil {
            report.warnings.append("Orphaned .meta file: \(storage) (not in the manifest)")
        }

        let knownAgents = Set(manifest.agents.map(\.name))
        var metadata: [SecretMetadata] = []
        for storage in metaPaths.sorted() {
            let file = VaultLayout.secretsDirectory + "/" + storage + ".meta"
            let meta: SecretMetadata
            do { meta = try SecretMetadata(yaml: readText(file), file: file) } catch {
                report.errors.append("Secret '\(storage)' has invalid metadata: \(error)")
                continue
            }
            metadata.append(meta)
            guard let secret = manifestPaths[storage] else { continue }
            if meta.name != secret {
                report.errors.append("Secret '\(secret)' metadata name '\(meta.name)' does not match its path")
            }
            if !(manifest.group(named: meta.group)?.secrets.contains(secret) ?? false) {
                report.errors.append("Secret '\(secret)' metadata group '\(meta.group)' does not hold it in the manifest")
            }
            let listed = Set(meta.authorizedAgents)
            if !Set(manifest.authorizedAgents(forSecret: secret)).isSubset(of: listed) {
                report.errors.append("Secret '\(secret)' metadata lacks agents the manifest authorises")
            }
            if !listed.isSubset(of: knownAgents) {
                report.errors.append("Secret '\(secret)' metadata names agents absent from the manifest")
            }
        }

        for agent in manifest.agents {
            if !exists(VaultLayout.agentPublicKeyFile(agent.name)) {
                report.errors.append("Agent '\(agent.name)' is in the manifest but its public key file is missing")
            }
            if !exists(VaultLayout.agentEscrowFile(agent.name)) {
                report.errors.append("Agent '\(agent.name)' is missing its escrow file")
            }
        }

        let now = clock.now()
        for meta in metadata {
            guard let expires = meta.expires else { continue }
            let days = now.wholeDays(until: expires)
            if expires < now {
                report.errors.append("Secret '\(meta.name)' expired \(-days) day(s) ago")
            } else if days < 30 {
                report.warnings.append("Secret '\(meta.name)' expires in \(days) day(s)")
            }
        }

        if !fileSystem.fileExists(keys.ownerKey) {
            report.warnings.append("Owner private key not found at ~/.agent-vault/owner.key")
        }
        return report
    }
}
