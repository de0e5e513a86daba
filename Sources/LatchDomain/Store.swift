import Foundation

// Storage behind protocols. A store implements a handful of primitives on a transaction
// (documents in tables with three indexed lookup columns, settings, the audit chain and the
// change log); the entity-level methods below are built on them, so SQLite and PostgreSQL
// stores only implement the primitives and run the same conformance suite.

/// A failure of the storage layer itself (not of the caller's request).
public struct StoreError: Error, Sendable, CustomStringConvertible {
    /// `conflict`: a concurrent transaction won (e.g. a serialisation failure); nothing was
    /// written and the caller may retry (the server answers 409).
    public enum Kind: String, Sendable { case unavailable, corrupt, constraint, conflict }
    public var kind: Kind
    public var message: String
    public init(_ kind: Kind, _ message: String) { self.kind = kind; self.message = message }
    public var description: String { "store: \(kind.rawValue): \(message)" }

    /// A database a newer release has migrated past what this one knows: refused at open by the
    /// SQLite store, since this release would misread what the newer one wrote (audit rows
    /// stored as columns only, for one). (The PostgreSQL store goes on with a warning: replicas
    /// of two releases share a database while an upgrade rolls, and each release keeps what
    /// the one before it reads.)
    public static func newerSchema(_ found: Int64, known: Int) -> StoreError {
        StoreError(.unavailable, "the database is at schema version \(found), newer than this release knows (\(known)): "
                   + "a newer latch serve has upgraded it; run that release or a later one (downgrading the schema is not supported)")
    }
}

public enum StoreTable: String, CaseIterable, Sendable {
    case organisations, tenants, principals
    case publicKeys = "public_keys", apiKeys = "api_keys"
    case groups = "security_groups", groupMembers = "group_members", projects
    case vaults, items, fields
    case wrappedKeys = "wrapped_keys", grants, pendingGrants = "pending_grants", feedback
    /// The transparency log: leaves (id = index) and stored Merkle hashes (id = stored-hash index).
    case logLeaves = "log_leaves", logHashes = "log_hashes"

    /// The schema migration that creates the table.
    public var migration: Int {
        switch self {
        case .logLeaves, .logHashes: 2
        default: 1
        }
    }
}

/// The three indexed lookup columns every table has besides `id`.
public enum StoreColumn: String, Sendable { case tenantId = "tenant_id", parentId = "parent_id", lookup }

/// One stored document: its id, its lookup keys and its JSON body.
public struct StoreRow: Sendable, Equatable {
    public var id: String
    public var tenantId: String?
    public var parentId: String?
    public var lookup: String?
    public var doc: String
    public init(id: String, tenantId: String?, parentId: String?, lookup: String?, doc: String) {
        self.id = id; self.tenantId = tenantId; self.parentId = parentId; self.lookup = lookup; self.doc = doc
    }
}

public struct AuditFilter: Sendable, Equatable {
    public var tenantId: String?
    public var afterSeq: Int64
    public var action: String?
    public var principalId: String?
    public var assetId: String?
    public var outcome: String?
    public var since: Date?
    public var limit: Int
    public init(tenantId: String? = nil, afterSeq: Int64 = 0, action: String? = nil, principalId: String? = nil,
                assetId: String? = nil, outcome: String? = nil, since: Date? = nil, limit: Int = 1000) {
        self.tenantId = tenantId; self.afterSeq = afterSeq; self.action = action; self.principalId = principalId
        self.assetId = assetId; self.outcome = outcome; self.since = since; self.limit = limit
    }
}

/// The primitives a store implements inside one transaction.
public protocol StoreTransaction: Sendable {
    /// Inserts a row; returns false (and changes nothing) when the id exists.
    func insert(_ table: StoreTable, _ row: StoreRow) async throws -> Bool
    /// Inserts or replaces a row.
    func put(_ table: StoreTable, _ row: StoreRow) async throws
    func get(_ table: StoreTable, id: String) async throws -> StoreRow?
    /// The rows with these ids, in any order; ids with no row are left out. The default asks
    /// `get` for each; a store may answer in one query (the transparency log's batch proofs).
    func getMany(_ table: StoreTable, ids: [String]) async throws -> [StoreRow]
    /// The row `id` of `tables[0]`, then the row of `tables[1]` whose id is that row's `parentId`,
    /// and so on (a field, its item, its vault); stops at the first missing row. The default asks
    /// `get` for each; a store may answer in one query (a field read's one round trip).
    func getLineage(_ tables: [StoreTable], id: String) async throws -> [StoreRow]
    /// Rows whose `column` equals `value`, ordered by id.
    func find(_ table: StoreTable, _ column: StoreColumn, _ value: String) async throws -> [StoreRow]
    func delete(_ table: StoreTable, id: String) async throws

