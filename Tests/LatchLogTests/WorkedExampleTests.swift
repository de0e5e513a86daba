import Crypto
import Foundation
import Testing
@testable import LatchLog

/// Reproduces the worked example of docs/protocol.md §2.7 (the values there were produced by
/// this code; the test keeps the document and the implementation in step).
@Suite("docs/protocol.md §2 worked example")
struct WorkedExampleTests {
    static let leaves = (0..<5).map { "leaf \($0)" }
    static let origin = "example.latchkey/log"

    static func store() -> InMemoryHashStore {
        var s = InMemoryHashStore()
        for l in leaves { s.append(leaf: Data(l.utf8)) }
        return s
    }

    static func signer() throws -> NoteSigner {
        let seed = Data((0..<32).map { UInt8($0) })
        let key = try Curve25519.Signing.PrivateKey(rawRepresentation: seed)
        return try NoteSigner(name: origin, privateKey: key)
    }

    @Test func everyValueIsReproduced() throws {
        let s = Self.store()
        let leafHashes = [
            "1bb97dcc21635d47e2663efdfd0a174686d98dd701352dd2cd06e8b43fd3d305",
            "cb5a3ce862c3e321f3f7df6d2690549e936a8e377135aae9f3d69f691f547d5b",
            "ab37ba34d1dfe29015de717a6d5764a8fb029c3a7a0f5b64b93b54351885bf7c",
            "58bd1496e1684aac9201c2e687ee7ae4f51c96a8b0d81ef3583628b93d3cd345",
            "83115f8947955fafdc2a27e7f4c0854bbd8da27bb1b3e3405db571c9af8dbe1a",
        ]
        #expect(Self.leaves.map { MerkleHash.leaf(Data($0.utf8)).hex } == leafHashes)
        let h01 = "fc5f6b88ff8554f75bb2f9e6f39c31b1936d44b69276edf7b1205a955b9761e3"
        let h23 = "4f7494071ca382a5c5067cc41077a999fd7722e06a26aa9de771be933dc1021d"
        let h0123 = "4f631084a157c54f54fcfb23ff5eb8650c4ba160c295bb13a9832b109d52677e"
        // Stored-hash layout: (level, index) and value of each stored index 0...7.
        let layout: [(Int, Int64, String)] = [
            (0, 0, leafHashes[0]), (0, 1, leafHashes[1]), (1, 0, h01), (0, 2, leafHashes[2]),
            (0, 3, leafHashes[3]), (1, 1, h23), (2, 0, h0123), (0, 4, leafHashes[4]),
        ]
        #expect(s.hashes.count == layout.count)
        for (i, (level, index, hex)) in layout.enumerated() {
            #expect(MerkleTree.splitStoredHashIndex(Int64(i)) == (level, index))
            #expect(MerkleTree.storedHashIndex(level: level, index: index) == Int64(i))
            #expect(s.hashes[i].hex == hex)
        }
        #expect(try s.root(size: 3).hex == "d4f92c8fbb89720eb3b55677c7d7efaddfeb10d11a1a84a0ba8f1a23337faa95")
        let root5 = "341515982d650e23520dbd54d7fcf0afa1b70cc3a16a411d464dc9c1ac96c301"
        #expect(try s.root().hex == root5)
        #expect(try s.inclusionProof(index: 2, size: 5).map(\.hex) == [leafHashes[3], h01, leafHashes[4]])
        #expect(try s.consistencyProof(from: 3, to: 5).map(\.hex) == [leafHashes[2], leafHashes[3], h01, leafHashes[4]])

        let signer = try Self.signer()
        #expect(String(format: "%08x", signer.keyID) == "6659719f")
        #expect(signer.verifier.keyString == "example.latchkey/log+6659719f+AQOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4")
        let cp = try Checkpoint(origin: Self.origin, size: 5, root: s.root())
        let note = """
            example.latchkey/log
            5
            NBUVmC1lDiNSDb1U1/zwr6G3DMOhakEdRk3JwayWwwE=

            \u{2014} example.latchkey/log Zllxn6Y6pCFgFsWU+ONefUDNvy6+Y73+JXsESSZMqHf6DmSDC7md3hLmsm7BrmB1Lk2Nuf1B2OMvVNp+gfVVIH58sQs=

            """
        #expect(try cp.signedNote(with: signer) == note)
        #expect(try Checkpoint.open(note, origin: Self.origin, verifiers: [NoteVerifier(keyString: signer.verifier.keyString)]) == cp)
    }
}
