import Foundation
import LatchDomain
@testable import LatchStoreSQLite
import Testing

/// The SQLite store's read-audit journal: reads' events are written to a file at once, join the
/// chain in rounds, and what a crashed run left is moved in when the store next opens, once.
@Suite struct SQLiteReadAuditJournalTests {
    static let hour: Duration = .seconds(3600)   // no round runs by itself during a test

    static func files(_ dir: URL) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.contains("-audit-") }.sorted()
    }

    /// `n` drafts of tenant t1 with the action `reads` looks for.
    static func readDrafts(_ n: Int) -> [AuditDraft] {
        SQLiteAuditRowsTests.drafts(n, tenant: "t1", from: 0).map { d -> AuditDraft in var d = d; d.action = "test.read"; return d }
    }

    static func reads(_ store: SQLiteLatchStore) async throws -> [AuditEvent] {
        try await store.auditEvents(AuditFilter(action: "test.read", limit: 10_000))
    }

    @Test("a line holds every member of the draft, escaped onto one line, and reads back as the same event")
    func lineRoundTrip() throws {
        let drafts = SQLiteAuditRowsTests.drafts(6, tenant: "t\n1", from: 0)
        for (i, d) in drafts.enumerated() {
            let line = AuditJournalLine.encode(d, number: Int64(i + 40))
            #expect(line.last == UInt8(ascii: "\n"))
            #expect(line.dropLast().allSatisfy { $0 != UInt8(ascii: "\n") })
            let back = try #require(AuditJournalLine.decode(line.dropLast()))
            #expect(back.number == Int64(i + 40))
            #expect(try back.draft.chained(after: nil) == d.chained(after: nil))
        }
        #expect(AuditJournalLine.decode(Array("{\"j\":1,\"timeMs\":5,\"action\":\"x\"".utf8)) == nil)   // cut short
        #expect(AuditJournalLine.decode(Array("not json".utf8)) == nil)
    }

    /// The store at `dir`, its journal files mapped (the default) or written with pwrite(2).
    static func open(_ dir: URL, mapped: Bool, delay: Duration = hour) async throws -> SQLiteLatchStore {
        try await SQLiteLatchStore.open(path: dir.appendingPathComponent("latch.sqlite").path, readers: 4, readAuditDelay: delay,
                                        readAuditMapBytes: mapped ? SQLiteReadAuditJournal.defaultMapBytes : 0)
    }

    /// The entries' lines in a journal file (a mapped file's unused zeros left out).
    static func lines(_ dir: URL, _ name: String) throws -> [Substring] {
        try String(contentsOf: dir.appendingPathComponent(name), encoding: .utf8).split(separator: "\n").filter { $0.first != "\0" }
    }

    static func size(_ dir: URL, _ name: String) throws -> Int {
        try FileManager.default.attributesOfItem(atPath: dir.appendingPathComponent(name).path)[.size] as? Int ?? -1
    }

    /// Whether the file system at `dir` reserves space (`posix_fallocate`), which a mapped
    /// journal file needs; where it cannot, the journal writes with pwrite(2) instead.
    static func reservesSpace(_ dir: URL) -> Bool {
        let path = dir.appendingPathComponent("reserve-probe").path
        let fd = Glibc.open(path, O_RDWR | O_CREAT | O_EXCL, 0o600)
        defer { if fd >= 0 { close(fd); unlink(path) } }
        return fd >= 0 && posix_fallocate(fd, 0, 4096) == 0
    }

    @Test("a journal file is mapped over space reserved up front where the file system allows")
    func filesAreMapped() async throws {
        try await withTemporaryDirectory { dir in
            let store = try await Self.open(dir, mapped: true)
            let name = "latch.sqlite-audit-\(store.journal.id)-1"
            if Self.reservesSpace(dir) {
                #expect(store.journal.isMapped)
                #expect(try Self.size(dir, name) == SQLiteReadAuditJournal.defaultMapBytes)   // reserved at creation
            } else {
                print("SQLiteReadAuditJournalTests: \(dir.path) cannot reserve space (posix_fallocate), so its journal files use pwrite(2); the mapped-file checks are skipped here")
                #expect(!store.journal.isMapped)
            }
            let other = dir.appendingPathComponent("p", isDirectory: true)
            try FileManager.default.createDirectory(at: other, withIntermediateDirectories: false)
            let pwrite = try await Self.open(other, mapped: false)
            #expect(!pwrite.journal.isMapped)
            await pwrite.close()
            await store.close()
        }
    }

    @Test("recorded events are in the journal file at once, in the chain after a flush; a pwrite(2) file is then emptied", arguments: [true, false])
    func recordThenFlush(mapped: Bool) async throws {
        try await withTemporaryDirectory { dir in
            let store = try await Self.open(dir, mapped: mapped)
            let journal = try #require(store.readAuditJournal)
            let drafts = Self.readDrafts(5)
            for d in drafts { try journal.record(d) }
            // On disk before any commit: one line per event.
            let name = "latch.sqlite-audit-\(store.journal.id)-1"
            #expect(try Self.files(dir) == [name])
            #expect(try Self.lines(dir, name).count == 5)
            #expect(try await store.read { try await $0.auditEvents(AuditFilter(action: "test.read")) }.isEmpty)
            // A flush moves them into the chain, in order.
            let events = try await Self.reads(store)
            #expect(events.count == 5)
            for (e, d) in zip(events, drafts) { #expect(try e == d.chained(after: (e.seq - 1, e.prevHash))) }
            #expect(try await verifyAuditChain(store) == 5)
            #expect(try Self.files(dir) == [name])
            // A pwrite(2) file is emptied and written again from the start; a mapped one keeps its
            // (moved) lines and takes the next after them.
            #expect(try Self.lines(dir, name).count == (mapped ? 5 : 0))
            if !mapped { #expect(try Self.size(dir, name) == 0) }
            try journal.record(drafts[0])
            #expect(try Self.lines(dir, name).count == (mapped ? 6 : 1))
            await store.close()
            #expect(try Self.files(dir).isEmpty)   // closing moves the rest and removes the journal
        }
    }

    @Test("under steady load a file is kept while it holds unmoved entries, a round past the size limit starts a new one, and the old one goes once moved", arguments: [true, false])
    func rotation(mapped: Bool) async throws {
        try await withTemporaryDirectory { dir in
            let store = try await Self.open(dir, mapped: mapped)
            let journal = store.journal
            let drafts = Self.readDrafts(9)
            let name = { (n: Int) in "latch.sqlite-audit-\(journal.id)-\(n)" }
            let commit = { (round: [(number: Int64, draft: AuditDraft)]) async throws in   // as moveReadAudit does
                try await store.write(durability: .deferred) { tx in
                    try await SQLiteLatchStore.move(tx, round.map { ($0.number, $0.draft) }, mark: journal.movedSetting)
                }
                journal.moved(upTo: round.last?.number ?? 0)
            }
            for d in drafts[..<3] { try journal.record(d) }
            let first = try #require(journal.take())              // below the limit: same file
            for d in drafts[3..<5] { try journal.record(d) }      // more come while the round commits
            try await commit(first)
            #expect(try Self.files(dir) == [name(1)])
            #expect(try Self.lines(dir, name(1)).count == 5)      // not emptied: two are not moved yet
            try await store.flushReadAudit()
            #expect(try Self.files(dir) == [name(1)] && Self.lines(dir, name(1)).count == (mapped ? 5 : 0))
            // Past the limit, the next round starts a new file; the old one goes when its round commits.
            journal.rotateBytes = 1
            for d in drafts[5..<7] { try journal.record(d) }
            let round = try #require(journal.take())
            #expect(try Self.files(dir) == [name(1), name(2)])
            for d in drafts[7...] { try journal.record(d) }
            #expect(try Self.lines(dir, name(1)).count == (mapped ? 7 : 2) && Self.lines(dir, name(2)).count == 2)
            try await commit(round)
            #expect(try Self.files(dir) == [name(2)])             // file 1 held only moved entries
            try await store.flushReadAudit()
            #expect(try Self.files(dir) == [name(3)])             // file 2 was past the limit too, and is moved
            #expect(try await Self.reads(store).map(\.assetId) == drafts.map(\.assetId))
            #expect(try await verifyAuditChain(store) == 9)
            await store.close()
            #expect(try Self.files(dir).isEmpty)
        }
    }

    @Test("a line that no longer fits a mapped file goes to a new one, which reserves room for a line longer than the usual space")
    func fullMappedFile() async throws {
        try await withTemporaryDirectory { dir in
            let store = try await SQLiteLatchStore.open(path: dir.appendingPathComponent("latch.sqlite").path, readers: 1,
                                                        readAuditDelay: Self.hour, readAuditMapBytes: 1000)
            let journal = store.journal
            guard Self.reservesSpace(dir) else {
                print("SQLiteReadAuditJournalTests.fullMappedFile skipped: \(dir.path) cannot reserve space (posix_fallocate), so no journal file is mapped there")
                await store.close()
                return
            }
            #expect(journal.isMapped)
            let name = { (n: Int) in "latch.sqlite-audit-\(journal.id)-\(n)" }
            var drafts = Self.readDrafts(8)
            drafts[7].detail = String(repeating: "x", count: 3000)   // longer than a file's usual space
            var perFile: [Int] = []
            for d in drafts {
                let before = try Self.files(dir).count
                try journal.record(d)
                if try Self.files(dir).count > before || perFile.isEmpty { perFile.append(0) }
                perFile[perFile.count - 1] += 1
            }
            let files = try Self.files(dir)
            #expect(files.count == perFile.count && files.count >= 3)
            #expect(try files.map { try Self.size(dir, $0) }.dropLast().allSatisfy { $0 == 1000 })
            #expect(try Self.size(dir, try #require(files.last)) >= 3000)
            #expect(try Self.lines(dir, try #require(files.last)).count == 1)
            #expect(try files.map { try Self.lines(dir, $0).count } == perFile)
            #expect(files.first == name(1))
            try await store.flushReadAudit()
            #expect(try await Self.reads(store).map(\.detail) == drafts.map(\.detail))
            #expect(try await verifyAuditChain(store) == 8)
            await store.close()
            #expect(try Self.files(dir).isEmpty)
        }
    }

    @Test("rounds run by themselves within the delay")
    func roundsRunByThemselves() async throws {
        try await withTemporaryDirectory { dir in
            let store = try await SQLiteLatchStore.open(path: dir.appendingPathComponent("latch.sqlite").path, readAuditDelay: .milliseconds(10))
            for d in SQLiteAuditRowsTests.drafts(3, tenant: "t1", from: 0) { try store.readAuditJournal?.record(d) }
            let deadline = Date().addingTimeInterval(5)
            var inChain = 0
            while inChain < 3, Date() < deadline {
                try await Task.sleep(for: .milliseconds(20))
                inChain = try await store.read { try await $0.auditEvents(AuditFilter(limit: 100)) }.count   // no flush
            }
            #expect(inChain == 3)
            await store.close()
        }
    }

    @Test("after a crash the next open moves what the journal holds into the chain, once, and leaves a live store's journal alone", arguments: [true, false])
    func recoveryAfterCrash(mapped: Bool) async throws {
        try await withTemporaryDirectory { dir in
            let path = dir.appendingPathComponent("latch.sqlite").path
            let drafts = Self.readDrafts(4)
            let crashed = try await Self.open(dir, mapped: mapped)
            crashed.journal.rotateBytes = 1                  // every round starts a new file
            for d in drafts[..<2] { try crashed.readAuditJournal?.record(d) }
            _ = crashed.journal.take()   // a round began (a second file) but never committed
            for d in drafts[2...] { try crashed.readAuditJournal?.record(d) }
            crashed.journal.abandon()     // the process is killed: its files stay, unlocked
            #expect(try Self.files(dir).count == 2)
            let live = try await SQLiteLatchStore.open(path: path, readAuditDelay: Self.hour)
            var d = drafts[0]; d.assetId = "live"
            try live.readAuditJournal?.record(d)
            // A tool opening the same database while `live` runs: it moves the dead run's entries only.
            let tool = try await SQLiteLatchStore.open(path: path, readAuditDelay: Self.hour)
            #expect(try await tool.read { try await $0.auditEvents(AuditFilter(action: "test.read")) }.map(\.assetId) == drafts.map(\.assetId))
            #expect(try Set(Self.files(dir)) == ["latch.sqlite-audit-\(live.journal.id)-1", "latch.sqlite-audit-\(tool.journal.id)-1"])
            #expect(try await tool.read { try await $0.setting(SQLiteReadAuditJournal.movedSetting(crashed.journal.id)) } == nil)
            await tool.close()
            #expect(try await Self.reads(live).map(\.assetId) == drafts.map(\.assetId) + ["live"])
            #expect(try await verifyAuditChain(live) == 5)
            await live.close()
            await crashed.close()
            #expect(try Self.files(dir).isEmpty)
        }
    }

    @Test("events recorded from many tasks at once, while rounds run and full files rotate, all reach the chain once, across a crash", arguments: [true, false])
    func concurrentRecordingAndCrash(mapped: Bool) async throws {
        try await withTemporaryDirectory { dir in
            let path = dir.appendingPathComponent("latch.sqlite").path
            let crashed = try await SQLiteLatchStore.open(path: path, readers: 1, readAuditDelay: .milliseconds(1),
                                                          readAuditMapBytes: mapped ? 2048 : 0)   // a few lines per mapped file
            crashed.journal.rotateBytes = 1024
            let perTask = 150, tasks = 8
            try await withThrowingTaskGroup(of: Void.self) { group in
                for t in 0..<tasks {
                    group.addTask {
                        for i in 0..<perTask {
                            var d = SQLiteAuditRowsTests.drafts(1, tenant: "t1", from: i)[0]
                            d.action = "test.read"; d.assetId = "\(t)-\(i)"
                            try crashed.journal.record(d)
                            if i % 7 == 0 { await Task.yield() }
                        }
                    }
                }
                try await group.waitForAll()
            }
            crashed.journal.abandon()   // killed with some events moved and others only in files
            let store = try await SQLiteLatchStore.open(path: path, readAuditDelay: Self.hour)
            let ids = try await Self.reads(store).compactMap(\.assetId)
            #expect(ids.count == tasks * perTask)
            #expect(Set(ids).count == tasks * perTask)   // each once
            #expect(try await store.auditEvents(AuditFilter(action: "audit.journal_damaged")).isEmpty)
            #expect(try await verifyAuditChain(store) == tasks * perTask)
            await store.close()
            await crashed.close()
            #expect(try Self.files(dir).isEmpty)
        }
    }

    @Test("a line whose copy a killed process cut short (its first byte still zero) and a mapped file's unused space are skipped, not reported as damage")
    func cutShortCopy() async throws {
        try await withTemporaryDirectory { dir in
            let good = Self.readDrafts(3)
            var bytes = AuditJournalLine.encode(good[0], number: 1) + AuditJournalLine.encode(good[1], number: 2)
            var cut = AuditJournalLine.encode(good[2], number: 3)
            cut[0] = 0
            bytes += cut.prefix(cut.count / 2)                         // the copy stopped half-way, first byte not yet stored
            bytes += [UInt8](repeating: 0, count: 4096 - bytes.count)  // the rest of the reserved space
            try Data(bytes).write(to: dir.appendingPathComponent("latch.sqlite-audit-00000000000000bb-1"))
            let store = try await Self.open(dir, mapped: true)
            #expect(try await Self.reads(store).map(\.assetId) == good[..<2].map(\.assetId))
            #expect(try await store.auditEvents(AuditFilter(action: "audit.journal_damaged")).isEmpty)
            #expect(try Self.files(dir) == ["latch.sqlite-audit-\(store.journal.id)-1"])
            await store.close()
        }
    }

    @Test("unreadable lines are reported as an audit event and their file is kept; the readable ones are moved")
    func damagedJournal() async throws {
        try await withTemporaryDirectory { dir in
            let path = dir.appendingPathComponent("latch.sqlite").path
            let good = Self.readDrafts(2)
            var bytes = AuditJournalLine.encode(good[0], number: 7)
            bytes += Array("{\"j\":8,\"timeMs\":12,\"act\n".utf8)   // a line cut short, then the rest of a write
            bytes += AuditJournalLine.encode(good[1], number: 9)
            bytes += Array("{\"j\":10,\"timeMs\":1".utf8)           // torn at the end (a power loss)
            try Data(bytes).write(to: dir.appendingPathComponent("latch.sqlite-audit-00000000000000aa-3"))
            let store = try await SQLiteLatchStore.open(path: path, readAuditDelay: Self.hour)
            #expect(try await Self.reads(store).map(\.assetId) == good.map(\.assetId))
            let damage = try await store.auditEvents(AuditFilter(action: "audit.journal_damaged"))
            #expect(damage.count == 1)
            #expect(damage.first?.detail?.contains("latch.sqlite-audit-00000000000000aa-3: 2 unreadable line(s)") == true)
            #expect(try Self.files(dir) == ["latch.sqlite-audit-00000000000000aa-3.damaged", "latch.sqlite-audit-\(store.journal.id)-1"])
            await store.close()
            // Kept aside, it is not read again.
            let again = try await SQLiteLatchStore.open(path: path, readAuditDelay: Self.hour)
            #expect(try await Self.reads(again).count == 2)
            await again.close()
        }
    }

    @Test("a closed store refuses to record, so a read is not answered unaudited")
    func closedRefuses() async throws {
        try await withTemporaryDirectory { dir in
            let store = try await SQLiteLatchStore.open(path: dir.appendingPathComponent("latch.sqlite").path)
            let journal = try #require(store.readAuditJournal)
            await store.close()
            #expect(throws: StoreError.self) { try journal.record(SQLiteAuditRowsTests.drafts(1, tenant: "t", from: 0)[0]) }
        }
    }
}
