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
    let client: PostgresClient
    let runner: Task<Void, Never>
    let logger: Logger

    /// Advisory-lock keys (arbitrary 64-bit constants, "latch" + purpose).
    static let writeLockKey: Int64 = 0x6c61_7463_6877_7231  // serialises write transactions
    static let migrationLockKey: Int64 = 0x6c61_7463_686d_6731  // serialises migrations

    /// Connects (pool of `configuration.poolSize`), waits for the database and runs pending
    /// migrations. Throws `StoreError(.unavailable)` when the database cannot be reached.
    public static func open(_ configuration: PostgresStoreConfiguration,
                            logger: Logger = Logger(label: "latch.store.postgres")) async throws -> PostgresLatchStore {
        let client = PostgresClient(configuration: configuration.clientConfiguration(), backgroundLogger: logger)
        let runner = Task { await client.run() }
        let store = PostgresLatchStore(configuration: configuration, client: client, runner: runner, logger: logger)
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

    init(configuration: PostgresStoreConfiguration, client: PostgresClient, runner: Task<Void, Never>, logger: Logger) {
        self.configuration = configuration; self.client = client; self.runner = runner; self.logger = logger
    }

    /// Closes every pooled connection.
    public func close() async {
        runner.cancel()
        await runner.value
    }

    // MARK: migrations

    /// Each migration is a list of single statements, applied in one transaction. Text columns
    /// use the "C" collation so `ORDER BY id` is byte order, as in SQLite.
    static let migrations: [(version: Int, statements: [String])] = [
        (1, {
            var s: [String] = []
            for t in StoreTable.allCases {
                s.append("""
                    CREATE TABLE \(t.rawValue) (id TEXT COLLATE "C" PRIMARY KEY, tenant_id TEXT COLLATE "C", \
                    parent_id TEXT COLLATE "C", lookup TEXT COLLATE "C", doc TEXT NOT NULL)
                    """)
                s.append("CREATE INDEX \(t.rawValue)_tenant ON \(t.rawValue) (tenant_id)")
                s.append("CREATE INDEX \(t.rawValue)_parent ON \(t.rawValue) (parent_id)")
                s.append("CREATE INDEX \(t.rawValue)_lookup ON \(t.rawValue) (lookup)")
            }
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
    ]

    func migrate() async throws {
        try await withLease { c in
            let tx = PostgresTransaction(c, self.logger)
            // A session lock (not a transaction one): held across the check and every migration.
            try await tx.exec("SELECT pg_advisory_lock(\(Self.migrationLockKey))")
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
                try await tx.exec("SELECT pg_advisory_unlock(\(Self.migrationLockKey))")
            } catch {
                try? await tx.exec("SELECT pg_advisory_unlock(\(Self.migrationLockKey))")
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
                    let tx = PostgresTransaction(c, self.logger)
                    do {
                        try await tx.exec(write ? "BEGIN ISOLATION LEVEL READ COMMITTED" : "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    } catch { throw BeginFailed(underlying: error) }
                    do {
                        if write { try await tx.exec("SELECT pg_advisory_xact_lock(\(Self.writeLockKey))") }
                        let r = try await body(tx)
                        try await tx.exec("COMMIT")
                        return r
                    } catch {
                        // A connection whose transaction state is unknown must not go back to the pool.
                        do { try await tx.exec("ROLLBACK") } catch { try? await c.close() }
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
    /// within `acquireTimeout` (the pool itself would queue the request for up to a minute
    /// while the database is down).
    func withLease<T: Sendable>(_ body: @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let gate = LeaseGate()
        let timeout = configuration.acquireTimeout
        let client = self.client
        return try await withoutActuallyEscaping(body) { body in
            try await withThrowingTaskGroup(of: T?.self) { group in
                group.addTask {
                    do {
                        return try await client.withConnection { c in
                            guard gate.acquire() else { throw CancellationError() }
                            return try await body(c)
                        }
                    } catch {
                        // Thrown before the body ran: the pool could not lend a connection.
                        if !gate.acquired, !(error is StoreError) {
                            throw StoreError(.unavailable, "PostgreSQL is unreachable: \(error)")
                        }
                        throw error
                    }
                }
                group.addTask {
                    try? await Task.sleep(for: timeout)
                    return nil
                }
                while let r = try await group.next() {
                    if let v = r { group.cancelAll(); return v }
                    if gate.timeOut() {
                        group.cancelAll()
                        throw StoreError(.unavailable, "no PostgreSQL connection within \(timeout) (database down or pool of \(self.configuration.poolSize) exhausted)")
                    }
                }
                throw StoreError(.unavailable, "PostgreSQL transaction ended without a result")
            }
        }
    }
}

/// Decides, once, whether a lease was acquired before the acquire timeout fired.
final class LeaseGate: @unchecked Sendable {
    private let lock = NSLock()
    private var state = 0  // 0 waiting, 1 acquired, 2 timed out
    func acquire() -> Bool { lock.withLock { if state == 0 { state = 1 }; return state == 1 } }
    func timeOut() -> Bool { lock.withLock { if state == 0 { state = 2 }; return state == 2 } }
    var acquired: Bool { lock.withLock { state == 1 } }
}

final class PostgresTransaction: StoreTransaction, @unchecked Sendable {
    let c: PostgresConnection
    let logger: Logger
    init(_ c: PostgresConnection, _ logger: Logger) { self.c = c; self.logger = logger }

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

    @discardableResult
    func q(_ query: PostgresQuery) async throws -> [PostgresRow] {
        do { return try await c.query(query, logger: logger).collect() } catch { throw Self.storeError(error) }
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
