import CLatchSQLite
import Foundation

// A small binding of the system SQLite (libsqlite3): one connection per thread of its own,
// prepared statements cached per connection by SQL text, and a way to run a whole transaction
// body on the connection's thread (one hop there, one back) instead of one hop per statement.
//
// A connection's SQLite calls run on its thread: SQLite calls block (a commit waits for an
// fsync), so they stay off the NIO event loops and off Swift's cooperative pool. The exception
// is `inline`, for transactions that do not wait (a WAL reader's), run by the caller holding the
// connection's lock.

/// A value bound to a statement parameter or read from a result column.
public enum SQLiteValue: Sendable, Hashable {
    case null
    case int(Int64)
    case double(Double)
    case text(String)
    case blob([UInt8])

    public var isNull: Bool { if case .null = self { true } else { false } }
    /// The integer, or nil for any other type (no conversion).
    public var intValue: Int64? { if case .int(let v) = self { v } else { nil } }
    /// The text, or nil for any other type (no conversion).
    public var textValue: String? { if case .text(let v) = self { v } else { nil } }

    /// `.text(s)`, or `.null` for nil.
    public static func optional(_ s: String?) -> SQLiteValue { s.map { .text($0) } ?? .null }
}

/// An error reported by SQLite, naming what the statement was for.
public struct SQLiteError: Error, Sendable, CustomStringConvertible {
    /// SQLite's extended result code (e.g. 1555, SQLITE_CONSTRAINT_PRIMARYKEY).
    public let code: Int32
    /// SQLite's message (sqlite3_errmsg) or ours.
    public let message: String
    /// What the statement was for, e.g. "read a row of fields".
    public let purpose: String

    public init(code: Int32, message: String, purpose: String) {
        self.code = code; self.message = message; self.purpose = purpose
    }

    /// The primary result code (the low byte), e.g. SQLITE_CONSTRAINT (19).
    public var primaryCode: Int32 { code & 0xff }
    public var isConstraint: Bool { primaryCode == SQLITE_CONSTRAINT }
    public var isBusy: Bool { primaryCode == SQLITE_BUSY || primaryCode == SQLITE_LOCKED }

    public var description: String {
        "SQLite could not \(purpose): \(message) (\(String(cString: sqlite3_errstr(code))), code \(code))"
    }
}

/// One result row, copied out of the statement.
public struct SQLiteRow: Sendable {
    public let columns: [String]
    public let values: [SQLiteValue]
    /// The value of the column with this name, or nil when there is no such column.
    public subscript(_ name: String) -> SQLiteValue? {
        columns.firstIndex(of: name).map { values[$0] }
    }
}

/// The current row of a statement being stepped: valid only inside the row callback.
public struct SQLiteCursor {
    let stmt: OpaquePointer

    public var count: Int { Int(sqlite3_column_count(stmt)) }
    public func name(_ i: Int) -> String { sqlite3_column_name(stmt, Int32(i)).map { String(cString: $0) } ?? "" }
    public func isNull(_ i: Int) -> Bool { sqlite3_column_type(stmt, Int32(i)) == SQLITE_NULL }
    public func int(_ i: Int) -> Int64 { sqlite3_column_int64(stmt, Int32(i)) }
    /// The column as text, or nil when it is NULL.
    public func text(_ i: Int) -> String? {
        let i = Int32(i)
        if sqlite3_column_type(stmt, i) == SQLITE_NULL { return nil }
        guard let p = sqlite3_column_text(stmt, i) else { return "" }
        return String(decoding: UnsafeBufferPointer(start: p, count: Int(sqlite3_column_bytes(stmt, i))), as: UTF8.self)
    }
    public func value(_ i: Int) -> SQLiteValue {
        let n = Int32(i)
        switch sqlite3_column_type(stmt, n) {
        case SQLITE_INTEGER: return .int(sqlite3_column_int64(stmt, n))
        case SQLITE_FLOAT: return .double(sqlite3_column_double(stmt, n))
        case SQLITE_TEXT: return .text(text(i) ?? "")
        case SQLITE_BLOB:
            let count = Int(sqlite3_column_bytes(stmt, n))
            guard count > 0, let p = sqlite3_column_blob(stmt, n) else { return .blob([]) }
            return .blob(Array(UnsafeRawBufferPointer(start: p, count: count)))
        default: return .null
        }
    }
    /// Every column, copied.
    public var row: SQLiteRow {
        SQLiteRow(columns: (0..<count).map(name), values: (0..<count).map(value))
    }
}

