import Foundation
import Testing
@testable import LatchLog

/// A deliberately naive, recursive transcription of RFC 9162 §2.1 over the list of leaf hashes,
/// used only to check the stored-hash implementation.
enum NaiveRFC9162 {
    static func split(_ n: Int) -> Int { var k = 1; while k * 2 < n { k *= 2 }; return k }

    static func mth(_ leaves: ArraySlice<MerkleHash>) -> MerkleHash {
        if leaves.isEmpty { return .emptyRoot }
        if leaves.count == 1 { return leaves[leaves.startIndex] }
        let k = split(leaves.count)
        let mid = leaves.startIndex + k
        return .node(mth(leaves[..<mid]), mth(leaves[mid...]))
    }

    static func path(_ m: Int, _ leaves: ArraySlice<MerkleHash>) -> [MerkleHash] {
        if leaves.count <= 1 { return [] }
        let k = split(leaves.count)
        let mid = leaves.startIndex + k
        if m < k { return path(m, leaves[..<mid]) + [mth(leaves[mid...])] }
        return path(m - k, leaves[mid...]) + [mth(leaves[..<mid])]
    }

    static func subproof(_ m: Int, _ leaves: ArraySlice<MerkleHash>, _ b: Bool) -> [MerkleHash] {
        if m == leaves.count { return b ? [] : [mth(leaves)] }
        let k = split(leaves.count)
        let mid = leaves.startIndex + k
        if m <= k { return subproof(m, leaves[..<mid], b) + [mth(leaves[mid...])] }
        return subproof(m - k, leaves[mid...], false) + [mth(leaves[..<mid])]
    }
}

/// Wraps a store as an asynchronous reader, as a database-backed store would be.
actor AsyncStore: AsyncHashReader {
    let store: InMemoryHashStore
    init(_ store: InMemoryHashStore) { self.store = store }
    func readHashes(_ indexes: [Int64]) async throws -> [MerkleHash] { try store.readHashes(indexes) }
}

/// Counts how many hashes each operation reads.
final class CountingReader: HashReader {
    let store: InMemoryHashStore
    var calls = 0, hashesRead = 0
    init(_ store: InMemoryHashStore) { self.store = store }
    func readHashes(_ indexes: [Int64]) throws -> [MerkleHash] {
        calls += 1; hashesRead += indexes.count
        return try store.readHashes(indexes)
    }
}

@Suite("Merkle tree properties")
struct MerklePropertyTests {
    static let maxSize = 3000

    static func leaves(_ n: Int) -> [MerkleHash] {
        (0..<n).map { MerkleHash.leaf(Data("leaf \($0)".utf8)) }
    }

    static func store(_ leaves: [MerkleHash]) -> InMemoryHashStore {
        var s = InMemoryHashStore()
        for l in leaves { s.append(leafHash: l) }
        return s
    }

    @Test func storedHashIndexesRoundTrip() {
        var count: Int64 = 0
        var store = InMemoryHashStore()
        for n in 0..<Int64(5000) {
            #expect(MerkleTree.storedHashCount(size: n) == Int64(store.hashes.count))
            store.append(leafHash: .emptyRoot)
            count += 1
        }
        for i in Int64(0)..<MerkleTree.storedHashCount(size: 5000) {
            let (level, index) = MerkleTree.splitStoredHashIndex(i)
            #expect(MerkleTree.storedHashIndex(level: level, index: index) == i)
        }
        // Large values too (a 2^40-leaf log).
        var rng = SeededGenerator(seed: 7)
        for _ in 0..<2000 {
            let level = Int.random(in: 0...20, using: &rng)
            let index = Int64.random(in: 0...(Int64(1) << 40), using: &rng)
            let i = MerkleTree.storedHashIndex(level: level, index: index)
            let back = MerkleTree.splitStoredHashIndex(i)
            #expect(back.level == level && back.index == index)
        }
        #expect(count == 5000)
    }

    @Test func rootsMatchNaiveDefinitionForEverySize() throws {
        let leaves = Self.leaves(600)
        let store = Self.store(leaves)
        for n in 0...leaves.count {
            #expect(try store.root(size: Int64(n)) == NaiveRFC9162.mth(leaves[..<n]), "size \(n)")
        }
        #expect(throws: LogError.self, "reading past the end must fail") { try store.root(size: 601) }
    }

