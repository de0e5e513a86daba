import Foundation
import LatchDomain
@testable import LatchStoreSQLite
@testable import LatchStorePostgres
import Testing

/// The in-memory twin (for unit tests elsewhere) held to the same behaviour, except what
/// needs a store that outlives its handle.
@Suite struct MemoryConformanceTests {
    @Test(arguments: StoreConformance.Case.allCases.filter { !$0.needsDurableStore })
    func conformance(_ c: StoreConformance.Case) async throws {
        try await c.run(StoreUnderTest(stores: [MemoryStore()], durable: nil))
    }
}

/// Every conformance case against a fresh SQLite file.
@Suite struct SQLiteConformanceTests {
    @Test(arguments: StoreConformance.Case.allCases)
    func conformance(_ c: StoreConformance.Case) async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("latch-store-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("latch.sqlite").path
        let handles = OpenHandles()
        @Sendable func open() async throws -> any LatchStore {
            let s = try await SQLiteLatchStore.open(path: path)
            await handles.add(s) { await s.close() }
            return s
        }
        let durable = StoreUnderTest.Durable(
            newestMigration: SQLiteLatchStore.migrations.last?.version ?? 0,
            schemaVersion: { s in try await #require(s as? SQLiteLatchStore).schemaVersion() },
            reopen: { await handles.closeAll(); return try await open() })
        do { try await c.run(StoreUnderTest(stores: [try await open()], durable: durable)) } catch {
            await handles.closeAll()
            throw error
        }
        await handles.closeAll()
    }
}

/// The PostgreSQL database the tests use: `LATCH_TEST_DATABASE_URL` (`.ci/run` starts a
/// throwaway cluster and sets it). Each case works in its own fresh schema, dropped afterwards.
extension PostgresStoreConfiguration {
    /// The test process runs CPU-bound tests on the same two or so threads that schedule the
    /// store's tasks, so a transaction can be delayed for seconds without anything being wrong:
    /// the production timeouts (lock 10 s, acquire 5 s, statement 15 s) would fail tests spuriously.
    mutating func relaxTimeoutsForSharedTestThreads() {
        lockTimeout = .seconds(120); acquireTimeout = .seconds(60); queryTimeout = .seconds(120)
    }
}

enum PostgresTestDatabase {
    static let variable = "LATCH_TEST_DATABASE_URL"
    static var url: String? { ProcessInfo.processInfo.environment[variable].flatMap { $0.isEmpty ? nil : $0 } }
    static let skipReason: Comment = "LATCH_TEST_DATABASE_URL is not set: PostgreSQL store tests need a database (postgres://user@127.0.0.1:PORT/db); .ci/run starts one and sets it"

    static func configuration(schema: String) throws -> PostgresStoreConfiguration {
        guard let url else { throw StoreError(.unavailable, "\(variable) is not set") }
        var c = try PostgresStoreConfiguration(url: url)
        c.schema = schema
        c.poolSize = 4
        c.relaxTimeoutsForSharedTestThreads()
        return c
    }