/// An open database handle with its statement cache. Used only on its connection's thread
/// (`SQLiteConnection.withHandle`), never shared.
public final class SQLiteHandle {
    private var db: OpaquePointer?
    private final class Cached {
        let stmt: OpaquePointer
        var inUse = false
        init(_ s: OpaquePointer) { stmt = s }
    }
    private var cache: [String: Cached] = [:]
    /// More distinct statements than this (e.g. IN lists of many sizes) empty the cache first.
    static let cacheLimit = 200
    /// How many times a statement was compiled (sqlite3_prepare): for tests and diagnostics.
    public private(set) var preparations = 0
    /// How many prepared statements the cache holds.
    public var cachedStatements: Int { cache.count }

    init(path: String) throws {
        var h: OpaquePointer?
        let rc = sqlite3_open_v2(path, &h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nil)
        guard rc == SQLITE_OK, let h else {
            let message = h.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close_v2(h)
            throw SQLiteError(code: rc, message: message, purpose: "open the database at \(path)")
        }
        sqlite3_extended_result_codes(h, 1)
        sqlite3_busy_timeout(h, 5000)   // wait for another connection's write lock (the store sets it too)
        db = h
    }

    deinit { close() }

    var isClosed: Bool { db == nil }

    func close() {
        for c in cache.values { sqlite3_finalize(c.stmt) }
        cache = [:]
        if let db { sqlite3_close_v2(db) }
        db = nil
    }

    private func failure(_ rc: Int32, _ purpose: String) -> SQLiteError {
        SQLiteError(code: rc, message: db.map { String(cString: sqlite3_errmsg($0)) } ?? "the connection is closed", purpose: purpose)
    }

    /// A prepared statement for `sql`: the cached one when it is free, else a new one (cached
    /// unless the cached copy is in use by an enclosing statement).
    private func statement(_ sql: String, _ purpose: String) throws -> (OpaquePointer, Cached?) {
        guard let db else { throw SQLiteError(code: SQLITE_MISUSE, message: "the connection is closed", purpose: purpose) }
        if let c = cache[sql], !c.inUse { c.inUse = true; return (c.stmt, c) }
        var stmt: OpaquePointer?
        var more = false   // text after the first statement (the tail points into the C string)
        let rc = sql.withCString { text in
            var tail: UnsafePointer<CChar>?
            let rc = sqlite3_prepare_v3(db, text, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &stmt, &tail)
            if let tail, tail.pointee != 0 { more = !String(cString: tail).allSatisfy(\.isWhitespace) }
            return rc
        }
        preparations += 1
        guard rc == SQLITE_OK, let stmt else {
            if rc == SQLITE_OK {
                throw SQLiteError(code: SQLITE_MISUSE, message: "the SQL holds no statement", purpose: purpose)
            }
            throw failure(rc, purpose)
        }
        if more {
            sqlite3_finalize(stmt)
            throw SQLiteError(code: SQLITE_MISUSE, message: "the SQL holds more than one statement", purpose: purpose)
        }
        if cache[sql] != nil { return (stmt, nil) }   // the cached one is busy: use this one once
        if cache.count >= Self.cacheLimit {
            for (k, c) in cache where !c.inUse { sqlite3_finalize(c.stmt); cache[k] = nil }
        }
        let c = Cached(stmt)
        c.inUse = true
        cache[sql] = c
        return (stmt, c)
    }

    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    private func bind(_ stmt: OpaquePointer, _ binds: [SQLiteValue], _ purpose: String) throws {
        let expected = Int(sqlite3_bind_parameter_count(stmt))
        guard expected == binds.count else {
            throw SQLiteError(code: SQLITE_RANGE, message: "the statement has \(expected) parameters but \(binds.count) values were given",
                              purpose: purpose)
        }
        for (n, v) in binds.enumerated() {
            let i = Int32(n + 1)
            let rc: Int32
            switch v {
            case .null: rc = sqlite3_bind_null(stmt, i)
            case .int(let x): rc = sqlite3_bind_int64(stmt, i, x)
            case .double(let x): rc = sqlite3_bind_double(stmt, i, x)
            case .text(var s):
                rc = s.withUTF8 { b in
                    b.isEmpty ? sqlite3_bind_text(stmt, i, "", 0, Self.transient)
                        : b.withMemoryRebound(to: CChar.self) { sqlite3_bind_text(stmt, i, $0.baseAddress, Int32(b.count), Self.transient) }
                }
            case .blob(let bytes):
                rc = bytes.isEmpty ? sqlite3_bind_zeroblob(stmt, i, 0)
                    : bytes.withUnsafeBytes { sqlite3_bind_blob(stmt, i, $0.baseAddress, Int32($0.count), Self.transient) }
            }
            guard rc == SQLITE_OK else { throw failure(rc, purpose) }
        }
    }

