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
///   commit order (a sync cursor read on one replica is valid on any other). The audit
///   group commit (`appendAuditBatch`) is one statement that takes the same lock, reads the
///   tail and chains the batch on it in the database;
/// - a read sees one consistent snapshot: a read body of one statement runs it alone (a
///   statement is its own snapshot), one of several runs in a `REPEATABLE READ READ ONLY`
///   transaction (see `run`);
/// - migrations run under a session-level advisory lock, so replicas that start together
///   apply each migration once;
/// - a lost database surfaces as `StoreError(.unavailable)` within `acquireTimeout`; the pool
///   reconnects by itself when the database returns.
public final class PostgresLatchStore: LatchStore, Sendable {
    public let configuration: PostgresStoreConfiguration
    let pool: ConnectionPool
    let logger: Logger
    /// First statements of read bodies that issue several (those start in a snapshot at once).
    let snapshotHints = SnapshotHints()
    /// How read bodies and audit appends ran (for tests and diagnostics).
    let pathCounts = PathCounts()

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
        let pool = ConnectionPool(configuration: try configuration.connectionConfiguration(), size: configuration.poolSize,
                                  acquireTimeout: configuration.acquireTimeout, idleTimeout: configuration.idleTimeout, logger: logger)
        let store = PostgresLatchStore(configuration: configuration, pool: pool, logger: logger)
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

    init(configuration: PostgresStoreConfiguration, pool: ConnectionPool, logger: Logger) {
        self.configuration = configuration; self.pool = pool; self.logger = logger
    }

    /// Closes every pooled connection.
    public func close() async {
        let n = pathCounts.snapshot
        logger.debug("PostgreSQL store closing: \(n.oneStatementAppends) audit group commits in one statement, \(n.loneReads) reads of one statement")
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
        (3, [auditAppendFunction]),
        (4, [chainedAuditAppendFunction]),
        // Every member of an audit event in a column of its own, filled by
        // `latch_audit_append_columns` from arrays the replica sends (no JSON parsed per event).
        (5, ["""
            ALTER TABLE audit_events ADD COLUMN access_key TEXT COLLATE "C", ADD COLUMN asset_type TEXT COLLATE "C", \
            ADD COLUMN source TEXT, ADD COLUMN detail TEXT
            """, columnsAuditAppendFunction]),
        // The data version (`AuditBatchResult`): one row, moved by a trigger on every table but
        // the audit chain's, and the audit group commit that checks it.
        (6, [
            "CREATE TABLE latch_data_version (one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one), counter BIGINT NOT NULL, xact BIGINT)",
            "INSERT INTO latch_data_version (counter) VALUES (1)",
            dataVersionBumpFunction,
        ] + dataVersionTables.map {
            "CREATE TRIGGER \($0)_data_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON \($0) FOR EACH STATEMENT EXECUTE FUNCTION latch_data_version_bump()"
        } + [checkedAuditAppendFunction]),
    ]

    /// The tables whose changes move the data version: every table but `audit_events`,
    /// `schema_migrations` and `latch_data_version` itself. A table added later needs the
    /// trigger too (`PostgresDataVersionTests` fails otherwise).
    static let dataVersionTables = StoreTable.allCases.map(\.rawValue) + ["settings", "changes"]

    /// Moves the data version once per transaction, whatever the statement: a statement-level
    /// trigger (it fires even when no row changed, which only ends reuse early) that leaves the
    /// row alone once this transaction has moved it. Writes already queue on the write lock, so
    /// the row adds no waiting; a replica of an older release that knows nothing of the version
    /// still moves it with each of its writes.
    static let dataVersionBumpFunction = """
        CREATE FUNCTION latch_data_version_bump() RETURNS trigger LANGUAGE plpgsql AS $fn$
        BEGIN
            UPDATE latch_data_version SET counter = counter + 1, xact = txid_current() WHERE xact IS DISTINCT FROM txid_current();
            RETURN NULL;
        END
        $fn$
        """

    /// Migration 3's optimistic audit append (a batch chained in Swift on the tail the replica
    /// last saw, inserted only if that is still the tail). Replaced by migration 4's
    /// `latch_audit_append_chained` and no longer called; kept so a replica still running the
    /// previous release keeps working during an upgrade.
    static let auditAppendFunction = """
        CREATE FUNCTION latch_audit_append(lock_key BIGINT, after_seq BIGINT, after_hash TEXT, batch JSONB, durable BOOLEAN)
        RETURNS TABLE (appended BOOLEAN, tail TEXT) LANGUAGE plpgsql VOLATILE AS $fn$
        DECLARE
            t_seq BIGINT;
            t_hash TEXT;
            t_doc TEXT;
        BEGIN
            IF NOT durable THEN
                PERFORM set_config('synchronous_commit', 'off', true);
            END IF;
            PERFORM pg_advisory_xact_lock(lock_key);
            SELECT a.seq, a.hash, a.doc INTO t_seq, t_hash, t_doc FROM audit_events a ORDER BY a.seq DESC LIMIT 1;
            IF COALESCE(t_seq, 0) <> after_seq OR (t_seq IS NOT NULL AND t_hash IS DISTINCT FROM after_hash) THEN
                RETURN QUERY SELECT FALSE, t_doc;
                RETURN;
            END IF;
            INSERT INTO audit_events (seq, tenant_id, time_ms, action, outcome, principal_id, asset_id, hash, doc)
            SELECT r.seq, r.tenant_id, r.time_ms, r.action, r.outcome, r.principal_id, r.asset_id, r.hash, r.doc
            FROM jsonb_to_recordset(batch) AS r (seq BIGINT, tenant_id TEXT, time_ms BIGINT, action TEXT, outcome TEXT,
                                                 principal_id TEXT, asset_id TEXT, hash TEXT, doc TEXT);
            RETURN QUERY SELECT TRUE, NULL::TEXT;
        END
        $fn$
        """

