import Foundation
import LatchCrypto

/// The checkpoint rules: every signed envelope a write carries must decode, be signed by the
/// caller's active key, verify, follow the stored version exactly, and describe exactly what the
/// store will hold after the write.
extension LatchService {
    static let maxNameLength = 500

    func decodeEnvelope<S: SignedStatement>(_ text: String, _ t: S.Type, _ name: String) throws(DomainError) -> SignedEnvelope<S> {
        do { return try SignedEnvelope<S>.decode(text: text) } catch {
            throw .invalid("\(name) is not a signed \(S.statementType) envelope JSON ({\"checkpoint\",\"signerKeyId\",\"signature\"}): \(error)")
        }
    }

    /// Decodes and verifies a signed envelope made by the caller's active key.
    func verifySigned<S: SignedStatement>(_ tx: any StoreTransaction, _ ctx: AuthContext, _ text: String, _ t: S.Type,
                                          _ name: String) async throws -> S {
        let env = try decodeEnvelope(text, t, name)
        guard let rec = try await tx.publicKey(keyId: env.signerKeyId), rec.tenantId == ctx.tenant.id else {
            throw DomainError.unknownSigner("\(name) is signed by key \(env.signerKeyId.prefix(64)), which is not registered in this tenant; register your public key first")
        }
        guard rec.principalId == ctx.principal.id else {
            throw DomainError.unknownSigner("\(name) is signed by another principal's key; sign with your own active key")
        }
        guard rec.status == .active else {
            throw DomainError.unknownSigner("\(name) is signed by retired key \(rec.keyId); sign with your active key")
        }
        let pk = try parseKey(rec.pem)
        do { try env.verify(with: pk) } catch {
            throw DomainError.badSignature("\(name)'s signature does not verify against key \(rec.keyId): \(error)")
        }
        return env.checkpoint
    }

    func stored<S: SignedStatement>(_ text: String, _ t: S.Type) throws -> S {
        do { return try SignedEnvelope<S>.decode(text: text).checkpoint } catch {
            throw StoreError(.corrupt, "stored \(S.statementType) envelope does not decode: \(error)")
        }
    }

    func follows(_ check: () throws -> Void, _ name: String) throws(DomainError) {
        do { try check() } catch {
            throw .staleVersion("\(name) does not follow the stored version (\(error)); fetch the latest and re-sign")
        }
    }

    func loadVault(_ tx: any StoreTransaction, _ ctx: AuthContext, _ id: String, need: AccessLevel,
                   allowArchived: Bool = false) async throws -> Vault {
        try Self.checkId(id, "vault id")
        guard let v = try await tx.vault(id), v.tenantId == ctx.tenant.id,
              let level = try await AccessResolver(tx).vaultAccess(ctx.principal, v, enough: need) else {
            throw DomainError.notFound("vault \(id) does not exist or is not shared with you")
        }
        guard level >= need else {
            throw DomainError.forbidden("you have \(level.rawValue) on vault \(id); this needs \(need.rawValue)")
        }
        if v.archived && !allowArchived { throw DomainError.archived("vault \(id) is archived") }
        return v
    }

