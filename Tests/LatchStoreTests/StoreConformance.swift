import Foundation
import LatchDomain
import Testing

/// The store under test, as a thin suite opens it: the handles open on one fresh, empty
/// database (several for a store that replicas share), and for a durable store what it takes
/// to reopen it. The suite closes whatever it opened when the case ends.
struct StoreUnderTest: Sendable {
    struct Durable: Sendable {
        /// The newest schema migration the store's code knows.
        var newestMigration: Int
        /// The schema version a handle reports (what `schema_migrations` records).
        var schemaVersion: @Sendable (any LatchStore) async throws -> Int
        /// Closes every handle open so far and opens a new one on the same database.
        var reopen: @Sendable () async throws -> any LatchStore
    }
    var stores: [any LatchStore]
    /// nil for the in-memory twin: it keeps nothing once closed.
    var durable: Durable?
    var store: any LatchStore { stores[0] }
}

/// Closes, once, every handle a thin suite opened.
actor OpenHandles {
    private var open: [(store: any LatchStore, close: @Sendable () async -> Void)] = []
    func add(_ store: any LatchStore, close: @escaping @Sendable () async -> Void) { open.append((store, close)) }
    /// The handle opened last, while it is open.
    var latest: (any LatchStore)? { open.last?.store }
    func closeAll() async {
        let all = open
        open = []
        for h in all { await h.close() }
    }
}

/// The one storage conformance suite: each case is written once against `any LatchStore` and
/// checks behaviour the domain relies on. `MemoryConformanceTests`, `SQLiteConformanceTests`
/// and `PostgresConformanceTests` run every case against their store.
enum StoreConformance {
    struct Boom: Error, Equatable {}

    enum Case: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case rows, lineage, settings, auditChain, auditBatch, auditGroupCommit, changeLog, rollback, readOnly, concurrentWriters, reopen
        var testDescription: String { rawValue }
        /// Cases that need a store that keeps its data across a reopen (not the in-memory twin).
        var needsDurableStore: Bool { self == .reopen }