    func setting(_ key: String) async throws -> String?
    func setSetting(_ key: String, _ value: String?) async throws

    func lastAuditEvent() async throws -> AuditEvent?
    /// The last event's sequence number and hash: what the next event chains to. The default
    /// reads `lastAuditEvent`; a store may read the two columns without decoding the event.
    func lastAuditLink() async throws -> (seq: Int64, hash: String)?
    /// Appends an event whose `seq` is the last one's plus one (the caller computes the chain).
    func appendAuditEvent(_ event: AuditEvent) async throws
    /// Appends events whose `seq`s continue the chain, in order (the caller computes the chain).
    /// The default calls `appendAuditEvent` for each; a store may insert them in one statement.
    func appendAuditEvents(_ events: [AuditEvent]) async throws
    func auditEvents(_ filter: AuditFilter) async throws -> [AuditEvent]

    /// Appends to the change log; returns the new sequence number (monotonic, never reused).
    func appendChange(tenantId: String, kind: ChangeRecord.Kind, entityId: String, vaultId: String?) async throws -> Int64
    /// Changes of one tenant with a sequence above `afterSeq`, ascending, at most `limit`.
    func changes(tenantId: String, afterSeq: Int64, limit: Int) async throws -> [ChangeRecord]
    func lastChangeSeq(tenantId: String) async throws -> Int64
}

/// How durable a write transaction must be when `write` returns.
public enum CommitDurability: Sendable, Equatable {
    /// Committed, visible and durable across a power loss (the default for every write).
    case full
    /// Committed and visible to every later transaction, durable across a crash of the server
    /// process at once, and across a power loss only once the store's background flush has run
    /// (the SQLite store: within about 0.2 s). Only for rows whose loss in that window is an accepted
    /// risk: the audit rows of reads (docs/threat-model.md). A store may treat it as `.full`.
    case deferred
}

/// A store: every multi-row change happens inside one `write` transaction (all or nothing).
public protocol LatchStore: Sendable {
    func read<T: Sendable>(_ body: @Sendable (any StoreTransaction) async throws -> T) async throws -> T
    func write<T: Sendable>(_ body: @Sendable (any StoreTransaction) async throws -> T) async throws -> T
    /// A write transaction committed with the given durability. The default is `write` (full).
    func write<T: Sendable>(durability: CommitDurability, _ body: @Sendable (any StoreTransaction) async throws -> T) async throws -> T
    /// The audit group commit: appends one event per draft, in order, to the audit chain, chained
    /// on the chain's tail as it is when they are appended, all or nothing, committed with
    /// `durability`, except the drafts whose `expecting` entry is not nil and differs from the
    /// store's data version at that moment (`AuditBatchResult`). The default keeps no data
    /// version, so it leaves out every draft that expects one, and appends the others in one
    /// `write(durability:)` transaction running `appendAudit`; a store may append them in fewer
    /// round trips (the PostgreSQL store: one statement) with the same result.
    func appendAuditBatch(_ drafts: [AuditDraft], expecting: [UInt64?], durability: CommitDurability) async throws -> AuditBatchResult
    /// Where the audit events of reads go instead of the group commit, when the store has such a
    /// path (the SQLite store: a journal file beside the database). nil (the default): they join
    /// the group commit (`appendAuditBatch` with `.deferred`).
    var readAuditJournal: (any ReadAuditJournal)? { get }
    /// Moves every event the read-audit journal holds into the chain; returns once they are
    /// committed. Run before reading audit events (`auditEvents`, `verifyAuditChain`) so that
    /// every read answered so far is there. The default does nothing.
    func flushReadAudit() async throws
    /// A number that changes whenever a transaction commits, by this process or any other, and
    /// that costs next to nothing to read; nil (the default) when the store cannot tell. Two
    /// equal answers mean nothing was committed between them, so a read transaction that ran
    /// between them saw the state as it still is: `LatchService` reuses such a read's result
    /// while the number stays the same (`ReadCache`).
    func commitVersion() -> UInt64?
}

