import Foundation
import Hummingbird
import HummingbirdTesting
import LatchCrypto
import LatchDomain
import LatchStoreSQLite
@testable import LatchStorePostgres
import LatchWire
import Testing

/// The field-read fast path (issue 3): one read for field, item and vault, access checks that
/// stop early, group-committed audit events and the in-memory API-key cache. Each keeps the
/// rules it shortcuts.
@Suite("Read path")
struct ReadPathTests {
    /// Admin, one vault, one item with one field; returns the field id.
    func seed(_ h: Harness) async throws -> (Party, VaultModel, String) {
        let admin = try await h.bootstrap()
        var (v, r) = try await h.createVault(admin)
        #expect(r.status == .created)
        let put = try await h.putItem(admin, &v, name: "db", fields: [("password", "s3cret", true)])
        #expect(put.status == .created)
        let detail = try #require(v.details.values.first)
        return (admin, v, try #require(detail.fields.first?.id))
    }

    /// Runs `body` with a fresh SQLite store, closed afterwards whether it threw or not.
    func withSQLiteStore(readAuditDelay: Duration = .milliseconds(50), _ body: (SQLiteLatchStore) async throws -> Void) async throws {
        let store = try await SQLiteLatchStore.open(path: try tempDir() + "/latch.sqlite", readAuditDelay: readAuditDelay)
        do { try await body(store) } catch {
            await store.close()
            throw error
        }
        await store.close()
    }

    @Test("concurrent field reads on SQLite: every read audited through the journal, the chain verifiable")
    func concurrentReadsAudited() async throws {
        try await withSQLiteStore { store in
            try await withHarness(store: store) { h in
                let (admin, v, fieldId) = try await seed(h)
                let before = try await store.auditEvents(AuditFilter(action: "field.read", limit: 10_000)).count
                let n = 48
                let statuses = try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { g in
                    for _ in 0..<n { g.addTask { try await h.call(.get, LatchRoutes.field(v.id, fieldId), key: admin.apiKey).status } }
                    return try await g.reduce(into: []) { $0.append($1) }
                }
                #expect(statuses == Array(repeating: .ok, count: n))
                let reads = try await store.auditEvents(AuditFilter(action: "field.read", limit: 10_000))
                #expect(reads.count - before == n)
                #expect(reads.allSatisfy { $0.assetId == fieldId && $0.principalId == admin.id && $0.outcome == "success" })
                let total = try await verifyAuditChain(store)
                #expect(total >= n)
                // More than 100 events in one batch (the SQLite insert's chunk size) still chain.
                let drafts = (0..<250).map { i in
                    AuditDraft(time: Date(), tenantId: nil, action: "test.batch", outcome: "success", principalId: nil, accessKey: nil, detail: "\(i)")
                }
                let appended = try await store.write { try await $0.appendAudit(drafts) }
                #expect(appended.map(\.seq) == Array(Int64(total + 1)...Int64(total + 250)))
                #expect(try await verifyAuditChain(store) == total + 250)
            }
        }
    }

    @Test("field read access: direct grant, group grant, no grant, wrong vault")
    func fieldReadAccess() async throws {
        try await withHarness { h in
            let (admin, v, fieldId) = try await seed(h)
            let direct = try await h.createAgent(admin, name: "direct", key: Keys.pool[1])
            let viaGroup = try await h.createAgent(admin, name: "grouped", key: Keys.pool[2])
            let outsider = try await h.createAgent(admin, name: "outsider", key: Keys.pool[3])
            let path = LatchRoutes.field(v.id, fieldId)

            #expect(try await h.call(.get, path, key: direct.apiKey).status == .notFound)
            let g = try await h.call(.post, LatchRoutes.groups, key: admin.apiKey, body: CreateGroupRequest(name: "readers"))
            #expect(g.status == .created)
            let group = try g.decode(GroupInfo.self)
            #expect(try await h.call(.put, LatchRoutes.groupMembers(group.id), key: admin.apiKey,
                                     body: SetGroupMembersRequest(members: [viaGroup.id])).status == .ok)
            #expect(try await h.grant(admin, vault: v.id, [
                PermissionEntry(granteeType: "AGENT", granteeId: direct.id, level: "READ"),
                PermissionEntry(granteeType: "GROUP", granteeId: group.id, level: "READ"),
            ]).status == .ok)

            #expect(try await h.call(.get, path, key: direct.apiKey).status == .ok)
            #expect(try await h.call(.get, path, key: viaGroup.apiKey).status == .ok)
            #expect(try await h.call(.get, path, key: outsider.apiKey).status == .notFound)
            #expect(try await h.call(.get, path, key: admin.apiKey).status == .ok)
            // The field exists, but not in this vault.
            let (other, _) = try await h.createVault(admin, name: "other")
            #expect(try await h.call(.get, LatchRoutes.field(other.id, fieldId), key: admin.apiKey).status == .notFound)
        }
    }

    @Test("on SQLite a read's audit event is in the journal before the response leaves, with no commit on the read's path")
    func readAuditJournaled() async throws {
        try await withSQLiteStore(readAuditDelay: .seconds(3600)) { store in   // no round runs by itself
            let recording = DurabilityRecordingStore(store, journal: true)
            try await withHarness(store: recording) { h in
                let (admin, v, fieldId) = try await seed(h)
                let dir = URL(fileURLWithPath: store.path).deletingLastPathComponent().path
                func journalLines() throws -> [String] {
                    try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.contains("-audit-") }.flatMap {
                        try String(contentsOfFile: dir + "/" + $0, encoding: .utf8).split(separator: "\n").map(String.init)
                    }
                }
                try await store.flushReadAudit()
                _ = recording.taken()
                #expect(try await h.call(.get, LatchRoutes.field(v.id, fieldId), key: admin.apiKey).status == .ok)
                #expect(recording.taken().isEmpty)   // no write transaction waited on by the read
                let lines = try journalLines().filter { $0.contains("\"field.read\"") }
                #expect(lines.count == 1 && lines.first?.contains(fieldId) == true)
                #expect(try await store.read { try await $0.auditEvents(AuditFilter(action: "field.read")) }.isEmpty)   // not committed yet
                let reads = try await store.auditEvents(AuditFilter(action: "field.read", limit: 10))
                #expect(reads.count == 1 && reads.first?.assetId == fieldId && reads.first?.principalId == admin.id)
                // Its line may stay in the (mapped) file until the file is rotated; it is moved once.
                try await store.flushReadAudit()
                #expect(try await store.auditEvents(AuditFilter(action: "field.read", limit: 10)).count == 1)
                #expect(try await verifyAuditChain(store) > 1)
            }
        }
    }

    @Test("without a read-audit journal, read-audit batches commit deferred (visible at once, flushed in the background); writes and refusals stay full")
    func readAuditDurability() async throws {
        try await withSQLiteStore { store in
            let recording = DurabilityRecordingStore(store)
            try await withHarness(store: recording) { h in
                let (admin, v, fieldId) = try await seed(h)
                #expect(recording.taken().allSatisfy { $0 == .full })   // seeding: writes only
                let flushesBefore = store.durableFlushes

                #expect(try await h.call(.get, LatchRoutes.field(v.id, fieldId), key: admin.apiKey).status == .ok)
                #expect(recording.taken() == [.deferred])
                // Committed before the response left: visible to a fresh read, chained, verified.
                let reads = try await store.auditEvents(AuditFilter(action: "field.read", limit: 10))
                #expect(reads.count == 1 && reads.first?.assetId == fieldId)
                #expect(try await verifyAuditChain(store) > 1)
                // The background flush makes it durable (0.1 s after the commit; slack for a loaded machine).
                let deadline = Date().addingTimeInterval(3.0)
                while store.deferredCommitsPending || store.durableFlushes == flushesBefore, Date() < deadline {
                    try await Task.sleep(for: .milliseconds(20))
                }
                #expect(!store.deferredCommitsPending)
                #expect(store.durableFlushes == flushesBefore + 1)

                // A refused write's audit row is not a read's: committed with full durability.
                let agent = try await h.createAgent(admin, name: "no-access", key: Keys.pool[1])
                _ = recording.taken()
                var v2 = v
                #expect(try await h.putItem(agent, &v2, name: "nope", fields: [("k", "v", true)]).status != .created)
                let refused = recording.taken()
                #expect(!refused.isEmpty && refused.allSatisfy { $0 == .full })
            }
        }
    }

    /// The stores read reuse is tested on: SQLite (its WAL index is the commit version) and,
    /// when `LATCH_TEST_DATABASE_URL` is set, PostgreSQL (the audit group commit checks the data
    /// version). The PostgreSQL case says why when it is skipped.
    static let reuseStores = ["SQLite", "PostgreSQL"]

    /// A harness on a fresh store of `kind` seen through `ReadCountingStore`. SQLite's read-audit
    /// journal rounds commit too (and so end every reuse); here they wait a minute.
    func withCountingHarness(_ kind: String, _ body: @Sendable (Harness, ReadCountingStore, any LatchStore) async throws -> Void) async throws {
        if kind == "SQLite" {
            return try await withSQLiteStore(readAuditDelay: .seconds(60)) { sqlite in
                let store = ReadCountingStore(sqlite)
                try await withHarness(store: store) { h in try await body(h, store, sqlite) }
            }
        }
        guard let url = ProcessInfo.processInfo.environment["LATCH_TEST_DATABASE_URL"], !url.isEmpty else {
            print("skipped on PostgreSQL: LATCH_TEST_DATABASE_URL is not set (.ci/run starts a database and sets it)")
            return
        }
        var config = try PostgresStoreConfiguration(url: url)
        config.schema = "latch_read_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        config.poolSize = 4
        config.lockTimeout = .seconds(120); config.acquireTimeout = .seconds(60); config.queryTimeout = .seconds(120)
        let pg = try await PostgresLatchStore.open(config)
        let store = ReadCountingStore(pg)
        do { try await withHarness(store: store) { h in try await body(h, store, pg) } } catch { Issue.record(error) }
        try? await pg.dropSchemaForTesting()
        await pg.close()
    }

    @Test("a field or item read is reused until anything commits; each is audited, and a lost grant applies at once",
          arguments: reuseStores)
    func readCacheUntilNextCommit(_ kind: String) async throws {
        try await withCountingHarness(kind) { h, store, inner in
            let (admin, seeded, fieldId) = try await seed(h)
            var v = seeded
            let itemId = try #require(v.details.keys.first)
            let agent = try await h.createAgent(admin, name: "reader", key: Keys.pool[1])
            let both = [PermissionEntry(granteeType: "USER", granteeId: admin.id, level: "ADMIN"),
                        PermissionEntry(granteeType: "AGENT", granteeId: agent.id, level: "READ")]
            #expect(try await h.grant(admin, vault: v.id, both).status == .ok)
            let field = LatchRoutes.field(v.id, fieldId), item = LatchRoutes.vaultItem(v.id, itemId)
            let first = try await h.call(.get, field, key: agent.apiKey)
            #expect(first.status == .ok)
            // Twice each before counting: on PostgreSQL a result is kept only once the server
            // has seen the data version before the read (from an earlier audit batch).
            let firstItem = try await h.call(.get, item, key: agent.apiKey)
            #expect(firstItem.status == .ok)
            #expect(try await h.call(.get, item, key: agent.apiKey).data == firstItem.data)
            #expect(try await h.call(.get, field, key: agent.apiKey).data == first.data)
            let before = store.reads
            for _ in 0..<5 {
                let again = try await h.call(.get, field, key: agent.apiKey)
                #expect(again.status == .ok && again.data == first.data)
                let itemAgain = try await h.call(.get, item, key: agent.apiKey)
                #expect(itemAgain.status == .ok && itemAgain.data == firstItem.data)
            }
            #expect(store.reads == before, "ten repeated reads with nothing committed ran \(store.reads - before) read transactions")

            // A new value: the next read is a fresh one.
            #expect(try await h.putItem(admin, &v, itemId: itemId, name: "db", fields: [("password", "n3w", true)]).status == .ok)
            let changed = try await h.call(.get, field, key: agent.apiKey)
            #expect(changed.status == .ok && changed.data != first.data)
            #expect(store.reads == before + 1)
            let changedItem = try await h.call(.get, item, key: agent.apiKey)   // its answer made afresh too
            #expect(changedItem.status == .ok && changedItem.data != firstItem.data)
            #expect(store.reads == before + 2)

            // The agent's grant removed: refused at once, though its read was just reused.
            #expect(try await h.call(.get, field, key: agent.apiKey).status == .ok)
            #expect(store.reads == before + 2)
            #expect(try await h.grant(admin, vault: v.id, [both[0]]).status == .ok)
            #expect(try await h.call(.get, field, key: agent.apiKey).status == .notFound)
            #expect(try await h.call(.get, item, key: agent.apiKey).status == .notFound)

            // One event per request, reused or not.
            try await inner.flushReadAudit()
            let events = try await inner.auditEvents(AuditFilter(principalId: agent.id, limit: 1_000))
            #expect(events.filter { $0.action == "field.read" }.map(\.outcome) == Array(repeating: "success", count: 9) + ["not_found"])
            #expect(events.filter { $0.action == "item.read" }.map(\.outcome) == Array(repeating: "success", count: 8) + ["not_found"])
            #expect(try await verifyAuditChain(inner) == (try await inner.auditEvents(AuditFilter(limit: 10_000))).count)
        }
    }

    @Test("a commit landing between a read and its reuse check: that read's result is never reused", arguments: reuseStores)
    func commitDuringAReadIsNotReused(_ kind: String) async throws {
        try await withCountingHarness(kind) { h, store, inner in
            let (admin, v, fieldId) = try await seed(h)
            let path = LatchRoutes.field(v.id, fieldId)
            func served() async throws -> String {
                let r = try await h.call(.get, path, key: admin.apiKey)
                #expect(r.status == .ok)
                return try r.decode(FieldResponse.self).field.value
            }
            let original = try await served()
            // The next read transaction, once it has read, lets a write commit a new envelope
            // before `LatchService` checks the version again.
            store.afterNextRead = {
                try await inner.write { tx in
                    guard var f = try await tx.field(fieldId) else { throw StoreError(.corrupt, "no field \(fieldId)") }
                    f.envelope = "replaced"
                    try await tx.putField(f)
                }
            }
            _ = try await inner.write { try await $0.setSetting("unrelated", "1") }   // ends the first read's reuse
            #expect(try await served() == original, "the interleaved read returns its own snapshot")
            #expect(try await served() == "replaced", "the read that raced the commit was reused")
        }
    }

    @Test("removing an agent stops its (cached) API key on the next request")
    func removedAgentStopsAtOnce() async throws {
        try await withHarness { h in
            let (admin, v, fieldId) = try await seed(h)
            let agent = try await h.createAgent(admin, name: "temp", key: Keys.pool[1])
            #expect(try await h.grant(admin, vault: v.id, [PermissionEntry(granteeType: "AGENT", granteeId: agent.id, level: "READ")]).status == .ok)
            #expect(try await h.call(.get, LatchRoutes.field(v.id, fieldId), key: agent.apiKey).status == .ok)   // now cached
            #expect(try await h.call(.delete, LatchRoutes.agent(agent.id), key: admin.apiKey).status == .ok)
            #expect(try await h.call(.get, LatchRoutes.field(v.id, fieldId), key: agent.apiKey).status == .unauthorized)
            #expect(try await h.call(.get, LatchRoutes.me, key: agent.apiKey).status == .unauthorized)
        }
    }
}

