import Foundation
import LatchLog

/// Sync, search, groups, projects, feedback and audit queries.
extension LatchService {
    // MARK: sync

    /// An opaque cursor: base64 of `v1:<change sequence>`.
    public static func encodeCursor(_ seq: Int64) -> String { Data("v1:\(seq)".utf8).base64EncodedString() }
    public static func decodeCursor(_ s: String) throws(DomainError) -> Int64 {
        guard let d = Data(base64Encoded: s), let t = String(data: d, encoding: .utf8), t.hasPrefix("v1:"),
              let n = Int64(t.dropFirst(3)), n >= 0 else {
            throw DomainError(.invalid, code: "invalid_cursor", "cursor is not one this server issued; sync without a cursor to start over")
        }
        return n
    }

    public struct SyncResult: Sendable {
        public var cursor: String
        public var full: Bool
        public var hasMore: Bool
        public var vaults: [Vault] = []
        public var items: [Item] = []
        public var fields: [Field] = []
        public var deletedFieldIds: [String] = []
        public var wrappedKeys: [WrappedKey] = []
        public var removedVaultIds: [String] = []
        /// With `logFrom`: the log material a client needs to verify this answer, read in the
        /// same transaction (so a verified delta sync costs no extra request).
        public var log: SyncLog?
        /// With `.directories`: the signer directory of every vault this answer sends vault,
        /// item, field or wrapped-key rows of, by vault id (what `memberKeys` gives).
        public var directories: [String: VaultDirectory] = [:]
        /// With `.me`: the caller, as `me` gives it.
        public var me: Me?
    }

    /// What a sync answer carries beside the changes, so that a client starting up needs one
    /// request rather than one for itself, one for the changes and one per vault's signers.
    public struct SyncExtras: OptionSet, Sendable {
        public let rawValue: Int
        public init(rawValue: Int) { self.rawValue = rawValue }
        public static let me = SyncExtras(rawValue: 1)
        public static let directories = SyncExtras(rawValue: 2)
    }

    /// The signed tree head, the consistency proof from the client's last verified size, and
    /// the inclusion proofs of every summary and detail checkpoint in the answer.
    public struct SyncLog: Sendable {
        public var head: LogTreeHead
        public var consistencyFrom: Int64
        public var consistency: [MerkleHash]
        public var inclusion: [(index: Int64, proof: [MerkleHash])]
    }

    /// Without a cursor: everything the caller can see. With one: only what changed since, found
    /// through the change log (cost grows with the number of changes, not the tenant's size).
    public func sync(_ ctx: AuthContext, cursor: String?, limit: Int = 1000, logFrom: Int64? = nil, logSigner: NoteSigner? = nil,
                     extras: SyncExtras = []) async throws -> SyncResult {
        return try await perform(ctx, require: "machine.vault.read", "vault.sync", read: true) { tx in
            var r = try await self.syncResult(tx, ctx, cursor: cursor, limit: limit)
            if extras.contains(.me) { r.me = try await self.me(tx, ctx) }
            if extras.contains(.directories) {
                let resolver = AccessResolver(tx)
                let ids = Set(r.vaults.map(\.id) + r.items.map(\.vaultId) + r.fields.map(\.vaultId) + r.wrappedKeys.map(\.vaultId))
                for id in ids.subtracting(r.removedVaultIds) {
                    guard let v = try await tx.vault(id), v.tenantId == ctx.tenant.id,
                          try await resolver.vaultAccess(ctx.principal, v) != nil else { continue }
                    r.directories[id] = try await self.directory(tx, v, resolver)
                }
            }
            if let logFrom, let logSigner {
                // (A logFrom beyond the log's size gets no consistency proof: the client sees the
                // smaller signed head and refuses it as a rollback.)
                let size = try await tx.logSize()
                let root = try await tx.logRoot(size: size)
                let note = try Checkpoint(origin: logSigner.name, size: UInt64(size), root: root).signedNote(with: logSigner)
                let indexes = Array(Set(r.vaults.compactMap(\.summaryLogIndex) + r.items.compactMap(\.detailLogIndex)).filter { $0 < size }).sorted()
                let proofs = indexes.isEmpty ? [] : try await tx.logInclusionProofs(indexes: indexes, size: size)
                r.log = SyncLog(head: LogTreeHead(size: size, root: root, signedNote: note, verifierKey: logSigner.verifier.keyString),
                                consistencyFrom: logFrom,
                                consistency: logFrom > 0 && logFrom < size ? try await tx.logConsistencyProof(from: logFrom, to: size) : [],
                                inclusion: Array(zip(indexes, proofs)).map { (index: $0.0, proof: $0.1) })
            }
            return (r, "full=\(r.full) vaults=\(r.vaults.count) items=\(r.items.count)")
        }
    }