    /// Migration 4's audit group commit, replaced by migration 5's `latch_audit_append_columns`
    /// and no longer called; kept for a replica of the previous release during an upgrade.
    ///
    /// The audit group commit in one round trip, ordered by the database
    /// (`PostgresLatchStore.appendAuditBatch`): under the write lock it reads the chain's tail
    /// (a fresh snapshot: each statement of a volatile function takes one at READ COMMITTED),
    /// chains the batch on it and inserts it, so concurrent replicas' batches queue on the lock
    /// instead of retrying. Each event comes as its `AuditChainTemplate` (the parts of its hash
    /// input and document that do not depend on its place in the chain, made in Swift); the
    /// function only joins them with the sequence number and the previous hash, as the
    /// template defines, and hashes the bytes with SHA-256. The other columns are read back
    /// from the finished document. Returns the first event's seq and prevHash and every hash.
    /// `durable` false commits without waiting for the WAL flush (`CommitDurability.deferred`).
    static let chainedAuditAppendFunction = """
        CREATE FUNCTION latch_audit_append_chained(lock_key BIGINT, hash_heads BYTEA[], hash_middles BYTEA[], hash_tails BYTEA[],
                                                   doc_head TEXT, doc_middles TEXT[], doc_join TEXT, doc_tail TEXT,
                                                   times_ms BIGINT[], durable BOOLEAN)
        RETURNS TABLE (first_seq BIGINT, first_prev TEXT, hashes TEXT[]) LANGUAGE plpgsql VOLATILE AS $fn$
        DECLARE
            n INT := COALESCE(array_length(hash_heads, 1), 0);
            t_seq BIGINT;
            prev TEXT;
            h TEXT;
            hs TEXT[] := '{}';
            docs TEXT[] := '{}';
        BEGIN
            IF n = 0 OR array_length(hash_middles, 1) IS DISTINCT FROM n OR array_length(hash_tails, 1) IS DISTINCT FROM n
               OR array_length(doc_middles, 1) IS DISTINCT FROM n OR array_length(times_ms, 1) IS DISTINCT FROM n THEN
                RAISE EXCEPTION 'latch_audit_append_chained: the batch''s arrays differ in length' USING ERRCODE = '22023';
            END IF;
            IF NOT durable THEN
                PERFORM set_config('synchronous_commit', 'off', true);
            END IF;
            PERFORM pg_advisory_xact_lock(lock_key);
            SELECT a.seq, a.hash INTO t_seq, prev FROM audit_events a ORDER BY a.seq DESC LIMIT 1;
            t_seq := COALESCE(t_seq, 0);
            prev := COALESCE(prev, repeat('0', 64));
            IF prev !~ '^[0-9a-f]{64}$' THEN
                RAISE EXCEPTION 'latch_audit_append_chained: the last audit event''s hash is not 64 lowercase hex digits' USING ERRCODE = '22023';
            END IF;
            IF t_seq + n > 9007199254740992 THEN
                RAISE EXCEPTION 'latch_audit_append_chained: sequence numbers past 2^53' USING ERRCODE = '22003';
            END IF;
            first_seq := t_seq + 1;
            first_prev := prev;
            FOR i IN 1..n LOOP
                h := encode(sha256(convert_to(prev, 'UTF8') || hash_heads[i] || convert_to(prev, 'UTF8') || hash_middles[i]
                                   || convert_to((t_seq + i)::TEXT, 'UTF8') || hash_tails[i]), 'hex');
                docs[i] := doc_head || (t_seq + i)::TEXT || doc_middles[i] || prev || doc_join || h || doc_tail;
                hs[i] := h;
                prev := h;
            END LOOP;
            INSERT INTO audit_events (seq, tenant_id, time_ms, action, outcome, principal_id, asset_id, hash, doc)
            SELECT t_seq + k, d.j ->> 'tenantId', times_ms[k], d.j ->> 'action', d.j ->> 'outcome', d.j ->> 'principalId',
                   d.j ->> 'assetId', hs[k], docs[k]
            FROM generate_subscripts(hs, 1) AS k, LATERAL (SELECT docs[k]::jsonb AS j) AS d;
            hashes := hs;
            RETURN NEXT;
        END
        $fn$
        """

    /// Migration 5's audit group commit, replaced by migration 6's `latch_audit_append_checked`
    /// and no longer called; kept for a replica of the previous release during an upgrade.
    ///
    /// Migration 4's, except that the columns come as arrays
    /// from the replica instead of being parsed back out of each finished document as JSONB.
    /// Rows keep their document, so a replica of the previous release (which reads the
    /// document, and chains its own writes on the last one) keeps working during an upgrade;
    /// the `access_key`, `asset_type`, `source` and `detail` columns it leaves NULL. Storing
    /// columns only, as SQLite does, has to wait for a release that no such replica runs beside.
    static let columnsAuditAppendFunction = """
        CREATE FUNCTION latch_audit_append_columns(lock_key BIGINT, hash_heads BYTEA[], hash_middles BYTEA[], hash_tails BYTEA[],
                                                   doc_head TEXT, doc_middles TEXT[], doc_join TEXT, doc_tail TEXT,
                                                   times_ms BIGINT[], tenant_ids TEXT[], actions TEXT[], outcomes TEXT[],
                                                   principal_ids TEXT[], access_keys TEXT[], asset_types TEXT[], asset_ids TEXT[],
                                                   sources TEXT[], details TEXT[], durable BOOLEAN)
        RETURNS TABLE (first_seq BIGINT, first_prev TEXT, hashes TEXT[]) LANGUAGE plpgsql VOLATILE AS $fn$
        DECLARE
            n INT := COALESCE(array_length(hash_heads, 1), 0);
            t_seq BIGINT;
            prev TEXT;
            h TEXT;
            hs TEXT[] := '{}';
            docs TEXT[] := '{}';
        BEGIN
            IF n = 0 OR EXISTS (SELECT 1 FROM unnest(ARRAY[array_length(hash_middles, 1), array_length(hash_tails, 1),
                    array_length(doc_middles, 1), array_length(times_ms, 1), array_length(tenant_ids, 1), array_length(actions, 1),
                    array_length(outcomes, 1), array_length(principal_ids, 1), array_length(access_keys, 1),
                    array_length(asset_types, 1), array_length(asset_ids, 1), array_length(sources, 1),
                    array_length(details, 1)]) AS l WHERE l IS DISTINCT FROM n) THEN
                RAISE EXCEPTION 'latch_audit_append_columns: the batch''s arrays differ in length' USING ERRCODE = '22023';
            END IF;
            IF NOT durable THEN
                PERFORM set_config('synchronous_commit', 'off', true);
            END IF;
            PERFORM pg_advisory_xact_lock(lock_key);
            SELECT a.seq, a.hash INTO t_seq, prev FROM audit_events a ORDER BY a.seq DESC LIMIT 1;
            t_seq := COALESCE(t_seq, 0);
            prev := COALESCE(prev, repeat('0', 64));
            IF prev !~ '^[0-9a-f]{64}$' THEN
                RAISE EXCEPTION 'latch_audit_append_columns: the last audit event''s hash is not 64 lowercase hex digits' USING ERRCODE = '22023';
            END IF;
            IF t_seq + n > 9007199254740992 THEN
                RAISE EXCEPTION 'latch_audit_append_columns: sequence numbers past 2^53' USING ERRCODE = '22003';
            END IF;
            first_seq := t_seq + 1;
            first_prev := prev;
            FOR i IN 1..n LOOP
                h := encode(sha256(convert_to(prev, 'UTF8') || hash_heads[i] || convert_to(prev, 'UTF8') || hash_middles[i]
                                   || convert_to((t_seq + i)::TEXT, 'UTF8') || hash_tails[i]), 'hex');
                docs[i] := doc_head || (t_seq + i)::TEXT || doc_middles[i] || prev || doc_join || h || doc_tail;
                hs[i] := h;
                prev := h;
            END LOOP;
            INSERT INTO audit_events (seq, tenant_id, time_ms, action, outcome, principal_id, access_key, asset_type, asset_id,
                                      source, detail, hash, doc)
            SELECT t_seq + k, tenant_ids[k], times_ms[k], actions[k], outcomes[k], principal_ids[k], access_keys[k],
                   asset_types[k], asset_ids[k], sources[k], details[k], hs[k], docs[k]
            FROM generate_subscripts(hs, 1) AS k;
            hashes := hs;
            RETURN NEXT;
        END
        $fn$
        """