    /// The item entries a summary must list for the given items.
    func checkSummaryItems(_ s: VaultSummaryCheckpoint, _ items: [Item]) throws(DomainError) {
        let want = Dictionary(items.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        guard s.items.count == want.count, Set(s.items.map(\.id)) == Set(want.keys) else {
            throw .checkpointMismatch("summaryCheckpoint lists items \(s.items.map(\.id).sorted()) but the vault will hold \(want.keys.sorted())")
        }
        for e in s.items {
            guard let i = want[e.id] else { continue }
            guard e.name == i.name, e.type == i.type, e.websites == i.websites, e.groupId == i.groupId, e.detailHash == i.detailHash else {
                throw .checkpointMismatch("summaryCheckpoint's entry for item \(e.id) does not match the item (name, type, websites, groupId, detailHash)")
            }
        }
    }

    func checkSummaryMeta(_ s: VaultSummaryCheckpoint, _ v: Vault) throws(DomainError) {
        guard s.vaultId == v.id else { throw .checkpointMismatch("summaryCheckpoint is for vault \(s.vaultId), not \(v.id)") }
        guard s.currentDekVersion == v.currentDekVersion else {
            throw .checkpointMismatch("summaryCheckpoint has DEK version \(s.currentDekVersion); the vault's is \(v.currentDekVersion)")
        }
    }

    func validName(_ n: String, _ what: String) throws(DomainError) {
        guard !n.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, n.count <= Self.maxNameLength else {
            throw .invalid("\(what) must be 1-\(Self.maxNameLength) characters")
        }
    }

    /// Checks a wrapped key and its statement for `recipient`; returns the record to store.
    func checkWrap(_ tx: any StoreTransaction, _ ctx: AuthContext, vault: Vault, recipient: Principal,
                   input: WrappedKeyInputValue) async throws -> WrappedKey {
        guard let key = try await tx.activePublicKey(principalId: recipient.id) else {
            throw DomainError.noPublicKey("\(recipient.type.rawValue.lowercased()) \(recipient.id) has no registered public key; register it before wrapping to it")
        }
        guard input.recipientKeyId == key.keyId else {
            throw DomainError.checkpointMismatch("recipientKeyId \(input.recipientKeyId.prefix(64)) is not the recipient's active key \(key.keyId)")
        }
        guard input.dekVersion == vault.currentDekVersion else {
            throw DomainError.staleVersion("wrapped key has DEK version \(input.dekVersion); the vault's current DEK version is \(vault.currentDekVersion)")
        }
        guard let bytes = Data(base64Encoded: input.wrappedKey), !bytes.isEmpty, bytes.count <= 1024 else {
            throw DomainError.invalid("wrappedKey must be standard base64 of the RSA-OAEP ciphertext")
        }
        let st = try await verifySigned(tx, ctx, input.statement, WrappedKeyStatement.self, "wrapped-key statement")
        guard st.vaultId == vault.id, st.dekVersion == input.dekVersion, st.recipientKeyId == key.keyId,
              st.wrappedKeyHash == Hashing.sha256Hex(bytes) else {
            throw DomainError.checkpointMismatch("the wrapped-key statement must name this vault, DEK version, recipient key and the SHA-256 of the wrapped key")
        }
        return WrappedKey(vaultId: vault.id, tenantId: vault.tenantId, principalId: recipient.id, recipientKeyId: key.keyId,
                          dekVersion: input.dekVersion, wrappedKey: input.wrappedKey, statement: input.statement,
                          signerPrincipalId: ctx.principal.id, createdAt: clock.now())
    }

    // MARK: vault use cases

    public func createVault(_ ctx: AuthContext, id: String, projectId: String?, summaryCheckpoint: String,
                            wrappedKey: WrappedKeyInputValue, writersStatement: String? = nil) async throws -> Vault {
        return try await perform(ctx, require: "machine.vault.write", "vault.create", assetType: "VAULT", assetId: id) { tx in
            try Self.checkId(id, "vault id")
            if let p = projectId {
                try Self.checkId(p, "projectId")
                guard let pr = try await tx.project(p), pr.tenantId == ctx.tenant.id else { throw DomainError.notFound("project \(p) does not exist") }
                guard let l = try await AccessResolver(tx).projectAccess(ctx.principal, projectId: p), l >= .write else {
                    throw DomainError.forbidden("creating a vault in project \(p) needs WRITE on it")
                }
            }
            let s = try await self.verifySigned(tx, ctx, summaryCheckpoint, VaultSummaryCheckpoint.self, "summaryCheckpoint")
            try self.follows({ try s.checkFollows(nil) }, "summaryCheckpoint")
            guard s.vaultId == id else { throw DomainError.checkpointMismatch("summaryCheckpoint is for vault \(s.vaultId), not \(id)") }
            guard s.items.isEmpty else { throw DomainError.checkpointMismatch("a new vault's summaryCheckpoint must list no items") }
            guard s.currentDekVersion == 1 else { throw DomainError.checkpointMismatch("a new vault starts at DEK version 1") }
            try self.validName(s.name, "vault name")
            guard DataClassification(rawValue: s.dataClassification) != nil else {
                throw DomainError.invalid("dataClassification must be one of PUBLIC, INTERNAL, CONFIDENTIAL, CUI")
            }
            let now = self.clock.now()
            var v = Vault(id: id, tenantId: ctx.tenant.id, projectId: projectId, name: s.name, dataClassification: s.dataClassification,
                          currentDekVersion: 1, summaryVersion: s.version, summaryCheckpoint: summaryCheckpoint,
                          createdBy: ctx.principal.id, createdAt: now, updatedAt: now, archived: false)
            v.summaryLogIndex = try await self.logCheckpoint(tx, .vaultSummary, tenantId: v.tenantId, subjectId: v.id, envelope: summaryCheckpoint)
            if let writersStatement { try await self.acceptWriters(tx, ctx, &v, statement: writersStatement) }
            guard try await tx.insertVault(v) else { throw DomainError.conflict("vault id \(id) is already taken; choose a new UUID") }
            let grant = PermissionGrant(tenantId: ctx.tenant.id, assetType: .vault, assetId: id, granteeType: GranteeType(rawValue: ctx.principal.type.rawValue) ?? .user,
                                        granteeId: ctx.principal.id, level: .admin, createdAt: now)
            try await tx.putGrant(grant)
            let w = try await self.checkWrap(tx, ctx, vault: v, recipient: ctx.principal, input: wrappedKey)
            try await tx.putWrappedKey(w)
            try await self.change(tx, ctx.tenant.id, .vault, id, vault: id)
            try await self.change(tx, ctx.tenant.id, .grant, grant.id, vault: id)
            try await self.change(tx, ctx.tenant.id, .wrappedKey, w.id, vault: id)
            return (v, nil)
        }
    }

    public func listVaults(_ ctx: AuthContext, projectId: String?) async throws -> [Vault] {
        return try await perform(ctx, require: "machine.vault.read", "vault.list", read: true) { tx in
            let resolver = AccessResolver(tx)
            var out: [Vault] = []
            for v in try await tx.vaults(tenantId: ctx.tenant.id) where !v.archived && (projectId == nil || v.projectId == projectId) {
                if try await resolver.vaultAccess(ctx.principal, v) != nil { out.append(v) }
            }
            return (out.sorted { ($0.name, $0.id) < ($1.name, $1.id) }, nil)
        }
    }

    public func getVault(_ ctx: AuthContext, id: String) async throws -> Vault {
        return try await perform(ctx, require: "machine.vault.read", "vault.read", assetType: "VAULT", assetId: id, read: true) { tx in
            (try await self.loadVault(tx, ctx, id, need: .read, allowArchived: true), nil)
        }
    }

    public func updateVault(_ ctx: AuthContext, id: String, summaryCheckpoint: String) async throws -> Vault {
        return try await perform(ctx, require: "machine.vault.write", "vault.update", assetType: "VAULT", assetId: id) { tx in
            var v = try await self.loadVault(tx, ctx, id, need: .write)
            try self.requireSignedWriter(ctx, v)
            let s = try await self.verifySigned(tx, ctx, summaryCheckpoint, VaultSummaryCheckpoint.self, "summaryCheckpoint")
            let old = try self.stored(v.summaryCheckpoint, VaultSummaryCheckpoint.self)
            try self.follows({ try s.checkFollows(old) }, "summaryCheckpoint")
            try self.checkSummaryMeta(s, v)
            try self.validName(s.name, "vault name")
            guard DataClassification(rawValue: s.dataClassification) != nil else {
                throw DomainError.invalid("dataClassification must be one of PUBLIC, INTERNAL, CONFIDENTIAL, CUI")
            }
            try self.checkSummaryItems(s, try await tx.items(vaultId: id).filter { !$0.archived })
            v.name = s.name; v.dataClassification = s.dataClassification
            v.summaryVersion = s.version; v.summaryCheckpoint = summaryCheckpoint; v.updatedAt = self.clock.now()
            v.summaryLogIndex = try await self.logCheckpoint(tx, .vaultSummary, tenantId: v.tenantId, subjectId: v.id, envelope: summaryCheckpoint)
            try await tx.putVault(v)
            try await self.change(tx, ctx.tenant.id, .vault, id, vault: id)
            return (v, "version=\(s.version)")
        }
    }

    public func archiveVault(_ ctx: AuthContext, id: String) async throws -> Vault {
        return try await perform(ctx, require: "machine.vault.write", "vault.archive", assetType: "VAULT", assetId: id) { tx in
            var v = try await self.loadVault(tx, ctx, id, need: .admin)
            v.archived = true; v.updatedAt = self.clock.now()
            try await tx.putVault(v)
            try await self.change(tx, ctx.tenant.id, .vault, id, vault: id)
            return (v, nil)
        }
    }

    // MARK: items

    public func listItems(_ ctx: AuthContext, vaultId: String) async throws -> (Vault, [Item]) {
        return try await perform(ctx, require: "machine.vault.read", "item.list", assetType: "VAULT", assetId: vaultId, read: true) { tx in
            let v = try await self.loadVault(tx, ctx, vaultId, need: .read, allowArchived: true)
            let items = try await tx.items(vaultId: vaultId).filter { !$0.archived }
            return ((v, items.sorted { ($0.name, $0.id) < ($1.name, $1.id) }), nil)
        }
    }

    func loadItem(_ tx: any StoreTransaction, _ ctx: AuthContext, vaultId: String?, itemId: String, need: AccessLevel) async throws -> (Vault, Item) {
        try Self.checkId(itemId, "item id")
        let rows = try await tx.getLineage([.items, .vaults], id: itemId)   // the item and its vault in one read
        let i = try rows.first.map { try tx.decode(Item.self, $0) }
        let v = try rows.count > 1 ? tx.decode(Vault.self, rows[1]) : nil
        return try await checkItem(tx, ctx, vaultId: vaultId, itemId: itemId, i, v, need: need)
    }

    /// The access check of `loadItem` on an item and vault already read.
    func checkItem(_ tx: any StoreTransaction, _ ctx: AuthContext, vaultId: String?, itemId: String, _ item: Item?, _ vault: Vault?,
                   need: AccessLevel) async throws -> (Vault, Item) {
        let i = try await checkItem(tx, ctx, vaultId: vaultId, itemId: itemId, item, vault.map(VaultAccessView.init), need: need)
        guard let v = vault else { throw DomainError.notFound("item \(itemId) does not exist or is not shared with you") }  // unreachable
        return (v, i)
    }

    /// The same check on the members of the vault it reads (a field read decodes only those).
    func checkItem(_ tx: any StoreTransaction, _ ctx: AuthContext, vaultId: String?, itemId: String, _ item: Item?,
                   _ vault: VaultAccessView?, need: AccessLevel) async throws -> Item {
        guard let i = item, i.tenantId == ctx.tenant.id, vaultId == nil || i.vaultId == vaultId, !i.archived,
              let v = vault, v.id == i.vaultId,
              let level = try await AccessResolver(tx).itemLevel(ctx.principal, v, i, enough: need) else {
            throw DomainError.notFound("item \(itemId) does not exist or is not shared with you")
        }
        guard level >= need else { throw DomainError.forbidden("you have \(level.rawValue) on item \(itemId); this needs \(need.rawValue)") }
        if need > .read && v.archived { throw DomainError.archived("vault \(v.id) is archived") }
        return i
    }

    /// The item and its fields, with the memo for the caller's encoding of them (`EncodingMemo`).
    public func getItem(_ ctx: AuthContext, vaultId: String, itemId: String) async throws -> (Item, [Field], EncodingMemo) {
        return try await perform(ctx, require: "machine.vault.secret.read", "item.read", assetType: "VAULT_ITEM", assetId: itemId, read: true,
                                 cacheKey: "\(vaultId)/\(itemId)") { tx in
            try Self.checkId(vaultId, "vault id")
            let (_, i) = try await self.loadItem(tx, ctx, vaultId: vaultId, itemId: itemId, need: .read)
            return ((i, try await tx.fields(itemId: itemId), EncodingMemo()), nil)
        }
    }

    /// The field and its item, with the memo for the caller's encoding of them (`EncodingMemo`).
    public func getField(_ ctx: AuthContext, vaultId: String, fieldId: String) async throws -> (Item, Field, EncodingMemo) {
        return try await perform(ctx, require: "machine.vault.secret.read", "field.read", assetType: "FIELD", assetId: fieldId, read: true,
                                 cacheKey: "\(vaultId)/\(fieldId)") { tx in
            try Self.checkId(vaultId, "vault id")
            try Self.checkId(fieldId, "field id")
            // The field, its item and its vault in one read; then the same checks as loadItem.
            let rows = try await tx.getLineage([.fields, .items, .vaults], id: fieldId)
            guard let f = try rows.first.map({ try tx.decode(Field.self, $0) }), f.vaultId == vaultId, f.tenantId == ctx.tenant.id else {
                throw DomainError.notFound("field \(fieldId) does not exist in vault \(vaultId) or is not shared with you")
            }
            let item = try rows.count > 1 ? tx.decode(Item.self, rows[1]) : nil
            // Only the vault's access members: its checkpoint and writer set grow with the vault.
            let vault = try rows.count > 2 ? tx.decode(VaultAccessView.self, rows[2]) : nil
            try Self.checkId(f.itemId, "item id")
            let i = try await self.checkItem(tx, ctx, vaultId: vaultId, itemId: f.itemId, item?.id == f.itemId ? item : nil, vault, need: .read)
            return ((i, f, EncodingMemo()), nil)
        }
    }

    /// Every readable item of the vault with its environment fields (all fields of an item that
    /// flags none).
    public func environmentFields(_ ctx: AuthContext, vaultId: String) async throws -> (Vault, [(Item, [Field])]) {
        return try await perform(ctx, require: "machine.vault.secret.read", "field.read_environment", assetType: "VAULT", assetId: vaultId, read: true) { tx in
            let v = try await self.loadVault(tx, ctx, vaultId, need: .read, allowArchived: true)
            var out: [(Item, [Field])] = []
            for i in try await tx.items(vaultId: vaultId) where !i.archived {
                let fs = try await tx.fields(itemId: i.id)
                let flagged = fs.filter(\.isEnvironmentVariable)
                out.append((i, flagged.isEmpty ? fs : flagged))
            }
            return ((v, out.sorted { $0.0.name < $1.0.name }), nil)
        }
    }

    /// Builds the fields a detail checkpoint describes, using `values` for new envelopes and
    /// `existing` for unchanged ones; every envelope's hash must match.
    func resolveFields(_ d: ItemDetailCheckpoint, values: [(id: String, value: String)], existing: [Field], item: Item) throws(DomainError) -> [Field] {
        var given: [String: String] = [:]
        for v in values {
            guard given[v.id] == nil else { throw .invalid("field \(v.id) appears twice in fields") }
            given[v.id] = v.value
        }
        let old = Dictionary(existing.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        let described = Set(d.fields.map(\.id))
        guard described.count == d.fields.count else { throw .checkpointMismatch("detailCheckpoint lists a field id twice") }
        guard Set(d.fields.map(\.name)).count == d.fields.count else { throw .invalid("field names must be unique within an item") }
        if let extra = given.keys.first(where: { !described.contains($0) }) {
            throw .checkpointMismatch("field \(extra) has a value but is not in detailCheckpoint")
        }
        var out: [Field] = []
        for f in d.fields {
            try Self.checkId(f.id, "field id")
            try validName(f.name, "field name")
            guard FieldType(rawValue: f.type) != nil else { throw .invalid("field type \(f.type) is not one of \(FieldType.allCases.map(\.rawValue))") }
            let envelope: String
            if let s = given[f.id] {
                let env: FieldEnvelope
                do { env = try FieldEnvelope(string: s) } catch { throw .invalidEnvelope("field \(f.id)'s value is not a field envelope: \(error)") }
                envelope = env.string
                guard env.sha256Hex == f.envelopeHash else {
                    throw .checkpointMismatch("field \(f.id)'s envelope hash does not match detailCheckpoint's envelopeHash")
                }
            } else if let o = old[f.id] {
                envelope = o.envelope
                guard Hashing.sha256Hex(o.envelope) == f.envelopeHash else {
                    throw .checkpointMismatch("field \(f.id) has no new value but detailCheckpoint's envelopeHash differs from the stored envelope")
                }
            } else {
                throw .checkpointMismatch("field \(f.id) is new but carries no value")
            }
            out.append(Field(id: f.id, itemId: item.id, vaultId: item.vaultId, tenantId: item.tenantId, name: f.name, type: f.type,
                             order: f.order, isEnvironmentVariable: f.isEnvironmentVariable, envelope: envelope, updatedAt: clock.now()))
        }
        return out
    }

    public func createItem(_ ctx: AuthContext, vaultId: String, detailCheckpoint: String, summaryCheckpoint: String,
                           values: [(id: String, value: String)]) async throws -> (Item, [Field]) {
        return try await perform(ctx, require: "machine.vault.write", "item.create", assetType: "VAULT", assetId: vaultId) { tx in
            let values = values.map { FieldValuePair(id: $0.id, value: $0.value) }
            var v = try await self.loadVault(tx, ctx, vaultId, need: .write)
            try self.requireSignedWriter(ctx, v)
            let d = try await self.verifySigned(tx, ctx, detailCheckpoint, ItemDetailCheckpoint.self, "detailCheckpoint")
            try self.follows({ try d.checkFollows(nil) }, "detailCheckpoint")
            guard d.vaultId == vaultId else { throw DomainError.checkpointMismatch("detailCheckpoint is for vault \(d.vaultId), not \(vaultId)") }
            try Self.checkId(d.vaultItemId, "item id")
            try self.validName(d.name, "item name")
            guard ItemType(rawValue: d.type) != nil else { throw DomainError.invalid("item type \(d.type) is not one of \(ItemType.allCases.map(\.rawValue))") }
            if try await tx.item(d.vaultItemId) != nil { throw DomainError.conflict("item id \(d.vaultItemId) is already taken; choose a new UUID") }
            let now = self.clock.now()
            var item = Item(id: d.vaultItemId, vaultId: vaultId, tenantId: ctx.tenant.id, name: d.name, type: d.type, websites: d.websites,
                            groupId: d.groupId, detailVersion: d.version, detailHash: d.hash, detailCheckpoint: detailCheckpoint,
                            createdAt: now, updatedAt: now, archived: false)
            item.detailLogIndex = try await self.logCheckpoint(tx, .itemDetail, tenantId: item.tenantId, subjectId: item.id, envelope: detailCheckpoint)
            let fields = try self.resolveFields(d, values: values.map { ($0.id, $0.value) }, existing: [], item: item)
            let s = try await self.verifySigned(tx, ctx, summaryCheckpoint, VaultSummaryCheckpoint.self, "summaryCheckpoint")
            try self.follows({ try s.checkFollows(try self.stored(v.summaryCheckpoint, VaultSummaryCheckpoint.self)) }, "summaryCheckpoint")
            try self.checkSummaryMeta(s, v)
            guard s.name == v.name, s.dataClassification == v.dataClassification else {
                throw DomainError.checkpointMismatch("summaryCheckpoint changes the vault's name or classification; use the vault update route")
            }
            try self.checkSummaryItems(s, try await tx.items(vaultId: vaultId).filter { !$0.archived } + [item])
            guard try await tx.insertItem(item) else { throw DomainError.conflict("item id \(item.id) is already taken") }
            for f in fields {
                guard try await tx.insertField(f) else { throw DomainError.conflict("field id \(f.id) is already taken; choose a new UUID") }
                try await self.change(tx, ctx.tenant.id, .field, f.id, vault: vaultId)
            }
            v.summaryVersion = s.version; v.summaryCheckpoint = summaryCheckpoint; v.updatedAt = now
            v.summaryLogIndex = try await self.logCheckpoint(tx, .vaultSummary, tenantId: v.tenantId, subjectId: v.id, envelope: summaryCheckpoint)
            try await tx.putVault(v)
            try await self.change(tx, ctx.tenant.id, .item, item.id, vault: vaultId)
            try await self.change(tx, ctx.tenant.id, .vault, vaultId, vault: vaultId)
            return ((item, fields), "item=\(item.id) version=\(d.version)")
        }
    }

    public func updateItem(_ ctx: AuthContext, itemId: String, detailCheckpoint: String, summaryCheckpoint: String,
                           values: [(id: String, value: String)]) async throws -> (Item, [Field]) {
        return try await perform(ctx, require: "machine.vault.write", "item.update", assetType: "VAULT_ITEM", assetId: itemId) { tx in
            let values = values.map { FieldValuePair(id: $0.id, value: $0.value) }
            var (v, item) = try await self.loadItem(tx, ctx, vaultId: nil, itemId: itemId, need: .write)
            try self.requireSignedWriter(ctx, v)
            let d = try await self.verifySigned(tx, ctx, detailCheckpoint, ItemDetailCheckpoint.self, "detailCheckpoint")
            try self.follows({ try d.checkFollows(try self.stored(item.detailCheckpoint, ItemDetailCheckpoint.self)) }, "detailCheckpoint")
            guard d.vaultId == v.id, d.vaultItemId == itemId else { throw DomainError.checkpointMismatch("detailCheckpoint is for another item or vault") }
            try self.validName(d.name, "item name")
            guard ItemType(rawValue: d.type) != nil else { throw DomainError.invalid("item type \(d.type) is not one of \(ItemType.allCases.map(\.rawValue))") }
            let old = try await tx.fields(itemId: itemId)
            let now = self.clock.now()
            item.name = d.name; item.type = d.type; item.websites = d.websites; item.groupId = d.groupId
            item.detailVersion = d.version; item.detailHash = d.hash; item.detailCheckpoint = detailCheckpoint; item.updatedAt = now
            item.detailLogIndex = try await self.logCheckpoint(tx, .itemDetail, tenantId: item.tenantId, subjectId: item.id, envelope: detailCheckpoint)
            let fields = try self.resolveFields(d, values: values.map { ($0.id, $0.value) }, existing: old, item: item)
            let s = try await self.verifySigned(tx, ctx, summaryCheckpoint, VaultSummaryCheckpoint.self, "summaryCheckpoint")
            try self.follows({ try s.checkFollows(try self.stored(v.summaryCheckpoint, VaultSummaryCheckpoint.self)) }, "summaryCheckpoint")
            try self.checkSummaryMeta(s, v)
            guard s.name == v.name, s.dataClassification == v.dataClassification else {
                throw DomainError.checkpointMismatch("summaryCheckpoint changes the vault's name or classification; use the vault update route")
            }
            let others = try await tx.items(vaultId: v.id).filter { !$0.archived && $0.id != itemId }
            try self.checkSummaryItems(s, others + [item])
            let keep = Set(fields.map(\.id))
            for f in old where !keep.contains(f.id) {
                try await tx.deleteField(f.id)
                try await self.change(tx, ctx.tenant.id, .fieldDeleted, f.id, vault: v.id)
            }
            let oldById = Dictionary(old.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
            for f in fields {
                if let o = oldById[f.id] {
                    var same = o; same.updatedAt = f.updatedAt
                    if same == f { continue }
                    try await tx.putField(f)
                } else {
                    guard try await tx.insertField(f) else { throw DomainError.conflict("field id \(f.id) is already taken; choose a new UUID") }
                }
                try await self.change(tx, ctx.tenant.id, .field, f.id, vault: v.id)
            }
            try await tx.putItem(item)
            v.summaryVersion = s.version; v.summaryCheckpoint = summaryCheckpoint; v.updatedAt = now
            v.summaryLogIndex = try await self.logCheckpoint(tx, .vaultSummary, tenantId: v.tenantId, subjectId: v.id, envelope: summaryCheckpoint)
            try await tx.putVault(v)
            try await self.change(tx, ctx.tenant.id, .item, itemId, vault: v.id)
            try await self.change(tx, ctx.tenant.id, .vault, v.id, vault: v.id)
            return ((item, fields), "version=\(d.version)")
        }
    }

    public func archiveItem(_ ctx: AuthContext, vaultId: String, itemId: String, summaryCheckpoint: String) async throws -> Item {
        return try await perform(ctx, require: "machine.vault.write", "item.archive", assetType: "VAULT_ITEM", assetId: itemId) { tx in
            try Self.checkId(vaultId, "vault id")
            var (v, item) = try await self.loadItem(tx, ctx, vaultId: vaultId, itemId: itemId, need: .write)
            try self.requireSignedWriter(ctx, v)
            let s = try await self.verifySigned(tx, ctx, summaryCheckpoint, VaultSummaryCheckpoint.self, "summaryCheckpoint")
            try self.follows({ try s.checkFollows(try self.stored(v.summaryCheckpoint, VaultSummaryCheckpoint.self)) }, "summaryCheckpoint")
            try self.checkSummaryMeta(s, v)
            guard s.name == v.name, s.dataClassification == v.dataClassification else {
                throw DomainError.checkpointMismatch("summaryCheckpoint changes the vault's name or classification")
            }
            try self.checkSummaryItems(s, try await tx.items(vaultId: v.id).filter { !$0.archived && $0.id != itemId })
            let now = self.clock.now()
            item.archived = true; item.updatedAt = now
            try await tx.putItem(item)
            v.summaryVersion = s.version; v.summaryCheckpoint = summaryCheckpoint; v.updatedAt = now
            v.summaryLogIndex = try await self.logCheckpoint(tx, .vaultSummary, tenantId: v.tenantId, subjectId: v.id, envelope: summaryCheckpoint)
            try await tx.putVault(v)
            try await self.change(tx, ctx.tenant.id, .item, itemId, vault: v.id)
            try await self.change(tx, ctx.tenant.id, .vault, v.id, vault: v.id)
            return (item, nil)
        }
    }

    // MARK: wrapped keys and members

    public func wrappedKeys(_ ctx: AuthContext, vaultId: String) async throws -> (Vault, [WrappedKey]) {
        return try await perform(ctx, require: "machine.vault.read", "wrapped_key.read", assetType: "VAULT", assetId: vaultId, read: true) { tx in
            let v = try await self.loadVault(tx, ctx, vaultId, need: .read, allowArchived: true)
            let mine = try await tx.wrappedKeys(vaultId: vaultId).filter { $0.principalId == ctx.principal.id }
            return ((v, mine.sorted { $0.dekVersion > $1.dekVersion }), nil)
        }
    }

    /// Sharing: a member holding the vault's current DEK wraps it to principals that already
    /// have access (granted by an ADMIN through set-permissions). Fulfils their pending grants.
    public func share(_ ctx: AuthContext, vaultId: String, wraps: [WrappedKeyInputValue]) async throws -> [WrappedKey] {
        return try await perform(ctx, require: "machine.vault.read", "vault.share", assetType: "VAULT", assetId: vaultId) { tx in
            let v = try await self.loadVault(tx, ctx, vaultId, need: .read)
            guard !wraps.isEmpty, wraps.count <= 1000 else { throw DomainError.invalid("wrappedKeys must hold 1-1000 entries") }
            let holds = try await tx.wrappedKeys(vaultId: vaultId).contains { $0.principalId == ctx.principal.id && $0.dekVersion == v.currentDekVersion }
            guard holds else { throw DomainError.forbidden("only a member holding the vault's current DEK can share it") }
            let resolver = AccessResolver(tx)
            var out: [WrappedKey] = []
            for w in wraps {
                guard let pid = w.principalId else { throw DomainError.invalid("each wrapped key needs principalId") }
                try Self.checkId(pid, "principalId")
                guard let p = try await tx.principal(pid), p.tenantId == ctx.tenant.id, !p.archived else {
                    throw DomainError.notFound("principal \(pid) does not exist in this tenant")
                }
                guard try await resolver.vaultAccess(p, v) != nil else {
                    throw DomainError.forbidden("principal \(pid) has no access to vault \(vaultId); an ADMIN must grant it with set-permissions first")
                }
                let rec = try await self.checkWrap(tx, ctx, vault: v, recipient: p, input: w)
                try await tx.putWrappedKey(rec)
                try await tx.deletePendingGrant(PendingGrant(vaultId: vaultId, tenantId: v.tenantId, principalId: pid, level: .read, createdAt: Date()).id)
                try await self.change(tx, ctx.tenant.id, .wrappedKey, rec.id, vault: vaultId)
                out.append(rec)
            }
            return (out, "recipients=\(out.map(\.principalId).joined(separator: ","))")
        }
    }

    public struct MemberKeyValue: Sendable {
        public var principal: Principal
        public var level: AccessLevel
        public var key: PublicKeyRecord
        /// The rotation chain to `key`, oldest first: (retired key, rotation statement text).
        public var rotations: [(previous: PublicKeyRecord, statement: String)] = []
    }

    /// The signer directory: each member's active key (with its rotation chain) and the
    /// vault's signed writer set chain.
    public struct VaultDirectory: Sendable {
        public var members: [MemberKeyValue]
        public var writers: [WritersLinkValue]
        public var writersLogIndex: Int64?
    }

    public func memberKeys(_ ctx: AuthContext, vaultId: String) async throws -> VaultDirectory {
        return try await perform(ctx, require: "machine.vault.read", "vault.public_keys", assetType: "VAULT", assetId: vaultId, read: true) { tx in
            let v = try await self.loadVault(tx, ctx, vaultId, need: .read, allowArchived: true)
            return (try await self.directory(tx, v, AccessResolver(tx)), nil)
        }
    }

    func directory(_ tx: any StoreTransaction, _ v: Vault, _ resolver: AccessResolver) async throws -> VaultDirectory {
        var out: [MemberKeyValue] = []
        for (p, l) in try await resolver.members(v) {
            if let k = try await tx.activePublicKey(principalId: p.id) {
                out.append(MemberKeyValue(principal: p, level: l, key: k, rotations: try await rotationChain(tx, to: k)))
            }
        }
        return VaultDirectory(members: out.sorted { $0.principal.id < $1.principal.id },
                              writers: try await writersChain(tx, v), writersLogIndex: v.writersLogIndex)
    }
}

/// A wrapped key as the caller sends it (the domain's mirror of the wire type).
public struct WrappedKeyInputValue: Sendable {
    public var principalId: String?
    /// Set in a rotation batch (elsewhere the route names the vault).
    public var vaultId: String?
    public var recipientKeyId: String
    public var dekVersion: Int
    public var wrappedKey: String
    public var statement: String
    public init(principalId: String?, vaultId: String? = nil, recipientKeyId: String, dekVersion: Int, wrappedKey: String, statement: String) {
        self.principalId = principalId; self.vaultId = vaultId; self.recipientKeyId = recipientKeyId; self.dekVersion = dekVersion
        self.wrappedKey = wrappedKey; self.statement = statement
    }
}

struct FieldValuePair: Sendable { var id: String; var value: String }
