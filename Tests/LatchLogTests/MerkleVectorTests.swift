import Foundation
import Testing
@testable import LatchLog

struct ReferenceTree: Decodable {
    struct KnownAnswer: Decodable { let desc: String; let leafInput: Hex?; let left: Hex?; let right: Hex?; let expected: Hex }
    struct NodeHashes: Decodable { let levels: [[Hex]] }
    struct RootBySize: Decodable { let treeSize: Int64; let root: Hex }
    struct Inclusion: Decodable { let leafIndex: Int64; let treeSize: Int64; let leafInput: Hex; let leafHash: Hex; let root: Hex; let proof: [Hex] }
    struct Consistency: Decodable { let size1: Int64; let size2: Int64; let root1: Hex; let root2: Hex; let proof: [Hex] }
    let hasherKnownAnswers: [KnownAnswer]
    let leafInputs: [Hex]
    let leafHashes: [Hex]
    let nodeHashes: NodeHashes
    let rootsBySize: [RootBySize]
    let inclusionProofs: [Inclusion]
    let consistencyProofs: [Consistency]
}

struct InclusionProbes: Decodable {
    struct Probe: Decodable { let file: String; let desc: String; let leafIdx: UInt64; let treeSize: UInt64; let leafHash: Hex; let root: Hex; let proof: [Hex]; let wantErr: Bool }
    let count: Int
    let probes: [Probe]
}

struct ConsistencyProbes: Decodable {
    struct Probe: Decodable { let file: String; let desc: String; let size1: UInt64; let size2: UInt64; let root1: Hex; let root2: Hex; let proof: [Hex]; let wantErr: Bool }
    let count: Int
    let probes: [Probe]
}

struct ArgonLog: Decodable {
    struct Inclusion: Decodable { let leafIndex: UInt64; let treeSize: UInt64; let leafInput: Hex; let leafHash: Hex; let root: Hex; let proof: [Hex] }
    struct Consistency: Decodable { let size1: UInt64; let size2: UInt64; let root1: Hex; let root2: Hex; let proof: [Hex] }
    struct STH: Decodable { let treeSize: UInt64; let root: Hex }
    let sth: STH
    let inclusion: Inclusion
    let consistency: Consistency
}

@Suite("RFC 6962 reference tree and public probes")
struct MerkleVectorTests {
    @Test func hasherKnownAnswers() throws {
        let tree = try loadVectors("rfc6962_reference", as: ReferenceTree.self)
        var ran = 0
        for ka in tree.hasherKnownAnswers {
            let got: MerkleHash
            if let input = ka.leafInput { got = MerkleHash.leaf(input.data) }
            else if let l = ka.left, let r = ka.right { got = MerkleHash.node(rawLeft: l.data, rawRight: r.data) }
            else { got = MerkleHash.emptyRoot }
            #expect(got.data == ka.expected.data, "\(ka.desc)")
            ran += 1
        }
        #expect(ran == 4)
        expectVectorsRan(ran, "hasher known answers")
    }

    func buildReferenceStore(_ tree: ReferenceTree) -> InMemoryHashStore {
        var store = InMemoryHashStore()
        for input in tree.leafInputs { store.append(leaf: input.data) }
        return store
    }

    @Test func referenceTreeRootsAndNodes() throws {
        let tree = try loadVectors("rfc6962_reference", as: ReferenceTree.self)
        #expect(tree.leafInputs.count == 8)
        let store = buildReferenceStore(tree)
        for (i, leafHash) in tree.leafHashes.enumerated() {
            #expect(MerkleHash.leaf(tree.leafInputs[i].data).data == leafHash.data)
            #expect(try store.leafHash(at: Int64(i)).data == leafHash.data)
        }
        var nodes = 0
        for (level, hashes) in tree.nodeHashes.levels.enumerated() {
            for (k, h) in hashes.enumerated() {
                let stored = store.hashes[Int(MerkleTree.storedHashIndex(level: level, index: Int64(k)))]
                #expect(stored.data == h.data, "node level \(level) index \(k)")
                nodes += 1
            }
        }
        #expect(nodes == 15)
        for r in tree.rootsBySize {
            #expect(try store.root(size: r.treeSize).data == r.root.data, "root of size \(r.treeSize)")
            // The same root from a store holding exactly that many leaves.
            var small = InMemoryHashStore()
            for input in tree.leafInputs.prefix(Int(r.treeSize)) { small.append(leaf: input.data) }
            #expect(try small.root().data == r.root.data)
        }
        expectVectorsRan(tree.rootsBySize.count + nodes, "reference roots and node hashes")
    }