    /// Migration 6's audit group commit: migration 5's, except that each event may expect a
    /// data version (`expected`, -1 for none). Under the write lock it reads the data version,
    /// leaves out every event that expects another, and chains and inserts the rest; it returns
    /// the version and, per event, whether it was appended. Migration 5's function stays for a
    /// replica of the previous release.
    static let checkedAuditAppendFunction = """
        CREATE FUNCTION latch_audit_append_checked(lock_key BIGINT, hash_heads BYTEA[], hash_middles BYTEA[], hash_tails BYTEA[],
                                                   times_ms BIGINT[], tenant_ids TEXT[], actions TEXT[], outcomes TEXT[],
                                                   principal_ids TEXT[], access_keys TEXT[], asset_types TEXT[], asset_ids TEXT[],
                                                   sources TEXT[], details TEXT[], expected BIGINT[], durable BOOLEAN)
        RETURNS TABLE (first_seq BIGINT, first_prev TEXT, hashes TEXT[], data_version BIGINT, appended BOOLEAN[])
        LANGUAGE plpgsql VOLATILE AS $fn$
        DECLARE
            n INT := COALESCE(array_length(hash_heads, 1), 0);
            t_seq BIGINT;
            prev TEXT;
            h TEXT;
            j INT := 0;
            hs TEXT[] := '{}';
            src INT[] := '{}';
            ok BOOLEAN[] := '{}';
        BEGIN
            IF n = 0 OR EXISTS (SELECT 1 FROM unnest(ARRAY[array_length(hash_middles, 1), array_length(hash_tails, 1),
                    array_length(times_ms, 1), array_length(tenant_ids, 1), array_length(actions, 1),
                    array_length(outcomes, 1), array_length(principal_ids, 1), array_length(access_keys, 1),
                    array_length(asset_types, 1), array_length(asset_ids, 1), array_length(sources, 1),
                    array_length(details, 1), array_length(expected, 1)]) AS l WHERE l IS DISTINCT FROM n) THEN
                RAISE EXCEPTION 'latch_audit_append_checked: the batch''s arrays differ in length' USING ERRCODE = '22023';
            END IF;
            IF NOT durable THEN
                PERFORM set_config('synchronous_commit', 'off', true);
            END IF;
            PERFORM pg_advisory_xact_lock(lock_key);
            SELECT d.counter INTO data_version FROM latch_data_version d;
            SELECT a.seq, a.hash INTO t_seq, prev FROM audit_events a ORDER BY a.seq DESC LIMIT 1;
            t_seq := COALESCE(t_seq, 0);
            prev := COALESCE(prev, repeat('0', 64));
            IF prev !~ '^[0-9a-f]{64}$' THEN
                RAISE EXCEPTION 'latch_audit_append_checked: the last audit event''s hash is not 64 lowercase hex digits' USING ERRCODE = '22023';
            END IF;
            IF t_seq + n > 9007199254740992 THEN
                RAISE EXCEPTION 'latch_audit_append_checked: sequence numbers past 2^53' USING ERRCODE = '22003';
            END IF;
            first_seq := t_seq + 1;
            first_prev := prev;
            FOR i IN 1..n LOOP
                ok[i] := expected[i] < 0 OR expected[i] = data_version;
                CONTINUE WHEN NOT ok[i];
                j := j + 1;
                h := encode(sha256(convert_to(prev, 'UTF8') || hash_heads[i] || convert_to(prev, 'UTF8') || hash_middles[i]
                                   || convert_to((t_seq + j)::TEXT, 'UTF8') || hash_tails[i]), 'hex');
                hs[j] := h;
                src[j] := i;
                prev := h;
            END LOOP;
            IF j > 0 THEN
                INSERT INTO audit_events (seq, tenant_id, time_ms, action, outcome, principal_id, access_key, asset_type, asset_id,
                                          source, detail, hash, doc)
                SELECT t_seq + k, tenant_ids[src[k]], times_ms[src[k]], actions[src[k]], outcomes[src[k]], principal_ids[src[k]],
                       access_keys[src[k]], asset_types[src[k]], asset_ids[src[k]], sources[src[k]], details[src[k]], hs[k], ''
                FROM generate_subscripts(hs, 1) AS k;
            END IF;
            hashes := hs;
            appended := ok;
            RETURN NEXT;
        END
        $fn$
        """

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
                // A newer release migrated further: replicas of different releases share one
                // database while an upgrade rolls, and each release keeps what the one before it
                // reads (migration 5 keeps the audit documents), so this one goes on, and says so.
                let known = Self.migrations.last?.version ?? 0
                if current > known {
                    self.logger.warning("the database is at schema version \(current), newer than this release knows (\(known)): a newer latch serve has upgraded it; upgrade this replica")
                }
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

