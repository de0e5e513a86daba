import Foundation
import LatchCrypto

/// A vault DEK rotation as the caller sends it (`POST /vault/:id/dek-rotation`): the vault's
/// next summary (DEK version + 1), for every live item its next detail checkpoint and every
/// field's envelope under the new DEK, and wraps of the new DEK to the remaining members.
public struct DekRotationInput: Sendable {
    public struct ItemInput: Sendable {
        public var itemId: String
        public var detailCheckpoint: String
        public var fields: [(id: String, value: String)]
        public init(itemId: String, detailCheckpoint: String, fields: [(id: String, value: String)]) {
            self.itemId = itemId; self.detailCheckpoint = detailCheckpoint; self.fields = fields
        }
    }
    public var summaryCheckpoint: String
    public var items: [ItemInput]
    /// One per member with an active key (`principalId` set), the caller included.
    public var wraps: [WrappedKeyInputValue]
    /// The vault's next writer set, applied in the same transaction (a demoted or revoked
    /// writer leaves it exactly when every checkpoint it signed is replaced). Needs ADMIN.
    public var writersStatement: String?
    public init(summaryCheckpoint: String, items: [ItemInput], wraps: [WrappedKeyInputValue], writersStatement: String? = nil) {
        self.summaryCheckpoint = summaryCheckpoint; self.items = items; self.wraps = wraps; self.writersStatement = writersStatement
    }
}

public struct DekRotationResult: Sendable {
    public var vault: Vault
    public var items: [Item]
    public var wraps: [WrappedKey]
    /// Members without an active key: they wait for a DEK holder (pending grants).
    public var pendingGrants: [PendingGrant]
    /// Principals whose wraps of earlier DEK versions were deleted and who got no new one.
    public var droppedPrincipalIds: [String]
}

public struct AgentRemovalResult: Sendable {
    public var agent: Principal
    /// Vaults where the agent's wraps were deleted.
    public var vaultIds: [String]
}

extension LatchService {
    static let maxDekRotationItems = 10_000

    /// Rotates a vault's DEK (revocation, issue 5): all or nothing. The caller needs WRITE and
    /// must hold the current DEK. The batch must re-sign every live item (next detail version,
    /// same metadata, every field with a fresh envelope), carry the next summary with
    /// `currentDekVersion` + 1 listing exactly those details, and wrap the new DEK, signed by
    /// the caller, to every member with an active key. Applied in one transaction: checkpoints
    /// logged, fields replaced, wraps of earlier DEK versions deleted, pending grants recomputed.
    public func rotateVaultKey(_ ctx: AuthContext, vaultId: String, _ input: DekRotationInput) async throws -> DekRotationResult {
        try await perform(ctx, require: "machine.vault.write", "vault.dek_rotate", assetType: "VAULT", assetId: vaultId) { tx in
            let r = try await self.rotateDek(tx, ctx, vaultId: vaultId, input)
            return (r, "dekVersion=\(r.vault.currentDekVersion) items=\(r.items.count) wraps=\(r.wraps.count) dropped=\(r.droppedPrincipalIds.joined(separator: ","))")
        }
    }

