import Foundation
import LatchDomain
import Logging
import PostgresNIO

/// The PostgreSQL store, for several stateless `latch serve` replicas sharing one database.
///
/// Same tables and semantics as the SQLite store. What must hold across replicas is enforced
/// by the database, not by process memory:
/// - every `write` transaction takes one database-wide transaction-scoped advisory lock
///   (`pg_advisory_xact_lock`) before its first statement, so writes from every replica are
///   serialised exactly like SQLite's single writer: a version check and the write it guards
///   cannot interleave with another replica's, the audit chain's `seq`/`prevHash` are read
///   and appended under the lock, and the change log's identity values are handed out in
///   commit order (a sync cursor read on one replica is valid on any other);
/// - reads run in `REPEATABLE READ READ ONLY` transactions (one consistent snapshot);
/// - migrations run under a session-level advisory lock, so replicas that start together
///   apply each migration once;
/// - a lost database surfaces as `StoreError(.unavailable)` within `acquireTimeout`; the pool
///   reconnects by itself when the database returns.
public final class PostgresLatchStore: LatchStore, Sendable {
    public let configuration: PostgresStoreConfiguration
    let pool: PoolHolder
    let logger: Logger

    /// Advisory-lock keys ("latch" + purpose). Advisory locks are database-wide, so each
    /// schema (one deployment) gets its own keys: deployments sharing a database do not
    /// serialise each other's writes.
    static let baseWriteLockKey: Int64 = 0x6c61_7463_6877_7231  // serialises write transactions
    static let baseMigrationLockKey: Int64 = 0x6c61_7463_686d_6731  // serialises migrations
    var writeLockKey: Int64 { Self.lockKey(Self.baseWriteLockKey, schema: configuration.schema) }
    var migrationLockKey: Int64 { Self.lockKey(Self.baseMigrationLockKey, schema: configuration.schema) }

    /// `base` for the default schema, else `base` XOR the schema name's FNV-1a hash.
    static func lockKey(_ base: Int64, schema: String?) -> Int64 {
        guard let schema else { return base }
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in schema.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        return base ^ Int64(bitPattern: h)
    }

    /// Connects (pool of `configuration.poolSize`), waits for the database and runs pending
    /// migrations. Throws `StoreError(.unavailable)` when the database cannot be reached.
    public static func open(_ configuration: PostgresStoreConfiguration,
                            logger: Logger = Logger(label: "latch.store.postgres")) async throws -> PostgresLatchStore {
        let store = PostgresLatchStore(configuration: configuration, pool: PoolHolder(configuration, logger), logger: logger)
        do {
            try await store.migrate()
        } catch {
            await store.close()
            throw error
        }
        return store
    }

    public static func open(url: String, poolSize: Int? = nil) async throws -> PostgresLatchStore {
        var c = try PostgresStoreConfiguration(url: url)
        if let poolSize { c.poolSize = poolSize }
        return try await open(c)
    }

    init(configuration: PostgresStoreConfiguration, pool: PoolHolder, logger: Logger) {
        self.configuration = configuration; self.pool = pool; self.logger = logger
    }

    /// Closes every pooled connection.
    public func close() async {
        await pool.close()
    }

    // MARK: migrations

    /// Each migration is a list of single statements, applied in one transaction. Text columns
    /// use the "C" collation so `ORDER BY id` is byte order, as in SQLite.
    static let migrations: [(version: Int, statements: [String])] = [
        (1, {
            var s = tables(of: 1)
            s.append("CREATE TABLE settings (key TEXT COLLATE \"C\" PRIMARY KEY, value TEXT NOT NULL)")
            s.append("""
                CREATE TABLE audit_events (seq BIGINT PRIMARY KEY, tenant_id TEXT COLLATE "C", time_ms BIGINT NOT NULL, \
                action TEXT COLLATE "C" NOT NULL, outcome TEXT COLLATE "C" NOT NULL, principal_id TEXT COLLATE "C", \
                asset_id TEXT COLLATE "C", hash TEXT NOT NULL, doc TEXT NOT NULL)
                """)
            s.append("CREATE INDEX audit_events_tenant ON audit_events (tenant_id, seq)")
            s.append("""
                CREATE TABLE changes (seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, tenant_id TEXT COLLATE "C" NOT NULL, \
                kind TEXT NOT NULL, entity_id TEXT COLLATE "C" NOT NULL, vault_id TEXT COLLATE "C")
                """)
            s.append("CREATE INDEX changes_tenant ON changes (tenant_id, seq)")
            return s
        }()),
        (2, tables(of: 2)),  // the transparency log
    ]