/// Passes everything to a store and records the durability of each write transaction.
/// With `journal: false` it hides the inner store's read-audit journal (the group-commit path).
final class DurabilityRecordingStore: LatchStore, @unchecked Sendable {
    let inner: any LatchStore
    let journal: Bool
    private let lock = NSLock()
    private var seen: [CommitDurability] = []
    init(_ inner: any LatchStore, journal: Bool = false) { self.inner = inner; self.journal = journal }
    var readAuditJournal: (any ReadAuditJournal)? { journal ? inner.readAuditJournal : nil }
    func flushReadAudit() async throws { try await inner.flushReadAudit() }
    /// The durabilities recorded since the last call.
    func taken() -> [CommitDurability] { lock.withLock { let s = seen; seen = []; return s } }
    func read<T: Sendable>(_ body: @Sendable (any StoreTransaction) async throws -> T) async throws -> T { try await inner.read(body) }
    func write<T: Sendable>(_ body: @Sendable (any StoreTransaction) async throws -> T) async throws -> T {
        try await write(durability: .full, body)
    }
    func write<T: Sendable>(durability: CommitDurability, _ body: @Sendable (any StoreTransaction) async throws -> T) async throws -> T {
        lock.withLock { seen.append(durability) }
        return try await inner.write(durability: durability, body)
    }
}

