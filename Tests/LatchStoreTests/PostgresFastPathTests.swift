import Foundation
import LatchDomain
@testable import LatchStorePostgres
import Testing

// The PostgreSQL store's short paths (issue 7): a one-statement read runs without BEGIN/COMMIT,
// a read of several statements still runs in one snapshot, a write inside a read is refused,
// and the audit group commit (`appendAuditBatch`) is one statement that still chains correctly when two replicas
// move the tail under each other.
@Suite(.enabled(if: PostgresTestDatabase.url != nil, PostgresTestDatabase.skipReason))
struct PostgresFastPathTests {
    static func drafts(_ n: Int, _ tag: String) -> [AuditDraft] {
        (0..<n).map { AuditDraft(time: Date(), tenantId: "t", action: "field.read", outcome: "success", principalId: "p",
                                 accessKey: "lk", assetType: "FIELD", assetId: "\(tag)\($0)", source: nil, detail: nil) }
    }

    @Test func auditAppendIsOneStatementAndChainsAcrossReplicas() async throws {
        let config = try PostgresTestDatabase.configuration(schema: PostgresTestDatabase.freshSchema())
        let a = try await PostgresLatchStore.open(config)
        let b = try await PostgresLatchStore.open(config)
        do {
            _ = try await a.appendAuditBatch(Self.drafts(3, "x"), durability: .full)
            _ = try await a.appendAuditBatch(Self.drafts(2, "y"), durability: .deferred)
            #expect(a.pathCounts.snapshot.oneStatementAppends == 2)
            #expect(try await verifyAuditChain(a) == 5)
            // Two replicas racing: each batch chains onto whatever tail the other left (the
            // database orders them: one statement each, no retries).
            try await withThrowingTaskGroup(of: Void.self) { g in
                for i in 0..<40 {
                    let s = i % 2 == 0 ? a : b
                    g.addTask {
                        _ = try await s.appendAuditBatch(Self.drafts(1 + i % 4, "r\(i)"), durability: i % 3 == 0 ? .full : .deferred)
                    }
                }
                try await g.waitForAll()
            }
            let total = 5 + (0..<40).map { 1 + $0 % 4 }.reduce(0, +)
            #expect(try await verifyAuditChain(a) == total)
            #expect(try await verifyAuditChain(b) == total)
            #expect(a.pathCounts.snapshot.oneStatementAppends + b.pathCounts.snapshot.oneStatementAppends == 42)
        } catch {
            Issue.record(error)
        }
        try? await a.dropSchemaForTesting()
        await a.close()
        await b.close()
    }

    /// The database chains a batch exactly as `AuditChain` does in Swift, for awkward strings
    /// (escapes, non-ASCII, absent members; not NUL, which PostgreSQL text cannot hold).
    @Test func databaseChainsAsSwiftDoes() async throws {
        let config = try PostgresTestDatabase.configuration(schema: PostgresTestDatabase.freshSchema())
        let a = try await PostgresLatchStore.open(config)
        do {
            let awkward = ["plain", "quote \" and \\ backslash", "slash / tab \t nl \n cr \r bell \u{07} del \u{7f}",
                           "unicode é ü 中文 🙂 \u{2028}", "", "{\"json\":[1,2]}"]
            let drafts = awkward.enumerated().map { i, s in
                let some = i % 2 == 0
                return AuditDraft(time: Date(timeIntervalSince1970: 1_764_000_000.1239 + Double(i) * 0.5), tenantId: some ? s : nil,
                                  action: "field.read" + s, outcome: s.isEmpty ? "success" : s, principalId: some ? nil : s,
                                  accessKey: some ? "lk_" + s : nil, assetType: some ? "FIELD" : nil, assetId: some ? s : nil,
                                  source: some ? nil : "127.0.0.1", detail: some ? nil : s)
            } + [AuditDraft(time: Date(timeIntervalSince1970: -12.5), tenantId: nil, action: "a", outcome: "o", principalId: nil, accessKey: nil)]
            let first = try await a.appendAuditBatch(Array(drafts.prefix(3)), durability: .full)
            let rest = try await a.appendAuditBatch(Array(drafts.dropFirst(3)), durability: .deferred)
            var last: (seq: Int64, hash: String)?
            let swift = try drafts.map { d in
                let e = try d.chained(after: last)
                last = (e.seq, e.hash)
                return e
            }
            #expect(first + rest == swift, "the database's events are the ones Swift chains")
            #expect(try await a.read { tx in try await tx.auditEvents(AuditFilter(limit: 100)) } == swift)
            let columns = try await a.read { tx in
                try await (tx as! PostgresTransaction).q("SELECT tenant_id, action, outcome, principal_id, asset_id, time_ms FROM audit_events ORDER BY seq")
                    .map { try $0.decode((String?, String, String, String?, String?, Int64).self) }
            }
            #expect(columns.count == swift.count)
            for (c, e) in zip(columns, swift) {
                #expect(c.0 == e.tenantId && c.1 == e.action && c.2 == e.outcome && c.3 == e.principalId && c.4 == e.assetId
                        && c.5 == AuditChain.millis(e.time), "the indexed columns of event \(e.seq)")
            }
            #expect(try await verifyAuditChain(a) == swift.count)
        } catch {
            Issue.record(error)
        }
        try? await a.dropSchemaForTesting()
        await a.close()
    }

    @Test func readsRunAloneOrInOneSnapshotAndRefuseWrites() async throws {
        let config = try PostgresTestDatabase.configuration(schema: PostgresTestDatabase.freshSchema())
        let a = try await PostgresLatchStore.open(config)
        do {
            try await a.write { tx in _ = try await tx.insert(.vaults, StoreRow(id: "v1", tenantId: "t", parentId: nil, lookup: nil, doc: "{}")) }
            let before = a.pathCounts.snapshot.loneReads
            #expect(try await a.read { tx in try await tx.get(.vaults, id: "v1") }?.id == "v1")
            #expect(a.pathCounts.snapshot.loneReads == before + 1, "a one-statement read runs alone")
            let two = try await a.read { tx in (try await tx.get(.vaults, id: "v1"), try await tx.setting("nothing")) }
            #expect(two.0?.id == "v1" && two.1 == nil)
            #expect(a.pathCounts.snapshot.loneReads == before + 1, "a two-statement read is not a lone read")
            await #expect(throws: StoreError.self) {
                try await a.read { tx in _ = try await tx.insert(.vaults, StoreRow(id: "v2", tenantId: nil, parentId: nil, lookup: nil, doc: "{}")) }
            }
            await #expect(throws: StoreError.self) {
                try await a.read { tx in
                    _ = try await tx.get(.vaults, id: "v1")
                    try await tx.put(.vaults, StoreRow(id: "v3", tenantId: nil, parentId: nil, lookup: nil, doc: "{}"))
                }
            }
            #expect(try await a.read { tx in try await tx.get(.vaults, id: "v2") } == nil)
            #expect(try await a.read { tx in try await tx.get(.vaults, id: "v3") } == nil)
        } catch {
            Issue.record(error)
        }
        try? await a.dropSchemaForTesting()
        await a.close()
    }
}