    /// The document tables a migration creates, with their lookup indexes.
    static func tables(of migration: Int) -> [String] {
        StoreTable.allCases.filter { $0.migration == migration }.flatMap { t in [
            """
            CREATE TABLE \(t.rawValue) (id TEXT COLLATE "C" PRIMARY KEY, tenant_id TEXT COLLATE "C", \
            parent_id TEXT COLLATE "C", lookup TEXT COLLATE "C", doc TEXT NOT NULL)
            """,
            "CREATE INDEX \(t.rawValue)_tenant ON \(t.rawValue) (tenant_id)",
            "CREATE INDEX \(t.rawValue)_parent ON \(t.rawValue) (parent_id)",
            "CREATE INDEX \(t.rawValue)_lookup ON \(t.rawValue) (lookup)",
        ] }
    }

    func migrate() async throws {
        try await withLease { c in
            let tx = PostgresTransaction(c, self.logger, queryTimeout: self.configuration.queryTimeout)
            // A session lock (not a transaction one): held across the check and every migration.
            try await tx.exec("SELECT pg_advisory_lock(\(self.migrationLockKey))")
            do {
                if let schema = self.configuration.schema {
                    guard PostgresStoreConfiguration.validSchema(schema) else { throw StoreError(.unavailable, "invalid schema name") }
                    try await tx.exec(PostgresQuery(unsafeSQL: "CREATE SCHEMA IF NOT EXISTS \(schema)"))
                }
                try await tx.exec("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
                let current = try await tx.schemaVersion()
                for m in Self.migrations where m.version > current {
                    try await tx.exec("BEGIN")
                    do {
                        for s in m.statements { try await tx.exec(PostgresQuery(unsafeSQL: s)) }
                        let now = ISO8601DateFormatter().string(from: Date())
                        try await tx.exec("INSERT INTO schema_migrations (version, applied_at) VALUES (\(m.version), \(now))")
                        try await tx.exec("COMMIT")
                    } catch {
                        try? await tx.exec("ROLLBACK")
                        throw StoreError(.unavailable, "migration \(m.version) failed: \(error)")
                    }
                }
                try await tx.exec("SELECT pg_advisory_unlock(\(self.migrationLockKey))")
            } catch {
                try? await tx.exec("SELECT pg_advisory_unlock(\(self.migrationLockKey))")
                throw error
            }
        }
    }

    /// The schema version the database is at.
    public func schemaVersion() async throws -> Int {
        try await read { tx in
            guard let t = tx as? PostgresTransaction else { throw StoreError(.corrupt, "not a PostgreSQL transaction") }
            return try await t.schemaVersion()
        }
    }

    /// Test hook: drops this store's schema (only when it has its own).
    func dropSchemaForTesting() async throws {
        guard let schema = configuration.schema, PostgresStoreConfiguration.validSchema(schema) else { return }
        try await withLease { c in try await PostgresTransaction(c, self.logger).exec(PostgresQuery(unsafeSQL: "DROP SCHEMA \(schema) CASCADE")) }
    }

    /// Test hook: how many migrations `schema_migrations` records.
    func migrationCountForTesting() async throws -> Int {
        try await read { tx in
            guard let t = tx as? PostgresTransaction else { throw StoreError(.corrupt, "not a PostgreSQL transaction") }
            return Int(try await t.q("SELECT COUNT(*)::BIGINT FROM schema_migrations").first.map { try $0.decode(Int64.self) } ?? 0)
        }
    }

    // MARK: transactions

    public func read<T: Sendable>(_ body: @Sendable (any StoreTransaction) async throws -> T) async throws -> T {
        try await run(write: false, body)
    }

    public func write<T: Sendable>(_ body: @Sendable (any StoreTransaction) async throws -> T) async throws -> T {
        try await run(write: true, body)
    }

    /// A BEGIN that failed on a connection the pool still thought alive (the database restarted):
    /// nothing ran, so the transaction is tried once more on a fresh connection.
    struct BeginFailed: Error { var underlying: any Error }

    func run<T: Sendable>(write: Bool, _ body: @Sendable (any StoreTransaction) async throws -> T) async throws -> T {
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try await withLease { c in
                    let tx = PostgresTransaction(c, self.logger, queryTimeout: self.configuration.queryTimeout)
                    do {
                        try await tx.exec(write ? "BEGIN ISOLATION LEVEL READ COMMITTED" : "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    } catch { throw BeginFailed(underlying: error) }
                    do {
                        if write { try await tx.exec("SELECT pg_advisory_xact_lock(\(self.writeLockKey))") }
                        let r = try await body(tx)
                        try await tx.exec("COMMIT")
                        return r
                    } catch {
                        // A connection whose transaction state is unknown must not go back to the
                        // pool; one already closed for not answering is not asked again.
                        if !tx.cutOff.isSet {
                            do { try await tx.exec("ROLLBACK") } catch { try? await c.close() }
                        }
                        throw error
                    }
                }
            } catch let e as BeginFailed {
                if attempt < 2 { continue }
                throw PostgresTransaction.storeError(e.underlying)
            }
        }
    }

    /// Leases a pooled connection for `body`, giving up with `.unavailable` when none comes
    /// within `acquireTimeout`.
    ///
    /// The lease is taken in a task of its own and handed over, so a request never waits on
    /// the pool past the timeout, even when the pool does not answer a cancelled lease request;
    /// after `PoolHolder.replaceAfter` lease timeouts in a row the pool is replaced by a fresh one.
    func withLease<T: Sendable>(_ body: @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let handoff = LeaseHandoff()
        let client = pool.client
        let lender = Task {
            do {
                try await client.withConnection { c in
                    guard handoff.deliver(c) else { return }  // the caller gave up: return it at once
                    await handoff.waitForRelease()
                }
            } catch {
                handoff.fail(StoreError(.unavailable, "PostgreSQL is unreachable: \(error)"))
            }
        }
        let acquire = configuration.acquireTimeout
        let timer = Task {
            try? await Task.sleep(for: acquire)
            handoff.fail(StoreError(.unavailable, "no PostgreSQL connection within \(acquire) (database down or pool of \(self.configuration.poolSize) exhausted)"))
        }
        let c: PostgresConnection
        do {
            c = try await handoff.connection()
            timer.cancel()
            pool.leaseSucceeded()
        } catch {
            lender.cancel()
            pool.leaseFailed(logger: logger)
            throw error
        }
        defer { handoff.release() }
        return try await body(c)
    }
}

/// The connection pool, replaced by a fresh one when it stops lending connections.
final class PoolHolder: @unchecked Sendable {
    /// Lease timeouts in a row after which the pool is replaced.
    static let replaceAfter = 3
    private let lock = NSLock()
    private let configuration: PostgresStoreConfiguration
    private let logger: Logger
    private var current: (client: PostgresClient, runner: Task<Void, Never>)
    private var retired: [Task<Void, Never>] = []
    private var failures = 0

