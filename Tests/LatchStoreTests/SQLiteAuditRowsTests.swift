import Foundation
import LatchDomain
@testable import LatchStoreSQLite
import Testing

/// Audit rows since migration 3 are columns only (`doc` is ''): a file written before it keeps
/// its JSON rows, reads them as before, and chains new rows onto them.
@Suite struct SQLiteAuditRowsTests {
    static func drafts(_ n: Int, tenant: String, from start: Int) -> [AuditDraft] {
        (0..<n).map { i in
            let seconds: Double = 1_800_000_000.1234 + Double(start + i) * 0.0371
            let source: String? = i % 4 == 0 ? nil : "10.0.0.\(i)"
            return AuditDraft(time: Date(timeIntervalSince1970: seconds), tenantId: tenant,
                       action: "field.read", outcome: i % 3 == 0 ? "forbidden" : "success", principalId: "p-\(i % 2)",
                       accessKey: i % 2 == 0 ? "lk_\(i)" : nil, assetType: "FIELD", assetId: "f-\(start + i)",
                       source: source, detail: i == 1 ? "line\nwith \"quotes\" and é" : nil)
        }
    }

    @Test("batches of every size from 1 to 120 prepare at most four INSERT shapes, and chain")
    func fewStatementShapes() async throws {
        try await withTemporaryDirectory { dir in
            let store = try await SQLiteLatchStore.open(path: dir.appendingPathComponent("latch.sqlite").path)
            _ = try await store.write { try await $0.appendAudit(Self.drafts(1, tenant: "t", from: 0)) }   // the tail read prepared
            let before = try await store.writer.withHandle { $0.preparations }
            var total = 1
            for n in 1...120 {
                let drafts = Self.drafts(n, tenant: "t", from: total)
                _ = try await store.write { try await $0.appendAudit(drafts) }
                total += n
            }
            let prepared = try await store.writer.withHandle { $0.preparations } - before
            #expect(prepared <= SQLiteTransaction.auditChunks.count, "\(prepared) statements prepared")
            #expect(try await verifyAuditChain(store) == total)
            await store.close()
        }
    }

    @Test("a file from before migration 3 keeps its JSON rows; new rows chain onto them; both read back as written")
    func upgradeKeepsTheChain() async throws {
        try await withTemporaryDirectory { dir in
            let path = dir.appendingPathComponent("latch.sqlite").path
            // The schema and rows as migrations 1 and 2 left them (the doc column held the event).
            var chained: [AuditEvent] = []
            var last: (seq: Int64, hash: String)?
            for d in Self.drafts(5, tenant: "t1", from: 0) {
                let e = try d.chained(after: last)
                chained.append(e)
                last = (e.seq, e.hash)
            }
            let old = chained
            let c = try await SQLiteConnection.open(path: path)
            try await c.withHandle("write a version-2 file") { h in
                try h.execute("PRAGMA journal_mode=WAL", purpose: "WAL")
                try h.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)", purpose: "versions")
                for m in SQLiteLatchStore.migrations where m.version <= 2 {
                    for s in m.statements { try h.execute(s, purpose: "migration \(m.version)") }
                    try h.execute("INSERT INTO schema_migrations VALUES (?, 'then')", [.int(Int64(m.version))], purpose: "version")
                }
                for e in old {
                    try h.execute("""
                        INSERT INTO audit_events (seq, tenant_id, time_ms, action, outcome, principal_id, asset_id, hash, doc) \
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """, [.int(e.seq), .optional(e.tenantId), .int(AuditChain.millis(e.time)), .text(e.action), .text(e.outcome),
                              .optional(e.principalId), .optional(e.assetId), .text(e.hash), .text(e.documentJSON)], purpose: "old row")
                }
            }
            await c.close()

            let store = try await SQLiteLatchStore.open(path: path)
            do {
                #expect(try await store.schemaVersion() == 3)
                #expect(try await verifyAuditChain(store) == 5)
                let new = try await store.appendAuditBatch(Self.drafts(7, tenant: "t2", from: 5), durability: .full)
                #expect(new.first?.prevHash == old.last?.hash)
                #expect(try await verifyAuditChain(store) == 12)
                let all = try await store.read { try await $0.auditEvents(AuditFilter(limit: 100)) }
                #expect(all == old + new, "every event reads back exactly as it was chained")
                // Filters over both kinds of row; a filtered row still carries its prevHash.
                let t2 = try await store.read { try await $0.auditEvents(AuditFilter(tenantId: "t2", outcome: "success")) }
                #expect(t2 == new.filter { $0.outcome == "success" })
                let forbidden = try await store.read { try await $0.auditEvents(AuditFilter(outcome: "forbidden")) }
                #expect(forbidden.map(\.seq) == (old + new).filter { $0.outcome == "forbidden" }.map(\.seq))
                #expect(try await store.read { try await $0.lastAuditEvent() } == new.last)
                // The new rows hold no JSON copy of the event.
                let docs = try await store.read { tx in
                    try await #require(tx as? SQLiteTransaction).q("SELECT doc FROM audit_events WHERE seq > 5", purpose: "docs")
                }
                #expect(docs.count == 7 && docs.allSatisfy { $0["doc"]?.textValue == "" })
            } catch {
                await store.close()
                throw error
            }
            await store.close()
        }
    }

    @Test("a file a newer release migrated further is refused at open, with what to do")
    func newerSchemaIsRefused() async throws {
        try await withSQLiteStore { store, path in
            let newer = Int64((SQLiteLatchStore.migrations.last?.version ?? 0) + 1)
            try await store.write { tx in
                try await #require(tx as? SQLiteTransaction).x("INSERT INTO schema_migrations VALUES (?, 'later')", [.int(newer)],
                                                               purpose: "record a newer migration")
            }
            do {
                let other = try await SQLiteLatchStore.open(path: path)
                await other.close()
                Issue.record("a file at schema \(newer) was opened")
            } catch let e as StoreError {
                #expect(e.kind == .unavailable && e.message.contains("schema version \(newer), newer than this release knows"), "\(e)")
            }
        }
    }

    @Test("an event's time survives the round trip through whole milliseconds")
    func millisecondsRoundTrip() {
        var ms: Int64 = 1_796_202_455_000
        for step: Int64 in [1, 7, 13, 997, 86_400_000] {
            for _ in 0..<20_000 {
                let d = AuditChain.date(millis: ms)
                #expect(AuditChain.millis(d) == ms, "ms \(ms)")
                if AuditChain.millis(d) != ms { return }
                ms += step
            }
        }
        for ms: Int64 in [0, 1, -1, -999, -1000, -1001, 978_307_200_000, 253_402_300_799_999] {
            #expect(AuditChain.millis(AuditChain.date(millis: ms)) == ms, "ms \(ms)")
        }
    }
}
