import Foundation
import LatchDomain
import Synchronization

/// The SQLite store's read-audit journal (`ReadAuditJournal`): each read's audit event is one
/// line (`AuditJournalLine`) put in a file beside the database (mode 0600) before the answer
/// leaves, then moved into the audit chain by one `.deferred` write transaction per round of at
/// most `roundLimit` events, within `delay` of the first event waiting.
///
/// Why: a read's event used to wait for a group commit (a write transaction on the writer's
/// thread) before the response could leave; under load every read waited on the commit in
/// flight, with both cores partly idle. A line in the page cache survives a crash of the server
/// process as soon as it is there, as that `.deferred` commit did; the round's commit and the
/// store's background fsync of the WAL 0.1 s later make it survive a power loss, as before (a
/// power loss within about 0.2 s of a read can lose its event, docs/threat-model.md).
///
/// How a line gets into its file: a file is created with `mapBytes` reserved on disk
/// (`posix_fallocate`) and mapped shared, and a line is copied into the mapping: no system call
/// per read (a write(2) per read was about 5% of the server's CPU under read load). The line's
/// first byte is stored last, so a process killed in the middle of a copy leaves a line that
/// starts with a zero byte, which recovery skips as never recorded (its read was not answered);
/// the unused rest of a file is zeros too. Where space cannot be reserved or the file cannot be
/// mapped (a file system without `fallocate`), the file takes each line with one pwrite(2)
/// instead, and a failed one is cut off again, so no partial line stays behind. A mapped file
/// is never written past its reserved space, so a full disk refuses the next file (the read
/// then fails with 503) instead of faulting in the middle of a copy.
///
/// Files: each run of the store has a journal of its own, named by a random id
/// (`<database>-audit-<id>-<n>`), so a second process opening the same database (an operator's
/// tool beside a running server) never takes or renumbers a live run's entries. A run writes to
/// one file at a time and holds an exclusive `flock` on each of its files until every entry in
/// it is committed; then it removes the file. A round that finds the file past `rotateBytes`
/// starts a new one first (as does a line that no longer fits a mapped file), so files are not
/// made and removed at every round: creating a file where many were just removed costs ext4 an
/// inode-bitmap search, which at a file per round was itself about 5% of the server's CPU. A
/// pwrite(2) file whose entries have all been moved is emptied in place instead.
/// Entries are numbered per run; each round records the last number it moved in the setting
/// `read_audit_journal_moved:<id>`, in the same transaction, so an entry is moved once even when
/// it is still in a file after its round (until the file is removed or emptied, and after a
/// crash between the commit and either). At open, `recoverReadAudit` moves what dead runs left
/// (files no live process holds locked).
final class SQLiteReadAuditJournal: ReadAuditJournal, @unchecked Sendable {
    /// The setting holding the last entry number of run `id` moved into the chain.
    static func movedSetting(_ id: String) -> String { "read_audit_journal_moved:\(id)" }
    /// At most this many entries per round (one transaction): a bigger backlog takes more rounds,
    /// so that no one commit holds the writer (and a core) long.
    static let roundLimit = 250

    let base: String
    let delay: Duration
    /// The space a mapped file reserves unless told otherwise.
    static let defaultMapBytes = 512 << 10
    /// The space a mapped file reserves; 0 makes every file a pwrite(2) one.
    let mapBytes: Int
    /// A round starts a new file when the current one holds this many bytes (settable before any
    /// event is recorded; tests make it small).
    var rotateBytes = 384 << 10
    /// This run's id (16 hex digits).
    let id: String
    private let lock = NSLock()
    private var file: JournalFile?                    // the file written to (nil once closed and removed)
    private var next: Int64 = 1                       // the next entry's number
    private var pending: [(number: Int64, draft: AuditDraft)] = []
    private var sealed: [JournalFile] = []            // files no longer written, not yet removable
    private var scheduled = false
    private var closed = false
    /// Starts a round after `delay` (set by the store: it runs the transaction).
    var schedule: @Sendable () -> Void = {}