    init(_ configuration: PostgresStoreConfiguration, _ logger: Logger) {
        self.configuration = configuration; self.logger = logger
        current = Self.start(configuration, logger)
    }

    private static func start(_ configuration: PostgresStoreConfiguration, _ logger: Logger) -> (PostgresClient, Task<Void, Never>) {
        let client = PostgresClient(configuration: configuration.clientConfiguration(), backgroundLogger: logger)
        return (client, Task { await client.run() })
    }

    var client: PostgresClient { lock.withLock { current.client } }

    func leaseSucceeded() { lock.withLock { failures = 0 } }

    func leaseFailed(logger: Logger) {
        lock.withLock {
            failures += 1
            guard failures >= Self.replaceAfter else { return }
            failures = 0
            logger.warning("no PostgreSQL connection for \(Self.replaceAfter) requests in a row; starting a fresh connection pool")
            current.runner.cancel()
            retired.append(current.runner)
            current = Self.start(configuration, self.logger)
        }
    }

    /// Stops the pool (and any replaced ones still winding down), waiting at most `limit` for
    /// their connections to close.
    func close(limit: Duration = .seconds(5)) async {
        let tasks = lock.withLock { retired + [current.runner] }
        for t in tasks { t.cancel() }
        let once = Once()
        let logger = self.logger
        await withCheckedContinuation { (k: CheckedContinuation<Void, Never>) in
            @Sendable func finish(_ timedOut: Bool) {
                guard once.first() else { return }
                if timedOut { logger.warning("PostgreSQL connections still closing after \(limit); not waiting for them") }
                k.resume()
            }
            Task { for t in tasks { await t.value }; finish(false) }
            Task { try? await Task.sleep(for: limit); finish(true) }
        }
    }
}

/// A flag that goes up once: `first()` is true for the one call that raised it.
final class Once: @unchecked Sendable {
    private let lock = NSLock()
    private var done = false
    func first() -> Bool { lock.withLock { defer { done = true }; return !done } }
    func set() { _ = first() }
    var isSet: Bool { lock.withLock { done } }
}

/// Hands a leased connection from the task holding the lease to the request that asked for
/// it, exactly once; a request that gave up (timeout or failure) never receives one.
final class LeaseHandoff: @unchecked Sendable {
    private let lock = NSLock()
    private var result: Result<PostgresConnection, StoreError>?
    private var waiter: CheckedContinuation<PostgresConnection, any Error>?
    private var released = false
    private var releaseWaiter: CheckedContinuation<Void, Never>?

