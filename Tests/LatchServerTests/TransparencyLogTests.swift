import Foundation
import Hummingbird
import LatchCrypto
import LatchDomain
import LatchLog
import LatchServer
import LatchStoreSQLite
import LatchWire
import Testing

/// The server's transparency log (issue 5): what it logs, the signed tree head, and proofs a
/// client checks with LatchLog alone.
@Suite("Transparency log") struct TransparencyLogTests {
    /// Opens the served tree head with the pinned key.
    func head(_ h: Harness, _ p: Party, pinned: NoteVerifier) async throws -> Checkpoint {
        let r = try await h.call(.get, LatchRoutes.logCheckpoint, key: p.apiKey)
        #expect(r.status == .ok)
        let body = try r.decode(LogCheckpointResponse.self)
        #expect(body.logKey == pinned.keyString)
        let cp = try Checkpoint.open(body.checkpoint, origin: pinned.name, verifiers: [pinned])
        #expect(Int64(cp.size) == body.treeSize && cp.root.base64 == body.rootHash)
        return cp
    }

    func proof(_ h: Harness, _ p: Party, _ path: String) async throws -> [MerkleHash] {
        let r = try await h.call(.get, path, key: p.apiKey)
        #expect(r.status == .ok, "\(path): \(String(decoding: r.data, as: UTF8.self))")
        return try r.decode(LogProofResponse.self).proof.map { try #require(MerkleHash(base64: $0)) }
    }

    @Test("key registrations and accepted checkpoints are logged; inclusion and consistency proofs verify; tampering does not")
    func logsAndProves() async throws {
        let dir = try tempDir()
        let store = try await SQLiteLatchStore.open(path: dir + "/latch.sqlite")
        let pinned = TestLog.signer.verifier
        try await withHarness(store: store) { h in
            let admin = try await h.bootstrap()
            var (vault, created) = try await h.createVault(admin)
            #expect(created.status == .created)
            #expect(try await h.putItem(admin, &vault, name: "stripe", fields: [("key", "sk_1", true)]).status == .created)
            let agent = try await h.createAgent(admin, name: "bot", key: Keys.pool[1])

            // Leaves: admin key, vault v1, item detail + vault v2, agent key.
            let first = try await head(h, admin, pinned: pinned)
            #expect(first.size == 5)

            // Every logged record is rebuilt from what the store holds and proven included.
            let vaultId = vault.id
            let (keys, stored, items) = try await store.read { tx in
                (try await tx.publicKeys(principalId: admin.id) + (try await tx.publicKeys(principalId: agent.id)),
                 try await tx.vault(vaultId), try await tx.items(vaultId: vaultId))
            }
            let v = try #require(stored)
            var leaves: [(Int64, LogLeaf)] = keys.map { (try! #require($0.logIndex), LogLeaf.publicKey($0)) }
            leaves.append((try #require(v.summaryLogIndex), .checkpoint(.vaultSummary, tenantId: v.tenantId, subjectId: v.id, envelope: v.summaryCheckpoint)))
            for i in items {
                leaves.append((try #require(i.detailLogIndex), .checkpoint(.itemDetail, tenantId: i.tenantId, subjectId: i.id, envelope: i.detailCheckpoint)))
            }
            #expect(Set(leaves.map(\.0)).count == leaves.count)
            for (index, leaf) in leaves {
                let p = try await proof(h, admin, LatchRoutes.logInclusion(leafIndex: index, treeSize: Int64(first.size)))
                try first.verifyInclusion(leafHash: try leaf.leafHash(), index: UInt64(index), proof: p)
                // The same proof does not vouch for another leaf or a changed record.
                var other = leaf
                other.subjectId = UUID().uuidString.lowercased()
                #expect(throws: (any Error).self) { try first.verifyInclusion(leafHash: try other.leafHash(), index: UInt64(index), proof: p) }
            }

            // The log only grows: the next head is consistent with the first.
            #expect(try await h.putItem(admin, &vault, name: "db", fields: [("url", "pg://", false)]).status == .created)
            let second = try await head(h, agent, pinned: pinned)
            #expect(second.size == first.size + 2)
            let c = try await proof(h, agent, LatchRoutes.logConsistency(from: Int64(first.size), to: Int64(second.size)))
            try second.verifyConsistency(from: first, proof: c)
            if let h0 = c.first {
                var bad = c
                bad[0] = MerkleHash.node(h0, h0)
                #expect(throws: (any Error).self) { try second.verifyConsistency(from: first, proof: bad) }
            }
            // A head signed by another key is refused by the pinned verifier.
            let forged = try Checkpoint(origin: pinned.name, size: second.size, root: second.root)
                .signedNote(with: try NoteSigner.generate(name: pinned.name))
            #expect(throws: (any Error).self) { try Checkpoint.open(forged, origin: pinned.name, verifiers: [pinned]) }

            // Bad proof requests are 400s that say what was wrong.
            for path in [LatchRoutes.logInclusion(leafIndex: 9, treeSize: 3), LatchRoutes.logConsistency(from: 5, to: 1000),
                         "\(LatchRoutes.machine)/transparency/proof/inclusion?leafIndex=x&treeSize=1"] {
                let r = try await h.call(.get, path, key: admin.apiKey)
                #expect(r.status == .badRequest && r.code == "invalid_request", "\(path)")
            }
            #expect(try await h.call(.get, LatchRoutes.logCheckpoint).status == .unauthorized)
        }

        await store.close()

        // The log survives a restart: same size, same root.
        let reopened = try await SQLiteLatchStore.open(path: dir + "/latch.sqlite")
        let (size, root) = try await reopened.read { tx in
            let n = try await tx.logSize()
            return (n, try await tx.logRoot(size: n))
        }
        #expect(size == 7)
        let recomputed = try await reopened.read { tx in
            var leaves: [MerkleHash] = []
            for i in 0..<size { leaves.append(try #require(try await tx.logLeaf(i)).leafHash()) }
            return leaves
        }
        var memory = InMemoryHashStore()
        for l in recomputed { _ = memory.append(leafHash: l) }
        #expect(try MerkleTree.root(size: size, reader: memory) == root)

        // A server holding a different log key refuses to serve this store.
        let service = LatchService(store: reopened)
        try await service.registerLogKey(pinned)
        await #expect(throws: DomainError.self) { try await service.registerLogKey(try NoteSigner.generate(name: "latchkey.log/other").verifier) }
        await reopened.close()
    }
}
