import Foundation
import LatchDomain
@testable import LatchStoreSQLite
import Testing

/// The SQLite store's deferred commits (read-audit group commits): the writer switches to
/// synchronous=NORMAL for them only, the rows are visible at once, and a background fsync of the
/// WAL makes them durable within the flush delay; close() flushes what is still pending.
@Suite struct SQLiteDurabilityTests {
    func synchronous(_ tx: any StoreTransaction) async throws -> Int? {
        let t = try #require(tx as? SQLiteTransaction)
        return try await t.q("PRAGMA synchronous", purpose: "read the synchronous mode").first?["synchronous"]?.intValue.map { Int($0) }
    }

    @Test("deferred commits run with synchronous=NORMAL, every other write with FULL, and are flushed")
    func deferredThenFlushed() async throws {
        try await withTemporaryDirectory { dir in try await deferredThenFlushed(path: dir.appendingPathComponent("latch.sqlite").path) }
    }

    func deferredThenFlushed(path: String) async throws {
        let store = try await SQLiteLatchStore.open(path: path)
        do {
            #expect(try await store.write { try await synchronous($0) } == 2)   // FULL
            #expect(!store.deferredCommitsPending)

            let draft = AuditDraft(time: Date(), tenantId: nil, action: "field.read", outcome: "success", principalId: nil, accessKey: nil)
            let mode = try await store.write(durability: .deferred) { tx in
                _ = try await tx.appendAudit([draft])
                return try await self.synchronous(tx)
            }
            #expect(mode == 1)   // NORMAL
            #expect(store.deferredCommitsPending)
            // Visible at once to another connection.
            #expect(try await store.read { try await $0.auditEvents(AuditFilter()) }.count == 1)
            // The next ordinary write is FULL again.
            #expect(try await store.write { try await synchronous($0) } == 2)
            #expect(try await store.write(durability: .full) { try await synchronous($0) } == 2)

            // The background flush runs within the delay (plus slack for a loaded machine).
            let deadline = Date().addingTimeInterval(3)
            while store.deferredCommitsPending || store.durableFlushes < 1, Date() < deadline { try await Task.sleep(for: .milliseconds(20)) }
            #expect(!store.deferredCommitsPending)
            #expect(store.durableFlushes == 1)

            // A deferred commit still pending at close() is flushed by it and survives a reopen.
            _ = try await store.write(durability: .deferred) { try await $0.appendAudit([draft]) }
            #expect(store.deferredCommitsPending)
        } catch {
            await store.close()
            throw error
        }
        await store.close()
        #expect(!store.deferredCommitsPending)
        #expect(store.durableFlushes == 2)
        let reopened = try await SQLiteLatchStore.open(path: path)
        do {
            #expect(try await verifyAuditChain(reopened) == 2)
        } catch {
            await reopened.close()
            throw error
        }
        await reopened.close()
    }

    @Test("the writer never checkpoints; maintenance does, off the writer, and keeps the WAL short under a steady stream of commits")
    func maintenanceCheckpoints() async throws {
        try await withSQLiteStore { store, path in
            let auto = try await store.write { tx in
                try await #require(tx as? SQLiteTransaction).q("PRAGMA wal_autocheckpoint", purpose: "read it").first?.values.first
            }
            #expect(auto == .int(0))
            // Commits back to back, each a few pages: a PASSIVE checkpoint alone never
            // finds the WAL fully copied, so without the RESTART step the WAL would hold them all.
            let draft = AuditDraft(time: Date(), tenantId: "t", action: "field.read", outcome: "success", principalId: "p", accessKey: nil,
                                   detail: String(repeating: "x", count: 4096))
            let commits = 1500   // about 4 frames each
            let deadline = Date().addingTimeInterval(60)
            var done = 0
            while done < commits, Date() < deadline {
                _ = try await store.write(durability: .deferred) { try await $0.appendAudit([draft]) }
                done += 1
            }
            try #require(done == commits, "wrote only \(done) commits in 60 s")
            let walBytes = try #require(try FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? Int)
            let frameBytes = 4096 + 24
            #expect(walBytes <= 3 * Int(SQLiteLatchStore.walRestartFrames) * frameBytes,
                    "the WAL is \(walBytes / frameBytes) frames long after \(commits) commits")
            #expect(try await verifyAuditChain(store) == commits)
        }
    }

    @Test("a long read does not hold writes back while maintenance restarts the WAL")
    func longReadDoesNotBlockWrites() async throws {
        try await withSQLiteStore { store, _ in
            let draft = AuditDraft(time: Date(), tenantId: "t", action: "field.read", outcome: "success", principalId: "p", accessKey: nil,
                                   detail: String(repeating: "x", count: 4096))
            // Past the restart length, so the next maintenance round wants to restart the WAL.
            for _ in 0..<400 { _ = try await store.write(durability: .deferred) { try await $0.appendAudit([draft]) } }
            // A read that keeps its snapshot for 2 s, across at least three maintenance rounds.
            let reader = Task {
                try await store.read { tx in
                    _ = try await tx.setting("x")
                    try await Task.sleep(for: .seconds(2))
                    return try await tx.setting("x")
                }
            }
            try await Task.sleep(for: .milliseconds(50))
            var slowest: Duration = .zero
            let clock = ContinuousClock()
            let end = clock.now + .milliseconds(1900)
            while clock.now < end {
                let started = clock.now
                _ = try await store.write(durability: .deferred) { try await $0.appendAudit([draft]) }
                slowest = max(slowest, clock.now - started)
            }
            _ = try await reader.value
            // Waiting for the reader would hold a write for up to the reader's 2 s.
            #expect(slowest < .milliseconds(750), "a write waited \(slowest)")
        }
    }

    @Test("after a burst the writer truncates the WAL file back to its size limit")
    func walShrinksAfterBurst() async throws {
        try await withSQLiteStore { store, path in
            let draft = AuditDraft(time: Date(), tenantId: "t", action: "field.read", outcome: "success", principalId: "p", accessKey: nil,
                                   detail: String(repeating: "x", count: 4096))
            func walBytes() throws -> Int64 {
                Int64(try #require(try FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? Int))
            }
            // A read holds its snapshot, so maintenance cannot restart the WAL: a burst grows it
            // well past the limit.
            let release = AsyncStream<Void>.makeStream()
            let reader = Task {
                try await store.read { tx in
                    _ = try await tx.setting("x")
                    for await _ in release.stream { break }
                    return try await tx.setting("x")
                }
            }
            try await Task.sleep(for: .milliseconds(50))
            var burst = 0
            while try walBytes() < 2 * SQLiteLatchStore.walSizeLimit, burst < 5_000 {
                _ = try await store.write(durability: .deferred) { try await $0.appendAudit([draft]) }
                burst += 1
            }
            let peak = try walBytes()
            #expect(peak >= 2 * SQLiteLatchStore.walSizeLimit, "the burst of \(burst) commits grew the WAL to \(peak) bytes only")
            release.continuation.yield()
            _ = try await reader.value
            // Commits go on: maintenance restarts the WAL, and the writer, starting it afresh,
            // truncates the file to the limit.
            let deadline = Date().addingTimeInterval(30)
            while try walBytes() > SQLiteLatchStore.walSizeLimit, Date() < deadline {
                _ = try await store.write(durability: .deferred) { try await $0.appendAudit([draft]) }
            }
            let after = try walBytes()
            #expect(after <= SQLiteLatchStore.walSizeLimit, "the WAL file stayed at \(after) bytes after a peak of \(peak)")
        }
    }
}
