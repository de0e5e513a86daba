import Foundation
import LatchCrypto

/// What a client has accepted before: the last summary-checkpoint version per vault and the
/// last detail-checkpoint version per item, so a server that later serves an older state is
/// caught. Stored per profile as `seen.json` (0600). Holds ids, integers and hashes only — never a
/// name, value or key.
///
/// ```json
/// {"version":1,"vaults":{"<vaultId>":{"summaryVersion":3,"items":{"<itemId>":2}}}}
/// ```
public struct SeenState: Codable, Sendable, Equatable {
    public struct Vault: Codable, Sendable, Equatable {
        public var summaryVersion: Int
        public var items: [String: Int]
        public init(summaryVersion: Int = 0, items: [String: Int] = [:]) {
            self.summaryVersion = summaryVersion
            self.items = items
        }
    }

    public var version: Int = 1
    public var vaults: [String: Vault] = [:]
    /// The member key last accepted per principal id (key ids only); a later, different key
    /// must come with rotation statements chaining it to this one.
    public var memberKeys: [String: String]? = nil
    /// The newest writer set accepted per vault id; a later chain must pass through it.
    public var writers: [String: PinnedWriters]? = nil

    public struct PinnedWriters: Codable, Sendable, Equatable {
        public var version: Int
        public var hash: String
    }

    public init() {}

    /// Accept a vault's writer set chain (already checked link by link), or throw when it does
    /// not pass through the version pinned before: an older newest version is a rollback, a
    /// different hash at the pinned version a fork.
    public mutating func acceptWriters(vaultId: String, chain: [VaultWritersStatement]) throws {
        guard let newest = chain.last else { return }
        if let pinned = writers?[vaultId] {
            guard newest.version >= pinned.version else {
                throw LatchError(.verification, "vault \(vaultId): server sent writer set version \(newest.version), older than version \(pinned.version) seen before (rollback)",
                                 hint: "the server or a proxy is replaying old data; do not trust it")
            }
            guard let same = chain.first(where: { $0.version == pinned.version }), same.hash == pinned.hash else {
                throw LatchError(.verification, "vault \(vaultId): server sent a writer set history that differs from the one seen before at version \(pinned.version) (fork)",
                                 hint: "the server is showing different histories to different clients; do not trust it")
            }
        }
        writers = (writers ?? [:]).merging([vaultId: PinnedWriters(version: newest.version, hash: newest.hash)]) { _, n in n }
    }

    /// Accept a summary version for a vault, or throw when it is older than one seen before.
    public mutating func acceptSummary(vaultId: String, version: Int) throws {
        let last = vaults[vaultId]?.summaryVersion ?? 0
        guard version >= last else {
            throw LatchError(.verification, "vault \(vaultId): server sent summary checkpoint version \(version), older than version \(last) seen before (rollback)",
                             hint: "the server or a proxy is replaying old data; do not trust it")
        }
        vaults[vaultId, default: Vault()].summaryVersion = version
    }

    /// Accept a detail version for an item, or throw when it is older than one seen before.
    public mutating func acceptItem(vaultId: String, itemId: String, version: Int) throws {
        let last = vaults[vaultId]?.items[itemId] ?? 0
        guard version >= last else {
            throw LatchError(.verification, "item \(itemId) in vault \(vaultId): server sent detail checkpoint version \(version), older than version \(last) seen before (rollback)",
                             hint: "the server or a proxy is replaying old data; do not trust it")
        }
        vaults[vaultId, default: Vault()].items[itemId] = version
    }

    /// Accept a signer-directory key: the first key seen for a member is pinned; a different
    /// one later is accepted only through the served rotation chain from the pinned key, each
    /// step naming this member and signed by the key it replaces.
    public mutating func acceptMemberKey(_ k: DirectoryKey, vaultLabel: String) throws {
        let keyId = k.publicKey.keyId
        guard let pinned = memberKeys?[k.principalId], pinned != keyId else {
            memberKeys = (memberKeys ?? [:]).merging([k.principalId: keyId]) { _, n in n }
            return
        }
        let who = "\(k.name ?? "member") (\(k.principalId))"
        guard let start = k.rotations.firstIndex(where: { $0.previous.keyId == pinned }) else {
            throw LatchError(.verification, "\(vaultLabel): the key of \(who) changed from \(pinned.prefix(16))… to \(keyId.prefix(16))… without a rotation statement signed by \(pinned.prefix(16))…",
                             hint: "the server swapped a member's key; do not trust it")
        }
        let steps = Array(k.rotations[start...])
        for (i, step) in steps.enumerated() {
            let next = i + 1 < steps.count ? steps[i + 1].previous : k.publicKey
            do {
                try step.statement.verifyRotation(from: step.previous, to: next)
                guard step.statement.checkpoint.principalId == k.principalId else {
                    throw LatchError(.verification, "the statement is for principal \(step.statement.checkpoint.principalId)")
                }
            } catch {
                throw LatchError(.verification, "\(vaultLabel): the rotation of \(who)'s key from \(step.previous.keyId.prefix(16))… to \(next.keyId.prefix(16))… does not verify: \(error)",
                                 hint: "the server swapped a member's key; do not trust it")
            }
        }
        memberKeys?[k.principalId] = keyId
    }

