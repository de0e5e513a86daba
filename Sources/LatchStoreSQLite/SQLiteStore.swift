import Foundation
import LatchDomain

/// The embedded store: one SQLite file (WAL, synchronous=FULL, foreign keys on), one writer
/// connection (writes are serialised, each in `BEGIN IMMEDIATE … COMMIT`) and a few reader
/// connections (WAL lets them read while a write is in flight). Schema migrations are
/// versioned in code and recorded in `schema_migrations`.
///
/// SQLite is the system library through our own binding (`SQLiteConnection`, SQLiteBinding.swift):
/// each connection has its own thread (SQLite calls block: the writer's commit waits for an
/// fsync, and on a shared pool that wait would stall the readers behind it) and caches its
/// prepared statements. The writer runs a whole transaction body on its thread (one hop there
/// and one back per transaction, not per statement); a reader runs it on the caller's thread,
/// as it never waits (see `run`).
///
/// Durability: every write commits with `synchronous=FULL` (the WAL is fsynced before `write`
/// returns), except a `write(durability: .deferred)` (the rounds that move reads' audit events
/// in from the read-audit journal, ReadAuditJournal.swift), which the writer runs with
/// `synchronous=NORMAL`: committed and visible at once, safe if the server process dies, but
/// lost in a power cut or kernel crash until the WAL is next fsynced.
/// After such a commit a background flush runs within `deferredFlushDelay` (0.1 s): an fsync of
/// the WAL file, which makes every frame written before it durable; `close()` flushes too. So a
/// read's audit row can be lost to a power loss only within about 0.2 s of the read
/// (docs/threat-model.md).
///
/// Maintenance runs off the writer, on a connection and thread of its own, so that neither the
/// flush's fsync nor a checkpoint stalls the writer (and with it every read waiting for its
/// audit commit): the writer does not checkpoint (`wal_autocheckpoint=0`); within
/// `deferredFlushDelay` of any commit the maintenance connection fsyncs the WAL when deferred
/// commits are pending, then runs a PASSIVE checkpoint (which never waits for readers or the
/// writer, and syncs the WAL and the database file itself).

public final class SQLiteLatchStore: LatchStore, Sendable {
    public let path: String
    let writer: SQLiteConnection
    let readers: [SQLiteConnection]
    /// Reads the WAL-index header for `commitVersion()`, through the maintenance connection's
    /// mapping of it.
    let walIndex: WALIndexWatch
    /// Runs the durability flush and the checkpoints (see above).
    let maintenance: SQLiteConnection
    let next = Counter()
    let durability = DurabilityState()
    /// Where reads' audit events go (ReadAuditJournal.swift), and the lock that runs its rounds one at a time.
    let journal: SQLiteReadAuditJournal
    let journalRounds = AsyncLock()
    /// How long after a commit the maintenance runs (so how long a deferred commit can stay
    /// not durable, plus the fsync).
    public static let deferredFlushDelay: Duration = .milliseconds(100)

    /// The writer's `synchronous` mode and the deferred commits not yet fsynced. `normal` is
    /// only read and changed while holding the writer's lock.
    final class DurabilityState: @unchecked Sendable {
        private let lock = NSLock()
        private var _normal = false
        private var deferred = 0      // deferred commits so far
        private var durable = 0       // of which made durable by a flush
        private var scheduled = false
        private var dirty = false     // commits since the last maintenance began
        private var closed = false
        private var _flushes = 0
        var normal: Bool {
            get { lock.withLock { _normal } }
            set { lock.withLock { _normal = newValue } }
        }
        var pending: Bool { lock.withLock { deferred > durable } }
        var flushes: Int { lock.withLock { _flushes } }
        /// Records a commit of the writer; true when the caller must schedule the maintenance.
        func committed(deferred isDeferred: Bool) -> Bool {
            lock.withLock {
                if isDeferred { deferred += 1 }
                dirty = true
                return takeSchedule()
            }
        }
        /// True when maintenance is to be scheduled again (work left, none scheduled, not closed).
        func retry() -> Bool { lock.withLock { takeSchedule() } }
        private func takeSchedule() -> Bool {
            if scheduled || closed || !(dirty || deferred > durable) { return false }
            scheduled = true
            return true
        }
        /// Taken when maintenance begins: the deferred commits its fsync will cover (nil when
        /// there are none), every one of them already written to the WAL.
        func beginMaintenance() -> Int? {
            lock.withLock { scheduled = false; dirty = false; return deferred > durable ? deferred : nil }
        }
        func flushed(_ upTo: Int) { lock.withLock { durable = max(durable, upTo); _flushes += 1 } }
        func close() { lock.withLock { closed = true } }
    }

