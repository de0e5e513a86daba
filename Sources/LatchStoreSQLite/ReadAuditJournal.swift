import Foundation
import LatchDomain

/// The SQLite store's read-audit journal (`ReadAuditJournal`): each read's audit event is one
/// line (`AuditJournalLine`) appended with one write(2) to a file beside the database
/// (mode 0600), then moved into the audit chain by one `.deferred` write transaction per round
/// of at most `roundLimit` events, within `delay` of the first event waiting.
///
/// Why: a read's event used to wait for a group commit (a write transaction on the writer's
/// thread) before the response could leave; under load every read waited on the commit in
/// flight, with both cores partly idle. A write(2) to a file survives a crash of the server
/// process as soon as it returns, as that `.deferred` commit did; the round's commit and the
/// store's background fsync of the WAL 0.1 s later make it survive a power loss, as before (a
/// power loss within about 0.2 s of a read can lose its event, docs/threat-model.md).
///
/// Files: each run of the store has a journal of its own, named by a random id
/// (`<database>-audit-<id>-<n>`), so a second process opening the same database (an operator's
/// tool beside a running server) never takes or renumbers a live run's entries. A run writes to
/// one file at a time and holds an exclusive `flock` on each of its files until every entry in
/// it is committed. The file written to is emptied (truncated in place) once a round has moved
/// everything in it; under steady load it never empties, so a round that finds it past
/// `rotateBytes` starts a new one first and removes the old one once its entries are committed.
/// (A new file per round cost more than the write(2)s: on ext4, creating a file where many were
/// recently removed searches the inode bitmap, about 5% of the server's CPU under read load.)
/// Entries are numbered per run; each round records the last number it moved in the setting
/// `read_audit_journal_moved:<id>`, in the same transaction, so an entry is moved once even when
/// it is still in a file after its round (always, until the file is emptied or removed, and after
/// a crash between the commit and either). At open, `recoverReadAudit` moves what dead runs left
/// (files no live process holds locked).
final class SQLiteReadAuditJournal: ReadAuditJournal, @unchecked Sendable {
    /// The setting holding the last entry number of run `id` moved into the chain.
    static func movedSetting(_ id: String) -> String { "read_audit_journal_moved:\(id)" }
    /// At most this many entries per round (one transaction): a bigger backlog takes more rounds,
    /// so that no one commit holds the writer (and a core) long.
    static let roundLimit = 250

    let base: String
    let delay: Duration
    /// A round starts a new file when the current one has reached this size (set before any
    /// event is recorded; tests make it small).
    var rotateBytes: off_t = 1 << 20
    /// This run's id (16 hex digits).
    let id: String
    private let lock = NSLock()
    private var fd: Int32 = -1
    private var fileNumber: Int64 = 0
    private var fileLast: Int64 = 0          // the last entry number written to the current file (0: none)
    private var fileSize: off_t = 0
    private var next: Int64 = 1              // the next entry's number
    private var pending: [(number: Int64, draft: AuditDraft)] = []
    private var sealed: [(path: String, last: Int64, fd: Int32)] = []   // files no longer written, not yet removable
    private var scheduled = false
    private var closed = false
    /// Starts a round after `delay` (set by the store: it runs the transaction).
    var schedule: @Sendable () -> Void = {}

    /// A journal for the database at `base`; it takes events once `start`ed.
    init(base: String, delay: Duration) {
        self.base = base; self.delay = delay
        id = String(format: "%016llx", UInt64.random(in: 0...UInt64.max))
    }

    var movedSetting: String { Self.movedSetting(id) }

    /// Starts writing to this run's first file.
    func start() throws {
        let fd = try Self.create(path(1))
        lock.withLock { self.fd = fd; self.fileNumber = 1 }
    }

    func path(_ n: Int64) -> String { "\(base)-audit-\(id)-\(n)" }

    /// A new file, created and locked (0600).
    static func create(_ path: String) throws -> Int32 {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0, flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let reason = String(cString: strerror(errno))
            if fd >= 0 { closeFile(fd) }
            throw StoreError(.unavailable, "cannot create the read-audit journal \(path): \(reason)")
        }
        return fd
    }

    /// Appends the event's line; throws (and leaves the file as it was) when it cannot.
    func record(_ draft: AuditDraft) throws {
        let start = try lock.withLock { () throws -> Bool in
            guard !closed, fd >= 0 else { throw StoreError(.unavailable, "the store is closed") }
            let line = AuditJournalLine.encode(draft, number: next)
            let written = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard written == line.count else {
                let reason = written < 0 ? String(cString: strerror(errno)) : "short write"
                if written > 0 { _ = ftruncate(fd, fileSize) }   // no partial line left behind
                throw StoreError(.unavailable, "cannot record a read's audit event in \(path(fileNumber)): \(reason)")
            }
            fileSize += off_t(written)
            fileLast = next
            pending.append((next, draft))
            next += 1
            if scheduled { return false }
            scheduled = true
            return true
        }
        if start { schedule() }
    }

    /// The next round's entries (oldest first, at most `roundLimit`), nil when none wait. Starts
    /// a new file first when the current one has reached `rotateBytes` (the entries in the ones
    /// before it are then all in this round or earlier).
    func take() -> [(number: Int64, draft: AuditDraft)]? {
        lock.withLock {
            guard !pending.isEmpty else { return nil }
            if fileSize >= rotateBytes, !closed, let newFd = try? Self.create(path(fileNumber + 1)) {
                sealed.append((path(fileNumber), fileLast, fd))   // still locked until removed
                fd = newFd; fileNumber += 1; fileLast = 0; fileSize = 0
            }
            let n = min(pending.count, Self.roundLimit)
            let round = Array(pending[..<n])
            pending.removeFirst(n)
            return round
        }
    }

    /// After a round committed entries up to `last`: removes the sealed files holding only such
    /// entries, and empties the current file if it holds only such entries.
    func moved(upTo last: Int64) {
        let done = lock.withLock { () -> [(path: String, last: Int64, fd: Int32)] in
            let d = sealed.filter { $0.last <= last }
            sealed.removeAll { $0.last <= last }
            if fd >= 0, fileLast > 0, fileLast <= last, ftruncate(fd, 0) == 0 { fileSize = 0; fileLast = 0 }
            return d
        }
        for f in done { unlink(f.path); closeFile(f.fd) }
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
            if fileLast == 0, fd >= 0 { unlink(path(fileNumber)); closeFile(fd); fd = -1 }
        }
    }

    /// Removes the current file once closed and every entry is moved (nothing left to recover).
    func removeIfDrained() {
        lock.withLock {
            guard closed, pending.isEmpty, fd >= 0 else { return }
            unlink(path(fileNumber)); closeFile(fd); fd = -1
            for s in sealed { unlink(s.path); closeFile(s.fd) }
            sealed = []
        }
    }

    /// For tests: lets go of every file as a killed process would (nothing moved or removed).
    func abandon() {
        lock.withLock {
            closed = true
            for s in sealed { closeFile(s.fd) }
            if fd >= 0 { closeFile(fd) }
            sealed = []; pending = []; fd = -1
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
            for line in data.split(separator: UInt8(ascii: "\n")) {
                if let e = AuditJournalLine.decode(line) { f.entries.append(e) } else { f.unreadable += 1 }
            }
            out.append(f)
        }
        return out.sorted { ($0.id, $0.number) < ($1.id, $1.number) }
    }
}

private func closeFile(_ fd: Int32) { _ = close(fd) }

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
                    try await self.write(durability: .deferred) { tx in try await Self.move(tx, round.map { ($0.number, $0.draft) }, mark: key) }
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