    /// Offers the leased connection; false when the request already gave up.
    func deliver(_ c: PostgresConnection) -> Bool { settle(.success(c)) }
    func fail(_ e: StoreError) { _ = settle(.failure(e)) }

    /// Records the outcome unless one is already recorded; true when this call decided it.
    private func settle(_ r: Result<PostgresConnection, StoreError>) -> Bool {
        let (decided, w): (Bool, CheckedContinuation<PostgresConnection, any Error>?) = lock.withLock {
            guard result == nil else { return (false, nil) }
            result = r
            defer { waiter = nil }
            return (true, waiter)
        }
        w?.resume(with: r.mapError { $0 as any Error })
        return decided
    }

    func connection() async throws -> PostgresConnection {
        try await withCheckedThrowingContinuation { (k: CheckedContinuation<PostgresConnection, any Error>) in
            let r: Result<PostgresConnection, StoreError>? = lock.withLock {
                if result == nil { waiter = k }
                return result
            }
            if let r { k.resume(with: r.mapError { $0 as any Error }) }
        }
    }

    func release() {
        let w: CheckedContinuation<Void, Never>? = lock.withLock {
            released = true
            defer { releaseWaiter = nil }
            return releaseWaiter
        }
        w?.resume()
    }

    func waitForRelease() async {
        await withCheckedContinuation { (k: CheckedContinuation<Void, Never>) in
            let done = lock.withLock {
                if !released { releaseWaiter = k }
                return released
            }
            if done { k.resume() }
        }
    }
}

final class PostgresTransaction: StoreTransaction, @unchecked Sendable {
    let c: PostgresConnection
    let logger: Logger
    let queryTimeout: Duration
    /// Set when a statement outlived `queryTimeout` and the connection was closed.
    let cutOff = Once()
    init(_ c: PostgresConnection, _ logger: Logger, queryTimeout: Duration = .seconds(15)) {
        self.c = c; self.logger = logger; self.queryTimeout = queryTimeout
    }

