import Foundation
import LatchDomain
import Testing

/// Counts the rows a transaction touches, to show delta-sync cost does not grow with tenant size.
final class CountingStore: LatchStore, @unchecked Sendable {
    let inner: any LatchStore
    private let lock = NSLock()
    private var rows = 0
    init(_ inner: any LatchStore) { self.inner = inner }
    func add(_ n: Int) { lock.withLock { rows += n } }
    func reset() { lock.withLock { rows = 0 } }
    var count: Int { lock.withLock { rows } }
    func read<T: Sendable>(_ body: @Sendable (any StoreTransaction) async throws -> T) async throws -> T {
        try await inner.read { try await body(CountingTx(inner: $0, store: self)) }
    }
    func write<T: Sendable>(_ body: @Sendable (any StoreTransaction) async throws -> T) async throws -> T {
        try await inner.write { try await body(CountingTx(inner: $0, store: self)) }
    }
}

struct CountingTx: StoreTransaction {
    let inner: any StoreTransaction
    let store: CountingStore
    func insert(_ t: StoreTable, _ r: StoreRow) async throws -> Bool { try await inner.insert(t, r) }
    func put(_ t: StoreTable, _ r: StoreRow) async throws { try await inner.put(t, r) }
    func get(_ t: StoreTable, id: String) async throws -> StoreRow? { store.add(1); return try await inner.get(t, id: id) }
    func find(_ t: StoreTable, _ c: StoreColumn, _ v: String) async throws -> [StoreRow] {
        let r = try await inner.find(t, c, v); store.add(1 + r.count); return r
    }
    func delete(_ t: StoreTable, id: String) async throws { try await inner.delete(t, id: id) }
    func setting(_ k: String) async throws -> String? { try await inner.setting(k) }
    func setSetting(_ k: String, _ v: String?) async throws { try await inner.setSetting(k, v) }
    func lastAuditEvent() async throws -> AuditEvent? { try await inner.lastAuditEvent() }
    func appendAuditEvent(_ e: AuditEvent) async throws { try await inner.appendAuditEvent(e) }
    func auditEvents(_ f: AuditFilter) async throws -> [AuditEvent] { try await inner.auditEvents(f) }
    func appendChange(tenantId: String, kind: ChangeRecord.Kind, entityId: String, vaultId: String?) async throws -> Int64 {
        try await inner.appendChange(tenantId: tenantId, kind: kind, entityId: entityId, vaultId: vaultId)
    }
    func changes(tenantId: String, afterSeq: Int64, limit: Int) async throws -> [ChangeRecord] {
        let r = try await inner.changes(tenantId: tenantId, afterSeq: afterSeq, limit: limit); store.add(1 + r.count); return r
    }
    func lastChangeSeq(tenantId: String) async throws -> Int64 { try await inner.lastChangeSeq(tenantId: tenantId) }
}

@Suite("Delta sync cost")
struct SyncCostTests {
    /// Seeds a tenant with `n` items (store-level, checkpoints not needed for this measurement),
    /// takes a cursor, changes one item, and returns how many rows the delta sync read.
    func rowsForDelta(items n: Int) async throws -> (rows: Int, changed: Int) {
        let store = CountingStore(MemoryStore())
        let service = LatchService(store: store)
        let token = try #require(try await service.prepareBootstrap())
        let boot = try await service.bootstrap(token: token, publicKeyPEM: Keys.pool[0].publicKey.pem, organisationName: "o",
                                               tenantName: "t", userName: "u", source: nil)
        let ctx = try await service.authenticate(apiKey: boot.apiKey.apiKey, source: nil)
        let tenant = boot.tenant.id
        let vaultId = UUID().uuidString.lowercased()
        let now = Date()
        try await store.write { tx in
            _ = try await tx.insertVault(Vault(id: vaultId, tenantId: tenant, projectId: nil, name: "v", dataClassification: "INTERNAL",
                                               currentDekVersion: 1, summaryVersion: 1, summaryCheckpoint: "{}", createdBy: boot.user.id,
                                               createdAt: now, updatedAt: now, archived: false))
            for i in 0..<n {
                let item = Item(id: "item-\(i)", vaultId: vaultId, tenantId: tenant, name: "i\(i)", type: "LOGIN", websites: [], groupId: nil,
                                detailVersion: 1, detailHash: "h", detailCheckpoint: "{}", createdAt: now, updatedAt: now, archived: false)
                _ = try await tx.insertItem(item)
                _ = try await tx.appendChange(tenantId: tenant, kind: .item, entityId: item.id, vaultId: vaultId)
            }
        }
        let cursor = try await service.sync(ctx, cursor: nil).cursor
        try await store.write { tx in
            var item = try #require(try await tx.item("item-0"))
            item.name = "renamed"
            try await tx.putItem(item)
            _ = try await tx.appendChange(tenantId: tenant, kind: .item, entityId: item.id, vaultId: vaultId)
        }
        store.reset()
        let delta = try await service.sync(ctx, cursor: cursor)
        #expect(!delta.full && delta.items.map(\.name) == ["renamed"])
        return (store.count, delta.items.count)
    }

    @Test("a delta sync after one change reads the same rows in a tenant of 20 or 2,000 items")
    func constantCost() async throws {
        let small = try await rowsForDelta(items: 20)
        let large = try await rowsForDelta(items: 2_000)
        #expect(small.changed == 1 && large.changed == 1)
        #expect(large.rows == small.rows, "rows read: \(small.rows) for 20 items, \(large.rows) for 2,000")
        #expect(large.rows < 20)
    }
}
