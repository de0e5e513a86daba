import Foundation
@testable import LatchDomain
import Testing

/// The audit batcher's hold on read batches (`ReadBatchHold`): a replica that shares the audit
/// chain with others and is busy waits for a fuller batch; alone, it never waits.
@Suite struct ReadBatchHoldTests {
    static func draft(_ tag: String) -> AuditDraft {
        AuditDraft(time: Date(timeIntervalSince1970: 1_764_000_000), tenantId: "t", action: "field.read", outcome: "success",
                   principalId: "p", accessKey: "lk", assetType: "FIELD", assetId: tag, source: "127.0.0.1", detail: nil)
    }

    /// A hold that has seen a batch of two after others appended: its next read batch waits.
    static func engaged(size: Int, wait: UInt64) -> ReadBatchHold {
        var h = ReadBatchHold(size: size, wait: wait)
        h.committed(first: 1, last: 2, size: 2)
        h.committed(first: 6, last: 7, size: 2)
        return h
    }

    /// A batcher over a recording store whose next read batch is held.
    static func heldBatcher(size: Int, wait: UInt64) -> (RecordingStore, AuditBatcher) {
        let store = RecordingStore()
        return (store, AuditBatcher(store: store, clock: SystemClock(), hold: engaged(size: size, wait: wait)))
    }