    /// Maps a driver error to a `StoreError`: serialisation failures and deadlocks are
    /// `.conflict` (the server answers 409; retrying is safe), integrity violations
    /// `.constraint`, SQL the server refuses `.corrupt`, and everything else — lost
    /// connections, shutdown, no resources — `.unavailable` (503).
    static func storeError(_ error: any Error) -> StoreError {
        if let e = error as? StoreError { return e }
        guard let p = error as? PSQLError else { return StoreError(.unavailable, "PostgreSQL: \(error)") }
        if p.code == .server, let state = p.serverInfo?[.sqlState] {
            let message = p.serverInfo?[.message] ?? ""
            switch state.prefix(2) {
            case "40": return StoreError(.conflict, "PostgreSQL \(state): \(message); a concurrent write won, retry")
            case "25": return StoreError(.constraint, "PostgreSQL \(state): \(message) (a write in a read transaction?)")
            case "23": return StoreError(.constraint, "PostgreSQL \(state): \(message)")
            case "42", "22": return StoreError(.corrupt, "PostgreSQL \(state): \(message)")
            case "55" where state == "55P03": return StoreError(.unavailable, "PostgreSQL: lock wait timed out (\(message))")
            default: return StoreError(.unavailable, "PostgreSQL \(state): \(message)")
            }
        }
        return StoreError(.unavailable, "PostgreSQL connection failed (\(p.code))")
    }

    /// Runs one statement. The statement runs in a task of its own and the caller waits at
    /// most `queryTimeout` for it: a statement caught on a connection the database dropped can
    /// otherwise wait forever (seen with PostgreSQL stopped mid-transaction), holding its
    /// request and, at shutdown, the whole server. Past the deadline the connection is closed,
    /// the statement's task is left to end on its own and the caller gets `.unavailable`.
    @discardableResult
    func q(_ query: PostgresQuery) async throws -> [PostgresRow] {
        let (c, logger, timeout, cutOff) = (self.c, self.logger, self.queryTimeout, self.cutOff)
        let outcome = Once()
        return try await withCheckedThrowingContinuation { (k: CheckedContinuation<[PostgresRow], any Error>) in
            let timer = Task {
                do { try await Task.sleep(for: timeout) } catch { return }
                guard outcome.first() else { return }
                cutOff.set()
                logger.error("PostgreSQL statement still running after \(timeout); closing its connection")
                k.resume(throwing: StoreError(.unavailable, "PostgreSQL did not answer within \(timeout); the connection was closed"))
                try? await c.close()
            }
            Task {
                let r: Result<[PostgresRow], any Error>
                do { r = .success(try await c.query(query, logger: logger).collect()) } catch { r = .failure(Self.storeError(error)) }
                guard outcome.first() else { return }
                timer.cancel()
                k.resume(with: r)
            }
        }
    }
    func exec(_ query: PostgresQuery) async throws { try await q(query) }

    func schemaVersion() async throws -> Int {
        let rows = try await q("SELECT COALESCE(MAX(version), 0)::BIGINT FROM schema_migrations")
        return Int(try rows.first.map { try $0.decode(Int64.self) } ?? 0)
    }

    func decodeRow(_ r: PostgresRow) throws -> StoreRow {
        do {
            let (id, t, p, l, doc) = try r.decode((String, String?, String?, String?, String).self)
            return StoreRow(id: id, tenantId: t, parentId: p, lookup: l, doc: doc)
        } catch { throw StoreError(.corrupt, "row does not decode: \(error)") }
    }

    func insert(_ table: StoreTable, _ r: StoreRow) async throws -> Bool {
        let rows = try await q("""
            INSERT INTO \(unescaped: table.rawValue) (id, tenant_id, parent_id, lookup, doc) \
            VALUES (\(r.id), \(r.tenantId), \(r.parentId), \(r.lookup), \(r.doc)) ON CONFLICT (id) DO NOTHING RETURNING 1
            """)
        return !rows.isEmpty
    }

