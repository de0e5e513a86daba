import Foundation
import LatchDomain
@testable import LatchStorePostgres
import Testing

// The PostgreSQL store's short paths (issue 7): a one-statement read runs without BEGIN/COMMIT,
// a read of several statements still runs in one snapshot, a write inside a read is refused,
// and the audit group commit is one statement that still chains correctly when two replicas
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
            try await a.write { tx in _ = try await tx.appendAudit(Self.drafts(3, "x")) }
            try await a.write(durability: .deferred) { tx in _ = try await tx.appendAudit(Self.drafts(2, "y")) }
            #expect(a.pathCounts.snapshot.oneStatementAppends == 1)
            #expect(try await verifyAuditChain(a) == 5)
            // Two replicas racing: each batch chains onto whatever tail the other left.
            try await withThrowingTaskGroup(of: Void.self) { g in
                for i in 0..<40 {
                    let s = i % 2 == 0 ? a : b
                    g.addTask {
                        try await s.write(durability: i % 3 == 0 ? .full : .deferred) { tx in
                            _ = try await tx.appendAudit(Self.drafts(1 + i % 4, "r\(i)"))
                        }
                    }
                }
                try await g.waitForAll()
            }
            let total = 5 + (0..<40).map { 1 + $0 % 4 }.reduce(0, +)
            #expect(try await verifyAuditChain(a) == total)
            #expect(try await verifyAuditChain(b) == total)
        } catch {
            Issue.record(error)
        }
        try? await a.dropSchemaForTesting()
        await a.close()
        await b.close()
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