    public static func load(path: String) throws -> SeenState {
        guard FileManager.default.fileExists(atPath: path) else { return SeenState() }
        do {
            let data = try SecureFile.read(path)
            return try readDirect(data) ?? JSONDecoder().decode(SeenState.self, from: data)
        } catch {
            throw LatchError(.configuration, "seen-state file \(path) is unreadable",
                             hint: "it only holds checkpoint versions; inspect it, and delete it only if you trust the server")
        }
    }

    /// `seen.json` read directly (see `DocScanner`); nil gives up and JSONDecoder reads it.
    static func readDirect(_ data: Data) -> SeenState? {
        /// An object of unique names, each value read by `value`.
        func members<T>(_ s: inout DocScanner, _ value: (inout DocScanner) -> T?) -> [String: T]? {
            var out: [String: T] = [:]
            return s.object { s, key in
                guard out[key] == nil, let v = value(&s) else { return false }
                out[key] = v
                return true
            } ? out : nil
        }
        var version: Int?, vaults: [String: Vault]?, memberKeys: [String: String]??, writers: [String: PinnedWriters]??
        guard DocScanner.read(data, { s, key in
            switch key {
            case "version": return once(&version, s.int())
            case "vaults":
                return once(&vaults, members(&s) { s in
                    var summaryVersion: Int?, items: [String: Int]?
                    guard s.object({ s, key in
                        switch key {
                        case "summaryVersion": return once(&summaryVersion, s.int())
                        case "items": return once(&items, members(&s) { $0.int() })
                        default: return s.skipValue()
                        }
                    }), let summaryVersion, let items else { return nil }
                    return Vault(summaryVersion: summaryVersion, items: items)
                })
            case "memberKeys": return once(&memberKeys, s.optional { members(&$0) { $0.string() } })
            case "writers":
                return once(&writers, s.optional { members(&$0) { s in
                    var version: Int?, hash: String?
                    guard s.object({ s, key in
                        switch key {
                        case "version": return once(&version, s.int())
                        case "hash": return once(&hash, s.string())
                        default: return s.skipValue()
                        }
                    }), let version, let hash else { return nil }
                    return PinnedWriters(version: version, hash: hash)
                } })
            default: return s.skipValue()
            }
        }), let version, let vaults else { return nil }
        var state = SeenState()
        state.version = version
        state.vaults = vaults
        state.memberKeys = memberKeys ?? nil
        state.writers = writers ?? nil
        return state
    }

    public func save(path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try SecureFile.makeDirectory((path as NSString).deletingLastPathComponent, mode: 0o700)
        try SecureFile.write(try encoder.encode(self), to: path, mode: 0o600)
    }

    /// This state joined with `theirs`, what another process of the same profile saved since
    /// this one read `base`: every checkpoint version the higher of the two, a writer set the
    /// one of the higher version, and a member key this process did not change since `base`
    /// taken from `theirs`. (Versions only grow, so the join never loses a rollback check.)
    public func merged(with theirs: SeenState, base: SeenState) -> SeenState {
        var out = self
        for (id, t) in theirs.vaults {
            var v = out.vaults[id] ?? Vault()
            v.summaryVersion = max(v.summaryVersion, t.summaryVersion)
            v.items.merge(t.items, uniquingKeysWith: max)
            out.vaults[id] = v
        }
        for (id, t) in theirs.writers ?? [:] where (out.writers?[id]?.version ?? -1) < t.version {
            out.writers = (out.writers ?? [:]).merging([id: t]) { _, n in n }
        }
        for (principal, t) in theirs.memberKeys ?? [:] where memberKeys?[principal] == base.memberKeys?[principal] {
            out.memberKeys = (out.memberKeys ?? [:]).merging([principal: t]) { _, n in n }
        }
        return out
    }

    /// Saves this state joined with what another process of the profile saved since `base` was
    /// read (`merged`), under an exclusive lock on `path + ".lock"`, so that two processes
    /// syncing at once cannot put an older version back. Returns what the file now holds.
    public func save(path: String, base: SeenState) throws -> SeenState {
        try SecureFile.withLock(path) {
            let onDisk = try Self.load(path: path)
            let out = onDisk == base ? self : merged(with: onDisk, base: base)
            if out != onDisk { try out.save(path: path) }
            return out
        }
    }
}
