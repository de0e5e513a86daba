import Foundation
import Hummingbird
import LatchCrypto
import LatchDomain
import LatchLog
import LatchServer
import LatchStoreSQLite
import LatchWire
import Testing

/// `POST /transparency/proof/inclusion` (issue 5, performance): many inclusion proofs in one
/// response, each equal to the single-proof route's and verifying against the signed head.
@Suite("Transparency log batch proofs") struct TransparencyBatchTests {
    @Test("a batch answers every leaf with the proof the single route gives, verifying against the checkpoint; bad batches are refused")
    func batchProofs() async throws {
        let dir = try tempDir()
        let store = try await SQLiteLatchStore.open(path: dir + "/latch.sqlite")
        let pinned = TestLog.signer.verifier
        try await withHarness(store: store) { h in
            let admin = try await h.bootstrap()
            var (vault, _) = try await h.createVault(admin)
            for n in 0..<12 {
                #expect(try await h.putItem(admin, &vault, name: "item\(n)", fields: [("key", "v\(n)", true)]).status == .created)
            }
            let r = try await h.call(.get, LatchRoutes.logCheckpoint, key: admin.apiKey)
            let body = try r.decode(LogCheckpointResponse.self)
            let head = try Checkpoint.open(body.checkpoint, origin: pinned.name, verifiers: [pinned])
            let size = Int64(head.size)
            #expect(size == 26)   // admin key, vault v1, then 12 × (detail + summary)

            // Every leaf, out of order and one repeated.
            let asked: [Int64] = Array((0..<size).reversed()) + [3]
            let b = try await h.call(.post, LatchRoutes.logInclusionBatch, key: admin.apiKey,
                                     body: LogInclusionBatchRequest(treeSize: size, leafIndexes: asked))
            #expect(b.status == .ok, "\(String(decoding: b.data, as: UTF8.self))")
            let batch = try b.decode(LogInclusionBatchResponse.self)
            #expect(batch.treeSize == size && batch.proofs.map(\.leafIndex) == asked)
            // Shared hashes are sent once.
            let written = batch.proofs.map(\.path.count).reduce(0, +)
            #expect(batch.hashes.count < written && Set(batch.hashes).count == batch.hashes.count)
            let leafHashes = try await store.read { tx in
                var out: [Int64: MerkleHash] = [:]
                for i in 0..<size { out[i] = try #require(try await tx.logLeaf(i)).leafHash() }
                return out
            }
            for p in batch.proofs {
                let proof = try p.path.map { try #require(MerkleHash(base64: batch.hashes[$0])) }
                try head.verifyInclusion(leafHash: try #require(leafHashes[p.leafIndex]), index: UInt64(p.leafIndex), proof: proof)
                let single = try await h.call(.get, LatchRoutes.logInclusion(leafIndex: p.leafIndex, treeSize: size), key: admin.apiKey)
                #expect(try single.decode(LogProofResponse.self).proof == proof.map(\.base64))
                // The proof vouches for this leaf only.
                let other = p.leafIndex == 0 ? leafHashes[1]! : leafHashes[0]!
                #expect(throws: (any Error).self) { try head.verifyInclusion(leafHash: other, index: UInt64(p.leafIndex), proof: proof) }
            }
            // A smaller tree size is answered for that size.
            let small = try await h.call(.post, LatchRoutes.logInclusionBatch, key: admin.apiKey,
                                         body: LogInclusionBatchRequest(treeSize: 5, leafIndexes: [0, 4]))
            #expect(try small.decode(LogInclusionBatchResponse.self).treeSize == 5)

            // Refusals: 400 invalid_request naming what is wrong.
            let tooMany = [Int64](repeating: 0, count: LogInclusionBatchRequest.maxLeaves + 1)
            let cases: [(LogInclusionBatchRequest, String)] = [
                (.init(treeSize: size, leafIndexes: [0, size]), "leafIndex < treeSize"),
                (.init(treeSize: size, leafIndexes: [-1]), "leafIndex < treeSize"),
                (.init(treeSize: size + 1, leafIndexes: [0]), "treeSize <= \(size)"),
                (.init(treeSize: 0, leafIndexes: [0]), "treeSize"),
                (.init(treeSize: size, leafIndexes: []), "at least one leaf"),
                (.init(treeSize: size, leafIndexes: tooMany), "at most \(LogInclusionBatchRequest.maxLeaves) per request"),
            ]
            for (req, message) in cases {
                let bad = try await h.call(.post, LatchRoutes.logInclusionBatch, key: admin.apiKey, body: req)
                let text = String(decoding: bad.data, as: UTF8.self)
                #expect(bad.status == .badRequest && bad.code == "invalid_request" && text.contains(message), "\(req.leafIndexes.prefix(3)) \(req.treeSize): \(text)")
            }
            let typo = try await h.call(.post, LatchRoutes.logInclusionBatch, key: admin.apiKey,
                                        json: Data(#"{"treeSize":3,"leafIndexes":"1"}"#.utf8))
            #expect(typo.status == .badRequest && typo.code == "invalid_request", "\(String(decoding: typo.data, as: UTF8.self))")
            // Authenticated like every machine route.
            #expect(try await h.call(.post, LatchRoutes.logInclusionBatch, body: LogInclusionBatchRequest(treeSize: 1, leafIndexes: [0])).status == .unauthorized)
        }
        await store.close()
    }

    @Test("the domain and wire limits agree")
    func limitsAgree() {
        #expect(LatchService.maxInclusionBatch == LogInclusionBatchRequest.maxLeaves)
    }
}
