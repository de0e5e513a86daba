import Foundation
import LatchDomain
import Synchronization

/// The SQLite store's `commitVersion()`: a peek at the WAL-index header in `<database>-shm`.
///
/// In WAL mode every connection to the database, in any process, finds the newest commit through
/// that header (SQLite's "WAL-index" format, https://sqlite.org/walformat.html): 48 bytes whose
/// change counter, last frame, salts and checksum change with every commit and every restart of
/// the WAL. A writer stores the header twice, the second copy first; a reader that finds both
/// copies equal has read a whole header. So a header equal to the last one seen means no commit
/// since, and each new header seen bumps the version this type answers. Reading it costs a lock
/// and two 48-byte copies from shared memory, against a read transaction's locks and statements.
///
/// The header is read through SQLite's own mapping of the file (`SQLiteHandle.walIndexRegion`),
/// valid while the connection that mapped it is open: `stop()` comes before the store closes
/// its connections. Anything unexpected, such as a header of another format version or one
/// being written at that moment, answers nil, and the caller then reads the store as usual.
final class WALIndexWatch: @unchecked Sendable {
    struct Header: Equatable {
        var words: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64)

        init(_ p: UnsafeRawPointer) {
            words = (p.loadUnaligned(fromByteOffset: 0, as: UInt64.self), p.loadUnaligned(fromByteOffset: 8, as: UInt64.self),
                     p.loadUnaligned(fromByteOffset: 16, as: UInt64.self), p.loadUnaligned(fromByteOffset: 24, as: UInt64.self),
                     p.loadUnaligned(fromByteOffset: 32, as: UInt64.self), p.loadUnaligned(fromByteOffset: 40, as: UInt64.self))
        }

        static func == (a: Header, b: Header) -> Bool { a.words == b.words }
    }

    /// SQLite's WAL-index format version (`WALINDEX_MAX_VERSION`), the header's first field.
    static let formatVersion: UInt32 = 3_007_000
    private static let headerSize = 48

    private let lock = NSLock()
    private var header: UnsafeRawPointer?
    private var last: Header?
    private var version: UInt64 = 0

    /// `region`: the start of the WAL index (nil: `current()` answers nil for good).
    init(region: UnsafeRawPointer?) { header = region }

    /// Stops reading the header (before the connection that mapped it closes).
    func stop() { lock.withLock { header = nil } }

    /// The version: bumped each time the header differs from the last one seen.
    func current() -> UInt64? {
        lock.withLock {
            guard let now = readLocked() else { return nil }
            if now != last {
                last = now
                version &+= 1
            }
            return version
        }
    }

    /// The header now, when whole and of the known format (under `lock`).
    private func readLocked() -> Header? {
        guard let p = header else { return nil }
        let first = Header(p)
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        let second = Header(p + Self.headerSize)
        guard first == second, p.loadUnaligned(as: UInt32.self) == Self.formatVersion,
              p.load(fromByteOffset: 12, as: UInt8.self) == 1 else { return nil }   // isInit
        return first
    }

    /// The header now (nil when it cannot be read whole).
    func peek() -> Header? { lock.withLock { readLocked() } }

    /// After a commit that changed nothing a cached read depends on (the read-audit journal's
    /// moves into the audit chain): `before` is the header its transaction began on, `after` the
    /// one its commit left. When the version still stands for `before`, it now stands for
    /// `after` as well, so the commit does not end the reuse of every cached read. The caller
    /// makes sure that no other commit came between the two (see `SQLiteLatchStore.run`).
    func absorb(from before: Header, to after: Header) {
        lock.withLock { if last == before { last = after } }
    }
}