    @Test func referenceInclusionProofs() throws {
        let tree = try loadVectors("rfc6962_reference", as: ReferenceTree.self)
        let store = buildReferenceStore(tree)
        for v in tree.inclusionProofs {
            #expect(MerkleHash.leaf(v.leafInput.data).data == v.leafHash.data)
            let proof = try store.inclusionProof(index: v.leafIndex, size: v.treeSize)
            #expect(proof.map(\.data) == v.proof.map(\.data), "proof for leaf \(v.leafIndex) of \(v.treeSize)")
            try MerkleProof.verifyInclusion(index: UInt64(v.leafIndex), size: UInt64(v.treeSize), leafHash: v.leafHash.data,
                                            proof: v.proof.map(\.data), root: v.root.data)
            #expect(try store.root(size: v.treeSize).data == v.root.data)
        }
        expectVectorsRan(tree.inclusionProofs.count, "reference inclusion proofs")
    }

    @Test func referenceConsistencyProofs() throws {
        let tree = try loadVectors("rfc6962_reference", as: ReferenceTree.self)
        let store = buildReferenceStore(tree)
        for v in tree.consistencyProofs {
            let proof = try store.consistencyProof(from: v.size1, to: v.size2)
            #expect(proof.map(\.data) == v.proof.map(\.data), "proof \(v.size1)→\(v.size2)")
            try MerkleProof.verifyConsistency(size1: UInt64(v.size1), size2: UInt64(v.size2), proof: v.proof.map(\.data),
                                              root1: v.root1.data, root2: v.root2.data)
            #expect(try store.root(size: v.size1).data == v.root1.data)
            #expect(try store.root(size: v.size2).data == v.root2.data)
        }
        expectVectorsRan(tree.consistencyProofs.count, "reference consistency proofs")
    }

    @Test func inclusionProbes() throws {
        let file = try loadVectors("inclusion_probes", as: InclusionProbes.self)
        #expect(file.probes.count == file.count)
        #expect(file.probes.count == 98)
        var failures = 0
        for p in file.probes {
            var err: Error? = nil
            do {
                try MerkleProof.verifyInclusion(index: p.leafIdx, size: p.treeSize, leafHash: p.leafHash.data,
                                                proof: p.proof.map(\.data), root: p.root.data)
            } catch { err = error }
            #expect((err != nil) == p.wantErr, "\(p.file): \(p.desc): error \(String(describing: err))")
            if err != nil { failures += 1; #expect(err is LogError) }
        }
        #expect(failures == 92)
        expectVectorsRan(file.probes.count, "inclusion probes (\(failures) rejected as expected)")
    }

    @Test func consistencyProbes() throws {
        let file = try loadVectors("consistency_probes", as: ConsistencyProbes.self)
        #expect(file.probes.count == file.count)
        #expect(file.probes.count == 98)
        var failures = 0
        for p in file.probes {
            var err: Error? = nil
            do {
                try MerkleProof.verifyConsistency(size1: p.size1, size2: p.size2, proof: p.proof.map(\.data),
                                                  root1: p.root1.data, root2: p.root2.data)
            } catch { err = error }
            #expect((err != nil) == p.wantErr, "\(p.file): \(p.desc): error \(String(describing: err))")
            if err != nil { failures += 1; #expect(err is LogError) }
        }
        #expect(failures == 92)
        expectVectorsRan(file.probes.count, "consistency probes (\(failures) rejected as expected)")
    }

    @Test func argon2020RealLogProofs() throws {
        let log = try loadVectors("ct_argon2020_real_log", as: ArgonLog.self)
        let inc = log.inclusion
        #expect(MerkleHash.leaf(inc.leafInput.data).data == inc.leafHash.data)
        #expect(inc.proof.count == 30)
        try MerkleProof.verifyInclusion(index: inc.leafIndex, size: inc.treeSize, leafHash: inc.leafHash.data,
                                        proof: inc.proof.map(\.data), root: inc.root.data)
        let con = log.consistency
        #expect(con.proof.count == 30)
        #expect(con.size2 == log.sth.treeSize && con.root2.data == log.sth.root.data)
        try MerkleProof.verifyConsistency(size1: con.size1, size2: con.size2, proof: con.proof.map(\.data),
                                          root1: con.root1.data, root2: con.root2.data)
        // Any single flipped bit anywhere in either proof must break it.
        var flipped = 0
        for i in inc.proof.indices {
            var proof = inc.proof.map(\.data)
            proof[i][7] ^= 0x10
            #expect(throws: LogError.self) {
                try MerkleProof.verifyInclusion(index: inc.leafIndex, size: inc.treeSize, leafHash: inc.leafHash.data,
                                                proof: proof, root: inc.root.data)
            }
            flipped += 1
        }
        for i in con.proof.indices {
            var proof = con.proof.map(\.data)
            proof[i][31] ^= 0x01
            #expect(throws: LogError.self) {
                try MerkleProof.verifyConsistency(size1: con.size1, size2: con.size2, proof: proof,
                                                  root1: con.root1.data, root2: con.root2.data)
            }
            flipped += 1
        }
        #expect(flipped == 60)
        expectVectorsRan(2, "Argon 2020 real CT log proofs (plus \(flipped) bit-flipped variants rejected)")
    }
}
