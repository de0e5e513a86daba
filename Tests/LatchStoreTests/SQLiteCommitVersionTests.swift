import Foundation
import LatchDomain
@testable import LatchStoreSQLite
import Testing

/// The SQLite store's commit version (`WALIndexWatch`): it moves with every commit, whoever makes
/// it, and with nothing else.
@Suite struct SQLiteCommitVersionTests {
    @Test func movesWithEveryCommitFromAnyConnection() async throws {
        try await withSQLiteStore { store, path in
            let v0 = try #require(store.commitVersion(), "a store on a WAL database has a commit version")
            #expect(store.commitVersion() == v0)
            _ = try await store.read { try await $0.setting("bootstrapped") }
            #expect(store.commitVersion() == v0, "a read transaction commits nothing")

            try await store.write { try await $0.setSetting("k", "1") }
            let v1 = try #require(store.commitVersion())
            #expect(v1 != v0)
            #expect(store.commitVersion() == v1)

            // A commit through another connection (here a second store on the same file, as
            // another process would be) moves it too.
            let other = try await SQLiteLatchStore.open(path: path, readers: 1)
            try await other.write { try await $0.setSetting("k", "2") }
            await other.close()
            let v2 = try #require(store.commitVersion())
            #expect(v2 != v1)
            #expect(try await store.read { try await $0.setting("k") } == "2")

            // The deferred-durability path (read-audit rounds) commits too.
            _ = try await store.write(durability: .deferred) { try await $0.setSetting("k", "3") }
            #expect(store.commitVersion() != v2)
        }
    }

    @Test("moving read-audit events into the chain leaves the version: cached reads stay in use; any other commit still moves it")
    func readAuditMovesLeaveIt() async throws {
        try await withSQLiteStore { store, path in
            let journal = try #require(store.readAuditJournal)
            for d in SQLiteReadAuditJournalTests.readDrafts(3) { try journal.record(d) }
            let v0 = try #require(store.commitVersion())
            try await store.flushReadAudit()
            #expect(try await SQLiteReadAuditJournalTests.reads(store).count == 3)   // committed
            #expect(store.commitVersion() == v0)

            try await store.write(durability: .deferred) { try await $0.setSetting("k", "1") }
            let v1 = try #require(store.commitVersion())
            #expect(v1 != v0)

            // Another connection's commit after a move moves it.
            try journal.record(SQLiteReadAuditJournalTests.readDrafts(1)[0])
            try await store.flushReadAudit()
            #expect(store.commitVersion() == v1)
            let other = try await SQLiteLatchStore.open(path: path, readers: 1)
            try await other.write { try await $0.setSetting("k", "2") }
            await other.close()
            #expect(store.commitVersion() != v1)
        }
    }

    @Test("the watch takes a commit in only when it stands for the header the commit began on")
    func absorbOnlyFromTheCurrentHeader() throws {
        // A WAL-index header pair this test writes itself: format version, isInit, then the
        // change counter (offset 8) that stands in for a commit.
        let region = UnsafeMutableRawPointer.allocate(byteCount: 96, alignment: 8)
        defer { region.deallocate() }
        region.initializeMemory(as: UInt8.self, repeating: 0, count: 96)
        func commit(_ counter: UInt32) {
            for copy in [48, 0] {
                region.storeBytes(of: WALIndexWatch.formatVersion, toByteOffset: copy, as: UInt32.self)
                region.storeBytes(of: counter, toByteOffset: copy + 8, as: UInt32.self)
                region.storeBytes(of: 1, toByteOffset: copy + 12, as: UInt8.self)
            }
        }
        commit(1)
        let watch = WALIndexWatch(region: UnsafeRawPointer(region))
        let v = try #require(watch.current())
        let h1 = try #require(watch.peek())
        commit(2)
        watch.absorb(from: h1, to: try #require(watch.peek()))
        #expect(watch.current() == v)   // taken in: the version stands for both

        let h2 = try #require(watch.peek())
        commit(3)
        #expect(watch.current() == v + 1)   // seen before the absorb: a new version
        commit(4)
        watch.absorb(from: h2, to: try #require(watch.peek()))   // began on a header no longer current
        #expect(watch.current() == v + 2)
    }

    @Test func closedStoreHasNone() async throws {
        try await withTemporaryDirectory { dir in
            let store = try await SQLiteLatchStore.open(path: dir.appendingPathComponent("latch.sqlite").path)
            #expect(store.commitVersion() != nil)
            await store.close()
            #expect(store.commitVersion() == nil)
        }
    }
}