    /// `.deferred` commits with `synchronous_commit = off` for that transaction only: committed
    /// and visible at once, on disk once PostgreSQL's WAL writer has flushed it (within three
    /// `wal_writer_delay`s, 0.6 s by default); a crash of `latch serve` loses nothing.
    public func write<T: Sendable>(durability: CommitDurability, _ body: @Sendable (any StoreTransaction) async throws -> T) async throws -> T {
        try await run(write: true, durable: durability != .deferred, body)
    }

    /// The most events one `latch_audit_append_checked` call carries (a larger batch goes
    /// through one transaction instead).
    static let maxChainedBatch = 1000

    /// The audit group commit in one round trip per `maxChainedBatch` events, ordered by the
    /// database: each draft goes as its `AuditChainTemplate`, its columns and the data version
    /// it expects to `latch_audit_append_checked` (migration 6), which takes the write lock,
    /// checks the data version, chains the batch on the tail it finds and inserts it. Replicas
    /// never retry on each other's appends: they queue on the lock. A draft outside the
    /// template's range, or a batch too large for one call, goes through one write transaction
    /// (`appendAudit`) that checks the data version under the same lock.
    public func appendAuditBatch(_ drafts: [AuditDraft], expecting: [UInt64?], durability: CommitDurability) async throws -> AuditBatchResult {
        precondition(expecting.count == drafts.count, "one expectation per draft")
        guard !drafts.isEmpty else { return AuditBatchResult(events: [], appended: [], dataVersion: nil) }
        let templates = drafts.compactMap(AuditChainTemplate.init)
        guard templates.count == drafts.count, drafts.count <= Self.maxChainedBatch else {
            return try await write(durability: durability) { tx in
                guard let t = tx as? PostgresTransaction else { throw StoreError(.corrupt, "not a PostgreSQL transaction") }
                let version = try await t.dataVersion()
                let appended = expecting.map { $0 == nil || $0 == version }
                let events = try await tx.appendAudit(zip(drafts, appended).filter(\.1).map(\.0))
                return AuditBatchResult(events: events, appended: appended, dataVersion: version)
            }
        }
        var binds = PostgresBindings(capacity: 16)
        binds.append(writeLockKey)
        binds.append(templates.map { ByteBuffer(bytes: $0.hashHead) })
        binds.append(templates.map { ByteBuffer(bytes: $0.hashMiddle) })
        binds.append(templates.map { ByteBuffer(bytes: $0.hashTail) })
        binds.append(drafts.map { AuditChain.millis($0.time) })
        for column in [drafts.map(\.tenantId), drafts.map(\.action), drafts.map(\.outcome), drafts.map(\.principalId),
                       drafts.map(\.accessKey), drafts.map(\.assetType), drafts.map(\.assetId), drafts.map(\.source),
                       drafts.map(\.detail)] {
            binds.append(NullableTextArray(column))
        }
        binds.append(expecting.map { $0.map { Int64(clamping: $0) } ?? -1 })
        binds.append(durability != .deferred)
        let statement = AuditAppend(bindings: binds)
        let rows = try await withLease { c in
            try await PostgresTransaction(c, self.logger, queryTimeout: self.configuration.queryTimeout).prepared(statement)
        }
        guard let (seq, prev, hashes, version, appended) = rows.first.flatMap({ $0 }), appended.count == drafts.count,
              hashes.count == appended.filter({ $0 }).count, version > 0
        else { throw StoreError(.corrupt, "latch_audit_append_checked returned no answer") }
        pathCounts.count(\.oneStatementAppends)
        var prevHash = prev
        let events = zip(drafts, appended).filter(\.1).enumerated().map { i, kept in
            let e = kept.0.event(seq: seq + Int64(i), prevHash: prevHash, hash: hashes[i])
            prevHash = hashes[i]
            return e
        }
        return AuditBatchResult(events: events, appended: appended, dataVersion: UInt64(version))
    }

    /// The audit group commit's one statement, prepared once per connection (PostgreSQL would
    /// otherwise parse and plan it on every batch). A row that does not decode is nil.
    struct AuditAppend: PostgresPreparedStatement {
        static let name = "latch_audit_append_checked"
        static let sql = """
            SELECT first_seq, first_prev, hashes, data_version, appended FROM latch_audit_append_checked($1, $2, $3, $4, $5, $6, $7, \
            $8, $9, $10, $11, $12, $13, $14, $15, $16)
            """
        typealias Row = (Int64, String, [String], Int64, [Bool])?
        let bindings: PostgresBindings
        func makeBindings() -> PostgresBindings { bindings }
        func decodeRow(_ row: PostgresRow) throws -> Row { try? row.decode((Int64, String, [String], Int64, [Bool]).self) }
    }

    /// A BEGIN (or a lone read statement) that failed on a connection the pool still thought
    /// alive (the database restarted): nothing was written, so the transaction is tried once
    /// more on a fresh connection.
    struct BeginFailed: Error { var underlying: any Error }

    /// What one attempt at a transaction came to.
    enum Attempt<T: Sendable>: Sendable {
        case done(T)
        /// A read body went past one statement: nothing was kept; run it again in a snapshot.
        case again
    }

    /// Runs `body` as a transaction: `BEGIN`, for writes the write lock, its statements,
    /// `COMMIT`; except that a read body that issues one statement runs it alone, without
    /// `BEGIN`/`COMMIT` (one statement always sees one snapshot). A read body that turns out
    /// to issue more is stopped at its second statement, its result discarded, and it runs
    /// again in a `REPEATABLE READ READ ONLY` transaction (and its first statement's SQL is
    /// remembered, so the next such body starts in one directly). See
    /// `PostgresTransaction.Phase`.
    func run<T: Sendable>(write: Bool, durable: Bool = true, _ body: @Sendable (any StoreTransaction) async throws -> T) async throws -> T {
        var beginFailures = 0
        var full = false
        while true {
            let outcome: Attempt<T>
            do {
                let asFull = full
                outcome = try await withLease { c in try await self.attempt(c, write: write, durable: durable, full: asFull, body) }
            } catch let e as BeginFailed {
                beginFailures += 1
                if beginFailures < 2 { continue }
                throw PostgresTransaction.storeError(e.underlying)
            }
            switch outcome {
            case .done(let r): return r
            case .again: full = true
            }
        }
    }

