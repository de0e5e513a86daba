import Foundation
import LatchDomain
@testable import LatchStorePostgres
import Testing

/// The server's store conformance suite, run against PostgreSQL (`LATCH_TEST_DATABASE_URL`,
/// set by .ci/run) in a fresh schema that is dropped afterwards.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["LATCH_TEST_DATABASE_URL"].map { !$0.isEmpty } ?? false,
                "LATCH_TEST_DATABASE_URL is not set: the PostgreSQL store needs a database (postgres://user@127.0.0.1:PORT/db); .ci/run starts one and sets it"))
struct PostgresStoreConformanceTests {
    @Test("PostgreSQL store; migrations are versioned and idempotent")
    func postgres() async throws {
        let url = try #require(ProcessInfo.processInfo.environment["LATCH_TEST_DATABASE_URL"])
        var config = try PostgresStoreConfiguration(url: url)
        config.schema = "latch_srv_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        config.poolSize = 2
        // Generous timeouts: CPU-bound tests share this process's few threads (see LatchStoreTests).
        config.lockTimeout = .seconds(120); config.acquireTimeout = .seconds(60); config.queryTimeout = .seconds(120)
        let s = try await PostgresLatchStore.open(config)
        var failure: (any Error)?
        do {
            try await runStoreConformance(s)
            #expect(try await s.schemaVersion() == 2)
            let again = try await PostgresLatchStore.open(config)
            #expect(try await again.schemaVersion() == 2)
            #expect(try await verifyAuditChain(again) == 3)
            await again.close()
        } catch { failure = error }
        try? await s.dropSchemaForTesting()
        await s.close()
        if let failure { throw failure }
    }
}
