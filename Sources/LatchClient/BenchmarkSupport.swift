import Foundation
import LatchCrypto
import LatchWire

// Helpers for `latch-bench sync` only, reachable through `@_spi(Benchmark) import LatchClient`.
// Not used by the CLI, the MCP server or the tests' production paths.
extension Latch {
    /// Writes `count` new single-field items into `vault`, each a normal signed write
    /// (`POST /vault/:id/items` with the next summary version), without the sync and full
    /// re-verification `setSecret` does after every write, so seeding 1,000 items is linear.
    /// Returns the ids written. Syncs once at the end.
    @_spi(Benchmark) public func unsafeBulkCreateItemsForBenchmark(vault: String, count: Int, prefix: String = "item") async throws -> [String] {
        let v = try await verifiedVault(vault)
        var summary = v.summary
        var ids: [String] = []
        ids.reserveCapacity(count)
        for n in 0..<count {
            let itemId = UUID().uuidString.lowercased()
            let field = VaultWriter.FieldInput(id: UUID().uuidString.lowercased(), name: "value", type: "SECRET", order: 0,
                                               isEnvironmentVariable: false, value: "bench-value-\(n)-" + UUID().uuidString)
            let write = try VaultWriter.writeItem(summary: summary, previousDetail: nil, itemId: itemId, name: "\(prefix)\(n)",
                                                  type: "API_KEY", fields: [field], dek: v.dek, signer: privateKey)
            let body = CreateItemRequest(detailCheckpoint: try Self.text(write.detail), summaryCheckpoint: try Self.text(write.summary),
                                         fields: [FieldValueInput(id: field.id, value: write.envelopes[field.id] ?? "")])
            _ = try await http.postJSON(ItemDetailResponse.self, LatchRoutes.vaultItems(v.id), body: body)
            summary = write.summary.checkpoint
            ids.append(itemId)
        }
        try await refresh()
        return ids
    }
}