    func attempt<T: Sendable>(_ c: PooledConnection, write: Bool, durable: Bool, full: Bool,
                              _ body: @Sendable (any StoreTransaction) async throws -> T) async throws -> Attempt<T> {
        let tx = PostgresTransaction(c, logger, queryTimeout: configuration.queryTimeout, store: self, write: write,
                                     durable: durable, full: full)
        let result: Result<T, any Error>
        do { result = .success(try await body(tx)) } catch { result = .failure(error) }
        switch tx.phase {
        case .failed(let e):
            throw BeginFailed(underlying: e)
        case .restart:
            if !write, let sql = tx.firstSQL { snapshotHints.record(sql, statements: 2) }
            return .again
        case .fresh:
            return .done(try result.get())
        case .single(let sql):
            snapshotHints.record(sql, statements: 1)
            pathCounts.count(\.loneReads)
            return .done(try result.get())
        case .inTransaction:
            do {
                let r = try result.get()
                try await tx.raw("COMMIT")
                if !write, let sql = tx.firstSQL { snapshotHints.record(sql, statements: tx.statements) }
                return .done(r)
            } catch {
                // A connection whose transaction state is unknown must not go back to the
                // pool; one already closed for not answering is not asked again.
                if !tx.cutOff.isSet {
                    do { try await tx.raw("ROLLBACK") } catch { c.broken.set() }
                }
                throw error
            }
        }
    }

    /// Leases a pooled connection for `body` (`ConnectionPool.lease`: `.unavailable` when none
    /// comes within `acquireTimeout`) and gives it back afterwards.
    func withLease<T: Sendable>(_ body: @Sendable (PooledConnection) async throws -> T) async throws -> T {
        let c = try await pool.lease()
        do {
            let r = try await body(c)
            pool.release(c)
            return r
        } catch {
            pool.release(c)
            throw error
        }
    }
}

/// Counts of the cheap paths taken.
final class PathCounts: @unchecked Sendable {
    struct Counts { var loneReads = 0, oneStatementAppends = 0 }
    private let lock = NSLock()
    private var counts = Counts()
    var snapshot: Counts { lock.withLock { counts } }
    func count(_ k: WritableKeyPath<Counts, Int>) { lock.withLock { counts[keyPath: k] += 1 } }
}

/// Read transactions whose first statement was seen to start a body of several statements:
/// those start in a snapshot transaction at once instead of running their first statement
/// alone and then starting over.
final class SnapshotHints: @unchecked Sendable {
    private let lock = NSLock()
    private var multi: [String: Int] = [:]

    /// True when bodies starting with `sql` recently issued more than one statement.
    func wantsSnapshot(_ sql: String) -> Bool { lock.withLock { (multi[sql] ?? 0) > 0 } }

    /// A body starting with `sql` issued `statements` statements. A multi-statement body
    /// marks its first statement for the next 8 bodies that start with it; each
    /// one-statement body counts one down, so a mix leans to what is common.
    func record(_ sql: String, statements: Int) {
        lock.withLock {
            if statements > 1 {
                if multi.count > 512 { multi.removeAll() }
                multi[sql] = 8
            } else if let n = multi[sql] {
                multi[sql] = n > 1 ? n - 1 : nil
            }
        }
    }
}

/// Deadlines of the statements and connection leases in flight, checked by one sweeper task
/// every `resolution` while any are set, instead of an event-loop timer each: a timer scheduled
/// and cancelled from another thread around every statement and every lease was about 4% of the
/// server's CPU on PostgreSQL, before the event-loop wake-ups it caused. A deadline fires at most
/// `resolution` late.
final class Deadlines: @unchecked Sendable {
    static let shared = Deadlines()
    static let resolution: Duration = .milliseconds(100)
    private let lock = NSLock()
    private var next: UInt64 = 0
    private var entries: [UInt64: (at: ContinuousClock.Instant, fire: @Sendable () -> Void)] = [:]
    private var sweeping = false

    /// Runs `fire` once `after` has passed, unless `remove`d first; returns its handle.
    func add(after: Duration, _ fire: @escaping @Sendable () -> Void) -> UInt64 {
        let at = ContinuousClock.now + after
        let (id, start) = lock.withLock { () -> (UInt64, Bool) in
            next &+= 1
            entries[next] = (at, fire)
            if sweeping { return (next, false) }
            sweeping = true
            return (next, true)
        }
        if start { Task.detached { await self.sweep() } }
        return id
    }

    func remove(_ id: UInt64) { lock.withLock { entries[id] = nil } }