    func put(_ table: StoreTable, _ r: StoreRow) async throws {
        try await exec("""
            INSERT INTO \(unescaped: table.rawValue) (id, tenant_id, parent_id, lookup, doc) \
            VALUES (\(r.id), \(r.tenantId), \(r.parentId), \(r.lookup), \(r.doc)) \
            ON CONFLICT (id) DO UPDATE SET tenant_id = excluded.tenant_id, parent_id = excluded.parent_id, \
            lookup = excluded.lookup, doc = excluded.doc
            """)
    }

    func get(_ table: StoreTable, id: String) async throws -> StoreRow? {
        try await q("SELECT id, tenant_id, parent_id, lookup, doc FROM \(unescaped: table.rawValue) WHERE id = \(id)").first.map(decodeRow)
    }

    /// One query: a SELECT per table joined by UNION ALL, each id found by primary key through
    /// its child's parent_id; `n` numbers the tables.
    func getLineage(_ tables: [StoreTable], id: String) async throws -> [StoreRow] {
        guard !tables.isEmpty else { return [] }
        var key = "$1"
        var parts: [String] = []
        for (n, t) in tables.enumerated() {
            if n > 0 { key = "(SELECT parent_id FROM \(tables[n - 1].rawValue) WHERE id = \(key))" }
            parts.append("SELECT \(n)::BIGINT AS n, id, tenant_id, parent_id, lookup, doc FROM \(t.rawValue) WHERE id = \(key)")
        }
        var binds = PostgresBindings()
        binds.append(id)
        let rows = try await q(PostgresQuery(unsafeSQL: parts.joined(separator: " UNION ALL ") + " ORDER BY n", binds: binds))
        var out: [StoreRow] = []
        for r in rows {
            let decoded: (Int64, String, String?, String?, String?, String)
            do { decoded = try r.decode((Int64, String, String?, String?, String?, String).self) } catch {
                throw StoreError(.corrupt, "row does not decode: \(error)")
            }
            guard decoded.0 == Int64(out.count) else { break }
            out.append(StoreRow(id: decoded.1, tenantId: decoded.2, parentId: decoded.3, lookup: decoded.4, doc: decoded.5))
        }
        return out
    }

    func find(_ table: StoreTable, _ column: StoreColumn, _ value: String) async throws -> [StoreRow] {
        try await q("""
            SELECT id, tenant_id, parent_id, lookup, doc FROM \(unescaped: table.rawValue) \
            WHERE \(unescaped: column.rawValue) = \(value) ORDER BY id
            """).map(decodeRow)
    }

    func delete(_ table: StoreTable, id: String) async throws {
        try await exec("DELETE FROM \(unescaped: table.rawValue) WHERE id = \(id)")
    }

    func setting(_ key: String) async throws -> String? {
        try await q("SELECT value FROM settings WHERE key = \(key)").first.map { try $0.decode(String.self) }
    }

