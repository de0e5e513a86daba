import Foundation
import LatchDomain
@testable import LatchStoreSQLite
import Testing

/// Our binding of the system SQLite (SQLiteBinding.swift): the statement cache, every bind type,
/// errors, and transaction bodies running on the connection's own thread.
@Suite struct SQLiteBindingTests {
    /// A fresh connection on a temporary file; closed (and the file removed) after `body`.
    func withConnection(_ body: (SQLiteConnection) async throws -> Void) async throws {
        try await withTemporaryDirectory { dir in
            let c = try await SQLiteConnection.open(path: dir.appendingPathComponent("t.sqlite").path)
            do { try await body(c) } catch {
                await c.close()
                throw error
            }
            await c.close()
        }
    }

    /// A fresh store (2 readers) on a temporary file; closed (and the file removed) after `body`.
    func withStore(_ body: (SQLiteLatchStore) async throws -> Void) async throws {
        try await withSQLiteStore(readers: 2) { store, _ in try await body(store) }
    }

    @Test("a cached statement is prepared once and gives the right rows after each reset")
    func statementCache() async throws {
        try await withConnection { c in
            try await c.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)", purpose: "create the table")
            let before = try await c.withHandle { $0.preparations }
            for i in 0..<20 {
                try await c.execute("INSERT INTO t (k, v) VALUES (?, ?)", [.text("k\(i)"), .int(Int64(i * 10))], purpose: "insert")
            }
            for i in [3, 17, 0, 19, 3] {
                let rows = try await c.query("SELECT v FROM t WHERE k = ?", [.text("k\(i)")], purpose: "select one")
                #expect(rows.count == 1)
                #expect(rows.first?["v"] == .int(Int64(i * 10)))
            }
            // A key with no row: no rows, not the previous binding's row.
            #expect(try await c.query("SELECT v FROM t WHERE k = ?", [.text("none")], purpose: "select none").isEmpty)
            // Two statements, each compiled once.
            #expect(try await c.withHandle { $0.preparations } - before == 2)

            // A statement that failed (constraint) is reset and works again.
            await #expect(throws: SQLiteError.self) {
                try await c.execute("INSERT INTO t (k, v) VALUES (?, ?)", [.text("k1"), .int(1)], purpose: "insert")
            }
            try await c.execute("INSERT INTO t (k, v) VALUES (?, ?)", [.text("k20"), .int(200)], purpose: "insert")
            #expect(try await c.query("SELECT v FROM t WHERE k = ?", [.text("k20")], purpose: "select one").first?["v"] == .int(200))
            #expect(try await c.query("SELECT v FROM t WHERE k = ?", [.text("k1")], purpose: "select one").first?["v"] == .int(10))