    /// A journal for the database at `base`; it takes events once `start`ed.
    init(base: String, delay: Duration, mapBytes: Int = defaultMapBytes) {
        self.base = base; self.delay = delay; self.mapBytes = mapBytes
        id = String(format: "%016llx", UInt64.random(in: 0...UInt64.max))
    }

    var movedSetting: String { Self.movedSetting(id) }

    /// Starts writing to this run's first file.
    func start() throws {
        let f = try JournalFile.create(path(1), number: 1, reserve: mapBytes)
        lock.withLock { file = f }
    }

    func path(_ n: Int64) -> String { "\(base)-audit-\(id)-\(n)" }

    /// True when the file written to is mapped (for tests).
    var isMapped: Bool { lock.withLock { file?.map != nil } }

    /// Puts the event's line in the journal; throws (and leaves the journal as it was) when it
    /// cannot.
    func record(_ draft: AuditDraft) throws {
        let start = try lock.withLock { () throws -> Bool in
            guard !closed, var f = file else { throw StoreError(.unavailable, "the store is closed") }
            let line = AuditJournalLine.encode(draft, number: next)
            if f.map != nil, f.size + line.count > f.capacity {
                f = try rotateLocked(reserve: max(mapBytes, line.count))
            }
            try f.put(line)
            f.last = next
            file = f
            pending.append((next, draft))
            next += 1
            if scheduled { return false }
            scheduled = true
            return true
        }
        if start { schedule() }
    }

    /// Seals the current file (still locked until its entries are moved) and starts the next.
    private func rotateLocked(reserve: Int) throws -> JournalFile {
        guard let f = file else { throw StoreError(.unavailable, "the store is closed") }
        let n = try JournalFile.create(path(f.number + 1), number: f.number + 1, reserve: reserve)
        if f.last > 0 { sealed.append(f) } else { f.remove() }
        file = n
        return n
    }

    /// The next round's entries (oldest first, at most `roundLimit`), nil when none wait. Starts
    /// a new file first when the current one holds `rotateBytes` or more (the entries in the
    /// ones before it are then all in this round or earlier).
    func take() -> [(number: Int64, draft: AuditDraft)]? {
        lock.withLock {
            guard !pending.isEmpty else { return nil }
            if !closed, let f = file, f.last > 0, f.size >= rotateBytes { _ = try? rotateLocked(reserve: mapBytes) }
            let n = min(pending.count, Self.roundLimit)
            let round = Array(pending[..<n])
            pending.removeFirst(n)
            return round
        }
    }

    /// After a round committed entries up to `last`: removes the sealed files holding only such
    /// entries, and empties a pwrite(2) file written to that holds only such entries.
    func moved(upTo last: Int64) {
        let done = lock.withLock { () -> [JournalFile] in
            let d = sealed.filter { $0.last <= last }
            sealed.removeAll { $0.last <= last }
            if var f = file, f.last > 0, f.last <= last, f.empty() { file = f }
            return d
        }
        for f in done { f.remove() }
    }

    /// After a round failed: its entries wait again, first.
    func putBack(_ round: [(number: Int64, draft: AuditDraft)]) {
        lock.withLock { pending.insert(contentsOf: round, at: 0) }
    }

    /// A scheduled round begins: an event recorded from now on schedules the next one.
    func beginRound() { lock.withLock { scheduled = false } }

    /// True when entries wait and no round is scheduled (the caller schedules one).
    func needsRound() -> Bool {
        lock.withLock {
            if scheduled || pending.isEmpty { return false }
            scheduled = true
            return true
        }
    }

    /// Refuses further events (the store is closing); what is written stays to be moved.
    func close() {
        lock.withLock {
            closed = true
            if let f = file, f.last == 0 { f.remove(); file = nil }
        }
    }

    /// Removes the files once closed and every entry is moved (nothing left to recover).
    func removeIfDrained() {
        lock.withLock {
            guard closed, pending.isEmpty else { return }
            file?.remove(); file = nil
            for s in sealed { s.remove() }
            sealed = []
        }
    }

