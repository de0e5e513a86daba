import Foundation
import HummingbirdTesting
import LatchDomain
import LatchWire
import NIOPosix
import Testing

/// A store that notes, for each transaction, whether it started on an event loop's thread.
final class PlacementProbeStore: LatchStore, @unchecked Sendable {
    let inner = MemoryStore()
    private let lock = NSLock()
    private var onLoop: [Bool] = []

    /// The placements noted since the last call.
    func take() -> [Bool] { lock.withLock { defer { onLoop = [] }; return onLoop } }

    private func note() { let here = MultiThreadedEventLoopGroup.currentEventLoop != nil; lock.withLock { onLoop.append(here) } }

    func read<T: Sendable>(_ body: @Sendable (any StoreTransaction) async throws -> T) async throws -> T {
        note(); return try await inner.read(body)
    }
    func write<T: Sendable>(_ body: @Sendable (any StoreTransaction) async throws -> T) async throws -> T {
        note(); return try await inner.write(body)
    }
    func write<T: Sendable>(durability: CommitDurability, _ body: @Sendable (any StoreTransaction) async throws -> T) async throws -> T {
        note(); return try await inner.write(durability: durability, body)
    }
    func appendAuditBatch(_ drafts: [AuditDraft], durability: CommitDurability) async throws -> [AuditEvent] {
        try await inner.appendAuditBatch(drafts, durability: durability)
    }
}

/// Over a real socket: the bounded single-object reads run on their connection's event loop,
/// everything else off it (LoopPlacement.swift).
@Suite struct LoopPlacementTests {
    @Test func cheapReadsStayOnTheLoopAndTheRestMovesOff() async throws {
        let probe = PlacementProbeStore()
        try await withHarness(store: probe, mode: .live) { h in
            let admin = try await h.bootstrap()
            var (v, created) = try await h.createVault(admin)
            #expect(created.status == .created)
            #expect(try await h.putItem(admin, &v, name: "db", fields: [("password", "s3cret", true)]).status == .created)
            let (itemId, detail) = try #require(v.details.first)
            let fieldId = try #require(detail.fields.first?.id)
            _ = try await h.call(.get, LatchRoutes.me, key: admin.apiKey)   // the key is now in the authentication cache
            _ = probe.take()

            let onLoop = [LatchRoutes.me, LatchRoutes.tenantContext, LatchRoutes.vaultItem(v.id, itemId), LatchRoutes.field(v.id, fieldId)]
            for path in onLoop {
                let r = try await h.call(.get, path, key: admin.apiKey)
                #expect(r.status == .ok, "\(path): \(r.status)")
                let placed = probe.take()
                #expect(!placed.isEmpty && placed.allSatisfy { $0 }, "\(path) should run on its event loop: \(placed)")
            }
            let offLoop = [LatchRoutes.sync, LatchRoutes.vaults, LatchRoutes.vault(v.id), LatchRoutes.wrappedKey(v.id)]
            for path in offLoop {
                let r = try await h.call(.get, path, key: admin.apiKey)
                #expect(r.status == .ok, "\(path): \(r.status)")
                let placed = probe.take()
                #expect(!placed.isEmpty && placed.allSatisfy { !$0 }, "\(path) should run off the event loop: \(placed)")
            }
            #expect(try await h.putItem(admin, &v, itemId: itemId, name: "db", fields: [("password", "n3w", true)]).status == .ok)
            let placed = probe.take()
            #expect(!placed.isEmpty && placed.allSatisfy { !$0 }, "a write should run off the event loop: \(placed)")
        }
    }
}
