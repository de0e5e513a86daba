import Foundation

/// Verification of RFC 9162 inclusion and consistency proofs: pure functions over sizes, hashes
/// and the proof. Each returns normally when the proof holds and throws ``LogError`` otherwise
/// (`.size` for impossible index/size arguments, `.hash` for a wrongly sized hash, `.proof` when
/// the proof is malformed or does not lead to the given root(s)).
///
/// The typed overloads take ``MerkleHash`` values; the `Data` overloads take bytes exactly as they
/// arrived (from the wire or a test vector), check their lengths and then run the same algorithm.
public enum MerkleProof {

    // MARK: Inclusion (RFC 9162 §2.1.3.2)

    /// Checks that `leafHash` is leaf `index` of the tree of `size` leaves whose root is `root`.
    public static func verifyInclusion(index: UInt64, size: UInt64, leafHash: MerkleHash,
                                       proof: [MerkleHash], root: MerkleHash) throws {
        let computed = try rootFromInclusionProof(index: index, size: size, leafHash: leafHash, proof: proof)
        guard computed == root else {
            throw LogError.proof("inclusion proof for leaf \(index) of \(size) leads to root \(computed), not the expected \(root)")
        }
    }

    /// ``verifyInclusion(index:size:leafHash:proof:root:)`` over raw bytes. A leaf hash or proof
    /// element that is not 32 bytes is an error; a root that is not 32 bytes cannot match.
    public static func verifyInclusion(index: UInt64, size: UInt64, leafHash: Data,
                                       proof: [Data], root: Data) throws {
        guard let leaf = MerkleHash(leafHash) else {
            throw LogError.hash("leaf hash is \(leafHash.count) bytes, not 32")
        }
        let path = try hashes(proof, what: "inclusion proof")
        let computed = try rootFromInclusionProof(index: index, size: size, leafHash: leaf, proof: path)
        guard computed.data == root else {
            throw LogError.proof("inclusion proof for leaf \(index) of \(size) leads to root \(computed), not the expected root")
        }
    }

    /// The root that `proof` gives for leaf `index` of a tree of `size` leaves. Checks the proof's
    /// length; the caller compares the result with a trusted root.
    public static func rootFromInclusionProof(index: UInt64, size: UInt64, leafHash: MerkleHash,
                                              proof: [MerkleHash]) throws -> MerkleHash {
        guard index < size else {
            throw LogError.size("leaf index \(index) is not below the tree size \(size)")
        }
        let expected = inclusionProofLength(index: index, size: size)
        guard proof.count == expected else {
            throw LogError.proof("inclusion proof for leaf \(index) of \(size) has \(proof.count) hashes, expected \(expected)")
        }
        var fn = index, sn = size - 1
        var r = leafHash
        for p in proof {
            guard sn != 0 else { throw LogError.proof("inclusion proof for leaf \(index) of \(size) is too long") }
            if fn & 1 == 1 || fn == sn {
                r = MerkleHash.node(p, r)
                if fn & 1 == 0 {
                    while fn & 1 == 0 && fn != 0 { fn >>= 1; sn >>= 1 }
                }
            } else {
                r = MerkleHash.node(r, p)
            }
            fn >>= 1; sn >>= 1
        }
        guard sn == 0 else { throw LogError.proof("inclusion proof for leaf \(index) of \(size) is too short") }
        return r
    }

    /// The number of hashes in the inclusion proof of leaf `index` in a tree of `size` leaves
    /// (`index < size`): the levels below the point where the paths to `index` and to the last
    /// leaf part, plus one hash per 1-bit of `index` above that point.
    /// Returns 0 when `index >= size` (there is no such proof).
    public static func inclusionProofLength(index: UInt64, size: UInt64) -> Int {
        guard index < size else { return 0 }
        let inner = 64 - (index ^ (size - 1)).leadingZeroBitCount
        return inner + (index >> UInt64(inner)).nonzeroBitCount
    }

    // MARK: Consistency (RFC 9162 §2.1.4.2)

    /// Checks that the tree of `size1` leaves with root `root1` is a prefix of the tree of `size2`
    /// leaves with root `root2`. `size1` must be at least 1; equal sizes need an empty proof and
    /// equal roots.
    public static func verifyConsistency(size1: UInt64, size2: UInt64, proof: [MerkleHash],
                                         root1: MerkleHash, root2: MerkleHash) throws {
        if try checkSizes(size1: size1, size2: size2, proofCount: proof.count, rootsEqual: root1 == root2) { return }
        try verifyDistinctSizes(size1: size1, size2: size2, proof: proof, root1: root1, root2: root2)
    }