    func syncResult(_ tx: any StoreTransaction, _ ctx: AuthContext, cursor: String?, limit: Int) async throws -> SyncResult {
        do {
            let after = try cursor.map { c throws(DomainError) in try Self.decodeCursor(c) }
            let withValues = ctx.apiKey.permissions.contains("machine.vault.secret.read")
            let resolver = AccessResolver(tx)
            var r: SyncResult
            var fullVaults: [Vault] = []
            if let after {
                let changes = try await tx.changes(tenantId: ctx.tenant.id, afterSeq: after, limit: limit)
                let last = changes.last?.seq ?? after
                r = SyncResult(cursor: Self.encodeCursor(last), full: false, hasMore: changes.count == limit)
                var vaultIds: [String] = [], itemIds: [String] = [], fieldIds: [String] = [], wrapIds: [String] = []
                var accessVaults = Set<String>()
                for c in changes {
                    switch c.kind {
                    case .vault: vaultIds.append(c.entityId)
                    case .item: itemIds.append(c.entityId)
                    case .field: fieldIds.append(c.entityId)
                    case .fieldDeleted: r.deletedFieldIds.append(c.entityId)
                    case .wrappedKey: wrapIds.append(c.entityId)
                    case .grant: if let v = c.vaultId { accessVaults.insert(v) }
                    default: break
                    }
                }
                var cache: [String: (Vault, AccessLevel?)] = [:]
                func vault(_ id: String) async throws -> (Vault, AccessLevel?)? {
                    if let c = cache[id] { return c }
                    guard let v = try await tx.vault(id), v.tenantId == ctx.tenant.id else { return nil }
                    let e = (v, try await resolver.vaultAccess(ctx.principal, v))
                    cache[id] = e
                    return e
                }
                for id in accessVaults {
                    guard let (v, l) = try await vault(id) else { continue }
                    if l == nil { r.removedVaultIds.append(id) } else { fullVaults.append(v) }
                }
                let fullIds = Set(fullVaults.map(\.id))
                for id in Set(vaultIds) where !fullIds.contains(id) {
                    if let (v, l) = try await vault(id), l != nil { r.vaults.append(v) }
                }
                for id in Set(itemIds) {
                    guard let i = try await tx.item(id), !fullIds.contains(i.vaultId), let (_, l) = try await vault(i.vaultId), l != nil else { continue }
                    r.items.append(i)
                }
                if withValues {
                    for id in Set(fieldIds) {
                        guard let f = try await tx.field(id), !fullIds.contains(f.vaultId), let (_, l) = try await vault(f.vaultId), l != nil else { continue }
                        r.fields.append(f)
                    }
                }
                for id in Set(wrapIds) {
                    guard let w = try await tx.get(.wrappedKeys, id: id).map({ try tx.decode(WrappedKey.self, $0) }),
                          w.principalId == ctx.principal.id, !fullIds.contains(w.vaultId) else { continue }
                    r.wrappedKeys.append(w)
                }
            } else {
                let last = try await tx.lastChangeSeq(tenantId: ctx.tenant.id)
                r = SyncResult(cursor: Self.encodeCursor(last), full: true, hasMore: false)
                for v in try await tx.vaults(tenantId: ctx.tenant.id) where !v.archived {
                    if try await resolver.vaultAccess(ctx.principal, v) != nil { fullVaults.append(v) }
                }
            }
            for v in fullVaults {
                r.vaults.append(v)
                r.items += try await tx.items(vaultId: v.id)
                if withValues { r.fields += try await tx.fields(vaultId: v.id) }
                r.wrappedKeys += try await tx.wrappedKeys(vaultId: v.id).filter { $0.principalId == ctx.principal.id }
            }
            r.vaults.sort { $0.id < $1.id }; r.items.sort { $0.id < $1.id }; r.fields.sort { $0.id < $1.id }
            return r
        }
    }

    // MARK: search

    public struct SearchHit: Sendable {
        public var vault: Vault
        public var item: Item?
        public var fieldNames: [String]
    }