/// The field read's hand-written response JSON reads back as what the generic encoder writes.
@Suite struct FieldResponseEncodingTests {
    @Test("FieldResponse.jsonData decodes to the same values as LatchJSON.encoder's output")
    func sameAsEncoder() throws {
        let awkward = "q\" b\\ s/ nl\n tab\t cr\r nul\u{00} esc\u{1b} é 中 🙂 \u{2028}"
        for (i, s) in ["plain", awkward, ""].enumerated() {
            let r = FieldResponse(vaultId: "v" + s, itemId: "i" + s, itemName: s,
                                  field: FieldInfo(id: "f" + s, itemId: "i" + s, name: s, type: "SECRET", order: i - 1,
                                                   isEnvironmentVariable: i == 1, value: "age1" + s),
                                  detailCheckpoint: "{\"signed\":\"" + s + "\"}")
            let fast = try JSONSerialization.jsonObject(with: r.jsonData()) as? NSDictionary
            let generic = try JSONSerialization.jsonObject(with: LatchJSON.encoder().encode(r)) as? NSDictionary
            #expect(fast != nil && fast == generic)
            let back = try LatchJSON.decoder().decode(FieldResponse.self, from: r.jsonData())
            #expect(back.detailCheckpoint == r.detailCheckpoint && back.itemName == s && back.field == r.field)
        }
        // Key order as the sorted-keys encoder writes it.
        let r = FieldResponse(vaultId: "v", itemId: "i", itemName: "n",
                              field: FieldInfo(id: "f", itemId: "i", name: "n", type: "t", order: 0, isEnvironmentVariable: false, value: "x"),
                              detailCheckpoint: "d")
        #expect(r.jsonData() == (try LatchJSON.encoder().encode(r)))
    }
}

