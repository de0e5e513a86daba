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

    @Test func closedStoreHasNone() async throws {
        try await withTemporaryDirectory { dir in
            let store = try await SQLiteLatchStore.open(path: dir.appendingPathComponent("latch.sqlite").path)
            #expect(store.commitVersion() != nil)
            await store.close()
            #expect(store.commitVersion() == nil)
        }
    }
}