    /// For tests: lets go of every file as a killed process would (nothing moved or removed).
    func abandon() {
        lock.withLock {
            closed = true
            for f in sealed + [file].compactMap({ $0 }) { f.release() }
            sealed = []; pending = []; file = nil
        }
    }

    // MARK: recovery

    /// What dead runs left: their files (each open and locked: no live process holds it), the
    /// entries, and the lines that are not whole entries. Files a live run holds are left alone.
    struct Leftover {
        var id: String
        var number: Int64
        var path: String
        var fd: Int32
        var entries: [(number: Int64, draft: AuditDraft)] = []
        var unreadable = 0
    }

    static func leftovers(base: String) -> [Leftover] {
        let url = URL(fileURLWithPath: base)
        let dir = url.deletingLastPathComponent().path
        let prefix = url.lastPathComponent + "-audit-"
        var out: [Leftover] = []
        for name in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] where name.hasPrefix(prefix) {
            let parts = name.dropFirst(prefix.count).split(separator: "-")
            guard parts.count == 2, let n = Int64(parts[1]) else { continue }   // not a journal file (or kept as .damaged)
            let path = dir + "/" + name
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { continue }                                     // removed meanwhile by its run
            guard flock(fd, LOCK_EX | LOCK_NB) == 0 else { closeFile(fd); continue }   // a live run's
            var f = Leftover(id: String(parts[0]), number: n, path: path, fd: fd)
            let data = FileHandle(fileDescriptor: fd, closeOnDealloc: false).readDataToEndOfFile()
            for line in data.split(separator: UInt8(ascii: "\n")) where line.first != 0 {   // zeros: unused space, or a copy cut short
                if let e = AuditJournalLine.decode(line) { f.entries.append(e) } else { f.unreadable += 1 }
            }
            out.append(f)
        }
        return out.sorted { ($0.id, $0.number) < ($1.id, $1.number) }
    }
}

private func closeFile(_ fd: Int32) { _ = close(fd) }

/// One file of a run's journal: open, `flock`ed, and either mapped over space reserved up front
/// or written with pwrite(2).
struct JournalFile {
    let number: Int64
    let path: String
    let fd: Int32
    /// The shared mapping of the file's `capacity` reserved bytes; nil for a pwrite(2) file.
    let map: UnsafeMutableRawPointer?
    let capacity: Int
    /// Bytes of lines in the file.
    var size = 0
    /// The last entry number in the file (0: none).
    var last: Int64 = 0

    /// A new file, created and locked (0600), with `reserve` bytes reserved and mapped when the
    /// file system allows (0: a pwrite(2) file).
    static func create(_ path: String, number: Int64, reserve: Int) throws -> JournalFile {
        let fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0, flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let reason = String(cString: strerror(errno))
            if fd >= 0 { closeFile(fd); unlink(path) }
            throw StoreError(.unavailable, "cannot create the read-audit journal \(path): \(reason)")
        }
        if reserve > 0, posix_fallocate(fd, 0, off_t(reserve)) == 0 {
            let m = mmap(nil, reserve, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
            if let m, m != MAP_FAILED { return JournalFile(number: number, path: path, fd: fd, map: m, capacity: reserve) }
        }
        _ = ftruncate(fd, 0)   // no reservation (or no mapping): a pwrite(2) file
        return JournalFile(number: number, path: path, fd: fd, map: nil, capacity: 0)
    }

    /// Adds `line` after the lines already there, or throws and leaves the file as it was. A
    /// mapped file's caller has checked that it fits.
    mutating func put(_ line: [UInt8]) throws {
        if let map {
            precondition(size + line.count <= capacity, "a read-audit journal line past the file's reserved space")
            line.withUnsafeBytes { b in
                (map + size + 1).copyMemory(from: b.baseAddress! + 1, byteCount: b.count - 1)
                atomicMemoryFence(ordering: .releasing)   // the first byte marks the line whole
                (map + size).storeBytes(of: b[0], as: UInt8.self)
            }
        } else {
            let written = line.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(size)) }
            guard written == line.count else {
                let reason = written < 0 ? String(cString: strerror(errno)) : "short write"
                if written > 0 { _ = ftruncate(fd, off_t(size)) }   // no partial line left behind
                throw StoreError(.unavailable, "cannot record a read's audit event in \(path): \(reason)")
            }
        }
        size += line.count
    }

    /// Empties a pwrite(2) file in place (false for a mapped one, which is not emptied).
    mutating func empty() -> Bool {
        guard map == nil, ftruncate(fd, 0) == 0 else { return false }
        size = 0; last = 0
        return true
    }

    /// Unmaps and closes the file, leaving it on disk.
    func release() {
        if let map { munmap(map, capacity) }
        closeFile(fd)
    }

    /// Removes the file, then lets go of it.
    func remove() {
        unlink(path)
        release()
    }
}