    /// Case-insensitive substring search over vault, item and field *names* the caller can read.
    public func search(_ ctx: AuthContext, query: String) async throws -> [SearchHit] {
        return try await perform(ctx, require: "machine.vault.read", "search", read: true) { tx in
            let q = query.trimmingCharacters(in: .whitespaces).lowercased()
            guard !q.isEmpty, q.count <= 200 else { throw DomainError.invalid("query must be 1-200 characters") }
            let resolver = AccessResolver(tx)
            var hits: [SearchHit] = []
            for v in try await tx.vaults(tenantId: ctx.tenant.id) where !v.archived {
                guard try await resolver.vaultAccess(ctx.principal, v) != nil else { continue }
                if v.name.lowercased().contains(q) { hits.append(SearchHit(vault: v, item: nil, fieldNames: [])) }
                for i in try await tx.items(vaultId: v.id) where !i.archived {
                    let names = try await tx.fields(itemId: i.id).map(\.name)
                    if i.name.lowercased().contains(q) || names.contains(where: { $0.lowercased().contains(q) }) {
                        hits.append(SearchHit(vault: v, item: i, fieldNames: names))
                    }
                }
            }
            return (hits, "hits=\(hits.count)")
        }
    }

    // MARK: groups

    public func createGroup(_ ctx: AuthContext, name: String) async throws -> SecurityGroup {
        return try await perform(ctx, require: "machine.permissions.write", "group.create", assetType: "GROUP") { tx in
            guard ctx.principal.role == .tenantAdmin else { throw DomainError.forbidden("managing security groups needs the TENANT_ADMIN role") }
            try self.validName(name, "group name")
            let g = SecurityGroup(id: self.random.uuid(), tenantId: ctx.tenant.id, name: name, createdAt: self.clock.now())
            try await tx.putGroup(g)
            try await self.change(tx, ctx.tenant.id, .group, g.id, vault: nil)
            return (g, "group=\(g.id)")
        }
    }

    public func listGroups(_ ctx: AuthContext) async throws -> [(SecurityGroup, [String])] {
        return try await perform(ctx, require: "machine.permissions.read", "group.list", read: true) { tx in
            var out: [(SecurityGroup, [String])] = []
            for g in try await tx.groups(tenantId: ctx.tenant.id) {
                out.append((g, try await tx.groupMembers(groupId: g.id).map(\.principalId).sorted()))
            }
            return (out.sorted { $0.0.name < $1.0.name }, nil)
        }
    }

    /// Replaces a group's members; recomputes pending grants of every vault granted to the group.
    public func setGroupMembers(_ ctx: AuthContext, groupId: String, members: [String]) async throws -> (SecurityGroup, [String], [PendingGrant]) {
        return try await perform(ctx, require: "machine.permissions.write", "group.members.set", assetType: "GROUP", assetId: groupId) { tx in
            try Self.checkId(groupId, "group id")
            for m in members { try Self.checkId(m, "member id") }
            guard ctx.principal.role == .tenantAdmin else { throw DomainError.forbidden("managing security groups needs the TENANT_ADMIN role") }
            guard let g = try await tx.group(groupId), g.tenantId == ctx.tenant.id else { throw DomainError.notFound("group \(groupId) does not exist") }
            let want = Set(members)
            for m in want {
                guard let p = try await tx.principal(m), p.tenantId == ctx.tenant.id, !p.archived else {
                    throw DomainError.notFound("principal \(m) does not exist in this tenant")
                }
            }
            let old = Set(try await tx.groupMembers(groupId: groupId).map(\.principalId))
            for m in old.subtracting(want) { try await tx.removeGroupMember(groupId: groupId, principalId: m) }
            for m in want.subtracting(old) { try await tx.addGroupMember(GroupMembership(groupId: groupId, principalId: m, tenantId: ctx.tenant.id)) }
            try await self.change(tx, ctx.tenant.id, .group, groupId, vault: nil)
            var pending: [PendingGrant] = []
            for grant in try await tx.grants(granteeId: groupId) {
                var vaults: [Vault] = []
                if grant.assetType == .vault, let v = try await tx.vault(grant.assetId) { vaults = [v] }
                if grant.assetType == .project { vaults = try await tx.vaults(tenantId: ctx.tenant.id).filter { $0.projectId == grant.assetId } }
                for v in vaults where !v.archived {
                    try await self.dropNonMemberWraps(tx, v)   // members who left the group lose their wraps at once
                    pending += try await self.recomputePending(tx, v)
                    try await self.change(tx, ctx.tenant.id, .grant, grant.id, vault: v.id)
                }
            }
            return ((g, want.sorted(), pending), "members=\(want.count)")
        }
    }