    private func sweep() async {
        while true {
            try? await Task.sleep(for: Self.resolution)
            let now = ContinuousClock.now
            let (due, idle) = lock.withLock { () -> ([@Sendable () -> Void], Bool) in
                let expired = entries.filter { $0.value.at <= now }
                for id in expired.keys { entries[id] = nil }
                if entries.isEmpty { sweeping = false }
                return (expired.values.sorted { $0.at < $1.at }.map(\.fire), entries.isEmpty)
            }
            for f in due { f() }
            if idle { return }
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

final class PostgresTransaction: StoreTransaction, @unchecked Sendable {
    let link: PooledConnection
    let logger: Logger
    let queryTimeout: Duration
    /// Set when a statement outlived `queryTimeout` and the connection was closed.
    let cutOff = Once()
    /// The store whose transaction this is (nil: a bare connection for migrations and test
    /// hooks, whose statements go straight to the database).
    let store: PostgresLatchStore?
    let write: Bool
    /// False for a `.deferred` write: its commit does not wait for the WAL flush.
    let durable: Bool
    /// Run as a plain transaction from the first statement (no cheap path).
    let full: Bool

    /// How far the transaction has gone, which decides how its next statement is sent.
    enum Phase {
        /// Nothing sent yet.
        case fresh
        /// Read: one statement ran on its own, outside any transaction (its SQL).
        case single(String)
        /// `BEGIN` sent (and, for a write, the write lock taken): statements go straight on.
        case inTransaction
        /// The body asked for more than its cheap path covers: nothing was written; every
        /// further statement fails and the body runs again as a full transaction.
        case restart
        /// The first round trip failed on a connection that was gone: nothing was written.
        case failed(any Error)
    }
    private let lock = NSLock()
    private var _phase: Phase
    var phase: Phase { lock.withLock { _phase } }
    /// The first statement's SQL and how many statements ran (to learn which read bodies
    /// need a snapshot).
    private(set) var firstSQL: String?
    private(set) var statements = 0

    init(_ link: PooledConnection, _ logger: Logger, queryTimeout: Duration = .seconds(15),
         store: PostgresLatchStore? = nil, write: Bool = true, durable: Bool = true, full: Bool = true) {
        self.link = link; self.logger = logger; self.queryTimeout = queryTimeout
        self.store = store; self.write = write; self.durable = durable; self.full = full
        _phase = store == nil ? .inTransaction : .fresh
    }

    /// The body went past its cheap path: ends this attempt (see `Phase.restart`).
    struct Restart: Error, CustomStringConvertible {
        var description: String { "store: the transaction is being run again" }
    }

    /// Gets the transaction ready for a statement: on a write's first statement `BEGIN` and
    /// the write lock; on a read's first statement `BEGIN … REPEATABLE READ READ ONLY` only
    /// when its body is known (or made) to issue several statements, else nothing: the
    /// statement runs alone. Returns true when the statement runs alone.
    private func enter(_ sql: String, writes: Bool) async throws -> Bool {
        let p = lock.withLock { () -> Phase in
            let p = _phase
            switch p {
            case .fresh: firstSQL = sql
            case .single: _phase = .restart
            case .inTransaction, .restart, .failed: break
            }
            statements += 1
            return p
        }
        switch p {
        case .inTransaction: return false
        case .restart, .single: throw Restart()
        case .failed(let e): throw e
        case .fresh: break
        }
        guard let store else { return false }
        if !write {
            if writes { throw StoreError(.constraint, "a write in a read transaction") }
            if !full && !store.snapshotHints.wantsSnapshot(sql) {
                lock.withLock { _phase = .single(sql) }
                return true
            }
        }
        do {
            try await raw(write ? "BEGIN ISOLATION LEVEL READ COMMITTED" : "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        } catch {
            lock.withLock { _phase = .failed(error) }
            throw error
        }
        lock.withLock { _phase = .inTransaction }
        if write {
            // A deferred write's `synchronous_commit = off` rides on the lock's statement.
            try await raw(durable ? "SELECT pg_advisory_xact_lock(\(store.writeLockKey))"
                                  : "SELECT pg_advisory_xact_lock(\(store.writeLockKey)), set_config('synchronous_commit', 'off', true)")
        }
        return false
    }

    /// Runs one statement of the body (see `enter`).
    @discardableResult
    func q(_ query: PostgresQuery, writes: Bool = false) async throws -> [PostgresRow] {
        try await statement(query.sql, writes: writes) { try await self.raw(query) }
    }

    /// Runs `send` (one statement of the body whose SQL is `sql`) once `enter` has got the
    /// transaction ready.
    func statement<R>(_ sql: String, writes: Bool = false, _ send: () async throws -> R) async throws -> R {
        let alone = try await enter(sql, writes: writes)
        do {
            return try await send()
        } catch {
            // A read statement sent alone as the first thing on a connection that turned out
            // to be dead changed nothing: the read is tried again on a fresh connection.
            if alone, !cutOff.isSet, link.broken.isSet { lock.withLock { _phase = .failed(error) } }
            throw error
        }
    }
    func exec(_ query: PostgresQuery, writes: Bool = false) async throws { try await q(query, writes: writes) }


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

    /// True for an error the server sent that leaves the session usable (severity ERROR); false
    /// for a lost connection and for FATAL or PANIC, after which the server closes it.
    static func isPlainServerError(_ error: any Error) -> Bool {
        guard let p = error as? PSQLError, p.code == .server, let severity = p.serverInfo?[.severity] else { return false }
        return severity == "ERROR"
    }

    /// Sends one statement as it is and collects its rows, under `queryTimeout` (see
    /// `bounded`). The statement and its rows travel as future callbacks on the connection's
    /// event loop, which resume the caller: no task of its own.
    @discardableResult
    func raw(_ query: PostgresQuery) async throws -> [PostgresRow] {
        let (c, logger) = (link.connection, self.logger)
        return try await bounded { done in c.query(query, logger: logger).whenComplete { done($0.map(\.rows)) } }
    }

    /// Runs a statement prepared once per connection (PostgreSQL parses and plans it once),
    /// under `queryTimeout`. The driver offers prepared statements only as `async` calls, so
    /// this one runs in a task of its own (see `bounded`).
    func prepared<S: PostgresPreparedStatement>(_ statement: S) async throws -> [S.Row] where S.Row: Sendable {
        let (c, logger) = (link.connection, self.logger)
        return try await bounded { done in
            Task {
                do { done(.success(try await Self.collect(c.execute(statement, logger: logger)))) } catch { done(.failure(error)) }
            }
        }
    }

    /// Starts one statement (`start` calls its completion once with the answer) and waits for
    /// the answer, the connection's end or `queryTimeout`, whichever comes first. The driver
    /// can leave a statement unanswered for good: one sent on a connection the server has just
    /// ended (a FATAL such as 57P01 when PostgreSQL stops, arriving between two statements of a
    /// transaction) is never answered, and closing the connection does not help; most likely
    /// the driver writes it to a channel already closed, which drops it without completing its
    /// promise. So the caller is answered by whichever comes first: the driver; the connection
    /// closing (`.unavailable` at once); or the deadline (a `Deadlines` entry, within 0.1 s),
    /// which also closes the connection. A failure other than a plain server error marks the
    /// connection `broken`, so it is not lent again.
    private func bounded<R: Sendable>(_ start: (@escaping @Sendable (Result<R, any Error>) -> Void) -> Void) async throws -> R {
        let (link, logger, timeout, cutOff) = (self.link, self.logger, self.queryTimeout, self.cutOff)
        let outcome = Once()
        return try await withCheckedThrowingContinuation { (k: CheckedContinuation<R, any Error>) in
            let deadline = Deadlines.shared.add(after: timeout) {
                guard outcome.first() else { return }
                cutOff.set()
                link.broken.set()
                logger.error("PostgreSQL statement still running after \(timeout); closing its connection")
                k.resume(throwing: StoreError(.unavailable, "PostgreSQL did not answer within \(timeout); the connection was closed"))
                link.close()
            }
            let lost: @Sendable () -> Void = {
                guard outcome.first() else { return }
                Deadlines.shared.remove(deadline)
                link.broken.set()
                k.resume(throwing: StoreError(.unavailable, "the connection to PostgreSQL closed before the statement was answered"))
            }
            guard link.whenClosed(lost) else { return lost() }
            start { r in
                guard outcome.first() else { return }
                Deadlines.shared.remove(deadline)
                _ = link.whenClosed(nil)
                if case .failure(let e) = r, !Self.isPlainServerError(e) { link.broken.set() }
                k.resume(with: r.mapError { Self.storeError($0) })
            }
        }
    }

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
            """, writes: true)
        return !rows.isEmpty
    }

    func put(_ table: StoreTable, _ r: StoreRow) async throws {
        try await exec("""
            INSERT INTO \(unescaped: table.rawValue) (id, tenant_id, parent_id, lookup, doc) \
            VALUES (\(r.id), \(r.tenantId), \(r.parentId), \(r.lookup), \(r.doc)) \
            ON CONFLICT (id) DO UPDATE SET tenant_id = excluded.tenant_id, parent_id = excluded.parent_id, \
            lookup = excluded.lookup, doc = excluded.doc
            """, writes: true)
    }

    func get(_ table: StoreTable, id: String) async throws -> StoreRow? {
        try await q("SELECT id, tenant_id, parent_id, lookup, doc FROM \(unescaped: table.rawValue) WHERE id = \(id)").first.map(decodeRow)
    }

    /// One query: a SELECT per table joined by UNION ALL, each id found by primary key through
    /// its child's parent_id; `n` numbers the tables. The two lineages requests use (a field's,
    /// an item's) are prepared statements, planned once per connection.
    func getLineage(_ tables: [StoreTable], id: String) async throws -> [StoreRow] {
        guard !tables.isEmpty else { return [] }
        let rows: [LineageRow]
        if tables == FieldLineage.tables {
            rows = try await statement(FieldLineage.sql) {
                try await self.prepared(FieldLineage(id: id))
            }
        } else if tables == ItemLineage.tables {
            rows = try await statement(ItemLineage.sql) {
                try await self.prepared(ItemLineage(id: id))
            }
        } else {
            var binds = PostgresBindings()
            binds.append(id)
            rows = try await q(PostgresQuery(unsafeSQL: Self.lineageSQL(tables), binds: binds)).map(Self.lineageRow)
        }
        var out: [StoreRow] = []
        for r in rows {
            guard r.0 == Int64(out.count) else { break }
            out.append(StoreRow(id: r.1, tenantId: r.2, parentId: r.3, lookup: r.4, doc: r.5))
        }
        return out
    }

    typealias LineageRow = (Int64, String, String?, String?, String?, String)

    static func lineageRow(_ r: PostgresRow) throws -> LineageRow {
        do { return try r.decode(LineageRow.self) } catch { throw StoreError(.corrupt, "row does not decode: \(error)") }
    }

    static func collect<S: AsyncSequence>(_ s: S) async throws -> [S.Element] {
        var out: [S.Element] = []
        for try await e in s { out.append(e) }
        return out
    }

    static func lineageSQL(_ tables: [StoreTable]) -> String {
        var key = "$1"
        var parts: [String] = []
        for (n, t) in tables.enumerated() {
            if n > 0 { key = "(SELECT parent_id FROM \(tables[n - 1].rawValue) WHERE id = \(key))" }
            parts.append("SELECT \(n)::BIGINT AS n, id, tenant_id, parent_id, lookup, doc FROM \(t.rawValue) WHERE id = \(key)")
        }
        return parts.joined(separator: " UNION ALL ") + " ORDER BY n"
    }

    struct FieldLineage: PostgresPreparedStatement {
        static let tables: [StoreTable] = [.fields, .items, .vaults]
        static let sql = PostgresTransaction.lineageSQL(tables)
        static let name = "latch_field_lineage"
        typealias Row = LineageRow
        var id: String
        func makeBindings() -> PostgresBindings { var b = PostgresBindings(); b.append(id); return b }
        func decodeRow(_ row: PostgresRow) throws -> Row { try PostgresTransaction.lineageRow(row) }
    }

    struct ItemLineage: PostgresPreparedStatement {
        static let tables: [StoreTable] = [.items, .vaults]
        static let sql = PostgresTransaction.lineageSQL(tables)
        static let name = "latch_item_lineage"
        typealias Row = LineageRow
        var id: String
        func makeBindings() -> PostgresBindings { var b = PostgresBindings(); b.append(id); return b }
        func decodeRow(_ row: PostgresRow) throws -> Row { try PostgresTransaction.lineageRow(row) }
    }

    func find(_ table: StoreTable, _ column: StoreColumn, _ value: String) async throws -> [StoreRow] {
        try await q("""
            SELECT id, tenant_id, parent_id, lookup, doc FROM \(unescaped: table.rawValue) \
            WHERE \(unescaped: column.rawValue) = \(value) ORDER BY id
            """).map(decodeRow)
    }

    func delete(_ table: StoreTable, id: String) async throws {
        try await exec("DELETE FROM \(unescaped: table.rawValue) WHERE id = \(id)", writes: true)
    }

    func setting(_ key: String) async throws -> String? {
        try await q("SELECT value FROM settings WHERE key = \(key)").first.map { try $0.decode(String.self) }
    }

    func setSetting(_ key: String, _ value: String?) async throws {
        if let value {
            try await exec("INSERT INTO settings (key, value) VALUES (\(key), \(value)) ON CONFLICT (key) DO UPDATE SET value = excluded.value", writes: true)
        } else {
            try await exec("DELETE FROM settings WHERE key = \(key)", writes: true)
        }
    }

    /// The columns `auditEvents` and `lastAuditEvent` read: the row, then the previous row's hash.
    static let auditColumns = """
        SELECT a.doc, a.seq, a.tenant_id, a.time_ms, a.action, a.outcome, a.principal_id, a.access_key, a.asset_type, \
        a.asset_id, a.source, a.detail, a.hash, p.hash FROM audit_events a LEFT JOIN audit_events p ON p.seq = a.seq - 1
        """

    /// The event of an `auditColumns` row: from its `doc`, which every row written so far has;
    /// from its columns when `doc` is empty (rows as SQLite writes them, once a release stores
    /// columns only here too).
    func audit(_ r: PostgresRow) throws -> AuditEvent {
        let c: (String, Int64, String?, Int64, String, String, String?, String?, String?, String?, String?, String?, String, String?)
        do {
            c = try r.decode((String, Int64, String?, Int64, String, String, String?, String?, String?, String?, String?, String?,
                              String, String?).self)
        } catch { throw StoreError(.corrupt, "audit row does not decode: \(error)") }
        guard c.0.isEmpty else {
            do { return try JSONDecoder().decode(AuditEvent.self, from: Data(c.0.utf8)) } catch {
                throw StoreError(.corrupt, "audit event does not decode: \(error)")
            }
        }
        return .fromColumns(seq: c.1, tenantId: c.2, timeMs: c.3, action: c.4, outcome: c.5, principalId: c.6, accessKey: c.7,
                            assetType: c.8, assetId: c.9, source: c.10, detail: c.11, hash: c.12, previousRowHash: c.13)
    }

    func lastAuditEvent() async throws -> AuditEvent? {
        try await q(PostgresQuery(unsafeSQL: Self.auditColumns + " ORDER BY a.seq DESC LIMIT 1")).first.map(audit)
    }

    /// The data version (migration 6) as this transaction sees it.
    func dataVersion() async throws -> UInt64 {
        guard let n = try await q("SELECT counter FROM latch_data_version").first.map({ try $0.decode(Int64.self) }), n > 0 else {
            throw StoreError(.corrupt, "latch_data_version holds no row")
        }
        return UInt64(n)
    }

    func appendAuditEvent(_ e: AuditEvent) async throws {
        try await appendAuditEvents([e])
    }

    /// Every column and the document (see `columnsAuditAppendFunction`), at most 1,000 rows a
    /// statement (13 parameters each, far under PostgreSQL's 65,535).
    func appendAuditEvents(_ events: [AuditEvent]) async throws {
        for start in stride(from: 0, to: events.count, by: 1000) {
            let chunk = events[start..<min(events.count, start + 1000)]
            var binds = PostgresBindings(capacity: chunk.count * 13)
            var values: [String] = []
            for e in chunk {
                let b = binds.count
                binds.append(e.seq); binds.append(e.tenantId); binds.append(AuditChain.millis(e.time)); binds.append(e.action)
                binds.append(e.outcome); binds.append(e.principalId); binds.append(e.accessKey); binds.append(e.assetType)
                binds.append(e.assetId); binds.append(e.source); binds.append(e.detail); binds.append(e.hash)
                binds.append(e.documentJSON)
                values.append("(" + (1...13).map { "$\(b + $0)" }.joined(separator: ", ") + ")")
            }
            try await exec(PostgresQuery(unsafeSQL: """
                INSERT INTO audit_events (seq, tenant_id, time_ms, action, outcome, principal_id, access_key, asset_type, asset_id, \
                source, detail, hash, doc) VALUES \(values.joined(separator: ", "))
                """, binds: binds), writes: true)
        }
    }

    func auditEvents(_ f: AuditFilter) async throws -> [AuditEvent] {
        var binds = PostgresBindings()
        binds.append(f.afterSeq)
        var text = Self.auditColumns + " WHERE a.seq > $1"
        func add(_ clause: String, _ v: String) {
            binds.append(v)
            text += " AND a.\(clause) = $\(binds.count)"
        }
        if let t = f.tenantId { add("tenant_id", t) }
        if let a = f.action { add("action", a) }
        if let p = f.principalId { add("principal_id", p) }
        if let a = f.assetId { add("asset_id", a) }
        if let o = f.outcome { add("outcome", o) }
        if let s = f.since {
            binds.append(AuditChain.millis(s))
            text += " AND a.time_ms >= $\(binds.count)"
        }
        binds.append(Int64(max(0, f.limit)))
        text += " ORDER BY a.seq LIMIT $\(binds.count)"
        return try await q(PostgresQuery(unsafeSQL: text, binds: binds)).map(audit)
    }

    func appendChange(tenantId: String, kind: ChangeRecord.Kind, entityId: String, vaultId: String?) async throws -> Int64 {
        let rows = try await q("""
            INSERT INTO changes (tenant_id, kind, entity_id, vault_id) VALUES (\(tenantId), \(kind.rawValue), \(entityId), \(vaultId)) \
            RETURNING seq
            """, writes: true)
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

/// A `TEXT[]` parameter whose elements may be NULL (PostgresNIO's arrays of strings carry no
/// NULL element): the binary array format with the has-nulls flag, and -1 as a NULL element's
/// length.
struct NullableTextArray: PostgresNonThrowingEncodable {
    var values: [String?]
    init(_ values: [String?]) { self.values = values }
    static var psqlType: PostgresDataType { .textArray }
    static var psqlFormat: PostgresFormat { .binary }
    func encode<E: PostgresJSONEncoder>(into buffer: inout ByteBuffer, context: PostgresEncodingContext<E>) {
        buffer.writeInteger(values.isEmpty ? 0 : 1, as: Int32.self)             // dimensions
        buffer.writeInteger(values.contains(nil) ? 1 : 0, as: Int32.self)       // has NULL elements
        buffer.writeInteger(PostgresDataType.text.rawValue)                      // element type
        guard !values.isEmpty else { return }
        buffer.writeInteger(Int32(values.count))                                 // length
        buffer.writeInteger(1, as: Int32.self)                                   // lower bound
        for v in values {
            if let v {
                buffer.writeInteger(Int32(v.utf8.count))
                buffer.writeString(v)
            } else {
                buffer.writeInteger(-1, as: Int32.self)
            }
        }
    }
}