    static func freshSchema() -> String { "latch_test_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "") }

    /// `replicas` handles on one fresh schema (as several `latch serve` would open), reopenable;
    /// afterwards the schema is dropped and every handle closed.
    static func withStoreUnderTest(replicas: Int = 1, _ body: (StoreUnderTest) async throws -> Void) async throws {
        let config = try configuration(schema: freshSchema())
        let handles = OpenHandles()
        @Sendable func open() async throws -> PostgresLatchStore {
            let s = try await PostgresLatchStore.open(config)
            await handles.add(s) { await s.close() }
            return s
        }
        var failure: (any Error)?
        do {
            var stores: [any LatchStore] = []
            for _ in 0..<replicas { stores.append(try await open()) }
            let durable = StoreUnderTest.Durable(
                newestMigration: PostgresLatchStore.migrations.last?.version ?? 0,
                schemaVersion: { s in try await #require(s as? PostgresLatchStore).schemaVersion() },
                reopen: { await handles.closeAll(); return try await open() })
            try await body(StoreUnderTest(stores: stores, durable: durable))
        } catch { failure = error }
        if let live = await handles.latest as? PostgresLatchStore {
            try? await live.dropSchemaForTesting()
        } else if let cleaner = try? await PostgresLatchStore.open(config) {
            try? await cleaner.dropSchemaForTesting()
            await cleaner.close()
        }
        await handles.closeAll()
        if let failure { throw failure }
    }
}

@Suite(.enabled(if: PostgresTestDatabase.url != nil, PostgresTestDatabase.skipReason))
struct PostgresConformanceTests {
    @Test(arguments: StoreConformance.Case.allCases)
    func conformance(_ c: StoreConformance.Case) async throws {
        try await PostgresTestDatabase.withStoreUnderTest { try await c.run($0) }
    }

    /// Two replicas (two pools) on one database: still one winner per version, one linear chain.
    @Test func concurrentWritersOnTwoReplicas() async throws {
        try await PostgresTestDatabase.withStoreUnderTest(replicas: 2) { try await StoreConformance.concurrentWriters($0.stores, writers: 30) }
    }

    /// Two replicas' audit group commits: each one's tail goes stale when the other appends,
    /// and every batch still lands whole on the real tail.
    @Test func auditGroupCommitOnTwoReplicas() async throws {
        try await PostgresTestDatabase.withStoreUnderTest(replicas: 2) { try await StoreConformance.auditGroupCommit($0.stores) }
    }

    /// Replicas that start together apply each migration exactly once.
    @Test func migrationsRunOnceWhenReplicasStartTogether() async throws {
        let config = try PostgresTestDatabase.configuration(schema: PostgresTestDatabase.freshSchema())
        let stores = try await withThrowingTaskGroup(of: PostgresLatchStore.self, returning: [PostgresLatchStore].self) { g in
            for _ in 0..<4 { g.addTask { try await PostgresLatchStore.open(config) } }
            var all: [PostgresLatchStore] = []
            for try await s in g { all.append(s) }
            return all
        }
        #expect(stores.count == 4)
        for s in stores { #expect(try await s.schemaVersion() == PostgresLatchStore.migrations.last?.version) }
        let applied = try await stores[0].migrationCountForTesting()
        #expect(applied == PostgresLatchStore.migrations.count)
        try await StoreConformance.settings(stores[1])
        try? await stores[0].dropSchemaForTesting()
        for s in stores { await s.close() }
    }

    /// A database that cannot be reached is `.unavailable`, quickly, not a hang.
    @Test func unreachableDatabaseIsUnavailable() async throws {
        var config = try PostgresTestDatabase.configuration(schema: "unused")
        config.host = "127.0.0.1"
        config.port = 1  // nothing listens on port 1
        config.socketDirectory = nil
        config.acquireTimeout = .seconds(2)
        let start = ContinuousClock.now
        do {
            _ = try await PostgresLatchStore.open(config)
            Issue.record("opening a store on a closed port succeeded")
        } catch let e as StoreError {
            #expect(e.kind == .unavailable)
        }
        // Without the acquire timeout the pool would queue the request until the database
        // answered; the bound is loose because CPU-bound tests may hold every thread for a while.
        #expect(ContinuousClock.now - start < .seconds(60))
    }
}

/// Parsing the database URL needs no database: it runs with or without one.
@Suite struct PostgresConfigurationTests {
    @Test func urlParsing() throws {
        let c = try PostgresStoreConfiguration(url: "postgres://al%40ce:p%2Fw@db.example:6543/latch?sslmode=disable&pool_size=7&schema=tenant_a")
        #expect(c.username == "al@ce" && c.password == "p/w" && c.host == "db.example" && c.port == 6543)
        #expect(c.database == "latch" && c.tls == .disable && c.poolSize == 7 && c.schema == "tenant_a")
        #expect(!c.redactedDescription.contains("p/w"))
        #expect(throws: StoreError.self) { try PostgresStoreConfiguration(url: "mysql://x@y/z") }
        #expect(throws: StoreError.self) { try PostgresStoreConfiguration(url: "postgres://x@y/z?sslmod=disable") }
        #expect(throws: StoreError.self) { try PostgresStoreConfiguration(url: "postgres://x@y/z?schema=Bad-Name") }
    }
}