    /// Runs one statement, calling `row` for each result row (the cursor is valid only during
    /// the call). `purpose` names what the statement is for in any error.
    public func forEach(_ sql: String, _ binds: [SQLiteValue] = [], purpose: String, _ row: (SQLiteCursor) throws -> Void) throws {
        let (stmt, cached) = try statement(sql, purpose)
        defer {
            sqlite3_reset(stmt)
            sqlite3_clear_bindings(stmt)
            if let cached { cached.inUse = false } else { sqlite3_finalize(stmt) }
        }
        try bind(stmt, binds, purpose)
        let cursor = SQLiteCursor(stmt: stmt)
        while true {
            let rc = sqlite3_step(stmt)
            if rc == SQLITE_ROW { try row(cursor); continue }
            if rc == SQLITE_DONE { return }
            throw failure(rc, purpose)
        }
    }

    /// Runs one statement and returns its rows.
    @discardableResult
    public func query(_ sql: String, _ binds: [SQLiteValue] = [], purpose: String) throws -> [SQLiteRow] {
        var rows: [SQLiteRow] = []
        var columns: [String]? = nil
        try forEach(sql, binds, purpose: purpose) { c in
            if columns == nil { columns = (0..<c.count).map(c.name) }
            rows.append(SQLiteRow(columns: columns!, values: (0..<c.count).map(c.value)))
        }
        return rows
    }

    /// Runs one statement, ignoring any rows.
    public func execute(_ sql: String, _ binds: [SQLiteValue] = [], purpose: String) throws {
        try forEach(sql, binds, purpose: purpose) { _ in }
    }

    /// SQLite's own mapping of the first 32 KiB region of the database's WAL index (the
    /// `-shm` file), which starts with the WAL-index header; nil when the database is not in WAL
    /// mode or its VFS has no shared memory. It stays valid while this connection is open. (The
    /// file is not opened a second time: closing any descriptor of it would drop the POSIX locks
    /// SQLite holds on it in this process, and another process could then truncate it under the
    /// mapping.)
    public func walIndexRegion() -> UnsafeRawPointer? {
        guard let db else { return nil }
        var file: UnsafeMutablePointer<sqlite3_file>?
        guard sqlite3_file_control(db, "main", SQLITE_FCNTL_FILE_POINTER, &file) == SQLITE_OK, let file,
              let methods = file.pointee.pMethods, methods.pointee.iVersion >= 2, let map = methods.pointee.xShmMap else { return nil }
        var region: UnsafeMutableRawPointer?
        guard map(file, 0, 32_768, 0, &region) == SQLITE_OK, let region else { return nil }
        return UnsafeRawPointer(region)
    }

    /// Replaces the busy timeout with a short busy wait: tries every 50 µs, for about 2 ms, then
    /// SQLITE_BUSY. SQLite's own timeout sleeps 1, 2, 5, 10… ms between tries: right for waiting
    /// on a writer, but a checkpoint that waits for readers (which mostly finish in
    /// microseconds) would sleep 8 ms, and one that waits for a long read would wait as long.
    public func pollWhenBusy() {
        guard let db else { return }
        sqlite3_busy_handler(db, { _, tries in
            guard tries < 40 else { return 0 }
            usleep(50)
            return 1
        }, nil)
    }