/// Passes everything to a store (its commit version included) and counts read transactions.
final class ReadCountingStore: LatchStore, @unchecked Sendable {
    let inner: any LatchStore
    private let lock = NSLock()
    private var count = 0
    init(_ inner: any LatchStore) { self.inner = inner }
    var reads: Int { lock.withLock { count } }
    /// Runs once, after the next read transaction has returned and before its caller goes on.
    var afterNextRead: (@Sendable () async throws -> Void)? {
        get { lock.withLock { hook } }
        set { lock.withLock { hook = newValue } }
    }
    private var hook: (@Sendable () async throws -> Void)?
    var readAuditJournal: (any ReadAuditJournal)? { inner.readAuditJournal }
    func flushReadAudit() async throws { try await inner.flushReadAudit() }
    func commitVersion() -> UInt64? { inner.commitVersion() }
    func read<T: Sendable>(_ body: @Sendable (any StoreTransaction) async throws -> T) async throws -> T {
        let then = lock.withLock { () -> (@Sendable () async throws -> Void)? in
            count += 1
            defer { hook = nil }
            return hook
        }
        let result = try await inner.read(body)
        try await then?()
        return result
    }
    func write<T: Sendable>(_ body: @Sendable (any StoreTransaction) async throws -> T) async throws -> T { try await inner.write(body) }
    func write<T: Sendable>(durability: CommitDurability, _ body: @Sendable (any StoreTransaction) async throws -> T) async throws -> T {
        try await inner.write(durability: durability, body)
    }
    func appendAuditBatch(_ drafts: [AuditDraft], expecting: [UInt64?], durability: CommitDurability) async throws -> AuditBatchResult {
        try await inner.appendAuditBatch(drafts, expecting: expecting, durability: durability)
    }
}

