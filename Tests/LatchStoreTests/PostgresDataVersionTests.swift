import Foundation
import LatchDomain
@testable import LatchStorePostgres
import PostgresNIO
import Testing

/// The PostgreSQL store's data version (migration 6, `AuditBatchResult`): what moves it, what
/// does not, and the audit group commit that leaves out the events whose expected version has
/// moved. Replicas reuse reads on the strength of these rules.
@Suite(.enabled(if: PostgresTestDatabase.url != nil, PostgresTestDatabase.skipReason))
struct PostgresDataVersionTests {
    /// Two handles on one fresh schema (two replicas; `withStoreUnderTest` drops it afterwards).
    func withReplicas(_ body: (PostgresLatchStore, PostgresLatchStore) async throws -> Void) async throws {
        try await PostgresTestDatabase.withStoreUnderTest(replicas: 2) { t in
            try await body(try #require(t.stores[0] as? PostgresLatchStore), try #require(t.stores[1] as? PostgresLatchStore))
        }
    }

    /// The data version as one audit event appended now sees it.
    func version(_ s: PostgresLatchStore) async throws -> UInt64 {
        try #require(try await s.appendAuditBatch(PostgresFastPathTests.drafts(1, "probe"), expecting: [nil], durability: .full).dataVersion)
    }

    @Test("every write moves the data version once, from any replica; audit appends and reads do not")
    func whatMovesTheVersion() async throws {
        try await withReplicas { a, b in
            let v0 = try await version(a)
            #expect(try await version(a) == v0, "an audit append moved the data version")
            _ = try await a.read { try await $0.setting("x") }
            #expect(try await version(b) == v0, "a read moved the data version")

            try await a.write { try await $0.setSetting("x", "1") }
            #expect(try await version(a) == v0 + 1)
            #expect(try await version(b) == v0 + 1, "the other replica sees the same version")
            // Several statements on several tables in one transaction: one step.
            try await b.write { tx in
                try await tx.setSetting("x", "2")
                try await tx.setSetting("y", "3")
                _ = try await tx.appendChange(tenantId: "t", kind: .vault, entityId: "e", vaultId: nil)
            }
            #expect(try await version(a) == v0 + 2)
            // A write that changes no row still moves it (conservative: reuse ends early).
            try await a.write { try await $0.setSetting("absent", nil) }
            #expect(try await version(a) == v0 + 3)
            // A write that fails changes nothing, the version included.
            struct Abandon: Error {}
            await #expect(throws: Abandon.self) { try await a.write { tx in try await tx.setSetting("x", "4"); throw Abandon() } }
            #expect(try await version(b) == v0 + 3)
        }
    }

    @Test("an event expecting a moved data version is left out; the others chain without a gap, in one statement or in the fallback")
    func conditionalAppend() async throws {
        try await withReplicas { a, b in
            let v = try await version(a)
            let drafts = PostgresFastPathTests.drafts(4, "c")
            let r = try await a.appendAuditBatch(drafts, expecting: [v, v - 1, nil, v], durability: .deferred)
            #expect(r.appended == [true, false, true, true] && r.dataVersion == v)
            #expect(r.events.map(\.assetId) == ["c0", "c2", "c3"])
            #expect(r.events.map(\.seq) == [2, 3, 4], "the kept events take consecutive places after the probe")
            try await b.write { try await $0.setSetting("moved", "1") }
            let none = try await a.appendAuditBatch(PostgresFastPathTests.drafts(2, "n"), expecting: [v, v], durability: .full)
            #expect(none.appended == [false, false] && none.events.isEmpty && none.dataVersion == v + 1)
            #expect(try await verifyAuditChain(b) == 4)
            let stored = try await b.read { try await $0.auditEvents(AuditFilter(limit: 100)) }.map(\.assetId)
            #expect(!stored.contains("c1") && !stored.contains("n0"), "a left-out event was stored: \(stored)")

            // Past one statement's size, one transaction checks the same way.
            let before = a.pathCounts.snapshot.oneStatementAppends
            let many = PostgresFastPathTests.drafts(PostgresLatchStore.maxChainedBatch + 1, "m")
            let expecting: [UInt64?] = many.indices.map { $0 % 3 == 0 ? v : ($0 % 3 == 1 ? v + 1 : nil) }
            let big = try await a.appendAuditBatch(many, expecting: expecting, durability: .full)
            #expect(a.pathCounts.snapshot.oneStatementAppends == before, "the fallback was not taken")
            #expect(big.dataVersion == v + 1 && big.appended == expecting.map { $0 != v })
            #expect(big.events.count == many.count - (many.count + 2) / 3)
            #expect(try await verifyAuditChain(a) == 4 + big.events.count)
        }
    }

    @Test("every table except the audit chain's has the trigger that moves the data version")
    func everyTableMovesTheVersion() async throws {
        try await withReplicas { a, _ in
            let schema = try #require(a.configuration.schema)
            let (tables, triggered) = try await a.read { tx in
                let t = try #require(tx as? PostgresTransaction)
                let tables = try await t.q("SELECT tablename::TEXT FROM pg_tables WHERE schemaname = \(schema)").map { try $0.decode(String.self) }
                let triggered = try await t.q("""
                    SELECT c.relname::TEXT FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid \
                    JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_proc p ON p.oid = g.tgfoid \
                    WHERE n.nspname = \(schema) AND p.proname = 'latch_data_version_bump' AND NOT g.tgisinternal
                    """).map { try $0.decode(String.self) }
                return (Set(tables), Set(triggered))
            }
            let exempt: Set = ["audit_events", "schema_migrations", "latch_data_version"]
            #expect(tables.isSuperset(of: exempt))
            #expect(triggered == tables.subtracting(exempt), "tables without the trigger: \(tables.subtracting(exempt).subtracting(triggered).sorted())")
            #expect(triggered == Set(PostgresLatchStore.dataVersionTables))
        }
    }
}
