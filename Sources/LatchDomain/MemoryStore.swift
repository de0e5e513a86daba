import Foundation

/// An in-memory store for unit tests only: a write runs on a copy of the state and replaces
/// it only when the body returns, so a failed write changes nothing.
public final class MemoryStore: LatchStore, @unchecked Sendable {
    struct State {
        var tables: [StoreTable: [String: StoreRow]] = [:]
        var settings: [String: String] = [:]
        var audit: [AuditEvent] = []
        var changes: [ChangeRecord] = []
        var nextChange: Int64 = 1
    }
    private var state = State()
    private let lock = AsyncLock()
    private let commits = NSLock()
    private var committed: UInt64 = 0

    public init() {}

    /// Counts committed writes (bumped as a write's state replaces the old one).
    public func commitVersion() -> UInt64? { commits.withLock { committed } }

    public func read<T: Sendable>(_ body: @Sendable (any StoreTransaction) async throws -> T) async throws -> T {
        try await lock.withLock {
            let tx = MemoryTransaction(state: self.state, writable: false)
            return try await body(tx)
        }
    }

    public func write<T: Sendable>(_ body: @Sendable (any StoreTransaction) async throws -> T) async throws -> T {
        try await lock.withLock {
            let tx = MemoryTransaction(state: self.state, writable: true)
            let result = try await body(tx)
            self.commits.withLock {
                self.state = tx.state
                self.committed &+= 1
            }
            return result
        }
    }

    /// Test hook: rewrites one stored audit event in place (to show verification catches it).
    public func tamperAuditEvent(seq: Int64, _ change: (inout AuditEvent) -> Void) {
        if let i = state.audit.firstIndex(where: { $0.seq == seq }) { change(&state.audit[i]) }
    }
}

final class MemoryTransaction: StoreTransaction, @unchecked Sendable {
    var state: MemoryStore.State
    let writable: Bool
    init(state: MemoryStore.State, writable: Bool) { self.state = state; self.writable = writable }

    private func checkWritable() throws {
        guard writable else { throw StoreError(.constraint, "write attempted in a read transaction") }
    }
    func insert(_ table: StoreTable, _ row: StoreRow) async throws -> Bool {
        try checkWritable()
        if state.tables[table]?[row.id] != nil { return false }
        state.tables[table, default: [:]][row.id] = row
        return true
    }
    func put(_ table: StoreTable, _ row: StoreRow) async throws {
        try checkWritable()
        state.tables[table, default: [:]][row.id] = row
    }
    func get(_ table: StoreTable, id: String) async throws -> StoreRow? { state.tables[table]?[id] }
    func find(_ table: StoreTable, _ column: StoreColumn, _ value: String) async throws -> [StoreRow] {
        (state.tables[table] ?? [:]).values.filter {
            switch column {
            case .tenantId: $0.tenantId == value
            case .parentId: $0.parentId == value
            case .lookup: $0.lookup == value
            }
        }.sorted { $0.id < $1.id }
    }
    func delete(_ table: StoreTable, id: String) async throws {
        try checkWritable()
        state.tables[table]?[id] = nil
    }
    func setting(_ key: String) async throws -> String? { state.settings[key] }
    func setSetting(_ key: String, _ value: String?) async throws { try checkWritable(); state.settings[key] = value }
    func lastAuditEvent() async throws -> AuditEvent? { state.audit.last }
    func appendAuditEvent(_ event: AuditEvent) async throws {
        try checkWritable()
        guard event.seq == (state.audit.last?.seq ?? 0) + 1 else { throw StoreError(.constraint, "audit sequence out of order") }
        state.audit.append(event)
    }
    func auditEvents(_ f: AuditFilter) async throws -> [AuditEvent] {
        Array(state.audit.filter { e in
            e.seq > f.afterSeq && (f.tenantId == nil || e.tenantId == f.tenantId) && (f.action == nil || e.action == f.action)
                && (f.principalId == nil || e.principalId == f.principalId) && (f.assetId == nil || e.assetId == f.assetId)
                && (f.outcome == nil || e.outcome == f.outcome) && (f.since.map { e.time >= $0 } ?? true)
        }.prefix(f.limit))
    }
    func appendChange(tenantId: String, kind: ChangeRecord.Kind, entityId: String, vaultId: String?) async throws -> Int64 {
        try checkWritable()
        let seq = state.nextChange
        state.nextChange += 1
        state.changes.append(ChangeRecord(seq: seq, tenantId: tenantId, kind: kind, entityId: entityId, vaultId: vaultId))
        return seq
    }
    func changes(tenantId: String, afterSeq: Int64, limit: Int) async throws -> [ChangeRecord] {
        Array(state.changes.filter { $0.tenantId == tenantId && $0.seq > afterSeq }.prefix(limit))
    }
    func lastChangeSeq(tenantId: String) async throws -> Int64 {
        state.changes.last { $0.tenantId == tenantId }?.seq ?? 0
    }
}