    func rotateDek(_ tx: any StoreTransaction, _ ctx: AuthContext, vaultId: String, _ input: DekRotationInput) async throws -> DekRotationResult {
        var v = try await loadVault(tx, ctx, vaultId, need: .write)
        let oldWraps = try await tx.wrappedKeys(vaultId: vaultId)
        guard oldWraps.contains(where: { $0.principalId == ctx.principal.id && $0.dekVersion == v.currentDekVersion }) else {
            throw DomainError.forbidden("only a member holding vault \(vaultId)'s current DEK (v\(v.currentDekVersion)) can rotate it")
        }
        guard input.items.count <= Self.maxDekRotationItems, input.wraps.count <= 1000 else {
            throw DomainError.rotationBatchInvalid("a DEK rotation holds at most \(Self.maxDekRotationItems) items and 1000 wraps")
        }
        let newVersion = v.currentDekVersion + 1

        // 1. The summary: the next version, DEK version + 1, same name and classification.
        let s = try await verifySigned(tx, ctx, input.summaryCheckpoint, VaultSummaryCheckpoint.self, "summaryCheckpoint")
        try follows({ try s.checkFollows(try self.stored(v.summaryCheckpoint, VaultSummaryCheckpoint.self)) }, "summaryCheckpoint")
        guard s.vaultId == v.id else { throw DomainError.checkpointMismatch("summaryCheckpoint is for vault \(s.vaultId), not \(v.id)") }
        guard s.currentDekVersion == newVersion else {
            throw DomainError.checkpointMismatch("summaryCheckpoint has DEK version \(s.currentDekVersion); a rotation of vault \(v.id) moves it from \(v.currentDekVersion) to \(newVersion)")
        }
        guard s.name == v.name, s.dataClassification == v.dataClassification else {
            throw DomainError.checkpointMismatch("summaryCheckpoint changes the vault's name or classification; use the vault update route")
        }

        // 2. Items: exactly the live ones, each re-signed and every field re-sealed.
        let live = try await tx.items(vaultId: vaultId).filter { !$0.archived }
        let liveById = Dictionary(live.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        var seenItems = Set<String>()
        for (i, it) in input.items.enumerated() {
            guard seenItems.insert(it.itemId).inserted else { throw DomainError.rotationBatchInvalid("items[\(i)]: item \(it.itemId.prefix(64)) appears twice") }
            guard liveById[it.itemId] != nil else {
                throw DomainError.rotationBatchInvalid("items[\(i)]: \(it.itemId.prefix(64)) is not a live item of vault \(vaultId)")
            }
        }
        let missingItems = Set(liveById.keys).subtracting(seenItems).sorted()
        guard missingItems.isEmpty else {
            throw DomainError.rotationBatchIncomplete("the DEK rotation misses \(missingItems.count) live item(s) of vault \(vaultId): \(missingItems.joined(separator: ", ")); every value must be re-encrypted (someone may have written meanwhile: sync and retry)")
        }
        let now = clock.now()
        var newItems: [Item] = []
        var newFields: [(old: [Field], new: [Field])] = []
        for it in input.items {
            guard var item = liveById[it.itemId] else { continue }
            let name = "detailCheckpoint of item \(item.id)"
            let d = try await verifySigned(tx, ctx, it.detailCheckpoint, ItemDetailCheckpoint.self, name)
            try follows({ try d.checkFollows(try self.stored(item.detailCheckpoint, ItemDetailCheckpoint.self)) }, name)
            guard d.vaultId == v.id, d.vaultItemId == item.id else { throw DomainError.checkpointMismatch("\(name) is for another item or vault") }
            guard d.name == item.name, d.type == item.type, d.websites == item.websites, d.groupId == item.groupId else {
                throw DomainError.checkpointMismatch("\(name) changes the item's name, type, websites or group; a DEK rotation only re-encrypts")
            }
            let old = try await tx.fields(itemId: item.id)
            let oldById = Dictionary(old.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
            guard d.fields.count == old.count, Set(d.fields.map(\.id)) == Set(oldById.keys) else {
                throw DomainError.rotationBatchIncomplete("\(name) lists fields \(d.fields.map(\.id).sorted()) but the item holds \(oldById.keys.sorted())")
            }
            let given = Set(it.fields.map(\.id))
            for f in d.fields {
                guard let o = oldById[f.id], o.name == f.name, o.type == f.type, o.order == f.order, o.isEnvironmentVariable == f.isEnvironmentVariable else {
                    throw DomainError.checkpointMismatch("\(name) changes field \(f.id)'s name, type, order or env flag; a DEK rotation only re-encrypts")
                }
                guard given.contains(f.id) else {
                    throw DomainError.rotationBatchIncomplete("item \(item.id) field \(f.id) carries no new envelope; a DEK rotation re-encrypts every value")
                }
            }
            item.detailVersion = d.version; item.detailHash = d.hash; item.detailCheckpoint = it.detailCheckpoint; item.updatedAt = now
            let fields = try resolveFields(d, values: it.fields.map { ($0.id, $0.value) }, existing: [], item: item)
            for f in fields where oldById[f.id]?.envelope == f.envelope {
                throw DomainError.checkpointMismatch("item \(item.id) field \(f.id) carries its stored envelope; a DEK rotation seals every value again under the new DEK")
            }
            newItems.append(item)
            newFields.append((old, fields))
        }
        try checkSummaryItems(s, newItems)

        // 3. Wraps: to members only, signed by the caller, of the new version; every member
        //    with an active key is covered (the caller included).
        var next = v
        next.currentDekVersion = newVersion
        let resolver = AccessResolver(tx)
        var records: [WrappedKey] = []
        var covered = Set<String>()
        for (i, w) in input.wraps.enumerated() {
            guard let pid = w.principalId else { throw DomainError.invalid("wrappedKeys[\(i)] needs principalId") }
            try Self.checkId(pid, "wrappedKeys[\(i)].principalId")
            guard covered.insert(pid).inserted else { throw DomainError.rotationBatchInvalid("wrappedKeys[\(i)]: principal \(pid) appears twice") }
            guard let p = try await tx.principal(pid), p.tenantId == ctx.tenant.id, !p.archived else {
                throw DomainError.notFound("wrappedKeys[\(i)]: principal \(pid) does not exist in this tenant")
            }
            guard try await resolver.vaultAccess(p, v) != nil else {
                throw DomainError.forbidden("wrappedKeys[\(i)]: principal \(pid) is not a member of vault \(vaultId); a rotation wraps the new DEK to members only")
            }
            guard w.dekVersion == newVersion else {
                throw DomainError.staleVersion("wrappedKeys[\(i)] has DEK version \(w.dekVersion); this rotation makes version \(newVersion)")
            }
            records.append(try await checkWrap(tx, ctx, vault: next, recipient: p, input: w))
        }
        guard covered.contains(ctx.principal.id) else {
            throw DomainError.rotationBatchIncomplete("the DEK rotation must wrap the new DEK to you (the caller) too")
        }
        var missingMembers: [String] = []
        for (p, _) in try await resolver.members(v) where !covered.contains(p.id) {
            if try await tx.activePublicKey(principalId: p.id) != nil { missingMembers.append(p.id) }
        }
        guard missingMembers.isEmpty else {
            throw DomainError.rotationBatchIncomplete("the DEK rotation misses wraps for \(missingMembers.count) member(s) with a public key: \(missingMembers.sorted().joined(separator: ", ")); sync the signer directory and retry")
        }

        // 4. Apply, logging each accepted checkpoint as the other write routes do.
        for (item, pair) in zip(newItems, newFields) {
            var logged = item
            logged.detailLogIndex = try await logCheckpoint(tx, .itemDetail, tenantId: item.tenantId, subjectId: item.id, envelope: item.detailCheckpoint)
            try await tx.putItem(logged)
            try await change(tx, ctx.tenant.id, .item, item.id, vault: v.id)
            for f in pair.new {
                try await tx.putField(f)
                try await change(tx, ctx.tenant.id, .field, f.id, vault: v.id)
            }
        }
        if let writers = input.writersStatement {
            guard try await AccessResolver(tx).vaultAccess(ctx.principal, v) == .admin else {
                throw DomainError.forbidden("changing vault \(v.id)'s writer set needs ADMIN on it")
            }
            try await acceptWriters(tx, ctx, &v, statement: writers)
        }
        // Every checkpoint of the rotation is the caller's: it must be a writer in the set that
        // holds from now on (a new one above may not list it).
        try requireSignedWriter(ctx, v)
        v.currentDekVersion = newVersion
        v.summaryVersion = s.version; v.summaryCheckpoint = input.summaryCheckpoint; v.updatedAt = now
        v.summaryLogIndex = try await logCheckpoint(tx, .vaultSummary, tenantId: v.tenantId, subjectId: v.id, envelope: input.summaryCheckpoint)
        try await tx.putVault(v)
        try await change(tx, ctx.tenant.id, .vault, v.id, vault: v.id)
        for w in oldWraps {
            try await tx.deleteWrappedKey(w.id)
            try await change(tx, ctx.tenant.id, .wrappedKey, w.id, vault: v.id)
        }
        for w in records {
            try await tx.putWrappedKey(w)
            try await change(tx, ctx.tenant.id, .wrappedKey, w.id, vault: v.id)
        }
        let pending = try await recomputePending(tx, v)
        let dropped = Set(oldWraps.map(\.principalId)).subtracting(covered).sorted()
        let stored = try await tx.items(vaultId: v.id).filter { !$0.archived }
        return DekRotationResult(vault: v, items: stored, wraps: records, pendingGrants: pending, droppedPrincipalIds: dropped)
    }

    /// Deletes every wrap of `v` held by a principal that is no longer a member (called in the
    /// transaction that removed its access). Returns those principals.
    @discardableResult
    func dropNonMemberWraps(_ tx: any StoreTransaction, _ v: Vault) async throws -> [String] {
        let members = Set(try await AccessResolver(tx).members(v).map(\.0.id))
        var dropped = Set<String>()
        for w in try await tx.wrappedKeys(vaultId: v.id) where !members.contains(w.principalId) {
            try await tx.deleteWrappedKey(w.id)
            try await change(tx, v.tenantId, .wrappedKey, w.id, vault: v.id)
            dropped.insert(w.principalId)
        }
        return dropped.sorted()
    }

    /// Removes an agent: archives it, revokes its API keys and deletes every wrap it holds, in
    /// one transaction. (Rotating the DEKs it could open is the client's job: it needs them.)
    public func removeAgent(_ ctx: AuthContext, agentId: String) async throws -> AgentRemovalResult {
        let r: AgentRemovalResult = try await perform(ctx, require: "machine.agent.write", "agent.remove", assetType: "AGENT", assetId: agentId) { tx in
            try Self.checkId(agentId, "agent id")
            guard ctx.principal.role == .tenantAdmin || ctx.principal.role == .tenantAgentManager else {
                throw DomainError.forbidden("removing agents needs the TENANT_ADMIN or TENANT_AGENT_MANAGER role")
            }
            guard var a = try await tx.principal(agentId), a.tenantId == ctx.tenant.id, a.type == .agent, !a.archived else {
                throw DomainError.notFound("agent \(agentId) does not exist")
            }
            guard a.id != ctx.principal.id else { throw DomainError.invalid("an agent cannot remove itself") }
            a.archived = true
            try await tx.putPrincipal(a)
            try await self.change(tx, ctx.tenant.id, .principal, a.id, vault: nil)
            for var k in try await tx.apiKeys(principalId: a.id) where !k.revoked {
                k.revoked = true
                try await tx.putAPIKey(k)
            }
            var vaults = Set<String>()
            for w in try await tx.wrappedKeys(principalId: a.id) {
                try await tx.deleteWrappedKey(w.id)
                try await self.change(tx, ctx.tenant.id, .wrappedKey, w.id, vault: w.vaultId)
                vaults.insert(w.vaultId)
            }
            for g in try await tx.pendingGrants(tenantId: ctx.tenant.id) where g.principalId == a.id {
                try await tx.deletePendingGrant(g.id)
            }
            return (AgentRemovalResult(agent: a, vaultIds: vaults.sorted()), "vaults=\(vaults.count)")
        }
        await invalidateAuthCache()
        return r
    }
}