/// What an audit group commit did (`LatchStore.appendAuditBatch(_:expecting:durability:)`).
///
/// A store with a *data version* keeps it in the database itself: a number that every committed
/// change moves, from any process, except appends to the audit chain. A read that ran between
/// two batches that both saw version V read the state as it still is while the version stays V,
/// so its answer can be given again to a later request whose audit event is appended on the
/// condition that the version is still V: the check and the event are one step (the PostgreSQL
/// store's replicas reuse reads this way, `LatchService`).
public struct AuditBatchResult: Sendable {
    /// The events appended, in the order of their drafts.
    public var events: [AuditEvent]
    /// For each draft, whether it was appended (false: it expected a data version that had moved).
    public var appended: [Bool]
    /// The data version when the batch was appended; nil when the store keeps none.
    public var dataVersion: UInt64?
    public init(events: [AuditEvent], appended: [Bool], dataVersion: UInt64?) {
        self.events = events; self.appended = appended; self.dataVersion = dataVersion
    }
}

/// A store's path for the audit events of reads that does not wait for a commit.
///
/// `record` returns once the event is written where it survives a crash of the server process
/// at once (a file's page cache) and is queued to join the audit chain, in order, within a few
/// tens of milliseconds, by a commit at least as durable as `.deferred` (so a power loss can
/// lose it only within a fraction of a second, as it could a `.deferred` commit's rows). An
/// event that cannot be recorded throws, and the read is then not answered. After a crash the store moves what the journal holds into the
/// chain when it next opens, each event once.
public protocol ReadAuditJournal: Sendable {
    func record(_ draft: AuditDraft) throws
}

extension LatchStore {
    public func write<T: Sendable>(durability: CommitDurability, _ body: @Sendable (any StoreTransaction) async throws -> T) async throws -> T {
        try await write(body)
    }
    public func appendAuditBatch(_ drafts: [AuditDraft], expecting: [UInt64?], durability: CommitDurability) async throws -> AuditBatchResult {
        precondition(expecting.count == drafts.count, "one expectation per draft")
        let appended = expecting.map { $0 == nil }
        let kept = zip(drafts, appended).filter(\.1).map(\.0)
        let events = kept.isEmpty ? [] : try await write(durability: durability) { tx in try await tx.appendAudit(kept) }
        return AuditBatchResult(events: events, appended: appended, dataVersion: nil)
    }
    /// The audit group commit of drafts that expect nothing: all of them are appended.
    public func appendAuditBatch(_ drafts: [AuditDraft], durability: CommitDurability) async throws -> [AuditEvent] {
        try await appendAuditBatch(drafts, expecting: Array(repeating: nil, count: drafts.count), durability: durability).events
    }
    public var readAuditJournal: (any ReadAuditJournal)? { nil }
    public func flushReadAudit() async throws {}
    public func commitVersion() -> UInt64? { nil }
    /// Audit events matching `filter`, the read-audit journal's included (flushed first).
    public func auditEvents(_ filter: AuditFilter) async throws -> [AuditEvent] {
        try await flushReadAudit()
        return try await read { tx in try await tx.auditEvents(filter) }
    }
}

// MARK: - Entity-level methods built on the primitives

private let docEncoder = JSONEncoder()
private let docDecoder = JSONDecoder()

extension StoreTransaction {
    public func getMany(_ table: StoreTable, ids: [String]) async throws -> [StoreRow] {
        var out: [StoreRow] = []
        for id in ids { if let r = try await get(table, id: id) { out.append(r) } }
        return out
    }
    public func getLineage(_ tables: [StoreTable], id: String) async throws -> [StoreRow] {
        var out: [StoreRow] = []
        var next: String? = id
        for t in tables {
            guard let nid = next, let r = try await get(t, id: nid) else { break }
            out.append(r)
            next = r.parentId
        }
        return out
    }
    public func appendAuditEvents(_ events: [AuditEvent]) async throws {
        for e in events { try await appendAuditEvent(e) }
    }
    public func lastAuditLink() async throws -> (seq: Int64, hash: String)? {
        try await lastAuditEvent().map { (seq: $0.seq, hash: $0.hash) }
    }