        func run(_ s: StoreUnderTest) async throws {
            switch self {
            case .rows: try await StoreConformance.rows(s.store)
            case .lineage: try await StoreConformance.lineage(s.store)
            case .settings: try await StoreConformance.settings(s.store)
            case .auditChain: try await StoreConformance.auditChain(s.store)
            case .auditBatch: try await StoreConformance.auditBatch(s.store)
            case .auditGroupCommit: try await StoreConformance.auditGroupCommit(s.stores)
            case .changeLog: try await StoreConformance.changeLog(s.store)
            case .rollback: try await StoreConformance.rollback(s.store)
            case .readOnly: try await StoreConformance.readOnly(s.store)
            case .concurrentWriters: try await StoreConformance.concurrentWriters(s.stores)
            case .reopen:
                let durable = try #require(s.durable, "the reopen case needs a durable store")
                try await StoreConformance.reopen(s.store, durable)
            }
        }
    }

    static func row(_ id: String, t: String? = "t1", p: String? = nil, l: String? = nil, doc: String = "{}") -> StoreRow {
        StoreRow(id: id, tenantId: t, parentId: p, lookup: l, doc: doc)
    }

    /// insert / put / get / find / delete, NULL lookup columns, byte-order sorting.
    static func rows(_ s: any LatchStore) async throws {
        let inserted = try await s.write { tx in
            [try await tx.insert(.vaults, row("v1", p: "proj", l: "x", doc: #"{"n":1}"#)),
             try await tx.insert(.vaults, row("v1", p: "other", doc: #"{"n":2}"#))]
        }
        #expect(inserted == [true, false])
        let v1 = try await s.read { tx in try await tx.get(.vaults, id: "v1") }
        #expect(v1 == row("v1", p: "proj", l: "x", doc: #"{"n":1}"#), "a refused insert must change nothing")
        #expect(try await s.read { tx in try await tx.get(.vaults, id: "missing") } == nil)
        #expect(try await s.read { tx in try await tx.get(.items, id: "v1") } == nil, "tables are separate")

        try await s.write { tx in
            try await tx.put(.vaults, row("v1", t: nil, p: nil, l: nil, doc: #"{"n":3}"#))
            // Byte order: "B" (0x42) < "_" (0x5f) < "a" (0x61) < "é" (0xc3…), unlike most locales.
            for id in ["a", "_", "é", "B"] { try await tx.put(.items, row(id, p: "vault", l: id == "a" ? "look" : nil)) }
            try await tx.put(.items, row("zz", t: "t2", p: "vault2"))
        }
        let replaced = try await s.read { tx in try await tx.get(.vaults, id: "v1") }
        #expect(replaced == row("v1", t: nil, p: nil, l: nil, doc: #"{"n":3}"#), "put replaces every column, NULLs included")
        #expect(try await s.read { tx in try await tx.find(.vaults, .parentId, "proj") }.isEmpty, "the lookup columns follow a replaced row")
        #expect(try await s.read { tx in try await tx.find(.vaults, .lookup, "x") }.isEmpty)
        #expect(try await s.read { tx in try await tx.find(.vaults, .tenantId, "t1") }.isEmpty)
        let byParent = try await s.read { tx in try await tx.find(.items, .parentId, "vault") }
        #expect(byParent.map(\.id) == ["B", "_", "a", "é"])
        #expect(try await s.read { tx in try await tx.find(.items, .tenantId, "t1") }.map(\.id) == ["B", "_", "a", "é"])
        #expect(try await s.read { tx in try await tx.find(.items, .tenantId, "t2") }.map(\.id) == ["zz"])
        #expect(try await s.read { tx in try await tx.find(.items, .lookup, "look") }.map(\.id) == ["a"])
        #expect(try await s.read { tx in try await tx.find(.items, .lookup, "nope") }.isEmpty)

        try await s.write { tx in
            try await tx.delete(.items, id: "_")
            try await tx.delete(.items, id: "never-existed")
        }
        #expect(try await s.read { tx in try await tx.find(.items, .parentId, "vault") }.map(\.id) == ["B", "a", "é"])

        // Documents round-trip byte for byte (JSON with escapes and non-ASCII).
        let doc = #"{"name":"caf\u00e9 \"q\"","emoji":"🔑","nl":"a\nb"}"#
        try await s.write { tx in try await tx.put(.fields, row("f", doc: doc)) }
        #expect(try await s.read { tx in try await tx.get(.fields, id: "f") }?.doc == doc)
    }

    /// `getLineage`: a row, then its parent in the next table, and so on (a field read's one
    /// round trip); stops at the first missing row.
    static func lineage(_ s: any LatchStore) async throws {
        try await s.write { tx in
            try await tx.put(.vaults, row("v", p: "proj", doc: #"{"vault":1}"#))
            try await tx.put(.items, row("i", p: "v", doc: #"{"item":1}"#))
            try await tx.put(.fields, row("f", p: "i", doc: #"{"field":1}"#))
            try await tx.put(.fields, row("orphan", p: "gone"))
        }
        let all = try await s.read { tx in try await tx.getLineage([.fields, .items, .vaults], id: "f") }
        #expect(all == [row("f", p: "i", doc: #"{"field":1}"#), row("i", p: "v", doc: #"{"item":1}"#), row("v", p: "proj", doc: #"{"vault":1}"#)])
        #expect(try await s.read { tx in try await tx.getLineage([.items, .vaults], id: "i") }.map(\.id) == ["i", "v"])
        #expect(try await s.read { tx in try await tx.getLineage([.fields, .items, .vaults], id: "orphan") }.map(\.id) == ["orphan"])
        #expect(try await s.read { tx in try await tx.getLineage([.fields, .items, .vaults], id: "unknown") }.isEmpty)
        // rows follow a write in the same transaction
        let inTx = try await s.write { tx in
            try await tx.put(.items, row("i", p: "v", doc: #"{"item":2}"#))
            return try await tx.getLineage([.fields, .items], id: "f")
        }
        #expect(inTx.last?.doc == #"{"item":2}"#)
    }

    static func settings(_ s: any LatchStore) async throws {
        #expect(try await s.read { tx in try await tx.setting("k") } == nil)
        try await s.write { tx in try await tx.setSetting("k", "one") }
        #expect(try await s.read { tx in try await tx.setting("k") } == "one")
        try await s.write { tx in try await tx.setSetting("k", "two") }
        #expect(try await s.read { tx in try await tx.setting("k") } == "two")
        try await s.write { tx in try await tx.setSetting("k", nil) }
        #expect(try await s.read { tx in try await tx.setting("k") } == nil)
    }

    /// The audit chain through the primitives: append, filter, events back exactly as appended
    /// (times to the millisecond), and a sequence number already taken is refused.
    static func auditChain(_ s: any LatchStore) async throws {
        let base = Date(timeIntervalSince1970: 1_700_000_000.123)
        try await s.write { tx in
            for i in 0..<6 {
                try await tx.appendAudit(time: base.addingTimeInterval(Double(i) * 60), tenantId: i % 2 == 0 ? "ta" : "tb",
                                         action: i < 3 ? "vault.read" : "vault.write", outcome: i == 4 ? "forbidden" : "success",
                                         principalId: "p\(i % 3)", accessKey: "lk_\(i)", assetType: "VAULT", assetId: "v\(i % 2)",
                                         source: "127.0.0.1", detail: i == 5 ? "note \"quoted\"" : nil)
            }
        }
        #expect(try await verifyAuditChain(s) == 6)
        let last = try await s.read { tx in try await tx.lastAuditEvent() }
        #expect(last?.seq == 6)
        #expect(last?.detail == "note \"quoted\"")
        func seqs(_ f: AuditFilter) async throws -> [Int64] { try await s.read { tx in try await tx.auditEvents(f) }.map(\.seq) }
        #expect(try await seqs(AuditFilter()) == [1, 2, 3, 4, 5, 6])
        #expect(try await seqs(AuditFilter(tenantId: "ta")) == [1, 3, 5])
        #expect(try await seqs(AuditFilter(afterSeq: 2, action: "vault.read")) == [3])
        #expect(try await seqs(AuditFilter(principalId: "p1")) == [2, 5])
        #expect(try await seqs(AuditFilter(assetId: "v0", outcome: "forbidden")) == [5])
        #expect(try await seqs(AuditFilter(since: base.addingTimeInterval(180))) == [4, 5, 6])
        #expect(try await seqs(AuditFilter(afterSeq: 1, limit: 2)) == [2, 3])
        // Events come back exactly as appended (the chain recomputes from them).
        let events = try await s.read { tx in try await tx.auditEvents(AuditFilter()) }
        #expect(events.allSatisfy { (try? AuditChain.hash(of: $0)) == $0.hash })
        #expect(events.first.map { AuditChain.millis($0.time) } == 1_700_000_000_123, "times keep their milliseconds")
        // A second event with a sequence number already in the chain is refused, and changes nothing.
        for taken in [Int64(1), 6] {
            let refused = await #expect(throws: StoreError.self, "seq \(taken) is taken") {
                try await s.write { tx in
                    let e = AuditEvent(seq: taken, tenantId: "ta", time: base, action: "dup", outcome: "success", principalId: nil,
                                       accessKey: nil, assetType: nil, assetId: nil, source: nil, detail: nil,
                                       prevHash: AuditChain.genesis, hash: "")
                    try await tx.appendAuditEvent(e)
                }
            }
            #expect(refused?.kind == .constraint, "\(String(describing: refused))")
        }
        #expect(try await verifyAuditChain(s) == 6)
        #expect(try await s.read { tx in try await tx.auditEvents(AuditFilter(action: "dup")) }.isEmpty)
    }

    /// `appendAuditEvents`: a batch lands in order and continues the chain; a batch with a
    /// sequence number already taken writes nothing.
    static func auditBatch(_ s: any LatchStore) async throws {
        let base = Date(timeIntervalSince1970: 1_700_000_000)
        func drafts(_ n: Int, from k: Int) -> [AuditDraft] {
            (0..<n).map { i in
                AuditDraft(time: base.addingTimeInterval(Double(k + i)), tenantId: "ta", action: "field.read", outcome: "success",
                           principalId: "p", accessKey: "lk", assetType: "FIELD", assetId: "f\(k + i)", source: "127.0.0.1", detail: nil)
            }
        }
        func chain(_ ds: [AuditDraft], after last: AuditEvent?) throws -> [AuditEvent] {
            var tail = last.map { (seq: $0.seq, hash: $0.hash) }
            return try ds.map { d in
                let e = try d.chained(after: tail)
                tail = (e.seq, e.hash)
                return e
            }
        }
        try await s.write { tx in try await tx.appendAuditEvents([]) }
        #expect(try await s.read { tx in try await tx.lastAuditEvent() } == nil, "an empty batch writes nothing")
        let one = try chain(drafts(1, from: 0), after: nil)
        try await s.write { tx in try await tx.appendAuditEvents(one) }
        let big = try chain(drafts(260, from: 1), after: one.last)   // more than one statement's chunk
        try await s.write { tx in try await tx.appendAuditEvents(big) }
        #expect(try await verifyAuditChain(s) == 261)
        #expect(try await s.read { tx in try await tx.lastAuditEvent() } == big.last)
        let back = try await s.read { tx in try await tx.auditEvents(AuditFilter(limit: 1000)) }
        #expect(back == one + big, "events come back in order, exactly as appended")
        // a batch that reuses sequence number 261 (and would add 262) is refused whole
        let clash = try chain(drafts(2, from: 900), after: big.dropLast().last)
        await #expect(throws: StoreError.self) { try await s.write { tx in try await tx.appendAuditEvents(clash) } }
        #expect(try await verifyAuditChain(s) == 261)
        #expect(try await s.read { tx in try await tx.lastAuditEvent() } == big.last)
    }

    /// `appendAuditBatch` (the audit group commit): each batch is chained on the chain's tail
    /// as it is when it lands, whoever moved it (a write transaction, another handle), comes
    /// back exactly as stored, and a batch of several hundred lands whole.
    static func auditGroupCommit(_ stores: [any LatchStore]) async throws {
        let s = stores[0]
        let base = Date(timeIntervalSince1970: 1_700_000_000.25)
        func drafts(_ n: Int, _ tag: String) -> [AuditDraft] {
            (0..<n).map { i in
                AuditDraft(time: base.addingTimeInterval(Double(i)), tenantId: "tg", action: "field.read", outcome: "success",
                           principalId: "p", accessKey: "lk", assetType: "FIELD", assetId: "\(tag)\(i)", source: "127.0.0.1",
                           detail: i % 2 == 0 ? nil : "d\"\u{e9}\(i)")
            }
        }
        #expect(try await s.appendAuditBatch([], durability: .full).isEmpty)
        #expect(try await s.read { tx in try await tx.lastAuditEvent() } == nil, "an empty batch writes nothing")
        let first = try await s.appendAuditBatch(drafts(3, "a"), durability: .full)
        #expect(first.map(\.seq) == [1, 2, 3])
        #expect(first.map(\.assetId) == ["a0", "a1", "a2"], "in the drafts' order")
        #expect(first[0].prevHash == AuditChain.genesis && first[1].prevHash == first[0].hash)
        // a write transaction moves the tail; the next batch chains on it
        let mid = try await s.write { tx in
            try await tx.appendAudit(time: base, tenantId: "tg", action: "vault.create", outcome: "success", principalId: "p", accessKey: nil)
        }
        let second = try await s.appendAuditBatch(drafts(2, "b"), durability: .deferred)
        #expect(mid.seq == 4 && second.map(\.seq) == [5, 6] && second[0].prevHash == mid.hash)
        // another handle (a replica) moves it; the first handle's next batch still chains on it
        let other = try await stores[stores.count - 1].appendAuditBatch(drafts(1, "c"), durability: .full)
        let third = try await s.appendAuditBatch(drafts(2, "d"), durability: .deferred)
        #expect(other[0].seq == 7 && other[0].prevHash == second[1].hash)
        #expect(third.map(\.seq) == [8, 9] && third[0].prevHash == other[0].hash)
        let big = try await s.appendAuditBatch(drafts(620, "e"), durability: .full)
        #expect(big.first?.seq == 10 && big.last?.seq == 629)
        let back = try await s.read { tx in try await tx.auditEvents(AuditFilter(limit: 1000)) }
        #expect(back == first + [mid] + second + other + third + big, "events come back exactly as returned")
        // handles racing: every batch lands whole, chained, none lost
        try await withThrowingTaskGroup(of: Int.self) { g in
            for i in 0..<24 {
                let h = stores[i % stores.count]
                g.addTask { try await h.appendAuditBatch(drafts(1 + i % 5, "r\(i)"), durability: i % 3 == 0 ? .full : .deferred).count }
            }
            var n = 0
            for try await c in g { n += c }
            #expect(n == (0..<24).map { 1 + $0 % 5 }.reduce(0, +))
        }
        #expect(try await verifyAuditChain(s) == 629 + (0..<24).map { 1 + $0 % 5 }.reduce(0, +))
    }

    static func changeLog(_ s: any LatchStore) async throws {
        let seqs = try await s.write { tx in
            [try await tx.appendChange(tenantId: "ta", kind: .vault, entityId: "v1", vaultId: "v1"),
             try await tx.appendChange(tenantId: "tb", kind: .item, entityId: "i1", vaultId: "v9"),
             try await tx.appendChange(tenantId: "ta", kind: .fieldDeleted, entityId: "f1", vaultId: nil)]
        }
        #expect(seqs[0] < seqs[1] && seqs[1] < seqs[2], "sequence numbers increase: \(seqs)")
        let more = try await s.write { tx in try await tx.appendChange(tenantId: "ta", kind: .grant, entityId: "g", vaultId: nil) }
        #expect(more > seqs[2])
        let ta = try await s.read { tx in try await tx.changes(tenantId: "ta", afterSeq: 0, limit: 100) }
        #expect(ta == [ChangeRecord(seq: seqs[0], tenantId: "ta", kind: .vault, entityId: "v1", vaultId: "v1"),
                       ChangeRecord(seq: seqs[2], tenantId: "ta", kind: .fieldDeleted, entityId: "f1", vaultId: nil),
                       ChangeRecord(seq: more, tenantId: "ta", kind: .grant, entityId: "g", vaultId: nil)])
        #expect(try await s.read { tx in try await tx.changes(tenantId: "ta", afterSeq: seqs[0], limit: 1) }.map(\.seq) == [seqs[2]])
        #expect(try await s.read { tx in try await tx.lastChangeSeq(tenantId: "ta") } == more)
        #expect(try await s.read { tx in try await tx.lastChangeSeq(tenantId: "tb") } == seqs[1])
        #expect(try await s.read { tx in try await tx.lastChangeSeq(tenantId: "none") } == 0)
        // A rolled-back change never shows, and its number is not handed out again.
        await #expect(throws: Boom.self) {
            try await s.write { tx in
                _ = try await tx.appendChange(tenantId: "ta", kind: .item, entityId: "lost", vaultId: nil)
                throw Boom()
            }
        }
        let after = try await s.write { tx in try await tx.appendChange(tenantId: "ta", kind: .item, entityId: "kept", vaultId: nil) }
        #expect(after > more)
        #expect(try await s.read { tx in try await tx.changes(tenantId: "ta", afterSeq: more, limit: 10) }.map(\.entityId) == ["kept"])
    }

    /// A write whose body throws leaves nothing behind, and the caller sees the body's error.
    static func rollback(_ s: any LatchStore) async throws {
        try await s.write { tx in try await tx.setSetting("keep", "yes") }
        await #expect(throws: Boom.self) {
            try await s.write { tx in
                _ = try await tx.insert(.vaults, row("rv"))
                try await tx.put(.items, row("ri"))
                try await tx.delete(.vaults, id: "nothing")
                try await tx.setSetting("keep", "changed")
                try await tx.setSetting("new", "x")
                try await tx.appendAudit(time: Date(), tenantId: nil, action: "a", outcome: "success", principalId: nil, accessKey: nil)
                _ = try await tx.appendChange(tenantId: "t", kind: .vault, entityId: "rv", vaultId: "rv")
                throw Boom()
            }
        }
        let (v, i, keep, new, audit, changes) = try await s.read { tx in
            (try await tx.get(.vaults, id: "rv"), try await tx.get(.items, id: "ri"), try await tx.setting("keep"),
             try await tx.setting("new"), try await tx.lastAuditEvent(), try await tx.changes(tenantId: "t", afterSeq: 0, limit: 10))
        }
        #expect(v == nil && i == nil && new == nil && audit == nil && changes.isEmpty)
        #expect(keep == "yes")
        // The store still works afterwards.
        try await s.write { tx in
            try await tx.appendAudit(time: Date(), tenantId: nil, action: "after", outcome: "success", principalId: nil, accessKey: nil)
        }
        #expect(try await verifyAuditChain(s) == 1)
    }

    /// A read transaction refuses writes (the error is the store's) and keeps nothing.
    static func readOnly(_ s: any LatchStore) async throws {
        await #expect(throws: StoreError.self) {
            try await s.read { tx in _ = try await tx.insert(.vaults, row("ro")) }
        }
        #expect(try await s.read { tx in try await tx.get(.vaults, id: "ro") } == nil)
    }

    /// Many concurrent writers (spread over `stores`, which may be several replicas of one
    /// database) each read a versioned document and write the next version only if nobody
    /// moved it, appending an audit event and a change: every version has exactly one winner,
    /// the losers get a clean conflict, and the audit chain and change log stay linear.
    static func concurrentWriters(_ stores: [any LatchStore], writers: Int = 24) async throws {
        let first = stores[0]
        try await first.write { tx in try await tx.setSetting("version", "0") }
        struct Conflict: Error {}
        /// Phase 1: every writer claims version 0 -> 1 (as clients that all fetched version 0).
        /// Phase 2: every writer moves the version from whatever it reads (no lost update).
        func race(conditional: Bool) async -> Int {
            await withTaskGroup(of: Bool.self, returning: Int.self) { group in
                for w in 0..<writers {
                    let s = stores[w % stores.count]
                    group.addTask {
                        do {
                            try await s.write { tx in
                                let current = try await tx.setting("version") ?? "0"
                                if conditional, current != "0" { throw Conflict() }
                                let next = String((Int(current) ?? 0) + 1)
                                try await tx.setSetting("version", next)
                                try await tx.put(.vaults, row("counter-\(next)"))
                                _ = try await tx.appendChange(tenantId: "tc", kind: .vault, entityId: "counter-\(next)", vaultId: nil)
                                try await tx.appendAudit(time: Date(), tenantId: "tc", action: "bump", outcome: "success",
                                                         principalId: "w\(w)", accessKey: nil, assetId: next)
                            }
                            return true
                        } catch is Conflict {
                            return false
                        } catch {
                            Issue.record("writer \(w) failed with an unexpected error: \(error)")
                            return false
                        }
                    }
                }
                var wins = 0
                for await o in group where o { wins += 1 }
                return wins
            }
        }
        let racedWins = await race(conditional: true)
        #expect(racedWins == 1, "exactly one of \(writers) writers claiming version 1 wins, got \(racedWins)")
        let freeWins = await race(conditional: false)
        #expect(freeWins == writers)
        let winners = racedWins + freeWins
        let final = try await first.read { tx in try await tx.setting("version") }
        #expect(final == String(winners), "no lost update: every win moved the version once")
        #expect(try await verifyAuditChain(stores.last ?? first) == winners)
        let changes = try await first.read { tx in try await tx.changes(tenantId: "tc", afterSeq: 0, limit: 1000) }
        #expect(changes.map(\.entityId) == (1...winners).map { "counter-\($0)" }, "change log in commit order")
        let audit = try await first.read { tx in try await tx.auditEvents(AuditFilter(tenantId: "tc")) }
        #expect(audit.map(\.assetId) == (1...winners).map { String($0) }, "audit chain in commit order")
    }

    /// A durable store: the schema is at the newest migration, every table's migration has run,
    /// and a reopened handle runs no migration again and sees everything committed before,
    /// then goes on with the same audit chain and change sequence.
    static func reopen(_ first: any LatchStore, _ d: StoreUnderTest.Durable) async throws {
        let tablesNeed = StoreTable.allCases.map(\.migration).max() ?? 0
        #expect(d.newestMigration >= tablesNeed, "every table's migration (up to \(tablesNeed)) exists")
        #expect(try await d.schemaVersion(first) == d.newestMigration)
        let seq = try await first.write { tx in
            try await tx.put(.items, row("kept", p: "vault", l: "look", doc: #"{"v":"é"}"#))
            try await tx.setSetting("kept", "yes")
            for i in 0..<3 {
                try await tx.appendAudit(time: Date(timeIntervalSince1970: 1_800_000_000.5 + Double(i)), tenantId: "tr",
                                         action: "before.\(i)", outcome: "success", principalId: "p", accessKey: nil)
            }
            return try await tx.appendChange(tenantId: "tr", kind: .item, entityId: "kept", vaultId: "vault")
        }
        let again = try await d.reopen()
        #expect(try await d.schemaVersion(again) == d.newestMigration, "reopening leaves the schema version as it was")
        #expect(try await again.read { tx in try await tx.get(.items, id: "kept") } == row("kept", p: "vault", l: "look", doc: #"{"v":"é"}"#))
        #expect(try await again.read { tx in try await tx.find(.items, .lookup, "look") }.map(\.id) == ["kept"])
        #expect(try await again.read { tx in try await tx.setting("kept") } == "yes")
        #expect(try await verifyAuditChain(again) == 3)
        #expect(try await again.read { tx in try await tx.lastChangeSeq(tenantId: "tr") } == seq)
        try await again.write { tx in
            try await tx.appendAudit(time: Date(), tenantId: "tr", action: "after", outcome: "success", principalId: nil, accessKey: nil)
        }
        #expect(try await verifyAuditChain(again) == 4)
        let next = try await again.write { tx in try await tx.appendChange(tenantId: "tr", kind: .item, entityId: "next", vaultId: nil) }
        #expect(next > seq, "the change sequence goes on after a reopen: \(next) after \(seq)")
    }
}
