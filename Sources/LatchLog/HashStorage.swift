import Foundation

/// Reads stored hashes by their stored-hash index (see ``MerkleTree/storedHashIndex(level:index:)``).
///
/// This is the only thing the Merkle maths needs from storage. Every tree operation makes exactly
/// one `readHashes` call, with all the indexes it needs, so a SQL store answers it with one
/// `SELECT hash FROM … WHERE idx IN (…)`. The result must hold one hash per requested index, in
/// the order requested (indexes may repeat); throw if any is missing.
public protocol HashReader {
    func readHashes(_ indexes: [Int64]) throws -> [MerkleHash]
}

/// The same reader for stores whose driver is asynchronous (PostgreSQL).
public protocol AsyncHashReader {
    func readHashes(_ indexes: [Int64]) async throws -> [MerkleHash]
}

/// One hash to persist when appending: write `hash` at stored-hash index `index`.
/// Appends only ever add new indexes (never overwrite), in increasing order without gaps.
public struct StoredHash: Sendable, Hashable {
    public var index: Int64
    public var hash: MerkleHash
    public init(index: Int64, hash: MerkleHash) {
        self.index = index
        self.hash = hash
    }
}

/// A plain array-backed hash store: the reference implementation of the storage protocol and the
/// in-memory twin used by tests and the benchmark. Not thread-safe; wrap it in an actor to share.
public struct InMemoryHashStore: HashReader, Sendable {
    /// All stored hashes, indexed by stored-hash index.
    public private(set) var hashes: [MerkleHash] = []
    /// The number of leaves appended so far.
    public private(set) var size: Int64 = 0

    public init() {}

    /// Reserves room for `leafCount` leaves (about two hashes per leaf).
    public mutating func reserveCapacity(leaves leafCount: Int) {
        hashes.reserveCapacity(2 * leafCount)
    }

    public func readHashes(_ indexes: [Int64]) throws -> [MerkleHash] {
        var out = [MerkleHash]()
        out.reserveCapacity(indexes.count)
        for i in indexes {
            guard i >= 0, i < Int64(hashes.count) else {
                throw LogError.storage("no stored hash at index \(i) (the store holds \(hashes.count))")
            }
            out.append(hashes[Int(i)])
        }
        return out
    }

    /// Appends the leaf whose input is `leaf` (hashed as an RFC 6962 leaf) and returns its index.
    @discardableResult
    public mutating func append(leaf: some DataProtocol) -> Int64 {
        append(leafHash: MerkleHash.leaf(leaf))
    }

    /// Appends a leaf by its leaf hash and returns its index. Costs one read and
    /// `1 + trailing ones of the index` new hashes (two on average, at most log2 n + 1).
    @discardableResult
    public mutating func append(leafHash: MerkleHash) -> Int64 {
        let index = size
        // Reads cannot fail here: every index the maths asks for is below `hashes.count`.
        var h = leafHash
        hashes.append(h)
        var level = 0
        var n = index
        while n & 1 == 1 {
            let left = hashes[Int(MerkleTree.storedHashIndex(level: level, index: (index >> Int64(level)) - 1))]
            h = MerkleHash.node(left, h)
            hashes.append(h)
            level += 1
            n >>= 1
        }
        size += 1
        return index
    }

    /// Appends a batch of leaf hashes through the generic storage path
    /// (``MerkleTree/storedHashes(appending:at:reader:)``) and returns the first new index.
    @discardableResult
    public mutating func append(leafHashes: [MerkleHash]) throws -> Int64 {
        let first = size
        let new = try MerkleTree.storedHashes(appending: leafHashes, at: size, reader: self)
        try write(new)
        size += Int64(leafHashes.count)
        return first
    }

    /// Writes hashes produced by ``MerkleTree/storedHashes(appending:at:reader:)``.
    mutating func write(_ new: [StoredHash]) throws {
        for s in new {
            guard s.index == Int64(hashes.count) else {
                throw LogError.storage("write at index \(s.index) but the next free index is \(hashes.count)")
            }
            hashes.append(s.hash)
        }
    }

    /// The root of the tree of the first `size` leaves (default: all of them).
    public func root(size: Int64? = nil) throws -> MerkleHash {
        try MerkleTree.root(size: size ?? self.size, reader: self)
    }

    /// The leaf hash at `index`.
    public func leafHash(at index: Int64) throws -> MerkleHash {
        guard index >= 0, index < size else { throw LogError.size("leaf index \(index) is not below the tree size \(size)") }
        return try MerkleTree.leafHash(index: index, reader: self)
    }

    /// The audit path of leaf `index` in the tree of `size` leaves (default: all), ordered leaf to root.
    public func inclusionProof(index: Int64, size: Int64? = nil) throws -> [MerkleHash] {
        let n = size ?? self.size
        guard n <= self.size else { throw LogError.size("tree size \(n) exceeds the \(self.size) leaves stored") }
        return try MerkleTree.inclusionProof(index: index, size: n, reader: self)
    }

    /// The consistency proof from the tree of `from` leaves to the tree of `to` leaves (default: all).
    public func consistencyProof(from: Int64, to: Int64? = nil) throws -> [MerkleHash] {
        let n = to ?? self.size
        guard n <= self.size else { throw LogError.size("tree size \(n) exceeds the \(self.size) leaves stored") }
        return try MerkleTree.consistencyProof(from: from, to: n, reader: self)
    }
}