    func encode<T: Encodable>(_ v: T) throws -> String {
        String(decoding: try docEncoder.encode(v), as: UTF8.self)
    }
    func decode<T: Decodable>(_ t: T.Type, _ row: StoreRow) throws -> T {
        // Fields, items and vault access views are read directly (DocJSON.swift); anything that
        // reader does not fully understand goes to JSONDecoder, as every other document does.
        if let d = t as? any DirectDocDecodable.Type, let v = d.directDecode(row.doc) as? T { return v }
        return try decodeWithJSONDecoder(t, row)
    }
    /// The same for a type known to read directly: no dynamic cast (a conformance lookup per
    /// document on the hot read paths).
    func decode<T: Decodable & DirectDocDecodable>(_ t: T.Type, _ row: StoreRow) throws -> T {
        if let v = T.directDecode(row.doc) { return v }
        return try decodeWithJSONDecoder(t, row)
    }
    private func decodeWithJSONDecoder<T: Decodable>(_ t: T.Type, _ row: StoreRow) throws -> T {
        do { return try docDecoder.decode(t, from: Data(row.doc.utf8)) } catch {
            throw StoreError(.corrupt, "row \(row.id) does not decode as \(T.self): \(error)")
        }
    }
    func getDoc<T: Decodable>(_ table: StoreTable, _ id: String, as t: T.Type) async throws -> T? {
        guard let row = try await get(table, id: id) else { return nil }
        return try decode(t, row)
    }
    func getDoc<T: Decodable & DirectDocDecodable>(_ table: StoreTable, _ id: String, as t: T.Type) async throws -> T? {
        guard let row = try await get(table, id: id) else { return nil }
        return try decode(t, row)
    }
    func findDocs<T: Decodable>(_ table: StoreTable, _ c: StoreColumn, _ v: String, as t: T.Type) async throws -> [T] {
        try await find(table, c, v).map { try decode(t, $0) }
    }
    func findDocs<T: Decodable & DirectDocDecodable>(_ table: StoreTable, _ c: StoreColumn, _ v: String, as t: T.Type) async throws -> [T] {
        try await find(table, c, v).map { try decode(t, $0) }
    }

    // Organisations, tenants, principals
    public func insertOrganisation(_ o: Organisation) async throws {
        _ = try await insert(.organisations, StoreRow(id: o.id, tenantId: nil, parentId: nil, lookup: nil, doc: encode(o)))
    }
    public func organisation(_ id: String) async throws -> Organisation? { try await getDoc(.organisations, id, as: Organisation.self) }
    public func insertTenant(_ t: Tenant) async throws {
        _ = try await insert(.tenants, StoreRow(id: t.id, tenantId: t.id, parentId: t.organisationId, lookup: nil, doc: encode(t)))
    }
    public func tenant(_ id: String) async throws -> Tenant? { try await getDoc(.tenants, id, as: Tenant.self) }
    public func tenants(organisationId: String) async throws -> [Tenant] { try await findDocs(.tenants, .parentId, organisationId, as: Tenant.self) }
    public func putPrincipal(_ p: Principal) async throws {
        try await put(.principals, StoreRow(id: p.id, tenantId: p.tenantId, parentId: nil, lookup: p.type.rawValue, doc: encode(p)))
    }
    public func principal(_ id: String) async throws -> Principal? { try await getDoc(.principals, id, as: Principal.self) }
    public func principals(tenantId: String) async throws -> [Principal] { try await findDocs(.principals, .tenantId, tenantId, as: Principal.self) }

    // Public keys
    public func putPublicKey(_ k: PublicKeyRecord) async throws {
        try await put(.publicKeys, StoreRow(id: k.keyId, tenantId: k.tenantId, parentId: k.principalId, lookup: k.status.rawValue, doc: encode(k)))
    }
    public func publicKey(keyId: String) async throws -> PublicKeyRecord? { try await getDoc(.publicKeys, keyId, as: PublicKeyRecord.self) }
    public func publicKeys(principalId: String) async throws -> [PublicKeyRecord] {
        try await findDocs(.publicKeys, .parentId, principalId, as: PublicKeyRecord.self)
    }
    public func activePublicKey(principalId: String) async throws -> PublicKeyRecord? {
        try await publicKeys(principalId: principalId).first { $0.status == .active }
    }