    /// ``verifyConsistency(size1:size2:proof:root1:root2:)`` over raw bytes.
    ///
    /// Policy (as in transparency-dev/merkle, which the public probes encode): `size1 == 0` is
    /// always an error; with `size1 == size2` the proof must be empty and the roots are compared
    /// as bytes, whatever their length; otherwise both roots and every proof hash must be 32 bytes.
    public static func verifyConsistency(size1: UInt64, size2: UInt64, proof: [Data],
                                         root1: Data, root2: Data) throws {
        if try checkSizes(size1: size1, size2: size2, proofCount: proof.count, rootsEqual: root1 == root2) { return }
        guard let old = MerkleHash(root1) else { throw LogError.hash("root1 is \(root1.count) bytes, not 32") }
        guard let new = MerkleHash(root2) else { throw LogError.hash("root2 is \(root2.count) bytes, not 32") }
        try verifyDistinctSizes(size1: size1, size2: size2, proof: hashes(proof, what: "consistency proof"), root1: old, root2: new)
    }

    /// Checks the size rules; returns true when the sizes are equal and the (empty) proof holds.
    private static func checkSizes(size1: UInt64, size2: UInt64, proofCount: Int, rootsEqual: Bool) throws -> Bool {
        guard size1 >= 1 else {
            throw LogError.size("no consistency proof can start from an empty tree (size1 = 0)")
        }
        guard size1 <= size2 else {
            throw LogError.size("size1 \(size1) is larger than size2 \(size2)")
        }
        guard size1 == size2 else { return false }
        guard proofCount == 0 else {
            throw LogError.proof("consistency proof between equal sizes must be empty, got \(proofCount) hashes")
        }
        guard rootsEqual else {
            throw LogError.proof("trees of equal size \(size1) have different roots")
        }
        return true
    }

    private static func verifyDistinctSizes(size1: UInt64, size2: UInt64, proof: [MerkleHash],
                                            root1: MerkleHash, root2: MerkleHash) throws {
        let (r1, r2) = try rootsFromConsistencyProof(size1: size1, size2: size2, proof: proof, root1: root1)
        guard r1 == root1 else {
            throw LogError.proof("consistency proof \(size1)→\(size2) does not lead to root1")
        }
        guard r2 == root2 else {
            throw LogError.proof("consistency proof \(size1)→\(size2) does not lead to root2")
        }
    }

    /// The (old, new) roots that `proof` gives for sizes `0 < size1 < size2`, seeded with `root1`
    /// when `size1` is a power of two. Checks the proof's length.
    static func rootsFromConsistencyProof(size1: UInt64, size2: UInt64, proof: [MerkleHash],
                                          root1: MerkleHash) throws -> (MerkleHash, MerkleHash) {
        var path = proof
        if size1 & (size1 - 1) == 0 { path.insert(root1, at: 0) }
        guard let first = path.first else {
            throw LogError.proof("consistency proof \(size1)→\(size2) is empty")
        }
        var fn = size1 - 1, sn = size2 - 1
        while fn & 1 == 1 { fn >>= 1; sn >>= 1 }
        var fr = first, sr = first
        for c in path.dropFirst() {
            guard sn != 0 else {
                throw LogError.proof("consistency proof \(size1)→\(size2) is too long")
            }
            if fn & 1 == 1 || fn == sn {
                fr = MerkleHash.node(c, fr)
                sr = MerkleHash.node(c, sr)
                if fn & 1 == 0 {
                    while fn & 1 == 0 && fn != 0 { fn >>= 1; sn >>= 1 }
                }
            } else {
                sr = MerkleHash.node(sr, c)
            }
            fn >>= 1; sn >>= 1
        }
        guard sn == 0 else {
            throw LogError.proof("consistency proof \(size1)→\(size2) is too short")
        }
        return (fr, sr)
    }

    private static func hashes(_ proof: [Data], what: String) throws -> [MerkleHash] {
        try proof.enumerated().map { i, element in
            guard let h = MerkleHash(element) else {
                throw LogError.proof("\(what) hash \(i) is \(element.count) bytes, not 32")
            }
            return h
        }
    }
}