    /// Deferred commits not yet made durable by a flush (for tests and diagnostics).
    public var deferredCommitsPending: Bool { durability.pending }
    /// How many background flushes have committed (for tests and diagnostics).
    public var durableFlushes: Int { durability.flushes }

    /// Round-robin over the readers (a lock, not an actor: every read passes here).
    final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var n = 0
        func take() -> Int { lock.withLock { n &+= 1; return n } }
    }

    /// Opens (creating if needed) the database at `path` and runs pending migrations.
    /// `readAuditDelay`: how long a read's audit event may wait in the journal before its round
    /// moves it into the chain.
    public static func open(path: String, readers: Int = 4, readAuditDelay: Duration = .milliseconds(50)) async throws -> SQLiteLatchStore {
        try await open(path: path, readers: readers, readAuditDelay: readAuditDelay, readAuditMapBytes: SQLiteReadAuditJournal.defaultMapBytes)
    }

    /// `readAuditMapBytes`: the space each read-audit journal file reserves and maps (0: its
    /// files are written with pwrite(2), as where the file system cannot reserve space).
    static func open(path: String, readers: Int, readAuditDelay: Duration, readAuditMapBytes: Int) async throws -> SQLiteLatchStore {
        var opened: [SQLiteConnection] = []   // closed again (threads too) when opening fails part-way
        do {
            let w = try await SQLiteConnection.open(path: path, role: "sqlite-writer")
            opened.append(w)
            try await w.withHandle("configure the writer connection") { h in
                for p in ["PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL", "PRAGMA foreign_keys=ON", "PRAGMA busy_timeout=5000",
                          "PRAGMA wal_autocheckpoint=0", "PRAGMA journal_size_limit=\(walSizeLimit)"] {
                    try h.execute(p, purpose: "configure the writer connection (\(p))")
                }
                try migrate(h)
            }
            var rs: [SQLiteConnection] = []
            for _ in 0..<max(1, readers) {
                let r = try await SQLiteConnection.open(path: path, role: "sqlite-reader")
                opened.append(r)
                try await r.withHandle("configure a reader connection") { h in
                    for p in ["PRAGMA synchronous=FULL", "PRAGMA foreign_keys=ON", "PRAGMA busy_timeout=5000", "PRAGMA query_only=ON"] {
                        try h.execute(p, purpose: "configure a reader connection (\(p))")
                    }
                }
                rs.append(r)
            }
            let m = try await SQLiteConnection.open(path: path, role: "sqlite-maint")
            opened.append(m)
            let walIndex = try await m.withHandle("configure the maintenance connection") { h in
                try h.execute("PRAGMA synchronous=FULL", purpose: "configure the maintenance connection")
                h.pollWhenBusy()
                _ = try Self.checkpoint(h, "PASSIVE")   // opens the WAL index on this connection
                return h.walIndexRegion().map { UInt(bitPattern: $0) }
            }
            for suffix in ["", "-wal", "-shm"] { chmod(path + suffix, 0o600) }
            let store = SQLiteLatchStore(path: path, writer: w, readers: rs, maintenance: m, readAuditDelay: readAuditDelay,
                                         readAuditMapBytes: readAuditMapBytes, walIndex: walIndex.flatMap { UnsafeRawPointer(bitPattern: $0) })
            try await store.recoverReadAudit()
            return store
        } catch {
            for c in opened { await c.close() }
            if let e = error as? StoreError { throw e }
            throw StoreError(.unavailable, "cannot open SQLite database at \(path): \(error)")
        }
    }

    init(path: String, writer: SQLiteConnection, readers: [SQLiteConnection], maintenance: SQLiteConnection, readAuditDelay: Duration,
         readAuditMapBytes: Int, walIndex: UnsafeRawPointer?) {
        self.path = path; self.writer = writer; self.readers = readers; self.maintenance = maintenance
        journal = SQLiteReadAuditJournal(base: path, delay: readAuditDelay, mapBytes: readAuditMapBytes)
        self.walIndex = WALIndexWatch(region: walIndex)
    }

    /// Changes with every commit to the database, by any connection of any process
    /// (`WALIndexWatch`).
    public func commitVersion() -> UInt64? { walIndex.current() }

    /// Moves the read-audit journal into the chain, makes pending deferred commits durable, then
    /// closes every connection (each once its transaction in flight, if any, has ended).
    public func close() async {
        journal.close()
        if (try? await moveReadAudit()) != nil { journal.removeIfDrained() }   // else the next open moves it
        durability.close()
        await maintain()
        walIndex.stop()
        for c in readers + [writer, maintenance] {
            await c.lock.lock()
            await c.close()
            c.lock.unlock()
        }
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
        // Audit events as columns only: a row whose `doc` is '' is its columns (the rest of the
        // event, and `prevHash` is the previous row's `hash`). A read's event was three times
        // its size as JSON beside the same columns, and every read writes one.
        (3, ["access_key", "asset_type", "source", "detail"].map { "ALTER TABLE audit_events ADD COLUMN \($0) TEXT" }),
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

    /// Applies the pending migrations (on the writer's thread, at open).
    static func migrate(_ h: SQLiteHandle) throws {
        try h.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)",
                      purpose: "create the schema_migrations table")
        var current: Int64 = 0
        try h.forEach("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations", purpose: "read the schema version") { current = $0.int(0) }
        let known = migrations.last?.version ?? 0
        guard current <= known else { throw StoreError.newerSchema(current, known: known) }
        for m in migrations where m.version > current {
            try h.execute("BEGIN IMMEDIATE", purpose: "begin migration \(m.version)")
            do {
                for s in m.statements { try h.execute(s, purpose: "apply migration \(m.version)") }
                try h.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                              [.int(Int64(m.version)), .text(ISO8601DateFormatter().string(from: Date()))],
                              purpose: "record migration \(m.version)")
                try h.execute("COMMIT", purpose: "commit migration \(m.version)")
            } catch {
                try? h.execute("ROLLBACK", purpose: "roll back migration \(m.version)")
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
        let c = readers[next.take() % readers.count]
        return try await run(c, begin: "BEGIN", inline: true, body)
    }

    public func write<T: Sendable>(_ body: @Sendable (any StoreTransaction) async throws -> T) async throws -> T {
        try await write(durability: .full, body)
    }

    public func write<T: Sendable>(durability d: CommitDurability, _ body: @Sendable (any StoreTransaction) async throws -> T) async throws -> T {
        try await write(durability: d, auditOnly: false, body)
    }

    /// A write; `auditOnly` as in `run`.
    func write<T: Sendable>(durability d: CommitDurability, auditOnly: Bool,
                            _ body: @Sendable (any StoreTransaction) async throws -> T) async throws -> T {
        let r = try await run(writer, begin: "BEGIN IMMEDIATE", synchronous: d, auditOnly: auditOnly, body)
        if durability.committed(deferred: d == .deferred) { scheduleMaintenance() }
        return r
    }

    func scheduleMaintenance() {
        Task {
            try? await Task.sleep(for: Self.deferredFlushDelay)
            await self.maintain()
            if durability.retry() { scheduleMaintenance() }   // commits since, or it failed
        }
    }

    /// On the maintenance connection: when deferred commits are pending, an fsync of the WAL
    /// file (SQLite appends each commit's frames to it with write(2), so one fsync makes every
    /// commit before it durable; frames that a checkpoint has since moved into the database file
    /// were synced there by it); then a PASSIVE checkpoint.
    func maintain() async {
        let c = maintenance
        await c.lock.lock()
        defer { c.lock.unlock() }
        guard !c.isClosed else { return }
        let upTo = durability.beginMaintenance()
        let wal = path + "-wal"
        do {
            let frames = try await c.withHandle("maintain the database") { [durability] h in
                if let upTo {
                    try fsyncFile(wal)
                    durability.flushed(upTo)
                }
                return try Self.checkpoint(h, "PASSIVE")
            }
            // Commits keep arriving while a PASSIVE checkpoint copies, so it never ends with the
            // whole WAL copied, and the writer restarts the WAL from its start only after one
            // that does. Once the WAL is long, one more checkpoint with writes held back: it
            // copies only the frames since, waits for readers of older snapshots (microseconds;
            // at most about 2 ms, `pollWhenBusy`, so a long read never holds writes back: the
            // restart then waits for the next round), and lets the next write start the WAL afresh.
            if frames >= Self.walRestartFrames {
                await writer.lock.lock()
                defer { writer.lock.unlock() }
                _ = try await c.withHandle("maintain the database") { h in try Self.checkpoint(h, "RESTART") }
            }
        } catch {
            // Still pending: scheduleMaintenance tries again, and close() does.
        }
    }

    /// WAL length (frames of a page) from which maintenance restarts the WAL: SQLite's own
    /// auto-checkpoint length.
    static let walRestartFrames: Int64 = 1000

    /// The size (bytes) the writer truncates the WAL file to when it starts the WAL afresh: twice
    /// the restart length in 4 KiB pages. A burst that outran maintenance (a long read holds the
    /// restart back) grows the file; without the limit it kept that size for good.
    static let walSizeLimit: Int64 = 2 * walRestartFrames * (4096 + 24)

    /// `PRAGMA data_version` of the connection.
    static func dataVersion(_ h: SQLiteHandle) throws -> Int64 {
        var v: Int64 = 0
        try h.forEach("PRAGMA data_version", purpose: "read the data version") { v = $0.int(0) }
        return v
    }

    /// Runs a checkpoint; returns the WAL's length in frames.
    static func checkpoint(_ h: SQLiteHandle, _ mode: String) throws -> Int64 {
        var frames: Int64 = 0
        try h.forEach("PRAGMA wal_checkpoint(\(mode))", purpose: "checkpoint the WAL (\(mode))") { frames = $0.int(1) }
        return frames
    }

    /// Switches the writer between FULL and NORMAL (outside a transaction, under its lock).
    func setSynchronous(_ c: SQLiteConnection, _ d: CommitDurability) async throws {
        let normal = d == .deferred
        guard durability.normal != normal else { return }
        try await c.execute(normal ? "PRAGMA synchronous=NORMAL" : "PRAGMA synchronous=FULL", purpose: "set the commit durability")
        durability.normal = normal
    }

    /// One transaction on `c`: its lock held from BEGIN to COMMIT, and the whole body run with
    /// the task on the connection's thread (its statements then need no hop each), or with
    /// `inline`, on the caller's thread.
    ///
    /// Readers run inline: in WAL mode a reader never waits for the writer or a checkpoint, and
    /// its pages come from the page cache, so a read transaction is a few tens of microseconds
    /// of work, less than the two thread switches it would take to run it elsewhere. The writer
    /// keeps its thread: its commits wait for fsync.
    ///
    /// `auditOnly`: a write that touches only the audit chain and settings, which no cached read
    /// depends on: its commit is absorbed into the current commit version (`WALIndexWatch.absorb`)
    /// when nothing else committed around it.
    func run<T: Sendable>(_ c: SQLiteConnection, begin: String, synchronous: CommitDurability? = nil, inline: Bool = false,
                          auditOnly: Bool = false, _ body: @Sendable (any StoreTransaction) async throws -> T) async throws -> T {
        await c.lock.lock()
        defer { c.lock.unlock() }
        func transaction() async throws -> T {
            if let synchronous {
                do { try await setSynchronous(c, synchronous) } catch {
                    throw StoreError(.unavailable, "cannot set the commit durability: \(error)")
                }
            }
            do { try await c.execute(begin, purpose: "begin a transaction") } catch {
                throw StoreError(.unavailable, "cannot begin a transaction: \(error)")
            }
            // With the write lock held nobody else commits until this COMMIT: the header now is
            // the one the transaction began on. `PRAGMA data_version` on this connection moves
            // only when another connection commits.
            let began = auditOnly ? try? await c.withHandle("note the commit version") { [walIndex] h in
                (try Self.dataVersion(h), walIndex.peek())
            } : nil
            let r: T
            do {
                r = try await body(SQLiteTransaction(c))
                do { try await c.execute("COMMIT", purpose: "commit a transaction") } catch {
                    throw StoreError(.unavailable, "commit failed: \(error)")
                }
            } catch {
                try? await c.execute("ROLLBACK", purpose: "roll back a transaction")
                throw error
            }
            if let (dataVersion, header) = began, let before = header {
                // The header after the commit, then proof that no other connection committed
                // between the BEGIN and that read: the header is this commit's.
                _ = try? await c.withHandle("absorb the commit version") { [walIndex] h in
                    if let after = walIndex.peek(), try Self.dataVersion(h) == dataVersion { walIndex.absorb(from: before, to: after) }
                }
            }
            return r
        }
        return inline ? try await c.inline(transaction) : try await c.onThread(transaction)
    }
}