    @Test func proofsMatchNaiveDefinitionAndVerify() throws {
        var rng = SeededGenerator(seed: 0x1a7c4)
        let leaves = Self.leaves(Self.maxSize)
        let store = Self.store(leaves)
        var sizes = Array(1...70)
        for _ in 0..<40 { sizes.append(Int.random(in: 71...Self.maxSize, using: &rng)) }
        sizes.append(Self.maxSize)
        var inclusionChecked = 0, consistencyChecked = 0, tampered = 0
        for n in sizes {
            let root = try store.root(size: Int64(n))
            #expect(root == NaiveRFC9162.mth(leaves[..<n]))
            let indexes = n <= 70 ? Array(0..<n) : (0..<12).map { _ in Int.random(in: 0..<n, using: &rng) } + [0, n - 1]
            for m in indexes {
                let proof = try store.inclusionProof(index: Int64(m), size: Int64(n))
                #expect(proof == NaiveRFC9162.path(m, leaves[..<n]), "inclusion \(m) of \(n)")
                #expect(proof.count == MerkleProof.inclusionProofLength(index: UInt64(m), size: UInt64(n)))
                try MerkleProof.verifyInclusion(index: UInt64(m), size: UInt64(n), leafHash: leaves[m], proof: proof, root: root)
                inclusionChecked += 1
                // A flipped bit in any element, the wrong leaf or the wrong index must fail.
                if !proof.isEmpty {
                    var bad = proof.map(\.data)
                    let e = Int.random(in: 0..<bad.count, using: &rng)
                    bad[e][Int.random(in: 0..<32, using: &rng)] ^= UInt8(1) << UInt8.random(in: 0...7, using: &rng)
                    #expect(throws: LogError.self) {
                        try MerkleProof.verifyInclusion(index: UInt64(m), size: UInt64(n), leafHash: leaves[m].data, proof: bad, root: root.data)
                    }
                    #expect(throws: LogError.self) {
                        try MerkleProof.verifyInclusion(index: UInt64((m + 1) % n), size: UInt64(n), leafHash: leaves[m], proof: proof, root: root)
                    }
                    tampered += 2
                }
                #expect(throws: LogError.self) {
                    try MerkleProof.verifyInclusion(index: UInt64(m), size: UInt64(n), leafHash: MerkleHash.leaf(Data("other".utf8)), proof: proof, root: root)
                }
                tampered += 1
            }
            let olds = n <= 70 ? Array(1...n) : (0..<12).map { _ in Int.random(in: 1...n, using: &rng) } + [1, n - 1, n]
            for m in olds where m >= 1 {
                let proof = try store.consistencyProof(from: Int64(m), to: Int64(n))
                #expect(proof == NaiveRFC9162.subproof(m, leaves[..<n], true), "consistency \(m)→\(n)")
                let oldRoot = try store.root(size: Int64(m))
                try MerkleProof.verifyConsistency(size1: UInt64(m), size2: UInt64(n), proof: proof, root1: oldRoot, root2: root)
                consistencyChecked += 1
                if !proof.isEmpty {
                    var bad = proof.map(\.data)
                    let e = Int.random(in: 0..<bad.count, using: &rng)
                    bad[e][Int.random(in: 0..<32, using: &rng)] ^= UInt8(1) << UInt8.random(in: 0...7, using: &rng)
                    #expect(throws: LogError.self) {
                        try MerkleProof.verifyConsistency(size1: UInt64(m), size2: UInt64(n), proof: bad, root1: oldRoot.data, root2: root.data)
                    }
                    #expect(throws: LogError.self) {
                        try MerkleProof.verifyConsistency(size1: UInt64(m), size2: UInt64(n), proof: Array(proof.dropLast()), root1: oldRoot, root2: root)
                    }
                    #expect(throws: LogError.self) {
                        try MerkleProof.verifyConsistency(size1: UInt64(m), size2: UInt64(n), proof: proof + [root], root1: oldRoot, root2: root)
                    }
                    tampered += 3
                }
            }
        }
        print("LatchLogTests: property check: \(inclusionChecked) inclusion and \(consistencyChecked) consistency proofs matched RFC 9162 and verified; \(tampered) tampered proofs rejected")
        #expect(inclusionChecked > 1000 && consistencyChecked > 1000)
    }

    @Test func proofsReadOnceAndLogarithmically() throws {
        let store = Self.store(Self.leaves(Self.maxSize))
        let reader = CountingReader(store)
        for n in [1, 2, 3, 1000, 2047, 2048, 2049, Self.maxSize] {
            let bound = 2 * (64 - UInt64(n).leadingZeroBitCount) + 2
            reader.calls = 0; reader.hashesRead = 0
            _ = try MerkleTree.root(size: Int64(n), reader: reader)
            #expect(reader.calls == 1 && reader.hashesRead <= bound)
            reader.calls = 0; reader.hashesRead = 0
            _ = try MerkleTree.inclusionProof(index: Int64(n / 3), size: Int64(n), reader: reader)
            #expect(reader.calls <= 1 && reader.hashesRead <= bound, "inclusion read \(reader.hashesRead) for size \(n)")
            reader.calls = 0; reader.hashesRead = 0
            _ = try MerkleTree.consistencyProof(from: Int64(max(1, n / 3)), to: Int64(n), reader: reader)
            #expect(reader.calls <= 1 && reader.hashesRead <= bound, "consistency read \(reader.hashesRead) for size \(n)")
        }
    }

    @Test func batchAppendThroughStorageProtocolEqualsSingleAppends() throws {
        var rng = SeededGenerator(seed: 99)
        let leaves = Self.leaves(1500)
        let single = Self.store(leaves)
        var batched = InMemoryHashStore()
        var next = 0
        while next < leaves.count {
            let k = min(Int.random(in: 0...40, using: &rng), leaves.count - next)
            let first = try batched.append(leafHashes: Array(leaves[next..<(next + k)]))
            #expect(first == Int64(next))
            next += k
        }
        #expect(batched.hashes == single.hashes)
        #expect(batched.size == single.size)
        // The indexes handed back for writing are exactly the next ones.
        let new = try MerkleTree.storedHashes(appending: [leaves[0]], at: single.size, reader: single)
        let start = try #require(new.first?.index)
        #expect(start == MerkleTree.storedHashCount(size: single.size))
        #expect(new.map(\.index) == Array(start..<(start + Int64(new.count))))
    }

    @Test func asyncReaderGivesTheSameAnswers() async throws {
        let store = Self.store(Self.leaves(777))
        let remote = AsyncStore(store)
        #expect(try await MerkleTree.root(size: 777, reader: remote) == store.root())
        #expect(try await MerkleTree.inclusionProof(index: 400, size: 777, reader: remote) == store.inclusionProof(index: 400))
        #expect(try await MerkleTree.consistencyProof(from: 300, to: 777, reader: remote) == store.consistencyProof(from: 300))
        let appended = try await MerkleTree.storedHashes(appending: [MerkleHash.leaf(Data([1]))], at: 777, reader: remote)
        var copy = store
        copy.append(leaf: Data([1]))
        #expect(appended.map(\.hash) == Array(copy.hashes[store.hashes.count...]))
    }

    @Test func badArgumentsAreTypedErrors() {
        let store = Self.store(Self.leaves(10))
        #expect(throws: LogError.size("no inclusion proof for leaf 10 in a tree of size 10")) { try store.inclusionProof(index: 10) }
        #expect(throws: LogError.self) { try store.inclusionProof(index: -1) }
        #expect(throws: LogError.self) { try store.inclusionProof(index: 0, size: 11) }
        #expect(throws: LogError.self) { try store.consistencyProof(from: 0, to: 5) }
        #expect(throws: LogError.self) { try store.consistencyProof(from: 6, to: 5) }
        #expect(throws: LogError.self) { try store.root(size: -1) }
        #expect(throws: LogError.self) { try store.root(size: 11) }
        #expect(throws: LogError.self) { try store.leafHash(at: 10) }
        #expect(throws: LogError.self) {
            try MerkleProof.verifyInclusion(index: 0, size: 0, leafHash: .emptyRoot, proof: [], root: .emptyRoot)
        }
        #expect(throws: LogError.self) {
            try MerkleProof.verifyConsistency(size1: 0, size2: 0, proof: [Data](), root1: MerkleHash.emptyRoot.data, root2: MerkleHash.emptyRoot.data)
        }
        #expect(MerkleHash(Data(count: 31)) == nil)
        #expect(MerkleHash(hex: "zz") == nil)
        #expect(MerkleHash(base64: MerkleHash.emptyRoot.base64) == .emptyRoot)
        #expect(MerkleHash(hex: MerkleHash.emptyRoot.hex) == .emptyRoot)
    }
}