    /// Rows changed by the last INSERT, UPDATE or DELETE.
    public var changes: Int { db.map { Int(sqlite3_changes64($0)) } ?? 0 }
}

/// A dedicated thread running closures and (as a task executor) whole async transaction bodies,
/// in submission order.
final class SQLiteThread: @unchecked Sendable {
    private enum Work {
        case closure(() -> Void)
        case job(UnownedJob)
    }
    private let cond = NSCondition()
    private var queue: [Work] = []
    private var head = 0
    private var stopping = false
    private var ended = false
    private var thread: pthread_t? = nil
    private let started = DispatchSemaphore(value: 0)
    private let stopped = DispatchSemaphore(value: 0)

    init(name: String) {
        // The thread holds the object until `stop()` lets it end.
        let short = String(decoding: name.utf8.prefix(15), as: UTF8.self)   // Linux refuses longer names
        let t = Thread {
            Thread.current.name = short   // set from the thread itself: that is when Linux applies it
            self.loop()
        }
        t.stackSize = 4 << 20
        t.start()
        started.wait()
    }

    /// True on this thread.
    var isCurrent: Bool { thread.map { pthread_equal($0, pthread_self()) != 0 } ?? false }

    private func loop() {
        thread = pthread_self()
        started.signal()
        while true {
            cond.lock()
            while head == queue.count && !stopping { cond.wait() }
            if head == queue.count {   // stopping and drained
                ended = true
                cond.unlock()
                stopped.signal()
                return
            }
            let w = queue[head]
            head += 1
            if head == queue.count { queue.removeAll(keepingCapacity: true); head = 0 }
            cond.unlock()
            switch w {
            case .closure(let f): f()
            case .job(let j): runJob(j)
            }
        }
    }

    private func runJob(_ j: UnownedJob) {
        if #available(macOS 15.0, *) {
            j.runSynchronously(on: asUnownedTaskExecutor())
        } else {
            fatalError("task executors need macOS 15")
        }
    }

    private func push(_ w: Work) {
        cond.lock()
        if ended {
            // Only misuse after close() gets here: run it on the caller rather than never (a
            // closure then finds the handle closed and says so).
            cond.unlock()
            switch w {
            case .closure(let f): f()
            case .job(let j): runJob(j)
            }
            return
        }
        queue.append(w)
        cond.signal()
        cond.unlock()
    }

    func submit(_ f: @escaping @Sendable () -> Void) { push(.closure(f)) }

    func enqueueJob(_ j: UnownedJob) { push(.job(j)) }

    /// Lets the thread end once the work queued so far has run, and waits for it.
    func stop() {
        cond.lock()
        stopping = true
        cond.signal()
        cond.unlock()
        if !isCurrent { stopped.wait() }
    }
}

@available(macOS 15.0, *)
extension SQLiteThread: TaskExecutor {
    func enqueue(_ job: consuming ExecutorJob) { enqueueJob(UnownedJob(job)) }
}

/// One SQLite connection on a thread of its own. Statements run through `withHandle` (on the
/// thread: directly; elsewhere: one hop there and the caller resumed once); `onThread` runs a
/// whole async body with the task on the connection's thread.
public final class SQLiteConnection: @unchecked Sendable {
    let thread: SQLiteThread
    /// Only touched on `thread`.
    private var handle: SQLiteHandle?
    /// Serialises transactions on this connection (the store holds it from BEGIN to COMMIT).
    let lock = ConnectionLock()
    public let path: String

    private init(path: String, thread: SQLiteThread) { self.path = path; self.thread = thread }

    /// Opens (creating if needed) the database file at `path` on a new thread (busy timeout 5 s)
    /// named `role` (what `ps` and profilers show; Linux keeps 15 bytes of it).
    public static func open(path: String, role: String = "sqlite") async throws -> SQLiteConnection {
        let c = SQLiteConnection(path: path, thread: SQLiteThread(name: role))
        do {
            try await c.hop { c.handle = try SQLiteHandle(path: path) }
        } catch {
            c.thread.stop()
            throw error
        }
        return c
    }

