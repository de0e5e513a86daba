import Foundation
@testable import LatchStoreSQLite

/// A fresh temporary directory, removed after `body`.
func withTemporaryDirectory(_ body: (URL) async throws -> Void) async throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("latch-sqlite-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    try await body(dir)
}

/// A SQLite store on a fresh temporary file (its path given too); closed, and the file removed,
/// after `body`.
func withSQLiteStore(readers: Int = 4, _ body: (SQLiteLatchStore, String) async throws -> Void) async throws {
    try await withTemporaryDirectory { dir in
        let path = dir.appendingPathComponent("latch.sqlite").path
        let store = try await SQLiteLatchStore.open(path: path, readers: readers)
        do { try await body(store, path) } catch {
            await store.close()
            throw error
        }
        await store.close()
    }
}
