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

    /// Runs `body` with a store on a fresh schema (its configuration changed by `adjust`),
    /// recording any error it throws; then drops the schema and closes the store.
    func withFreshStore(_ adjust: (inout PostgresStoreConfiguration) -> Void = { _ in },
                        _ body: (PostgresLatchStore) async throws -> Void) async throws {
        var config = try PostgresTestDatabase.configuration(schema: PostgresTestDatabase.freshSchema())
        adjust(&config)
        let store = try await PostgresLatchStore.open(config)
        do { try await body(store) } catch { Issue.record(error) }
        try? await store.dropSchemaForTesting()
        await store.close()
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

    /// A statement the database does not answer within `queryTimeout` ends in `.unavailable`
    /// at the deadline (not when the database finally answers), its connection is closed, and
    /// the store goes on with the others.
    @Test func statementPastItsTimeoutIsCutOff() async throws {
        try await withFreshStore({ $0.queryTimeout = .seconds(1) }) { store in
            let start = Date()
            do {
                try await store.read { tx in _ = try await (tx as! PostgresTransaction).raw("SELECT pg_sleep(6)") }
                Issue.record("a 6 s statement returned under a 1 s timeout")
            } catch let e as StoreError {
                #expect(e.kind == .unavailable && "\(e)".contains("did not answer within"), "\(e)")
            }
            let waited = Date().timeIntervalSince(start)
            #expect(waited >= 0.9 && waited < 5, "waited \(waited) s")
            #expect(try await store.read { try await $0.setting("no-such-setting") } == nil)   // the store still answers
        }
    }

    /// The server ends a session between two statements of a transaction (what PostgreSQL
    /// stopping does to every connection): the next statement fails with `.unavailable` at
    /// once, not at `queryTimeout` (the driver never answers a statement sent on a connection
    /// that has closed), the connection is not lent again, and the store goes on.
    @Test func sessionEndedMidTransactionFailsAtOnce() async throws {
        var config = try PostgresTestDatabase.configuration(schema: PostgresTestDatabase.freshSchema())
        config.queryTimeout = .seconds(10)
        let store = try await PostgresLatchStore.open(config)
        let killer = try await PostgresLatchStore.open(config)
        do {
            let start = Date()
            do {
                try await store.write { tx in
                    let t = tx as! PostgresTransaction
                    let pid = try await t.q("SELECT pg_backend_pid()").first!.decode(Int32.self)
                    _ = try await killer.read { try await ($0 as! PostgresTransaction).q("SELECT pg_terminate_backend(\(pid))") }
                    try await Task.sleep(for: .milliseconds(300))
                    try await t.q("SELECT 1")
                }
                Issue.record("a statement on a terminated session succeeded")
            } catch let e as StoreError {
                #expect(e.kind == .unavailable && "\(e)".contains("closed before the statement was answered"), "\(e)")
            }
            let waited = Date().timeIntervalSince(start)
            #expect(waited < 3, "the transaction took \(waited) s: its last statement waited on a closed connection (queryTimeout is 10 s)")
            for _ in 0..<6 {  // more than the pool's 4 connections: none of them is the dead one
                #expect(try await store.read { try await $0.setting("no-such-setting") } == nil)
            }
        } catch {
            Issue.record(error)
        }
        try? await store.dropSchemaForTesting()
        await killer.close()
        await store.close()
    }

    /// With every connection lent, a transaction waits its turn: it gets the connection the
    /// moment one comes back, and fails with `.unavailable` at `acquireTimeout` if none does.
    @Test func leaseWaitsItsTurnThenTimesOut() async throws {
        try await withFreshStore({ $0.poolSize = 1; $0.acquireTimeout = .seconds(1) }) { store in
            func hold(_ seconds: Double) -> Task<Void, any Error> {
                Task { try await store.read { tx in _ = try await (tx as! PostgresTransaction).raw("SELECT pg_sleep(\(seconds))") } }
            }
            // Held for 0.5 s: a waiter gets the connection when it comes back.
            let short = hold(0.5)
            try await Task.sleep(for: .milliseconds(150))
            let start = Date()
            #expect(try await store.read { try await $0.setting("no-such-setting") } == nil)
            let waited = Date().timeIntervalSince(start)
            #expect(waited > 0.2 && waited < 1, "waited \(waited) s for the one connection")
            try await short.value
            // Held for 3 s: a waiter gives up at the 1 s acquire timeout.
            let long = hold(3)
            try await Task.sleep(for: .milliseconds(150))
            let start2 = Date()
            do {
                _ = try await store.read { try await $0.setting("no-such-setting") }
                Issue.record("a lease past acquireTimeout succeeded")
            } catch let e as StoreError {
                #expect(e.kind == .unavailable && "\(e)".contains("no PostgreSQL connection within"), "\(e)")
            }
            let waited2 = Date().timeIntervalSince(start2)
            #expect(waited2 >= 0.9 && waited2 < 2, "gave up after \(waited2) s")
            try await long.value
            #expect(try await store.read { try await $0.setting("no-such-setting") } == nil)
        }
    }

    /// A connection left idle for `idleTimeout` is closed; the next transaction makes a new one.
    @Test func idleConnectionsAreClosed() async throws {
        try await withFreshStore({ $0.idleTimeout = .milliseconds(600) }) { store in
            #expect(store.pool.connectionCount == 1, "the connection that ran the migrations")
            try await Task.sleep(for: .milliseconds(1_500))   // idle past 0.6 s, checked every 0.3 s
            #expect(store.pool.connectionCount == 0)
            #expect(try await store.read { try await $0.setting("no-such-setting") } == nil)
            #expect(store.pool.connectionCount == 1)
        }
    }

    /// A database a newer release migrated further still opens (replicas of two releases share
    /// it while an upgrade rolls; the store logs a warning), and this replica keeps working.
    @Test func newerSchemaStillOpens() async throws {
        let config = try PostgresTestDatabase.configuration(schema: PostgresTestDatabase.freshSchema())
        let a = try await PostgresLatchStore.open(config)
        let newer = (PostgresLatchStore.migrations.last?.version ?? 0) + 1
        do {
            try await a.write { tx in
                try await (tx as! PostgresTransaction).exec("INSERT INTO schema_migrations (version, applied_at) VALUES (\(newer), 'later')",
                                                            writes: true)
            }
            let b = try await PostgresLatchStore.open(config)
            let drafts = [AuditDraft(time: Date(), tenantId: "t", action: "field.read", outcome: "success", principalId: "p", accessKey: nil)]
            _ = try await b.appendAuditBatch(drafts, durability: .full)
            #expect(try await verifyAuditChain(b) == 1)
            #expect(try await b.schemaVersion() == newer)
            await b.close()
        } catch {
            Issue.record(error)
        }
        try? await a.dropSchemaForTesting()
        await a.close()
    }

    /// One chain across the three kinds of row: what a replica of an older release writes (a
    /// document, the newer columns NULL), what the audit group commit writes (columns only, as
    /// SQLite stores them), and what a write transaction writes (every column and the
    /// document). Each reads back as the event that was hashed.
    @Test func everyKindOfAuditRowChainsTogether() async throws {
        try await withFreshStore { a in
            let drafts: [AuditDraft] = (0..<8).map { (i: Int) -> AuditDraft in
                let key: String? = i % 3 == 0 ? nil : "lk_\(i)"
                let detail: String? = i == 1 ? "" : nil
                let seconds: Double = 1_764_000_000.25 + Double(i)
                return AuditDraft(time: Date(timeIntervalSince1970: seconds), tenantId: "t\(i % 2)", action: "field.read",
                                  outcome: "success", principalId: "p", accessKey: key, assetType: "FIELD",
                                  assetId: "f\(i)", source: "10.0.0.\(i)", detail: detail)
            }
            func chain(_ ds: ArraySlice<AuditDraft>, after: AuditEvent?) throws -> [AuditEvent] {
                var last = after.map { (seq: $0.seq, hash: $0.hash) }
                return try ds.map { d in
                    let e = try d.chained(after: last)
                    last = (e.seq, e.hash)
                    return e
                }
            }
            let old = try chain(drafts[0..<3], after: nil)
            try await a.write { tx in
                for e in old {
                    try await (tx as! PostgresTransaction).exec("""
                        INSERT INTO audit_events (seq, tenant_id, time_ms, action, outcome, principal_id, asset_id, hash, doc) \
                        VALUES (\(e.seq), \(e.tenantId), \(AuditChain.millis(e.time)), \(e.action), \(e.outcome), \(e.principalId), \
                        \(e.assetId), \(e.hash), \(e.documentJSON))
                        """, writes: true)
                }
            }
            let current = try await a.appendAuditBatch(Array(drafts[3..<6]), durability: .deferred)
            #expect(current.first?.prevHash == old.last?.hash && current.map { $0.seq } == [4, 5, 6])
            let inWrite = try await a.write { tx in try await tx.appendAudit(Array(drafts[6..<8])) }
            #expect(inWrite == (try chain(drafts[6..<8], after: current.last)))
            let docs = try await a.read { tx in
                try await (tx as! PostgresTransaction).q("SELECT doc FROM audit_events ORDER BY seq").map { try $0.decode(String.self) }
            }
            #expect(docs.map(\.isEmpty) == [false, false, false, true, true, true, false, false])
            let all = old + current + inWrite
            #expect(try await verifyAuditChain(a) == 8)
            #expect(try await a.read { tx in try await tx.auditEvents(AuditFilter(limit: 100)) } == all)
            #expect(try await a.read { tx in try await tx.auditEvents(AuditFilter(tenantId: "t1")) } == all.filter { $0.tenantId == "t1" })
            #expect(try await a.read { tx in try await tx.lastAuditEvent() } == inWrite.last)
        }
    }

    /// The database chains a batch exactly as `AuditChain` does in Swift, for awkward strings
    /// (escapes, non-ASCII, absent members; not NUL, which PostgreSQL text cannot hold).
    @Test func databaseChainsAsSwiftDoes() async throws {
        try await withFreshStore { a in
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
                try await (tx as! PostgresTransaction).q("""
                    SELECT tenant_id, action, outcome, principal_id, asset_id, time_ms, access_key, asset_type, source, detail, doc \
                    FROM audit_events ORDER BY seq
                    """).map { try $0.decode((String?, String, String, String?, String?, Int64, String?, String?, String?, String?, String).self) }
            }
            #expect(columns.count == swift.count)
            for (c, e) in zip(columns, swift) {
                #expect(c.0 == e.tenantId && c.1 == e.action && c.2 == e.outcome && c.3 == e.principalId && c.4 == e.assetId
                        && c.5 == AuditChain.millis(e.time), "the indexed columns of event \(e.seq)")
                #expect(c.6 == e.accessKey && c.7 == e.assetType && c.8 == e.source && c.9 == e.detail && c.10.isEmpty,
                        "the other columns of event \(e.seq), and no document (the columns are the row, as on SQLite)")
            }
            #expect(try await verifyAuditChain(a) == swift.count)
        }
    }

    @Test func readsRunAloneOrInOneSnapshotAndRefuseWrites() async throws {
        try await withFreshStore { a in
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
        }
    }
}