    // MARK: projects

    public func createProject(_ ctx: AuthContext, name: String, description: String?) async throws -> Project {
        return try await perform(ctx, require: "machine.project.write", "project.create", assetType: "PROJECT") { tx in
            try self.validName(name, "project name")
            let p = Project(id: self.random.uuid(), tenantId: ctx.tenant.id, name: name, description: description, createdAt: self.clock.now())
            try await tx.putProject(p)
            let grant = PermissionGrant(tenantId: ctx.tenant.id, assetType: .project, assetId: p.id,
                                        granteeType: ctx.principal.type == .agent ? .agent : .user, granteeId: ctx.principal.id,
                                        level: .admin, createdAt: self.clock.now())
            try await tx.putGrant(grant)
            try await self.change(tx, ctx.tenant.id, .project, p.id, vault: nil)
            return (p, "project=\(p.id)")
        }
    }

    public func listProjects(_ ctx: AuthContext) async throws -> [(Project, AccessLevel)] {
        return try await perform(ctx, require: "machine.project.read", "project.list", read: true) { tx in
            let r = AccessResolver(tx)
            var out: [(Project, AccessLevel)] = []
            for p in try await tx.projects(tenantId: ctx.tenant.id) {
                if let l = try await r.projectAccess(ctx.principal, projectId: p.id) { out.append((p, l)) }
            }
            return (out.sorted { $0.0.name < $1.0.name }, nil)
        }
    }

    public func getProject(_ ctx: AuthContext, id: String) async throws -> (Project, AccessLevel, [Vault]) {
        return try await perform(ctx, require: "machine.project.read", "project.read", assetType: "PROJECT", assetId: id, read: true) { tx in
            try Self.checkId(id, "project id")
            let r = AccessResolver(tx)
            guard let p = try await tx.project(id), p.tenantId == ctx.tenant.id,
                  let l = try await r.projectAccess(ctx.principal, projectId: id) else {
                throw DomainError.notFound("project \(id) does not exist or is not shared with you")
            }
            var vs: [Vault] = []
            for v in try await tx.vaults(tenantId: ctx.tenant.id) where v.projectId == id && !v.archived {
                if try await r.vaultAccess(ctx.principal, v) != nil { vs.append(v) }
            }
            return ((p, l, vs), nil)
        }
    }

    // MARK: feedback and audit

    public static let feedbackSurfaces = ["CLI", "SDK", "MCP", "MACHINE_API", "OTHER"]

    public func submitFeedback(_ ctx: AuthContext, surface: String, summary: String, details: String?, desiredOutcome: String?) async throws -> Feedback {
        return try await perform(ctx, require: "machine.feedback.write", "feedback.submit", assetType: "FEEDBACK") { tx in
            guard ctx.apiKey.scope == .agent, ctx.principal.type == .agent else {
                throw DomainError.forbidden("feedback is accepted from AGENT API keys only")
            }
            guard Self.feedbackSurfaces.contains(surface) else { throw DomainError.invalid("surface must be one of \(Self.feedbackSurfaces.joined(separator: ", "))") }
            guard !summary.isEmpty, summary.count <= 500 else { throw DomainError.invalid("summary must be 1-500 characters") }
            guard (details?.count ?? 0) <= 10_000, (desiredOutcome?.count ?? 0) <= 10_000 else {
                throw DomainError.invalid("details and desiredOutcome must be at most 10000 characters")
            }
            let f = Feedback(id: self.random.uuid(), tenantId: ctx.tenant.id, agentId: ctx.principal.id, surface: surface,
                             summary: summary, details: details, desiredOutcome: desiredOutcome, createdAt: self.clock.now())
            try await tx.insertFeedback(f)
            return (f, "feedback=\(f.id)")
        }
    }

    /// The tenant's audit events (TENANT_ADMIN with machine.monitoring.read).
    public func auditEvents(_ ctx: AuthContext, filter: AuditFilter) async throws -> [AuditEvent] {
        try await store.flushReadAudit()   // every read answered so far is in the chain
        return try await perform(ctx, require: "machine.monitoring.read", "audit.read", read: true) { tx in
            var f = filter
            f.tenantId = ctx.tenant.id
            f.limit = min(max(1, f.limit), 1000)
            let query = f
            guard ctx.principal.role == .tenantAdmin else { throw DomainError.forbidden("reading audit events needs the TENANT_ADMIN role") }
            return (try await tx.auditEvents(query), nil)
        }
    }
}
