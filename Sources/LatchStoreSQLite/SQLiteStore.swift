import Foundation
import LatchDomain
import SQLiteNIO

/// The embedded store: one SQLite file (WAL, synchronous=FULL, foreign keys on), one writer
/// connection (writes are serialised, each in `BEGIN IMMEDIATE … COMMIT`) and a few reader
/// connections (WAL lets them read while a write is in flight). Schema migrations are
/// versioned in code and recorded in `schema_migrations`.
///
/// Each connection has its own thread (SQLite calls block): the writer's commit waits for an
/// fsync (synchronous=FULL), and on a shared pool that wait would stall the readers behind it.
///
/// Durability: every write commits with `synchronous=FULL` (the WAL is fsynced before `write`
/// returns), except a `write(durability: .deferred)` (the group commit of read-audit rows only),
/// which the writer runs with `synchronous=NORMAL`: committed and visible at once, safe if the
/// server process dies, but lost in a power cut or kernel crash until the WAL is next fsynced.
/// After such a commit a background flush runs within `deferredFlushDelay` (0.5 s): one tiny
/// FULL commit (the `sqlite.durable_flushes` setting), whose fsync of the WAL file makes every
/// earlier frame durable; `close()` flushes too. So a read's audit row can be lost to a power
/// loss only within about a second of the read (docs/threat-model.md).
public final class SQLiteLatchStore: LatchStore, Sendable {
    public let path: String
    let writer: Pooled
    let readers: [Pooled]
    let next = Counter()
    let durability = DurabilityState()
    /// How long after a deferred commit the background flush makes it durable.
    public static let deferredFlushDelay: Duration = .milliseconds(500)

    /// The writer's `synchronous` mode and the deferred commits not yet fsynced. `normal` is
    /// only read and changed while holding the writer's lock.
    final class DurabilityState: @unchecked Sendable {
        private let lock = NSLock()
        private var _normal = false
        private var deferred = 0      // deferred commits so far
        private var durable = 0       // of which made durable by a flush
        private var scheduled = false
        private var closed = false
        private var _flushes = 0
        var normal: Bool {
            get { lock.withLock { _normal } }
            set { lock.withLock { _normal = newValue } }
        }
        var pending: Bool { lock.withLock { deferred > durable } }
        var flushes: Int { lock.withLock { _flushes } }
        /// Records a deferred commit; true when the caller must schedule the flush.
        func deferredCommitted() -> Bool { lock.withLock { deferred += 1; return takeSchedule() } }
        /// True when a flush is to be scheduled (pending, none scheduled, not closed).
        func retry() -> Bool { lock.withLock { takeSchedule() } }
        private func takeSchedule() -> Bool {
            if scheduled || closed || deferred <= durable { return false }
            scheduled = true
            return true
        }
        /// Taken by the flush under the writer's lock: the deferred commits it will cover, or
        /// nil when there are none.
        func beginFlush() -> Int? { lock.withLock { scheduled = false; return deferred > durable ? deferred : nil } }
        func flushed(_ upTo: Int) { lock.withLock { durable = max(durable, upTo); _flushes += 1 } }
        func close() { lock.withLock { closed = true } }
    }

    /// Deferred commits not yet made durable by a flush (for tests and diagnostics).
    public var deferredCommitsPending: Bool { durability.pending }
    /// How many background flushes have committed (for tests and diagnostics).
    public var durableFlushes: Int { durability.flushes }

    final class Pooled: Sendable {
        let connection: SQLiteConnection
        let thread: NIOThreadPool
        let lock = AsyncLock()
        init(_ c: SQLiteConnection, _ t: NIOThreadPool) { connection = c; thread = t }

        /// Opens a connection on a fresh one-thread pool.
        static func open(_ path: String) async throws -> Pooled {
            let t = NIOThreadPool(numberOfThreads: 1)
            t.start()
            do {
                let c = try await SQLiteConnection.open(storage: .file(path: path), threadPool: t,
                                                        on: MultiThreadedEventLoopGroup.singleton.any())
                return Pooled(c, t)
            } catch {
                try? await t.shutdownGracefully()
                throw error
            }
        }

