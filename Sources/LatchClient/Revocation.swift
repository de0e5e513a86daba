import Foundation
import LatchCrypto
import LatchWire

extension VaultWriter {
    /// One item re-sealed under a new DEK: its next detail checkpoint and field id → envelope.
    public struct RotatedItem: Sendable {
        public var itemId: String
        public var detail: SignedEnvelope<ItemDetailCheckpoint>
        public var envelopes: [String: String]
    }

    /// A vault's DEK rotation: the next summary (DEK version + 1), every item re-sealed with a
    /// next detail version, and the new DEK wrapped to each recipient.
    public struct DekRotation: Sendable {
        public var dek: DataEncryptionKey
        public var summary: SignedEnvelope<VaultSummaryCheckpoint>
        public var items: [RotatedItem]
        /// principal id → wrap of the new DEK
        public var wraps: [(principalId: String, wrap: Wrap)]
    }

    /// Re-seals every field of `items` (verified detail + plaintext values by field id) under
    /// `newDek`, which must be the summary's DEK version + 1. Names, types and order are kept.
    public static func rotateDek(summary: VaultSummaryCheckpoint, items: [(detail: ItemDetailCheckpoint, values: [String: String])],
                                 newDek: DataEncryptionKey, recipients: [(principalId: String, key: PrincipalPublicKey)],
                                 signer: PrincipalPrivateKey) throws -> DekRotation {
        guard newDek.version == summary.currentDekVersion + 1 else {
            throw LatchError(.verification, "vault \(summary.vaultId): a rotation makes DEK v\(summary.currentDekVersion + 1), not v\(newDek.version)")
        }
        var rng = SystemRandomNumberGenerator()
        let byId = Dictionary(items.map { ($0.detail.vaultItemId, $0) }, uniquingKeysWith: { a, _ in a })
        var rotated: [RotatedItem] = []
        var entries: [VaultSummaryCheckpoint.Item] = []
        for entry in summary.items {
            guard let item = byId[entry.id] else {
                throw LatchError(.verification, "vault \(summary.vaultId): item \(entry.id) is in the summary but was not verified")
            }
            var envelopes: [String: String] = [:]
            var detail = item.detail
            detail.version += 1
            detail.fields = try item.detail.fields.map { f in
                guard let value = item.values[f.id] else {
                    throw LatchError(.verification, "vault \(summary.vaultId) item \(entry.id): field \(f.id) has no verified value")
                }
                let env = try FieldEnvelope.seal(Data(value.utf8), key: newDek,
                                                 context: EnvelopeContext(vaultId: summary.vaultId, itemId: entry.id, fieldId: f.id, dekVersion: newDek.version),
                                                 using: &rng)
                envelopes[f.id] = env.string
                var g = f
                g.envelopeHash = env.sha256Hex
                return g
            }
            try detail.checkFollows(item.detail)
            var e = entry
            e.detailHash = detail.hash
            entries.append(e)
            rotated.append(RotatedItem(itemId: entry.id, detail: try .sign(detail, with: signer), envelopes: envelopes))
        }
        var next = summary
        next.version += 1
        next.currentDekVersion = newDek.version
        next.items = entries
        try next.checkFollows(summary)
        let wraps = try recipients.map { ($0.principalId, try wrap(newDek, vaultId: summary.vaultId, to: $0.key, signer: signer)) }
        return DekRotation(dek: newDek, summary: try .sign(next, with: signer), items: rotated, wraps: wraps)
    }
}

/// A secret the revoked principal could read: rotate it where it is used.
public struct ExposedSecret: Codable, Sendable, Equatable {
    public var vaultId: String
    public var vault: String
    public var itemId: String
    public var item: String
    public var fields: [String]
    /// The names `latch env` gives these fields (those that get one).
    public var envNames: [String]
}

/// What one vault's revocation did.
public struct RevokedVault: Codable, Sendable, Equatable {
    public var vaultId: String
    public var vault: String
    /// The vault's DEK version after the rotation (nil when it was not rotated).
    public var dekVersion: Int?
    /// Members the new DEK was wrapped to.
    public var rewrapped: [String]
    /// Members without a public key, left as pending grants.
    public var pending: [String]
    /// Why the vault was not rotated, if it was not.
    public var notRotated: String?
}

public struct RevocationReport: Codable, Sendable, Equatable {
    public var principalType: String
    public var principalId: String
    public var principalName: String
    public var vaults: [RevokedVault]
    /// Every secret the principal could read, to rotate upstream.
    public var exposedSecrets: [ExposedSecret]
}

extension Latch {
    public func listGroups() async throws -> [GroupInfo] {
        try await http.getJSON(GroupListResponse.self, LatchRoutes.groups).groups
    }

    public func group(named name: String) async throws -> GroupInfo {
        let all = try await listGroups()
        if let g = all.first(where: { $0.id == name }) { return g }
        let named = all.filter { $0.name == name }
        if named.count == 1 { return named[0] }
        if named.isEmpty { throw LatchError(.notFound, "no group named \(name)") }
        throw LatchError(.usage, "\(named.count) groups are named \(name)", hint: "use the id")
    }