            // A row callback that throws leaves the statement reset for the next use.
            struct Stop: Error {}
            try await c.withHandle { h in
                #expect(throws: Stop.self) { try h.forEach("SELECT k FROM t ORDER BY v", purpose: "scan") { _ in throw Stop() } }
                var keys: [String] = []
                try h.forEach("SELECT k FROM t ORDER BY v", purpose: "scan") { keys.append($0.text(0) ?? "?") }
                #expect(keys.count == 21 && keys.first == "k0" && keys.last == "k20")
                // The same SQL inside its own row callback gets a statement of its own.
                var pairs = 0
                try h.forEach("SELECT v FROM t WHERE k = ?", [.text("k2")], purpose: "outer") { outer in
                    try h.forEach("SELECT v FROM t WHERE k = ?", [.text("k5")], purpose: "inner") { inner in
                        #expect(outer.int(0) == 20 && inner.int(0) == 50)
                        pairs += 1
                    }
                }
                #expect(pairs == 1)
            }
        }
    }

    @Test("many distinct statements keep the cache bounded and results right")
    func cacheBound() async throws {
        try await withConnection { c in
            try await c.withHandle { h in
                for i in 0..<(SQLiteHandle.cacheLimit + 50) {
                    let rows = try h.query("SELECT \(i) AS n", purpose: "select a constant")
                    #expect(rows.first?["n"] == .int(Int64(i)))
                }
                #expect(h.cachedStatements <= SQLiteHandle.cacheLimit)
            }
        }
    }

    @Test("a second connection waits for the first one's write lock (busy timeout) instead of failing")
    func busyWaits() async throws {
        try await withConnection { a in
            try await a.execute("PRAGMA journal_mode=WAL", purpose: "use WAL")
            try await a.execute("CREATE TABLE t (k INTEGER)", purpose: "create the table")
            let b = try await SQLiteConnection.open(path: a.path)
            do {
                try await a.execute("BEGIN IMMEDIATE", purpose: "take the write lock")
                try await a.execute("INSERT INTO t (k) VALUES (1)", purpose: "insert")
                async let other: Void = b.execute("INSERT INTO t (k) VALUES (2)", purpose: "insert from the other connection")
                try await Task.sleep(for: .milliseconds(300))
                try await a.execute("COMMIT", purpose: "commit")
                try await other
                #expect(try await b.query("SELECT k FROM t ORDER BY k", purpose: "read").map(\.values) == [[.int(1)], [.int(2)]])
            } catch {
                await b.close()
                throw error
            }
            await b.close()
        }
    }

    @Test("every bind type round-trips: NULL, int64, double, text, blob")
    func bindTypes() async throws {
        try await withConnection { c in
            try await c.execute("CREATE TABLE v (n INTEGER PRIMARY KEY, x)", purpose: "create the table")
            let values: [SQLiteValue] = [
                .null, .int(0), .int(Int64.max), .int(Int64.min), .int(-1), .double(3.25), .double(-0.5),
                .text(""), .text("plain"), .text("ünïcödé ✓ 🔐"), .text("nul\u{0}inside"),
                .blob([]), .blob([0, 1, 2, 255, 0]), .blob(Array(repeating: 0xAB, count: 4096)),
            ]
            for (n, v) in values.enumerated() {
                try await c.execute("INSERT INTO v (n, x) VALUES (?, ?)", [.int(Int64(n)), v], purpose: "insert a value")
            }
            let rows = try await c.query("SELECT n, x, typeof(x) AS t FROM v ORDER BY n", purpose: "read the values back")
            #expect(rows.count == values.count)
            let types = ["null", "integer", "integer", "integer", "integer", "real", "real",
                         "text", "text", "text", "text", "blob", "blob", "blob"]
            for (n, r) in rows.enumerated() {
                #expect(r["x"] == values[n], "value \(n)")
                #expect(r["t"] == .text(types[n]), "type of value \(n)")
            }
            // Bound values compare as their type (an int64 beyond 2^53 stays exact).
            let hit = try await c.query("SELECT n FROM v WHERE x = ?", [.int(Int64.max)], purpose: "find by int64")
            #expect(hit.map(\.values) == [[.int(2)]])
            let blob = try await c.query("SELECT n FROM v WHERE x = ?", [.blob([0, 1, 2, 255, 0])], purpose: "find by blob")
            #expect(blob.map(\.values) == [[.int(12)]])
            let isNull = try await c.query("SELECT n FROM v WHERE x IS ?", [.null], purpose: "find NULL")
            #expect(isNull.map(\.values) == [[.int(0)]])
        }
    }

    @Test("SQLite errors are Swift errors naming what the statement was for")
    func errors() async throws {
        try await withConnection { c in
            do {
                try await c.execute("SELEKT 1", purpose: "read the answer")
                Issue.record("a syntax error passed")
            } catch let e as SQLiteError {
                #expect(e.primaryCode == 1)   // SQLITE_ERROR
                #expect(e.description.contains("could not read the answer"))
                #expect(e.description.contains("syntax error"))
            }
            try await c.execute("CREATE TABLE t (k TEXT PRIMARY KEY)", purpose: "create the table")
            try await c.execute("INSERT INTO t (k) VALUES (?)", [.text("a")], purpose: "insert a key")
            do {
                try await c.execute("INSERT INTO t (k) VALUES (?)", [.text("a")], purpose: "insert a key")
                Issue.record("a duplicate key passed")
            } catch let e as SQLiteError {
                #expect(e.isConstraint)
                #expect(e.code == 1555)   // SQLITE_CONSTRAINT_PRIMARYKEY
                #expect(e.description.contains("could not insert a key"))
                #expect(e.description.contains("UNIQUE constraint failed: t.k"))
            }
            do {
                try await c.execute("INSERT INTO t (k) VALUES (?)", [], purpose: "insert without values")
                Issue.record("a missing parameter passed")
            } catch let e as SQLiteError {
                #expect(e.description.contains("could not insert without values"))
                #expect(e.description.contains("1 parameters but 0 values"))
            }
            await #expect(throws: SQLiteError.self) {
                try await c.execute("SELECT 1; SELECT 2", purpose: "run two statements")
            }
        }
        // A closed connection says so.
        try await withTemporaryDirectory { dir in
            let c = try await SQLiteConnection.open(path: dir.appendingPathComponent("t.sqlite").path)
            await c.close()
            #expect(c.isClosed)
            do {
                try await c.execute("SELECT 1", purpose: "read after close")
                Issue.record("a closed connection ran a statement")
            } catch let e as SQLiteError {
                #expect(e.description.contains("could not read after close: the connection is closed"))
            }
            // A file that cannot be opened names it.
            do {
                _ = try await SQLiteConnection.open(path: dir.appendingPathComponent("missing/dir/t.sqlite").path)
                Issue.record("opened a file in a missing directory")
            } catch let e as SQLiteError {
                #expect(e.description.contains("could not open the database at"))
            }
        }
    }

    @Test("the store maps SQLite errors: a duplicate audit seq is a constraint error naming the statement")
    func storeErrors() async throws {
        try await withStore { store in
            let draft = AuditDraft(time: Date(), tenantId: nil, action: "test", outcome: "success", principalId: nil, accessKey: nil)
            let events = try await store.write { try await $0.appendAudit([draft]) }
            do {
                try await store.write { tx in try await tx.appendAuditEvent(events[0]) }
                Issue.record("a duplicate audit seq was written")
            } catch let e as StoreError {
                #expect(e.kind == .constraint)
                #expect(e.message.contains("could not append an audit event"))
            }
            // The failed transaction was rolled back; the writer works on.
            #expect(try await verifyAuditChain(store) == 1)
        }
    }

    @Test("a write body runs on the writer's thread, a read body on the caller's; statements without a hop each")
    func bodyOnConnectionThread() async throws {
        try await withStore { store in
            let onThread = try await store.write { tx in
                let t = try #require(tx as? SQLiteTransaction)
                _ = try await tx.setting("x")
                let first = t.c.thread.isCurrent
                try await Task.sleep(for: .milliseconds(1))   // a suspension: back on the same thread after it
                _ = try await tx.setting("x")
                return first && t.c.thread.isCurrent
            }
            #expect(onThread)
            #expect(!store.writer.thread.isCurrent)
            // A reader never waits, so its body runs where the caller runs: no statement hops to
            // the reader's thread (the statement itself reports the thread it ran on).
            let (readerThread, statementOnCaller) = try await store.read { tx in
                let t = try #require(tx as? SQLiteTransaction)
                let caller = pthread_self()
                let ran = try await t.h("see where a statement runs") { _ in pthread_self() }
                return (t.c.thread.isCurrent, pthread_equal(caller, ran) != 0)
            }
            #expect(!readerThread)
            #expect(statementOnCaller)
            // Concurrent reads and writes on the shared connections all see consistent results.
            try await store.write { try await $0.setSetting("n", "0") }
            try await withThrowingTaskGroup(of: Void.self) { g in
                for i in 1...20 {
                    g.addTask { try await store.write { tx in try await tx.setSetting("k\(i)", "\(i)") } }
                    g.addTask { _ = try await store.read { try await $0.setting("n") } }
                }
                try await g.waitForAll()
            }
            for i in 1...20 { #expect(try await store.read { try await $0.setting("k\(i)") } == "\(i)") }
        }
    }
}