@Suite("Merkle edge cases")
struct MerkleEdgeCaseTests {
    @Test func hugeSizesAreRefusedNotCrashed() {
        let store = InMemoryHashStore()
        for size in [Int64.max, MerkleTree.maximumSize + 1] {
            #expect(throws: LogError.self) { try MerkleTree.root(size: size, reader: store) }
            #expect(throws: LogError.self) { try MerkleTree.inclusionProof(index: 0, size: size, reader: store) }
            #expect(throws: LogError.self) { try MerkleTree.consistencyProof(from: 1, to: size, reader: store) }
            #expect(throws: LogError.self) { try MerkleTree.storedHashes(appending: [.emptyRoot], at: size, reader: store) }
        }
        // At the limit the maths is fine; the (empty) store simply lacks the hashes.
        #expect(throws: LogError.storage("no stored hash at index \(MerkleTree.storedHashIndex(level: 62, index: 0)) (the store holds 0)")) {
            try MerkleTree.root(size: MerkleTree.maximumSize, reader: store)
        }
        #expect(MerkleProof.inclusionProofLength(index: 5, size: 0) == 0)
        #expect(throws: LogError.self) {
            try MerkleProof.verifyInclusion(index: UInt64.max, size: UInt64.max, leafHash: .emptyRoot, proof: [], root: .emptyRoot)
        }
        #expect(throws: LogError.self) {
            try MerkleProof.verifyConsistency(size1: 1, size2: UInt64.max, proof: [MerkleHash](), root1: .emptyRoot, root2: .emptyRoot)
        }
        _ = MerkleTree.splitStoredHashIndex(-1)      // meaningless, but must not crash
        _ = MerkleTree.splitStoredHashIndex(.max)
        _ = MerkleTree.storedHashIndex(level: 63, index: .max)
        _ = MerkleTree.storedHashCount(size: .max)
    }
}