    private func hop<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (k: CheckedContinuation<T, Error>) in
            thread.submit { k.resume(with: Result { try body() }) }
        }
    }

    private func current(_ purpose: String) throws -> SQLiteHandle {
        guard let h = handle, !h.isClosed else {
            throw SQLiteError(code: SQLITE_MISUSE, message: "the connection is closed", purpose: purpose)
        }
        return h
    }

    /// Runs `body` with the handle on the connection's thread: directly when already there (inside
    /// `onThread`) or when the caller runs an inline transaction, else by one hop.
    public func withHandle<T: Sendable>(_ purpose: String = "use the connection",
                                        _ body: @escaping @Sendable (SQLiteHandle) throws -> T) async throws -> T {
        if thread.isCurrent || SQLiteConnection.inlineTransaction == ObjectIdentifier(self) { return try body(current(purpose)) }
        if isClosed { throw SQLiteError(code: SQLITE_MISUSE, message: "the connection is closed", purpose: purpose) }
        return try await hop { try body(self.current(purpose)) }
    }

    /// The connection whose transaction the current task runs inline (holding its lock).
    @TaskLocal static var inlineTransaction: ObjectIdentifier?

    /// Runs `body` on the calling thread, its `withHandle` calls included. Only for a caller
    /// holding `lock` and running statements that do not wait (a WAL reader's): SQLite's handle
    /// is used by one thread at a time, which the lock ensures.
    public func inline<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        try await SQLiteConnection.$inlineTransaction.withValue(ObjectIdentifier(self), operation: body)
    }

    /// Runs `body` (an async function) with the calling task on this connection's thread, so the
    /// `withHandle` calls inside it run without a hop each.
    public func onThread<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        if #available(macOS 15.0, *), !isClosed {
            return try await withTaskExecutorPreference(thread, operation: body)
        }
        return try await body()
    }

    /// Runs one statement and returns its rows.
    public func query(_ sql: String, _ binds: [SQLiteValue] = [], purpose: String) async throws -> [SQLiteRow] {
        try await withHandle(purpose) { try $0.query(sql, binds, purpose: purpose) }
    }

    /// Runs one statement, ignoring any rows.
    public func execute(_ sql: String, _ binds: [SQLiteValue] = [], purpose: String) async throws {
        try await withHandle(purpose) { try $0.execute(sql, binds, purpose: purpose) }
    }

    public var isClosed: Bool { closedFlag.withLock { $0 } }
    private let closedFlag = Mutex(false)

    /// Finalizes every statement, closes the database and ends the thread. Later calls fail
    /// with "the connection is closed".
    public func close() async {
        if closedFlag.withLock({ let was = $0; $0 = true; return was }) { return }
        _ = try? await hop { self.handle?.close(); self.handle = nil }
        thread.stop()
    }
}

/// A small mutex holding its value (NSLock-based; Synchronization's Mutex needs macOS 15).
final class Mutex<Value>: @unchecked Sendable {
    private let l = NSLock()
    private var value: Value
    init(_ v: Value) { value = v }
    func withLock<T>(_ body: (inout Value) throws -> T) rethrows -> T {
        l.lock(); defer { l.unlock() }
        return try body(&value)
    }
}

/// An async mutex without an actor hop: the uncontended path takes an NSLock only; waiters
/// queue in order and are handed the lock by `unlock`.
final class ConnectionLock: @unchecked Sendable {
    private let state = Mutex<(locked: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func lock() async {
        if state.withLock({ s in if s.locked { return false }; s.locked = true; return true }) { return }
        await withCheckedContinuation { (k: CheckedContinuation<Void, Never>) in
            let now = state.withLock { s in
                if !s.locked { s.locked = true; return true }
                s.waiters.append(k)
                return false
            }
            if now { k.resume() }
        }
    }

    func unlock() {
        let next = state.withLock { s -> CheckedContinuation<Void, Never>? in
            if s.waiters.isEmpty { s.locked = false; return nil }
            return s.waiters.removeFirst()
        }
        next?.resume()
    }
}