/// fsync(2) of the file at `path` (any descriptor of a file flushes all of its written data).
private func fsyncFile(_ path: String) throws {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw StoreError(.unavailable, "cannot open \(path) to flush it: \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    guard fsync(fd) == 0 else { throw StoreError(.unavailable, "cannot fsync \(path): \(String(cString: strerror(errno)))") }
}

final class SQLiteTransaction: StoreTransaction {
    let c: SQLiteConnection
    init(_ c: SQLiteConnection) { self.c = c }

    static let rowColumns = "id, tenant_id, parent_id, lookup, doc"

    /// Runs `body` with the connection's handle (no hop inside a transaction body), SQLite
    /// errors as store errors: constraint failures as `.constraint`, the rest `.unavailable`.
    func h<T: Sendable>(_ purpose: String, _ body: @escaping @Sendable (SQLiteHandle) throws -> T) async throws -> T {
        do { return try await c.withHandle(purpose, body) } catch let e as SQLiteError {
            throw StoreError(e.isConstraint ? .constraint : .unavailable, "\(e)")
        } catch let e as StoreError { throw e } catch { throw StoreError(.unavailable, "\(error)") }
    }

    /// One statement's rows.
    func q(_ sql: String, _ binds: [SQLiteValue] = [], purpose: String) async throws -> [SQLiteRow] {
        try await h(purpose) { try $0.query(sql, binds, purpose: purpose) }
    }

    /// One statement, no rows wanted.
    func x(_ sql: String, _ binds: [SQLiteValue] = [], purpose: String) async throws {
        try await h(purpose) { try $0.execute(sql, binds, purpose: purpose) }
    }

    /// The rows of a `SELECT id, tenant_id, parent_id, lookup, doc` (from column `first` on).
    func rows(_ sql: String, _ binds: [SQLiteValue], purpose: String) async throws -> [StoreRow] {
        try await h(purpose) { h in
            var out: [StoreRow] = []
            try h.forEach(sql, binds, purpose: purpose) { out.append(try Self.row($0, 0)) }
            return out
        }
    }

    static func row(_ r: SQLiteCursor, _ first: Int) throws -> StoreRow {
        guard let id = r.text(first), let doc = r.text(first + 4) else { throw StoreError(.corrupt, "row without id or doc") }
        return StoreRow(id: id, tenantId: r.text(first + 1), parentId: r.text(first + 2), lookup: r.text(first + 3), doc: doc)
    }

    static func binds(_ r: StoreRow) -> [SQLiteValue] {
        [.text(r.id), .optional(r.tenantId), .optional(r.parentId), .optional(r.lookup), .text(r.doc)]
    }

    func schemaVersion() async throws -> Int {
        try await h("read the schema version") { h in
            var v: Int64 = 0
            try h.forEach("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations", purpose: "read the schema version") { v = $0.int(0) }
            return Int(v)
        }
    }

    func insert(_ table: StoreTable, _ r: StoreRow) async throws -> Bool {
        let t = table.rawValue
        return try await h("insert a row into \(t)") { h in
            var exists = false
            try h.forEach("SELECT 1 AS x FROM \(t) WHERE id = ?", [.text(r.id)], purpose: "look for a row of \(t)") { _ in exists = true }
            if exists { return false }
            try h.execute("INSERT INTO \(t) (\(Self.rowColumns)) VALUES (?, ?, ?, ?, ?)", Self.binds(r), purpose: "insert a row into \(t)")
            return true
        }
    }

    func put(_ table: StoreTable, _ r: StoreRow) async throws {
        // Portable upsert (SQLite >= 3.24 and PostgreSQL share this syntax).
        try await x("""
            INSERT INTO \(table.rawValue) (\(Self.rowColumns)) VALUES (?, ?, ?, ?, ?) \
            ON CONFLICT (id) DO UPDATE SET tenant_id = excluded.tenant_id, parent_id = excluded.parent_id, \
            lookup = excluded.lookup, doc = excluded.doc
            """, Self.binds(r), purpose: "write a row of \(table.rawValue)")
    }

    func get(_ table: StoreTable, id: String) async throws -> StoreRow? {
        try await rows("SELECT \(Self.rowColumns) FROM \(table.rawValue) WHERE id = ?", [.text(id)],
                       purpose: "read a row of \(table.rawValue)").first
    }

    func getMany(_ table: StoreTable, ids: [String]) async throws -> [StoreRow] {
        var out: [StoreRow] = []
        out.reserveCapacity(ids.count)
        for start in stride(from: 0, to: ids.count, by: 500) {   // SQLite allows 999 parameters by default
            let chunk = ids[start..<min(ids.count, start + 500)]
            let marks = Array(repeating: "?", count: chunk.count).joined(separator: ",")
            out += try await rows("SELECT \(Self.rowColumns) FROM \(table.rawValue) WHERE id IN (\(marks))",
                                  chunk.map { .text($0) }, purpose: "read rows of \(table.rawValue)")
        }
        return out
    }

    func getLineage(_ tables: [StoreTable], id: String) async throws -> [StoreRow] {
        guard !tables.isEmpty else { return [] }
        let sql = LineageSQL.query(tables, placeholder: "?1")
        return try await h("read a row and its parents") { h in
            // Ordered here, not by the query: an ORDER BY on the compound SELECT makes SQLite
            // build a sorter, which costs more to prepare than the whole query takes to run.
            var numbered: [(Int64, StoreRow)] = []
            try h.forEach(sql, [.text(id)], purpose: "read a row and its parents") { numbered.append(($0.int(0), try Self.row($0, 1))) }
            numbered.sort { $0.0 < $1.0 }
            var out: [StoreRow] = []
            for (n, r) in numbered {
                guard n == out.count else { break }
                out.append(r)
            }
            return out
        }
    }

    func find(_ table: StoreTable, _ column: StoreColumn, _ value: String) async throws -> [StoreRow] {
        try await rows("SELECT \(Self.rowColumns) FROM \(table.rawValue) WHERE \(column.rawValue) = ? ORDER BY id",
                       [.text(value)], purpose: "find rows of \(table.rawValue)")
    }

    func delete(_ table: StoreTable, id: String) async throws {
        try await x("DELETE FROM \(table.rawValue) WHERE id = ?", [.text(id)], purpose: "delete a row of \(table.rawValue)")
    }

    func setting(_ key: String) async throws -> String? {
        try await h("read a setting") { h in
            var v: String?
            try h.forEach("SELECT value FROM settings WHERE key = ?", [.text(key)], purpose: "read a setting") { v = $0.text(0) }
            return v
        }
    }

    func setSetting(_ key: String, _ value: String?) async throws {
        if let value {
            try await x("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        [.text(key), .text(value)], purpose: "write a setting")
        } else {
            try await x("DELETE FROM settings WHERE key = ?", [.text(key)], purpose: "delete a setting")
        }
    }

    /// The columns `auditEvents` and `lastAuditEvent` read: the row, then the previous row's hash.
    static let auditColumns = """
        SELECT a.doc, a.seq, a.tenant_id, a.time_ms, a.action, a.outcome, a.principal_id, a.access_key, a.asset_type, \
        a.asset_id, a.source, a.detail, a.hash, p.hash FROM audit_events a LEFT JOIN audit_events p ON p.seq = a.seq - 1
        """

    /// The events of an `auditColumns` query: a row written before migration 3 from its `doc`,
    /// a later one from its columns.
    func events(_ sql: String, _ binds: [SQLiteValue], purpose: String) async throws -> [AuditEvent] {
        try await h(purpose) { h in
            var out: [AuditEvent] = []
            try h.forEach(sql, binds, purpose: purpose) { r in
                guard let doc = r.text(0) else { throw StoreError(.corrupt, "audit row without doc") }
                if !doc.isEmpty {
                    do { out.append(try JSONDecoder().decode(AuditEvent.self, from: Data(doc.utf8))) } catch {
                        throw StoreError(.corrupt, "audit event does not decode: \(error)")
                    }
                    return
                }
                let seq = r.int(1)
                guard let action = r.text(4), let outcome = r.text(5), let hash = r.text(12) else {
                    throw StoreError(.corrupt, "audit row \(seq) lacks its action, outcome or hash")
                }
                out.append(.fromColumns(seq: seq, tenantId: r.text(2), timeMs: r.int(3), action: action, outcome: outcome,
                                        principalId: r.text(6), accessKey: r.text(7), assetType: r.text(8), assetId: r.text(9),
                                        source: r.text(10), detail: r.text(11), hash: hash, previousRowHash: r.text(13)))
            }
            return out
        }
    }

    func lastAuditEvent() async throws -> AuditEvent? {
        try await events(Self.auditColumns + " ORDER BY a.seq DESC LIMIT 1", [], purpose: "read the last audit event").first
    }

    func lastAuditLink() async throws -> (seq: Int64, hash: String)? {
        let link: [Link] = try await h("read the audit chain's tail") { h in
            var out: [Link] = []
            try h.forEach("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1", purpose: "read the audit chain's tail") { r in
                guard !r.isNull(0), let hash = r.text(1) else { throw StoreError(.corrupt, "audit row without seq or hash") }
                out.append(Link(seq: r.int(0), hash: hash))
            }
            return out
        }
        return link.first.map { ($0.seq, $0.hash) }
    }
    struct Link: Sendable { var seq: Int64; var hash: String }

    static let auditInsert = """
        INSERT INTO audit_events (seq, tenant_id, time_ms, action, outcome, principal_id, access_key, asset_type, asset_id, \
        source, detail, hash, doc) VALUES
        """
    static let auditRow = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '')"

    /// An event's columns (its time as the chain's milliseconds: `event(seq:prevHash:hash:)`
    /// made it a whole number of them).
    static func auditBinds(_ e: AuditEvent) -> [SQLiteValue] {
        [.int(e.seq), .optional(e.tenantId), .int(AuditChain.millis(e.time)), .text(e.action), .text(e.outcome),
         .optional(e.principalId), .optional(e.accessKey), .optional(e.assetType), .optional(e.assetId), .optional(e.source),
         .optional(e.detail), .text(e.hash)]
    }

    func appendAuditEvent(_ e: AuditEvent) async throws {
        try await x(Self.auditInsert + " " + Self.auditRow, Self.auditBinds(e), purpose: "append an audit event")
    }

    /// Rows per INSERT: 80 (12 parameters a row, under SQLite's 999), the rest in 16s, 4s and 1s,
    /// so that only four statement shapes are ever prepared and cached, whatever the batch sizes
    /// (one shape per remainder kept up to 80 large prepared statements on the writer: about 5 MB).
    static let auditChunks = [80, 16, 4, 1]

    func appendAuditEvents(_ events: [AuditEvent]) async throws {
        var start = 0
        while start < events.count {
            let size = Self.auditChunks.first { $0 <= events.count - start } ?? 1
            let chunk = events[start..<start + size]
            start += size
            var binds: [SQLiteValue] = []
            binds.reserveCapacity(chunk.count * 12)
            for e in chunk { binds += Self.auditBinds(e) }
            let values = Array(repeating: Self.auditRow, count: chunk.count).joined(separator: ", ")
            try await x(Self.auditInsert + " " + values, binds, purpose: "append audit events")
        }
    }

    func auditEvents(_ f: AuditFilter) async throws -> [AuditEvent] {
        var sql = Self.auditColumns + " WHERE a.seq > ?"
        var binds: [SQLiteValue] = [.int(f.afterSeq)]
        if let t = f.tenantId { sql += " AND a.tenant_id = ?"; binds.append(.text(t)) }
        if let a = f.action { sql += " AND a.action = ?"; binds.append(.text(a)) }
        if let p = f.principalId { sql += " AND a.principal_id = ?"; binds.append(.text(p)) }
        if let a = f.assetId { sql += " AND a.asset_id = ?"; binds.append(.text(a)) }
        if let o = f.outcome { sql += " AND a.outcome = ?"; binds.append(.text(o)) }
        if let s = f.since { sql += " AND a.time_ms >= ?"; binds.append(.int(AuditChain.millis(s))) }
        sql += " ORDER BY a.seq LIMIT ?"
        binds.append(.int(Int64(max(0, f.limit))))
        return try await events(sql, binds, purpose: "read audit events")
    }

    func appendChange(tenantId: String, kind: ChangeRecord.Kind, entityId: String, vaultId: String?) async throws -> Int64 {
        try await h("append to the change log") { h in
            var seq: Int64?
            try h.forEach("INSERT INTO changes (tenant_id, kind, entity_id, vault_id) VALUES (?, ?, ?, ?) RETURNING seq",
                          [.text(tenantId), .text(kind.rawValue), .text(entityId), .optional(vaultId)],
                          purpose: "append to the change log") { seq = $0.int(0) }
            guard let seq else { throw StoreError(.corrupt, "change log insert returned no sequence") }
            return seq
        }
    }

    func changes(tenantId: String, afterSeq: Int64, limit: Int) async throws -> [ChangeRecord] {
        try await h("read the change log") { h in
            var out: [ChangeRecord] = []
            try h.forEach("SELECT seq, tenant_id, kind, entity_id, vault_id FROM changes WHERE tenant_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                          [.text(tenantId), .int(afterSeq), .int(Int64(max(0, limit)))], purpose: "read the change log") { r in
                guard !r.isNull(0), let k = r.text(2), let kind = ChangeRecord.Kind(rawValue: k), let e = r.text(3) else {
                    throw StoreError(.corrupt, "bad change row")
                }
                out.append(ChangeRecord(seq: r.int(0), tenantId: tenantId, kind: kind, entityId: e, vaultId: r.text(4)))
            }
            return out
        }
    }

    func lastChangeSeq(tenantId: String) async throws -> Int64 {
        try await h("read the change log's last sequence") { h in
            var s: Int64 = 0
            try h.forEach("SELECT COALESCE(MAX(seq), 0) AS s FROM changes WHERE tenant_id = ?", [.text(tenantId)],
                          purpose: "read the change log's last sequence") { s = $0.int(0) }
            return s
        }
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