    /// Appends one read event per tag at once; each must be appended.
    static func reads(_ batcher: AuditBatcher, _ tags: [String]) async throws {
        try await withThrowingTaskGroup(of: Void.self) { g in
            for t in tags { g.addTask { let ok = try await batcher.append(draft(t), read: true).appended; #expect(ok) } }
            try await g.waitForAll()
        }
    }

    /// Polls `condition` every millisecond for up to ten seconds.
    static func until(_ what: String, _ condition: () -> Bool) async throws {
        for _ in 0..<10_000 where !condition() { try await Task.sleep(nanoseconds: 1_000_000) }
        try #require(condition(), "timed out waiting until \(what)")
    }

    @Test("alone, or with one event at a time, a batch is never held")
    func decisions() {
        var h = ReadBatchHold(size: 8, wait: 500_000)
        #expect(h.next == nil, "nothing committed yet")
        h.committed(first: 7, last: 9, size: 3)
        #expect(h.next == nil, "a first batch has nothing to compare with")
        h.committed(first: 10, last: 14, size: 5)
        #expect(h.next == nil, "no one appended in between")
        h.committed(first: 20, last: 21, size: 2)
        #expect(h.next?.size == 8 && h.next?.wait == 500_000, "others appended 15…19 and this replica is busy")
        h.committed(first: 30, last: 30, size: 1)
        #expect(h.next == nil, "others appended, but one event at a time is not worth holding")
        h.committed(first: 31, last: 33, size: 3)
        #expect(h.next == nil, "a batch right after the last ends the hold")
    }

    @Test("a held batch is sent as soon as enough callers joined it, as one commit")
    func releasedByArrival() async throws {
        let (store, batcher) = Self.heldBatcher(size: 3, wait: 60_000_000_000)
        let start = Date()
        try await Self.reads(batcher, ["r0", "r1", "r2"])
        #expect(store.sizes == [3], "one commit of three events, not the leader's alone")
        #expect(Date().timeIntervalSince(start) < 30, "the third caller ended the hold, not its 60 s timer")
    }

    @Test("a held batch that does not fill is sent when the hold's time is up")
    func releasedByTimer() async throws {
        let (store, batcher) = Self.heldBatcher(size: 3, wait: 400_000_000)
        let start = Date()
        try await Self.reads(batcher, ["r0", "r1"])
        #expect(Date().timeIntervalSince(start) >= 0.4, "the leader waited for the hold's time")
        #expect(store.sizes == [2])
    }

    @Test("refusals and other non-read events are never held")
    func onlyReadsWait() async throws {
        let (store, batcher) = Self.heldBatcher(size: 3, wait: 60_000_000_000)
        let start = Date()
        try await batcher.append(Self.draft("refusal"), read: false)
        #expect(Date().timeIntervalSince(start) < 30 && store.sizes == [1])
    }

    @Test("an event that is not a read's ends a hold it finds, and joins that batch")
    func refusalEndsHold() async throws {
        let (store, batcher) = Self.heldBatcher(size: 8, wait: 60_000_000_000)
        let start = Date()
        try await withThrowingTaskGroup(of: Void.self) { g in
            g.addTask { let ok = try await batcher.append(Self.draft("read"), read: true).appended; #expect(ok) }
            try await Self.until("the read's batch is held") { batcher.holding }
            g.addTask { try await batcher.append(Self.draft("refusal"), read: false) }
            try await g.waitForAll()
        }
        #expect(store.sizes == [2], "one batch: the held read and the refusal")
        #expect(Date().timeIntervalSince(start) < 30, "the refusal ended the hold, not its 60 s timer")
    }

    @Test("a batch that already holds an event that is not a read's is not held")
    func queuedRefusalIsNotHeld() async throws {
        let store = RecordingStore(gated: true)
        // Others' events 1…10, so this batcher's first batch (11…) follows a gap after the 7 it saw.
        _ = try await store.base.appendAuditBatch((1...10).map { Self.draft("other\($0)") }, durability: .full)
        let batcher = AuditBatcher(store: store, clock: SystemClock(), hold: Self.engaged(size: 4, wait: 60_000_000_000))
        let start = Date()
        try await withThrowingTaskGroup(of: Void.self) { g in
            g.addTask { try await Self.reads(batcher, ["a", "x", "y", "z"]) }
            try await Self.until("the first batch, filled, is at the store") { store.parked == 1 }
            g.addTask { try await Self.reads(batcher, ["b"]) }
            try await Self.until("a read queues behind it") { batcher.queued == 1 }
            g.addTask { try await batcher.append(Self.draft("refusal"), read: false) }
            try await Self.until("and a refusal") { batcher.queued == 2 }
            store.allow(100)
            try await g.waitForAll()
        }
        #expect(store.sizes == [4, 2], "the read and the refusal went as one batch")
        #expect(Date().timeIntervalSince(start) < 30, "the batch was not held for its 60 s")
    }

    @Test("the batcher learns from the gap in sequence numbers that another replica appends, and holds")
    func engagesFromGap() async throws {
        let store = RecordingStore(gated: true)
        let batcher = AuditBatcher(store: store, clock: SystemClock(), hold: ReadBatchHold(size: 3, wait: 60_000_000_000))
        try await withThrowingTaskGroup(of: Void.self) { g in
            g.addTask { let ok = try await batcher.append(Self.draft("a"), read: true).appended; #expect(ok) }
            try await Self.until("the first batch is at the store") { store.parked == 1 }
            for t in ["b", "c"] { g.addTask { let ok = try await batcher.append(Self.draft(t), read: true).appended; #expect(ok) } }
            try await Self.until("two callers queue behind it") { batcher.queued == 2 }
            store.allow(1)
            try await Self.until("the second batch is at the store") { store.parked == 1 }
            // Another replica appends between this one's batches.
            _ = try await store.base.appendAuditBatch([Self.draft("other1"), Self.draft("other2")], durability: .full)
            store.allow(1)
            try await g.waitForAll()
        }
        #expect(store.sizes == [1, 2])
        store.allow(100)
        let start = Date()
        try await Self.reads(batcher, ["d", "e", "f"])
        #expect(store.sizes == [1, 2, 3], "the next read batch waited for three events")
        #expect(Date().timeIntervalSince(start) < 30)
        let assets = try await store.base.read { tx in try await tx.auditEvents(AuditFilter(limit: 100)) }.map(\.assetId)
        #expect(assets.count == 8 && Set(assets) == Set(["a", "other1", "other2", "b", "c", "d", "e", "f"]))
        let alone = Date()
        try await batcher.append(Self.draft("g"), read: true)
        #expect(store.sizes == [1, 2, 3, 1] && Date().timeIntervalSince(alone) < 30,
                "no one appended since: the next batch is sent at once")
    }
}

/// A memory store that records the size of each audit group commit and, when gated, holds
/// each one until the test allows it.
final class RecordingStore: LatchStore, @unchecked Sendable {
    let base = MemoryStore()
    private let lock = NSLock()
    private let gated: Bool
    private var permits = 0
    private var waiting: [CheckedContinuation<Void, Never>] = []
    private var recorded: [Int] = []

    init(gated: Bool = false) { self.gated = gated }

    var sizes: [Int] { lock.withLock { recorded } }
    var parked: Int { lock.withLock { waiting.count } }

    /// Lets `n` group commits through (parked ones first).
    func allow(_ n: Int) {
        let go = lock.withLock { () -> [CheckedContinuation<Void, Never>] in
            let k = min(n, waiting.count)
            let w = Array(waiting.prefix(k))
            waiting.removeFirst(k)
            permits += n - k
            return w
        }
        go.forEach { $0.resume() }
    }

    func read<T: Sendable>(_ body: @Sendable (any StoreTransaction) async throws -> T) async throws -> T { try await base.read(body) }
    func write<T: Sendable>(_ body: @Sendable (any StoreTransaction) async throws -> T) async throws -> T { try await base.write(body) }

    func appendAuditBatch(_ drafts: [AuditDraft], expecting: [UInt64?], durability: CommitDurability) async throws -> AuditBatchResult {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let pass = lock.withLock { () -> Bool in
                if !gated || permits > 0 { if gated { permits -= 1 }; return true }
                waiting.append(c)
                return false
            }
            if pass { c.resume() }
        }
        lock.withLock { recorded.append(drafts.count) }
        return try await base.appendAuditBatch(drafts, expecting: expecting, durability: durability)
    }
}
