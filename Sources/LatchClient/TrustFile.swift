import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A profile's `log.json` (`LogTrust`), held in memory between syncs (issue 5, performance: a
/// delta sync should add well under a millisecond, and decoding, re-encoding and fsyncing a
/// file with one entry per proven leaf cost tens).
///
/// - `load()` returns the copy in memory while the file on disk is the one this object last
///   read or wrote (same inode, size and modification time); a file another process of the
///   same profile wrote since is read again.
/// - `save(_:)` makes the new state current at once and writes it behind the caller: on a
///   serial queue, `writeDelay` later (atomic temporary file, fsync, rename), so the write does
///   not compete with the sync that asked for it and a burst of saves is written once.
///   Losing the last write (a crash, a kill) is safe: the older head it leaves was verified
///   and every later head must still prove consistency with it. Pending writes are flushed
///   at process exit and by `flush()`; `save(_:durably: true)` returns only once on disk
///   (used for a new pin, which nothing older can replace).
/// - Each write holds a lock on `log.json.lock` and never replaces a larger tree another
///   process of the profile wrote since (`write(_:path:known:)`).
/// - A write that failed is reported by the next `load`, `save` or `flush`.
final class TrustFile: @unchecked Sendable {
    let path: String
    private let lock = NSLock()
    private var memory: LogTrust?
    private var stamp: Stamp?
    /// The newest state not yet on disk (nil when the file is current or being written).
    private var pending: LogTrust?
    private var writing = false
    private var failure: Error?
    private let queue = DispatchQueue(label: "latchkey.log-trust")
    /// How long a save waits before it is written.
    static let writeDelay = DispatchTimeInterval.milliseconds(50)
    /// Receives "log.write" (the time spent writing, off the caller's path) when set.
    private let timings: Timings?

    init(path: String, timings: Timings? = nil) {
        self.path = path
        self.timings = timings
        Self.registerForExit(self)
    }

    func load() throws -> LogTrust? {
        try lock.withLock {
            try takeFailure()
            if let pending { return pending }
            let now = Stamp(path: path)
            if writing || (memory != nil && now != nil && now == stamp) { return memory }
            memory = try LogTrust.load(path: path)
            stamp = now
            return memory
        }
    }

    func save(_ trust: LogTrust, durably: Bool = false) throws {
        let start = try lock.withLock { () -> Bool in
            try takeFailure()
            memory = trust
            pending = trust
            if writing { return false }
            writing = true
            return true
        }
        if start { queue.asyncAfter(deadline: .now() + Self.writeDelay) { self.drain() } }
        if durably { try flush() }
    }

    /// Writes what is pending now and waits for it; throws the error of a write that failed.
    func flush() throws {
        queue.sync { drain() }
        try lock.withLock { try takeFailure() }
    }

    private func drain() {
        while let next = lock.withLock({ () -> LogTrust? in
            let next = pending
            pending = nil
            if next == nil { writing = false }
            return next
        }) {
            let started = DispatchTime.now().uptimeNanoseconds
            defer { timings?.add("log.write", since: started) }
            do {
                let known = lock.withLock { stamp }
                let kept = try Self.write(next, path: path, known: known)
                lock.withLock {
                    stamp = Stamp(path: path)
                    if kept != next, pending == nil { memory = kept }
                }
            } catch {
                lock.withLock { failure = error; stamp = nil }
            }
        }
    }

    /// Writes `trust` under an exclusive lock on `path + ".lock"`, unless another process of
    /// the profile wrote the file since `known` (this object's last read or write) with a head
    /// of the same log further on: that head stays, since every later one must prove
    /// consistency with it, and going back to an older head would reopen what it settled.
    /// Two different roots at one size, both signed by the pinned key, are a split view: the
    /// file keeps the first and the error says so. Returns what the file holds.
    static func write(_ trust: LogTrust, path: String, known: Stamp?) throws -> LogTrust {
        try SecureFile.withLock(path) {
            if let now = Stamp(path: path), now != known, let theirs = try LogTrust.load(path: path), theirs.logKey == trust.logKey {
                if theirs.treeSize > trust.treeSize { return theirs }
                if theirs.treeSize == trust.treeSize, theirs.rootHash != trust.rootHash {
                    throw LatchError(.verification, "the transparency log showed two different trees of size \(trust.treeSize) to this profile",
                                     hint: "another process of the profile verified root \(theirs.rootHash), this one \(trust.rootHash), both signed by the pinned log key: the server is showing different clients different logs; keep \(path) as evidence and compare heads with other clients (latch verify --witness)")
                }
            }
            try trust.save(path: path)
            return trust
        }
    }

    private func takeFailure() throws {
        if let f = failure { failure = nil; throw f }
    }

    /// What identifies one version of the file on disk.
    struct Stamp: Equatable {
        var device: UInt64, inode: UInt64, size: Int64, seconds: Int, nanoseconds: Int
        init?(path: String) {
            var st = stat()
            guard stat(path, &st) == 0 else { return nil }
            device = UInt64(st.st_dev); inode = UInt64(st.st_ino); size = Int64(st.st_size)
            #if canImport(Darwin)
            seconds = st.st_mtimespec.tv_sec; nanoseconds = st.st_mtimespec.tv_nsec
            #else
            seconds = st.st_mtim.tv_sec; nanoseconds = st.st_mtim.tv_nsec
            #endif
        }
    }

    // Every live trust file is flushed when the process exits normally (`exit`, or return
    // from `main`), so a command that ends right after a sync still leaves its head on disk.
    private nonisolated(unsafe) static var live: [ObjectIdentifier: WeakBox] = [:]
    private static let liveLock = NSLock()
    private static let exitHook: Void = { atexit { TrustFile.flushAll() } }()
    private struct WeakBox { weak var file: TrustFile? }

    private static func registerForExit(_ file: TrustFile) {
        _ = exitHook
        liveLock.withLock {
            live = live.filter { $0.value.file != nil }
            live[ObjectIdentifier(file)] = WeakBox(file: file)
        }
    }

    static func flushAll() {
        let files = liveLock.withLock { live.values.compactMap(\.file) }
        for f in files { try? f.flush() }
    }
}