    // API keys
    public func insertAPIKey(_ k: APIKeyRecord) async throws {
        guard try await insert(.apiKeys, StoreRow(id: k.accessKey, tenantId: k.tenantId, parentId: k.principalId, lookup: nil, doc: encode(k))) else {
            throw StoreError(.constraint, "access key collision")
        }
    }
    public func putAPIKey(_ k: APIKeyRecord) async throws {
        try await put(.apiKeys, StoreRow(id: k.accessKey, tenantId: k.tenantId, parentId: k.principalId, lookup: nil, doc: encode(k)))
    }
    public func apiKey(accessKey: String) async throws -> APIKeyRecord? { try await getDoc(.apiKeys, accessKey, as: APIKeyRecord.self) }
    public func apiKeys(principalId: String) async throws -> [APIKeyRecord] { try await findDocs(.apiKeys, .parentId, principalId, as: APIKeyRecord.self) }
    public func apiKeys(tenantId: String) async throws -> [APIKeyRecord] { try await findDocs(.apiKeys, .tenantId, tenantId, as: APIKeyRecord.self) }

    // Groups and projects
    public func putGroup(_ g: SecurityGroup) async throws {
        try await put(.groups, StoreRow(id: g.id, tenantId: g.tenantId, parentId: nil, lookup: nil, doc: encode(g)))
    }
    public func group(_ id: String) async throws -> SecurityGroup? { try await getDoc(.groups, id, as: SecurityGroup.self) }
    public func groups(tenantId: String) async throws -> [SecurityGroup] { try await findDocs(.groups, .tenantId, tenantId, as: SecurityGroup.self) }
    public func addGroupMember(_ m: GroupMembership) async throws {
        try await put(.groupMembers, StoreRow(id: "\(m.groupId):\(m.principalId)", tenantId: m.tenantId, parentId: m.groupId, lookup: m.principalId, doc: encode(m)))
    }
    public func removeGroupMember(groupId: String, principalId: String) async throws {
        try await delete(.groupMembers, id: "\(groupId):\(principalId)")
    }
    public func groupMembers(groupId: String) async throws -> [GroupMembership] { try await findDocs(.groupMembers, .parentId, groupId, as: GroupMembership.self) }
    public func groupIds(of principalId: String) async throws -> [String] {
        try await findDocs(.groupMembers, .lookup, principalId, as: GroupMembership.self).map(\.groupId)
    }
    public func putProject(_ p: Project) async throws {
        try await put(.projects, StoreRow(id: p.id, tenantId: p.tenantId, parentId: nil, lookup: nil, doc: encode(p)))
    }
    public func project(_ id: String) async throws -> Project? { try await getDoc(.projects, id, as: Project.self) }
    public func projects(tenantId: String) async throws -> [Project] { try await findDocs(.projects, .tenantId, tenantId, as: Project.self) }

    // Vaults, items, fields
    /// Inserts a new vault; false when the id is taken.
    public func insertVault(_ v: Vault) async throws -> Bool {
        try await insert(.vaults, StoreRow(id: v.id, tenantId: v.tenantId, parentId: v.projectId, lookup: nil, doc: encode(v)))
    }
    public func putVault(_ v: Vault) async throws {
        try await put(.vaults, StoreRow(id: v.id, tenantId: v.tenantId, parentId: v.projectId, lookup: nil, doc: encode(v)))
    }
    public func vault(_ id: String) async throws -> Vault? { try await getDoc(.vaults, id, as: Vault.self) }
    public func vaults(tenantId: String) async throws -> [Vault] { try await findDocs(.vaults, .tenantId, tenantId, as: Vault.self) }
    public func insertItem(_ i: Item) async throws -> Bool {
        try await insert(.items, StoreRow(id: i.id, tenantId: i.tenantId, parentId: i.vaultId, lookup: nil, doc: encode(i)))
    }
    public func putItem(_ i: Item) async throws {
        try await put(.items, StoreRow(id: i.id, tenantId: i.tenantId, parentId: i.vaultId, lookup: nil, doc: encode(i)))
    }
    public func item(_ id: String) async throws -> Item? { try await getDoc(.items, id, as: Item.self) }
    public func items(vaultId: String) async throws -> [Item] { try await findDocs(.items, .parentId, vaultId, as: Item.self) }
    public func putField(_ f: Field) async throws {
        try await put(.fields, StoreRow(id: f.id, tenantId: f.tenantId, parentId: f.itemId, lookup: f.vaultId, doc: encode(f)))
    }
    public func insertField(_ f: Field) async throws -> Bool {
        try await insert(.fields, StoreRow(id: f.id, tenantId: f.tenantId, parentId: f.itemId, lookup: f.vaultId, doc: encode(f)))
    }
    public func field(_ id: String) async throws -> Field? { try await getDoc(.fields, id, as: Field.self) }
    public func fields(itemId: String) async throws -> [Field] {
        try await findDocs(.fields, .parentId, itemId, as: Field.self).sorted { ($0.order, $0.id) < ($1.order, $1.id) }
    }
    public func fields(vaultId: String) async throws -> [Field] { try await findDocs(.fields, .lookup, vaultId, as: Field.self) }
    public func deleteField(_ id: String) async throws { try await delete(.fields, id: id) }

