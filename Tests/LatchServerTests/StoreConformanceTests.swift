import Foundation
import LatchDomain
import LatchStoreSQLite
import Testing

struct Boom: Error {}

/// The storage conformance suite: any `LatchStore` (SQLite now, PostgreSQL later) must pass it.
func runStoreConformance(_ store: any LatchStore) async throws {
    let t = UUID().uuidString.lowercased(), t2 = UUID().uuidString.lowercased()
    let row = StoreRow(id: "r1", tenantId: t, parentId: "p1", lookup: "l1", doc: #"{"a":1}"#)
    // insert, get, find, put, delete
    let inserted = try await store.write { tx in try await tx.insert(.items, row) }
    #expect(inserted)
    #expect(try await store.write { tx in try await tx.insert(.items, row) } == false)
    #expect(try await store.read { try await $0.get(.items, id: "r1") } == row)
    try await store.write { tx in try await tx.put(.items, StoreRow(id: "r2", tenantId: t, parentId: "p1", lookup: "l2", doc: "{}")) }
    #expect(try await store.read { try await $0.find(.items, .parentId, "p1") }.map(\.id) == ["r1", "r2"])
    #expect(try await store.read { try await $0.find(.items, .lookup, "l2") }.map(\.id) == ["r2"])
    #expect(try await store.read { try await $0.find(.items, .tenantId, t) }.count == 2)
    try await store.write { tx in try await tx.put(.items, StoreRow(id: "r2", tenantId: t, parentId: "p2", lookup: "l2", doc: "{\"b\":2}")) }
    #expect(try await store.read { try await $0.get(.items, id: "r2") }?.parentId == "p2")
    try await store.write { tx in try await tx.delete(.items, id: "r2") }
    #expect(try await store.read { try await $0.get(.items, id: "r2") } == nil)
    // a failed write changes nothing (all or nothing)
    await #expect(throws: Boom.self) {
        try await store.write { tx in
            try await tx.put(.vaults, StoreRow(id: "v-rolled-back", tenantId: t, parentId: nil, lookup: nil, doc: "{}"))
            _ = try await tx.appendChange(tenantId: t, kind: .vault, entityId: "v-rolled-back", vaultId: nil)
            try await tx.setSetting("k", "v")
            throw Boom()
        }
    }
    #expect(try await store.read { try await $0.get(.vaults, id: "v-rolled-back") } == nil)
    #expect(try await store.read { try await $0.setting("k") } == nil)
    #expect(try await store.read { try await $0.lastChangeSeq(tenantId: t) } == 0)
    // settings
    try await store.write { tx in try await tx.setSetting("k", "v1") }
    try await store.write { tx in try await tx.setSetting("k", "v2") }
    #expect(try await store.read { try await $0.setting("k") } == "v2")
    try await store.write { tx in try await tx.setSetting("k", nil) }
    #expect(try await store.read { try await $0.setting("k") } == nil)
    // change log: monotonic, per tenant, paged
    var seqs: [Int64] = []
    for i in 0..<5 {
        let s = try await store.write { tx in try await tx.appendChange(tenantId: i % 2 == 0 ? t : t2, kind: .item, entityId: "e\(i)", vaultId: "v") }
        seqs.append(s)
    }
    #expect(seqs == seqs.sorted() && Set(seqs).count == 5)
    let mine = try await store.read { try await $0.changes(tenantId: t, afterSeq: 0, limit: 10) }
    #expect(mine.map(\.entityId) == ["e0", "e2", "e4"])
    let page = try await store.read { try await $0.changes(tenantId: t, afterSeq: mine[0].seq, limit: 1) }
    #expect(page.map(\.entityId) == ["e2"])
    #expect(try await store.read { try await $0.lastChangeSeq(tenantId: t2) } == seqs[3])
    // audit chain through the primitives
    let now = Date(timeIntervalSince1970: 1_800_000_000.123)
    for i in 0..<3 {
        try await store.write { tx in
            try await tx.appendAudit(time: now, tenantId: i == 1 ? t2 : t, action: "test.\(i)", outcome: "success", principalId: "p", accessKey: "k", detail: "d")
        }
    }
    #expect(try await verifyAuditChain(store) == 3)
    let filtered = try await store.read { try await $0.auditEvents(AuditFilter(tenantId: t, action: "test.2")) }
    #expect(filtered.count == 1 && filtered[0].seq == 3)
    await #expect(throws: (any Error).self) {
        try await store.write { tx in
            let e = AuditEvent(seq: 1, tenantId: t, time: now, action: "dup", outcome: "x", principalId: nil, accessKey: nil, assetType: nil,
                               assetId: nil, source: nil, detail: nil, prevHash: AuditChain.genesis, hash: "")
            try await tx.appendAuditEvent(e)
        }
    }
    #expect(try await verifyAuditChain(store) == 3)
}

@Suite("Store conformance")
struct StoreConformanceTests {
    @Test("in-memory twin") func memory() async throws { try await runStoreConformance(MemoryStore()) }

    @Test("SQLite store; migrations are versioned and idempotent")
    func sqlite() async throws {
        let path = try tempDir() + "/latch.sqlite"
        let s = try await SQLiteLatchStore.open(path: path)
        try await runStoreConformance(s)
        #expect(try await s.schemaVersion() == 2)
        await s.close()
        let again = try await SQLiteLatchStore.open(path: path)
        #expect(try await again.schemaVersion() == 2)
        #expect(try await verifyAuditChain(again) == 3)
        await again.close()
    }
}