    /// The secrets of verified vaults, with the env names `latch env` gives them.
    static func exposedSecrets(_ vaults: [VerifiedVault]) -> [ExposedSecret] {
        let plan = Self.plan(for: Dictionary(vaults.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a }))
        var names: [String: [String]] = [:]   // fieldId -> env names
        for a in plan.assignments { names[a.field.fieldId, default: []].append(a.name) }
        var out: [ExposedSecret] = []
        for v in vaults.sorted(by: { ($0.name, $0.id) < ($1.name, $1.id) }) {
            for item in v.items.sorted(by: { ($0.name, $0.id) < ($1.name, $1.id) }) {
                out.append(ExposedSecret(vaultId: v.id, vault: v.name, itemId: item.id, item: item.name, fields: item.fields.map(\.name),
                                         envNames: item.fields.flatMap { names[$0.id] ?? [] }))
            }
        }
        return out
    }

    /// Revoke a user's or agent's direct grant on a vault: the server drops its wraps at once;
    /// then the vault's DEK is rotated (every value re-encrypted, the new DEK wrapped to the
    /// remaining members). Returns the secrets it could read.
    public func revoke(vault: String, principal: PrincipalInfo) async throws -> RevocationReport {
        try await revokeGrant(vault: vault, granteeType: principal.type, granteeId: principal.id, name: principal.name)
    }

    /// Revoke a security group's grant on a vault (members keep access only through other grants).
    public func revoke(vault: String, group: GroupInfo) async throws -> RevocationReport {
        try await revokeGrant(vault: vault, granteeType: "GROUP", granteeId: group.id, name: group.name)
    }

    func revokeGrant(vault: String, granteeType: String, granteeId: String, name: String) async throws -> RevocationReport {
        let info = try await vaultInfo(vault)
        let v = try await dekHolder(info)
        let current = try await http.getJSON(PermissionsResponse.self, LatchRoutes.permissions("VAULT", v.id))
        let entries = current.permissions.filter { !($0.granteeId == granteeId && $0.granteeType == granteeType) }
        guard entries.count != current.permissions.count else {
            throw LatchError(.notFound, "\(granteeType.lowercased()) \(name) has no direct grant on vault \(v.name)",
                             hint: "access through a group or project is revoked on that group or project (latch revoke VAULT --group NAME)")
        }
        _ = try await http.postJSON(PermissionsResponse.self, LatchRoutes.setPermissions("VAULT", v.id), body: SetPermissionsRequest(permissions: entries))
        if granteeType != "GROUP" {
            let dir = try await http.getJSON(PublicKeysResponse.self, LatchRoutes.vaultPublicKeys(v.id))
            if dir.publicKeys.contains(where: { $0.principalId == granteeId }) {
                throw LatchError(.conflict, "\(name)'s direct grant on vault \(v.name) was removed, but it still has access through a group, a project or its tenant role; the vault key was not rotated",
                                 hint: "remove that access too, then run latch revoke again")
            }
        }
        let rotated = try await rotateVaultKey(v)
        return RevocationReport(principalType: granteeType, principalId: granteeId, principalName: name, vaults: [rotated],
                                exposedSecrets: Self.exposedSecrets([v]))
    }

    /// The verified vault, or a clear error when this client cannot open its current DEK.
    public func dekHolder(_ info: VaultInfo) async throws -> VerifiedVault {
        do { return try await verifiedVault(info.id) } catch let e as LatchError where e.kind == .forbidden {
            throw LatchError(.forbidden, "you do not hold vault \(info.name)'s key (DEK v\(info.currentDekVersion)), so you cannot rotate it",
                             hint: "run the revocation as a member holding the vault key")
        }
    }

    /// Rotate a vault's DEK: a fresh DEK (version + 1), every value re-encrypted with new
    /// checkpoints, the new DEK wrapped to every member with a logged key. One all-or-nothing
    /// request; a stale batch (someone wrote meanwhile) is rebuilt and sent again, twice at most.
    public func rotateVaultKey(_ vault: VerifiedVault, demoting: String? = nil) async throws -> RevokedVault {
        var v = vault
        var attempt = 0
        while true {
            attempt += 1
            let dir = try await http.getJSON(PublicKeysResponse.self, LatchRoutes.vaultPublicKeys(v.id))
            var recipients: [(principalId: String, key: PrincipalPublicKey)] = []
            for entry in dir.publicKeys {
                guard let pk = try? PrincipalPublicKey(pem: entry.publicKey), pk.keyId == entry.keyId else {
                    throw LatchError(.verification, "vault \(v.name): the server's public key for \(entry.name) does not match its key id \(entry.keyId.prefix(16))…")
                }
                if entry.principalId == identity.principal.id {
                    guard pk.keyId == keyId else {
                        throw LatchError(.verification, "vault \(v.name): the server lists key \(pk.keyId.prefix(16))… for you, not yours")
                    }
                } else {
                    try await verifyLogged(entry)   // wrap the new vault key only to keys the log vouches for
                }
                recipients.append((entry.principalId, pk))
            }
            if !recipients.contains(where: { $0.principalId == identity.principal.id }) {
                recipients.append((identity.principal.id, try privateKey.publicKey))
            }
            try requireWriter(v)
            // Writers that lost access (and `demoting`) leave the signed writer set in the same
            // request that replaces every checkpoint they signed, so nothing is left orphaned.
            let members = Set(dir.publicKeys.map(\.principalId) + [identity.principal.id])
            let keep = { (w: VaultWritersStatement.Writer) in members.contains(w.principalId) && w.principalId != demoting }
            var writers: String?
            if !v.writers.writers.allSatisfy(keep) {
                if v.writers.level(of: identity.principal.id) == .admin {
                    writers = try Self.text(SignedEnvelope.sign(v.writers.next { $0.removeAll { !keep($0) } }, with: privateKey))
                } else if demoting != nil {
                    throw LatchError(.forbidden, "only an ADMIN in vault \(v.name)'s signed writer set can take a writer out of it")
                }
            }
            let items = v.items.map { i in (detail: i.detail, values: Dictionary(i.fields.map { ($0.id, $0.value) }, uniquingKeysWith: { a, _ in a })) }
            let r = try VaultWriter.rotateDek(summary: v.summary, items: items, newDek: DataEncryptionKey.generate(version: v.summary.currentDekVersion + 1),
                                              recipients: recipients, signer: privateKey)
            let body = DekRotationRequest(
                summaryCheckpoint: try Self.text(r.summary),
                items: try r.items.map { i in
                    DekRotationItem(itemId: i.itemId, detailCheckpoint: try Self.text(i.detail),
                                    fields: i.detail.checkpoint.fields.map { FieldValueInput(id: $0.id, value: i.envelopes[$0.id] ?? "") })
                },
                wrappedKeys: try r.wraps.map { w in
                    WrappedKeyInput(principalId: w.principalId, recipientKeyId: w.wrap.statement.checkpoint.recipientKeyId, dekVersion: w.wrap.dekVersion,
                                    wrappedKey: w.wrap.wrappedKey.base64EncodedString(), statement: try Self.text(w.wrap.statement))
                },
                writersStatement: writers)
            do {
                let out = try await http.postJSON(DekRotationResponse.self, LatchRoutes.dekRotation(v.id), body: body)
                try await refresh()
                let names = Dictionary(dir.publicKeys.map { ($0.principalId, $0.name) }, uniquingKeysWith: { a, _ in a })
                return RevokedVault(vaultId: v.id, vault: v.name, dekVersion: out.currentDekVersion,
                                    rewrapped: out.rewrappedPrincipalIds.map { names[$0] ?? $0 }, pending: out.pendingPrincipalIds, notRotated: nil)
            } catch let e as LatchError where e.kind == .conflict && attempt < 3
                && ["stale_version", "rotation_batch_incomplete"].contains(e.serverCode ?? "") {
                try await refresh()   // someone wrote meanwhile: rebuild from the latest verified state
                v = try await verifiedVault(v.id)
            }
        }
    }

    /// Remove an agent: take away its direct grants, archive it (the server revokes its API keys
    /// and deletes its wraps at once), then rotate the DEK of every vault it could open.
    public func removeAgent(_ agent: PrincipalInfo) async throws -> RevocationReport {
        guard agent.type == "AGENT" else { throw LatchError(.usage, "\(agent.name) is not an agent") }
        try await refresh()
        var opened: [VerifiedVault] = []
        var unrotated: [RevokedVault] = []
        for info in try await listVaults() {
            let dir = try await http.getJSON(PublicKeysResponse.self, LatchRoutes.vaultPublicKeys(info.id))
            guard dir.publicKeys.contains(where: { $0.principalId == agent.id }) else { continue }
            if let v = verifiedVaults.first(where: { $0.id == info.id }) {
                opened.append(v)
            } else {
                unrotated.append(RevokedVault(vaultId: info.id, vault: info.name, dekVersion: nil, rewrapped: [], pending: [],
                                              notRotated: "you do not hold this vault's key; ask a member who does to rotate it"))
            }
            let current = try await http.getJSON(PermissionsResponse.self, LatchRoutes.permissions("VAULT", info.id))
            let entries = current.permissions.filter { !($0.granteeId == agent.id && $0.granteeType == "AGENT") }
            if entries.count != current.permissions.count {
                _ = try await http.postJSON(PermissionsResponse.self, LatchRoutes.setPermissions("VAULT", info.id), body: SetPermissionsRequest(permissions: entries))
            }
        }
        _ = try await http.send(method: "DELETE", path: LatchRoutes.agent(agent.id))
        var done: [RevokedVault] = []
        for v in opened { done.append(try await rotateVaultKey(v)) }
        return RevocationReport(principalType: "AGENT", principalId: agent.id, principalName: agent.name, vaults: done + unrotated,
                                exposedSecrets: Self.exposedSecrets(opened))
    }
}