    func setSetting(_ key: String, _ value: String?) async throws {
        if let value {
            try await exec("INSERT INTO settings (key, value) VALUES (\(key), \(value)) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
        } else {
            try await exec("DELETE FROM settings WHERE key = \(key)")
        }
    }

    func audit(_ r: PostgresRow) throws -> AuditEvent {
        let doc: String
        do { doc = try r.decode(String.self) } catch { throw StoreError(.corrupt, "audit row without doc") }
        do { return try JSONDecoder().decode(AuditEvent.self, from: Data(doc.utf8)) } catch {
            throw StoreError(.corrupt, "audit event does not decode: \(error)")
        }
    }

    func lastAuditEvent() async throws -> AuditEvent? {
        try await q("SELECT doc FROM audit_events ORDER BY seq DESC LIMIT 1").first.map(audit)
    }

    func appendAuditEvent(_ e: AuditEvent) async throws {
        let doc = String(decoding: try JSONEncoder().encode(e), as: UTF8.self)
        try await exec("""
            INSERT INTO audit_events (seq, tenant_id, time_ms, action, outcome, principal_id, asset_id, hash, doc) \
            VALUES (\(e.seq), \(e.tenantId), \(AuditChain.millis(e.time)), \(e.action), \(e.outcome), \(e.principalId), \
            \(e.assetId), \(e.hash), \(doc))
            """)
    }

    func appendAuditEvents(_ events: [AuditEvent]) async throws {
        for start in stride(from: 0, to: events.count, by: 500) {
            let chunk = events[start..<min(events.count, start + 500)]
            var binds = PostgresBindings()
            var values: [String] = []
            for e in chunk {
                let doc = String(decoding: try JSONEncoder().encode(e), as: UTF8.self)
                let b = binds.count
                binds.append(e.seq); binds.append(e.tenantId); binds.append(AuditChain.millis(e.time)); binds.append(e.action)
                binds.append(e.outcome); binds.append(e.principalId); binds.append(e.assetId); binds.append(e.hash); binds.append(doc)
                values.append("(" + (1...9).map { "$\(b + $0)" }.joined(separator: ", ") + ")")
            }
            try await exec(PostgresQuery(unsafeSQL: """
                INSERT INTO audit_events (seq, tenant_id, time_ms, action, outcome, principal_id, asset_id, hash, doc) \
                VALUES \(values.joined(separator: ", "))
                """, binds: binds))
        }
    }

    func auditEvents(_ f: AuditFilter) async throws -> [AuditEvent] {
        var sql: PostgresQuery = "SELECT doc FROM audit_events WHERE seq > \(f.afterSeq)"
        var binds = sql.binds
        var text = sql.sql
        func add(_ clause: String, _ v: String) throws {
            try binds.append(v)
            text += " AND \(clause) = $\(binds.count)"
        }
        if let t = f.tenantId { try add("tenant_id", t) }
        if let a = f.action { try add("action", a) }
        if let p = f.principalId { try add("principal_id", p) }
        if let a = f.assetId { try add("asset_id", a) }
        if let o = f.outcome { try add("outcome", o) }
        if let s = f.since {
            try binds.append(AuditChain.millis(s))
            text += " AND time_ms >= $\(binds.count)"
        }
        try binds.append(Int64(max(0, f.limit)))
        text += " ORDER BY seq LIMIT $\(binds.count)"
        sql = PostgresQuery(unsafeSQL: text, binds: binds)
        return try await q(sql).map(audit)
    }

    func appendChange(tenantId: String, kind: ChangeRecord.Kind, entityId: String, vaultId: String?) async throws -> Int64 {
        let rows = try await q("""
            INSERT INTO changes (tenant_id, kind, entity_id, vault_id) VALUES (\(tenantId), \(kind.rawValue), \(entityId), \(vaultId)) \
            RETURNING seq
            """)
        guard let seq = try rows.first.map({ try $0.decode(Int64.self) }) else {
            throw StoreError(.corrupt, "change log insert returned no sequence")
        }
        return seq
    }

    func changes(tenantId: String, afterSeq: Int64, limit: Int) async throws -> [ChangeRecord] {
        try await q("""
            SELECT seq, kind, entity_id, vault_id FROM changes WHERE tenant_id = \(tenantId) AND seq > \(afterSeq) \
            ORDER BY seq LIMIT \(Int64(max(0, limit)))
            """).map { r in
            guard let (seq, k, e, v) = try? r.decode((Int64, String, String, String?).self),
                  let kind = ChangeRecord.Kind(rawValue: k) else { throw StoreError(.corrupt, "bad change row") }
            return ChangeRecord(seq: seq, tenantId: tenantId, kind: kind, entityId: e, vaultId: v)
        }
    }

    func lastChangeSeq(tenantId: String) async throws -> Int64 {
        try await q("SELECT COALESCE(MAX(seq), 0)::BIGINT FROM changes WHERE tenant_id = \(tenantId)").first.map { try $0.decode(Int64.self) } ?? 0
    }
}