        func close() async {
            try? await connection.close()
            try? await thread.shutdownGracefully()
        }
    }

    /// Round-robin over the readers (a lock, not an actor: every read passes here).
    final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var n = 0
        func take() -> Int { lock.withLock { n &+= 1; return n } }
    }

    /// Opens (creating if needed) the database at `path` and runs pending migrations.
    public static func open(path: String, readers: Int = 4) async throws -> SQLiteLatchStore {
        var opened: [Pooled] = []   // closed again (threads too) when opening fails part-way
        do {
            let wp = try await Pooled.open(path)
            opened.append(wp)
            let w = wp.connection
            for p in ["PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL", "PRAGMA foreign_keys=ON", "PRAGMA busy_timeout=5000"] {
                _ = try await w.query(p)
            }
            try await migrate(w)
            var rs: [Pooled] = []
            for _ in 0..<max(1, readers) {
                let r = try await Pooled.open(path)
                opened.append(r)
                for p in ["PRAGMA synchronous=FULL", "PRAGMA foreign_keys=ON", "PRAGMA busy_timeout=5000", "PRAGMA query_only=ON"] {
                    _ = try await r.connection.query(p)
                }
                rs.append(r)
            }
            for suffix in ["", "-wal", "-shm"] { chmod(path + suffix, 0o600) }
            return SQLiteLatchStore(path: path, writer: wp, readers: rs)
        } catch {
            for p in opened { await p.close() }
            if let e = error as? StoreError { throw e }
            throw StoreError(.unavailable, "cannot open SQLite database at \(path): \(error)")
        }
    }

    init(path: String, writer: Pooled, readers: [Pooled]) {
        self.path = path; self.writer = writer; self.readers = readers
    }

    /// Makes pending deferred commits durable, then closes every connection.
    public func close() async {
        durability.close()
        await flushDeferred()
        for p in readers + [writer] { await p.close() }
    }

    // MARK: migrations

    /// Each migration is a list of single statements, applied in one transaction.
    static let migrations: [(version: Int, statements: [String])] = [
        (1, {
            var s = tables(of: 1)
            s.append("CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            s.append("""
                CREATE TABLE audit_events (seq INTEGER PRIMARY KEY, tenant_id TEXT, time_ms BIGINT NOT NULL, action TEXT NOT NULL, \
                outcome TEXT NOT NULL, principal_id TEXT, asset_id TEXT, hash TEXT NOT NULL, doc TEXT NOT NULL)
                """)
            s.append("CREATE INDEX audit_events_tenant ON audit_events (tenant_id, seq)")
            s.append("""
                CREATE TABLE changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, tenant_id TEXT NOT NULL, kind TEXT NOT NULL, \
                entity_id TEXT NOT NULL, vault_id TEXT)
                """)
            s.append("CREATE INDEX changes_tenant ON changes (tenant_id, seq)")
            return s
        }()),
        (2, tables(of: 2)),  // the transparency log
    ]

    /// The document tables a migration creates, with their lookup indexes.
    static func tables(of migration: Int) -> [String] {
        StoreTable.allCases.filter { $0.migration == migration }.flatMap { t in [
            "CREATE TABLE \(t.rawValue) (id TEXT PRIMARY KEY, tenant_id TEXT, parent_id TEXT, lookup TEXT, doc TEXT NOT NULL)",
            "CREATE INDEX \(t.rawValue)_tenant ON \(t.rawValue) (tenant_id)",
            "CREATE INDEX \(t.rawValue)_parent ON \(t.rawValue) (parent_id)",
            "CREATE INDEX \(t.rawValue)_lookup ON \(t.rawValue) (lookup)",
        ] }
    }

    static func migrate(_ c: SQLiteConnection) async throws {
        _ = try await c.query("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
        let rows = try await c.query("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations")
        let current = rows.first?.column("v")?.integer ?? 0
        for m in migrations where m.version > current {
            _ = try await c.query("BEGIN IMMEDIATE")
            do {
                for s in m.statements { _ = try await c.query(s) }
                _ = try await c.query("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                                      [.integer(m.version), .text(ISO8601DateFormatter().string(from: Date()))])
                _ = try await c.query("COMMIT")
            } catch {
                _ = try? await c.query("ROLLBACK")
                throw StoreError(.unavailable, "migration \(m.version) failed: \(error)")
            }
        }
    }

    /// The schema version the file is at.
    public func schemaVersion() async throws -> Int {
        try await read { tx in
            guard let t = tx as? SQLiteTransaction else { throw StoreError(.corrupt, "not a SQLite transaction") }
            return try await t.schemaVersion()
        }
    }

    // MARK: transactions

    public func read<T: Sendable>(_ body: @Sendable (any StoreTransaction) async throws -> T) async throws -> T {
        let p = readers[next.take() % readers.count]
        return try await run(p, begin: "BEGIN", body)
    }

    public func write<T: Sendable>(_ body: @Sendable (any StoreTransaction) async throws -> T) async throws -> T {
        try await run(writer, begin: "BEGIN IMMEDIATE", synchronous: .full, body)
    }

    public func write<T: Sendable>(durability d: CommitDurability, _ body: @Sendable (any StoreTransaction) async throws -> T) async throws -> T {
        let r = try await run(writer, begin: "BEGIN IMMEDIATE", synchronous: d, body)
        if d == .deferred, durability.deferredCommitted() { scheduleFlush() }
        return r
    }

    func scheduleFlush() {
        Task {
            try? await Task.sleep(for: Self.deferredFlushDelay)
            await self.flushDeferred()
            if durability.retry() { scheduleFlush() }   // it failed: try again
        }
    }

    /// The background flush: when deferred commits are pending, one FULL commit that changes a
    /// row, so SQLite fsyncs the WAL file and with it every frame written before.
    func flushDeferred() async {
        await writer.lock.lock()
        let c = writer.connection
        if let upTo = durability.beginFlush(), !c.isClosed {
            do {
                try await setSynchronous(c, .full)
                _ = try await c.query("BEGIN IMMEDIATE")
                do {
                    _ = try await c.query("""
                        INSERT INTO settings (key, value) VALUES ('sqlite.durable_flushes', '1') \
                        ON CONFLICT (key) DO UPDATE SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT)
                        """)
                    _ = try await c.query("COMMIT")
                } catch {
                    _ = try? await c.query("ROLLBACK")
                    throw error
                }
                durability.flushed(upTo)
            } catch {
                // Still pending: scheduleFlush tries again, and close() does.
            }
        }
        await writer.lock.unlock()
    }

    /// Switches the writer between FULL and NORMAL (outside a transaction, under its lock).
    func setSynchronous(_ c: SQLiteConnection, _ d: CommitDurability) async throws {
        let normal = d == .deferred
        guard durability.normal != normal else { return }
        _ = try await c.query(normal ? "PRAGMA synchronous=NORMAL" : "PRAGMA synchronous=FULL")
        durability.normal = normal
    }

    func run<T: Sendable>(_ p: Pooled, begin: String, synchronous: CommitDurability? = nil,
                          _ body: @Sendable (any StoreTransaction) async throws -> T) async throws -> T {
        await p.lock.lock()
        let c = p.connection
        do {
            if let synchronous {
                do { try await setSynchronous(c, synchronous) } catch {
                    throw StoreError(.unavailable, "cannot set the commit durability: \(error)")
                }
            }
            do { _ = try await c.query(begin) } catch { throw StoreError(.unavailable, "cannot begin a transaction: \(error)") }
            let r: T
            do {
                r = try await body(SQLiteTransaction(c))
                do { _ = try await c.query("COMMIT") } catch { throw StoreError(.unavailable, "commit failed: \(error)") }
            } catch {
                _ = try? await c.query("ROLLBACK")
                throw error
            }
            await p.lock.unlock()
            return r
        } catch {
            await p.lock.unlock()
            throw error
        }
    }
}

final class SQLiteTransaction: StoreTransaction {
    let c: SQLiteConnection
    init(_ c: SQLiteConnection) { self.c = c }

    func q(_ sql: String, _ binds: [SQLiteData] = []) async throws -> [SQLiteRow] {
        do { return try await c.query(sql, binds) } catch let e as SQLiteError {
            // SQLite reports most constraint failures by extended code (constraintPrimaryKeyFailed, …).
            throw StoreError(String(describing: e.reason).hasPrefix("constraint") ? .constraint : .unavailable, "\(e)")
        } catch { throw StoreError(.unavailable, "\(error)") }
    }

    static func opt(_ s: String?) -> SQLiteData { s.map { .text($0) } ?? .null }

    func row(_ r: SQLiteRow) throws -> StoreRow {
        guard let id = r.column("id")?.string, let doc = r.column("doc")?.string else { throw StoreError(.corrupt, "row without id or doc") }
        func s(_ n: String) -> String? { r.column(n).flatMap { $0.isNull ? nil : $0.string } }
        return StoreRow(id: id, tenantId: s("tenant_id"), parentId: s("parent_id"), lookup: s("lookup"), doc: doc)
    }

    func schemaVersion() async throws -> Int {
        try await q("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations").first?.column("v")?.integer ?? 0
    }

    func insert(_ table: StoreTable, _ r: StoreRow) async throws -> Bool {
        if try await q("SELECT 1 AS x FROM \(table.rawValue) WHERE id = ?", [.text(r.id)]).first != nil { return false }
        _ = try await q("INSERT INTO \(table.rawValue) (id, tenant_id, parent_id, lookup, doc) VALUES (?, ?, ?, ?, ?)",
                        [.text(r.id), Self.opt(r.tenantId), Self.opt(r.parentId), Self.opt(r.lookup), .text(r.doc)])
        return true
    }

    func put(_ table: StoreTable, _ r: StoreRow) async throws {
        // Portable upsert (SQLite >= 3.24 and PostgreSQL share this syntax).
        _ = try await q("""
            INSERT INTO \(table.rawValue) (id, tenant_id, parent_id, lookup, doc) VALUES (?, ?, ?, ?, ?) \
            ON CONFLICT (id) DO UPDATE SET tenant_id = excluded.tenant_id, parent_id = excluded.parent_id, \
            lookup = excluded.lookup, doc = excluded.doc
            """, [.text(r.id), Self.opt(r.tenantId), Self.opt(r.parentId), Self.opt(r.lookup), .text(r.doc)])
    }

    func get(_ table: StoreTable, id: String) async throws -> StoreRow? {
        try await q("SELECT id, tenant_id, parent_id, lookup, doc FROM \(table.rawValue) WHERE id = ?", [.text(id)]).first.map(row)
    }

    func getMany(_ table: StoreTable, ids: [String]) async throws -> [StoreRow] {
        var out: [StoreRow] = []
        out.reserveCapacity(ids.count)
        for start in stride(from: 0, to: ids.count, by: 500) {   // SQLite allows 999 parameters by default
            let chunk = ids[start..<min(ids.count, start + 500)]
            let marks = Array(repeating: "?", count: chunk.count).joined(separator: ",")
            out += try await q("SELECT id, tenant_id, parent_id, lookup, doc FROM \(table.rawValue) WHERE id IN (\(marks))",
                               chunk.map { .text($0) }).map(row)
        }
        return out
    }

    func getLineage(_ tables: [StoreTable], id: String) async throws -> [StoreRow] {
        guard !tables.isEmpty else { return [] }
        let rows = try await q(LineageSQL.query(tables, placeholder: "?1"), [.text(id)])
        // Ordered here, not by the query: an ORDER BY on the compound SELECT makes SQLite build
        // a sorter, which costs more to prepare than the whole query takes to run.
        let numbered = rows.map { ($0.column("n")?.integer ?? -1, $0) }.sorted { $0.0 < $1.0 }
        var out: [StoreRow] = []
        for (n, r) in numbered {
            guard n == out.count else { break }
            out.append(try row(r))
        }
        return out
    }

    func find(_ table: StoreTable, _ column: StoreColumn, _ value: String) async throws -> [StoreRow] {
        try await q("SELECT id, tenant_id, parent_id, lookup, doc FROM \(table.rawValue) WHERE \(column.rawValue) = ? ORDER BY id",
                    [.text(value)]).map(row)
    }

    func delete(_ table: StoreTable, id: String) async throws {
        _ = try await q("DELETE FROM \(table.rawValue) WHERE id = ?", [.text(id)])
    }

    func setting(_ key: String) async throws -> String? {
        try await q("SELECT value FROM settings WHERE key = ?", [.text(key)]).first?.column("value")?.string
    }

    func setSetting(_ key: String, _ value: String?) async throws {
        if let value {
            _ = try await q("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                            [.text(key), .text(value)])
        } else {
            _ = try await q("DELETE FROM settings WHERE key = ?", [.text(key)])
        }
    }

    func audit(_ r: SQLiteRow) throws -> AuditEvent {
        guard let doc = r.column("doc")?.string else { throw StoreError(.corrupt, "audit row without doc") }
        do { return try JSONDecoder().decode(AuditEvent.self, from: Data(doc.utf8)) } catch {
            throw StoreError(.corrupt, "audit event does not decode: \(error)")
        }
    }

    func lastAuditEvent() async throws -> AuditEvent? {
        try await q("SELECT doc FROM audit_events ORDER BY seq DESC LIMIT 1").first.map(audit)
    }

    func lastAuditLink() async throws -> (seq: Int64, hash: String)? {
        guard let r = try await q("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1").first else { return nil }
        guard let seq = r.column("seq")?.integer, let hash = r.column("hash")?.string else { throw StoreError(.corrupt, "audit row without seq or hash") }
        return (Int64(seq), hash)
    }

    func appendAuditEvent(_ e: AuditEvent) async throws {
        let doc = e.documentJSON
        _ = try await q("""
            INSERT INTO audit_events (seq, tenant_id, time_ms, action, outcome, principal_id, asset_id, hash, doc) \
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, [.integer(Int(e.seq)), Self.opt(e.tenantId), .integer(Int(AuditChain.millis(e.time))), .text(e.action),
                  .text(e.outcome), Self.opt(e.principalId), Self.opt(e.assetId), .text(e.hash), .text(doc)])
    }

    func appendAuditEvents(_ events: [AuditEvent]) async throws {
        for start in stride(from: 0, to: events.count, by: 100) {   // 9 parameters a row, under SQLite's 999
            let chunk = events[start..<min(events.count, start + 100)]
            var binds: [SQLiteData] = []
            binds.reserveCapacity(chunk.count * 9)
            for e in chunk {
                let doc = e.documentJSON
                binds += [.integer(Int(e.seq)), Self.opt(e.tenantId), .integer(Int(AuditChain.millis(e.time))), .text(e.action),
                          .text(e.outcome), Self.opt(e.principalId), Self.opt(e.assetId), .text(e.hash), .text(doc)]
            }
            let values = Array(repeating: "(?, ?, ?, ?, ?, ?, ?, ?, ?)", count: chunk.count).joined(separator: ", ")
            _ = try await q("INSERT INTO audit_events (seq, tenant_id, time_ms, action, outcome, principal_id, asset_id, hash, doc) VALUES \(values)",
                            binds)
        }
    }

    func auditEvents(_ f: AuditFilter) async throws -> [AuditEvent] {
        var sql = "SELECT doc FROM audit_events WHERE seq > ?"
        var binds: [SQLiteData] = [.integer(Int(f.afterSeq))]
        if let t = f.tenantId { sql += " AND tenant_id = ?"; binds.append(.text(t)) }
        if let a = f.action { sql += " AND action = ?"; binds.append(.text(a)) }
        if let p = f.principalId { sql += " AND principal_id = ?"; binds.append(.text(p)) }
        if let a = f.assetId { sql += " AND asset_id = ?"; binds.append(.text(a)) }
        if let o = f.outcome { sql += " AND outcome = ?"; binds.append(.text(o)) }
        if let s = f.since { sql += " AND time_ms >= ?"; binds.append(.integer(Int(AuditChain.millis(s)))) }
        sql += " ORDER BY seq LIMIT ?"
        binds.append(.integer(max(0, f.limit)))
        return try await q(sql, binds).map(audit)
    }

    func appendChange(tenantId: String, kind: ChangeRecord.Kind, entityId: String, vaultId: String?) async throws -> Int64 {
        let rows = try await q("INSERT INTO changes (tenant_id, kind, entity_id, vault_id) VALUES (?, ?, ?, ?) RETURNING seq",
                               [.text(tenantId), .text(kind.rawValue), .text(entityId), Self.opt(vaultId)])
        guard let seq = rows.first?.column("seq")?.integer else { throw StoreError(.corrupt, "change log insert returned no sequence") }
        return Int64(seq)
    }

    func changes(tenantId: String, afterSeq: Int64, limit: Int) async throws -> [ChangeRecord] {
        try await q("SELECT seq, tenant_id, kind, entity_id, vault_id FROM changes WHERE tenant_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                    [.text(tenantId), .integer(Int(afterSeq)), .integer(max(0, limit))]).map { r in
            guard let seq = r.column("seq")?.integer, let k = r.column("kind")?.string, let kind = ChangeRecord.Kind(rawValue: k),
                  let e = r.column("entity_id")?.string else { throw StoreError(.corrupt, "bad change row") }
            let v = r.column("vault_id").flatMap { $0.isNull ? nil : $0.string }
            return ChangeRecord(seq: Int64(seq), tenantId: tenantId, kind: kind, entityId: e, vaultId: v)
        }
    }

    func lastChangeSeq(tenantId: String) async throws -> Int64 {
        Int64(try await q("SELECT COALESCE(MAX(seq), 0) AS s FROM changes WHERE tenant_id = ?", [.text(tenantId)]).first?.column("s")?.integer ?? 0)
    }
}

/// The one query behind `getLineage`: one SELECT per table joined by UNION ALL, each row's id
/// found by primary key through its child's parent_id; `n` numbers the tables (the caller
/// orders by it). Built once per list of tables.
enum LineageSQL {
    private static let cache = NSLock()
    nonisolated(unsafe) private static var built: [String: String] = [:]

    static func query(_ tables: [StoreTable], placeholder: String) -> String {
        let k = tables.map(\.rawValue).joined(separator: ",") + placeholder
        if let q = cache.withLock({ built[k] }) { return q }
        let q = make(tables, placeholder: placeholder)
        cache.withLock { built[k] = q }
        return q
    }

    static func make(_ tables: [StoreTable], placeholder: String) -> String {
        var key = placeholder
        var parts: [String] = []
        for (n, t) in tables.enumerated() {
            if n > 0 { key = "(SELECT parent_id FROM \(tables[n - 1].rawValue) WHERE id = \(key))" }
            parts.append("SELECT \(n) AS n, id, tenant_id, parent_id, lookup, doc FROM \(t.rawValue) WHERE id = \(key)")
        }
        return parts.joined(separator: " UNION ALL ")
    }
}