    // Wrapped keys
    public func putWrappedKey(_ w: WrappedKey) async throws {
        try await put(.wrappedKeys, StoreRow(id: w.id, tenantId: w.tenantId, parentId: w.vaultId, lookup: w.principalId, doc: encode(w)))
    }
    public func wrappedKeys(vaultId: String) async throws -> [WrappedKey] { try await findDocs(.wrappedKeys, .parentId, vaultId, as: WrappedKey.self) }
    public func wrappedKeys(principalId: String) async throws -> [WrappedKey] { try await findDocs(.wrappedKeys, .lookup, principalId, as: WrappedKey.self) }
    public func deleteWrappedKey(_ id: String) async throws { try await delete(.wrappedKeys, id: id) }

    // Grants
    public func putGrant(_ g: PermissionGrant) async throws {
        try await put(.grants, StoreRow(id: g.id, tenantId: g.tenantId, parentId: g.assetId, lookup: g.granteeId, doc: encode(g)))
    }
    public func deleteGrant(_ id: String) async throws { try await delete(.grants, id: id) }
    public func grants(assetId: String) async throws -> [PermissionGrant] { try await findDocs(.grants, .parentId, assetId, as: PermissionGrant.self) }
    public func grants(granteeId: String) async throws -> [PermissionGrant] { try await findDocs(.grants, .lookup, granteeId, as: PermissionGrant.self) }

    // Pending grants
    public func putPendingGrant(_ g: PendingGrant) async throws {
        try await put(.pendingGrants, StoreRow(id: g.id, tenantId: g.tenantId, parentId: g.vaultId, lookup: g.principalId, doc: encode(g)))
    }
    public func deletePendingGrant(_ id: String) async throws { try await delete(.pendingGrants, id: id) }
    public func pendingGrants(tenantId: String) async throws -> [PendingGrant] { try await findDocs(.pendingGrants, .tenantId, tenantId, as: PendingGrant.self) }
    public func pendingGrants(vaultId: String) async throws -> [PendingGrant] { try await findDocs(.pendingGrants, .parentId, vaultId, as: PendingGrant.self) }

    // Feedback
    public func insertFeedback(_ f: Feedback) async throws {
        _ = try await insert(.feedback, StoreRow(id: f.id, tenantId: f.tenantId, parentId: f.agentId, lookup: nil, doc: encode(f)))
    }
    public func feedback(tenantId: String) async throws -> [Feedback] { try await findDocs(.feedback, .tenantId, tenantId, as: Feedback.self) }
}

// MARK: - An async mutex (serialises transactions on one connection or one in-memory state)

public actor AsyncLock {
    private var locked = false
    private var waiters: [CheckedContinuation<Void, Never>] = []
    public init() {}
    public func lock() async {
        if !locked { locked = true; return }
        await withCheckedContinuation { waiters.append($0) }
    }
    public func unlock() {
        if waiters.isEmpty { locked = false } else { waiters.removeFirst().resume() }
    }
    public func withLock<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        await lock()
        do { let r = try await body(); unlock(); return r } catch { unlock(); throw error }
    }
}