extension SQLiteLatchStore {
    public var readAuditJournal: (any ReadAuditJournal)? { journal }

    public func flushReadAudit() async throws { try await moveReadAudit() }

    /// Rounds until the journal holds nothing: each moves its entries into the chain in one
    /// `.deferred` transaction (entries a crashed run already moved are skipped). One round at a time.
    func moveReadAudit() async throws {
        try await journalRounds.withLock {
            while let round = self.journal.take() {
                do {
                    let key = self.journal.movedSetting
                    try await self.write(durability: .deferred, auditOnly: true) { tx in try await Self.move(tx, round.map { ($0.number, $0.draft) }, mark: key) }
                } catch {
                    self.journal.putBack(round)
                    throw error
                }
                self.journal.moved(upTo: round.last?.number ?? 0)
            }
        }
    }

    /// Appends the entries numbered above the recorded mark to the chain and records the new mark.
    static func move(_ tx: any StoreTransaction, _ entries: [(Int64, AuditDraft)], mark key: String) async throws {
        let mark = Int64(try await tx.setting(key) ?? "") ?? 0
        let fresh = entries.filter { $0.0 > mark }
        guard let last = fresh.map(\.0).max() else { return }
        try await tx.appendAudit(fresh.map(\.1))
        try await tx.setSetting(key, String(last))
    }

    func scheduleReadAuditRound() {
        Task {
            try? await Task.sleep(for: journal.delay)
            journal.beginRound()
            try? await moveReadAudit()
            if journal.needsRound() { scheduleReadAuditRound() }   // a round failed, or more came
        }
    }

    /// At open: moves what dead runs' journals hold into the chain (entries a run had moved are
    /// skipped), records unreadable lines as an `audit.journal_damaged` event and keeps their file
    /// as `<name>.damaged` for the operator, removes the rest and their runs' marks; then starts
    /// this run's journal.
    func recoverReadAudit() async throws {
        let left = SQLiteReadAuditJournal.leftovers(base: path)
        defer { for f in left { closeFile(f.fd) } }
        let runs = Dictionary(grouping: left, by: \.id)
        let damaged = left.filter { $0.unreadable > 0 }
        if !left.isEmpty {
            try await write { tx in
                for (id, files) in runs.sorted(by: { $0.key < $1.key }) {
                    let entries = files.flatMap(\.entries).sorted { $0.number < $1.number }.map { ($0.number, $0.draft) }
                    try await Self.move(tx, entries, mark: SQLiteReadAuditJournal.movedSetting(id))
                }
                if !damaged.isEmpty {
                    let detail = damaged.map { "\(URL(fileURLWithPath: $0.path).lastPathComponent): \($0.unreadable) unreadable line(s)" }
                        .joined(separator: "; ")
                    try await tx.appendAudit(time: Date(), tenantId: nil, action: "audit.journal_damaged", outcome: "damaged",
                                             principalId: nil, accessKey: nil, detail: detail + "; the file is kept as <name>.damaged")
                }
            }
            for f in left {
                if f.unreadable > 0 { rename(f.path, f.path + ".damaged") } else { unlink(f.path) }
            }
            // Those runs are gone and so are their files: their marks are no longer needed.
            try await write { tx in for id in runs.keys { try await tx.setSetting(SQLiteReadAuditJournal.movedSetting(id), nil) } }
        }
        try journal.start()
        journal.schedule = { [weak self] in self?.scheduleReadAuditRound() }
    }
}
