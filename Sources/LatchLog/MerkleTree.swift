/// Pure RFC 6962 / RFC 9162 Merkle-tree maths over stored hashes (in the spirit of Go's sumdb/tlog).
///
/// ## Storage layout
/// A tree of `n` leaves keeps the hash of every *complete* subtree: the subtree at `level` L and
/// `index` k covers leaves `[k·2^L, (k+1)·2^L)` (level 0 holds the leaf hashes). These are numbered
/// in the order appending creates them: appending leaf `m` stores its leaf hash, then the hash of
/// every complete subtree that leaf `m` finishes (level 1, 2, … while the low bits of `m` are 1).
/// So a tree of `n` leaves holds `2n − popcount(n)` hashes with indexes `0 ..< 2n − popcount(n)`,
/// and appending never rewrites a stored hash.
///
/// Every operation computes the indexes it needs, makes a single read, and combines the hashes.
/// Costs: append reads `t` and writes `t + 1` hashes where `t` = trailing ones of the leaf index
/// (amortised 1 and 2); root, inclusion and consistency proofs read at most about 2·log2(n).
public enum MerkleTree {

    // MARK: Stored-hash indexes

    /// The largest tree size the maths accepts (2^62 leaves), so that no index computation can
    /// overflow a 64-bit signed integer. Larger sizes are refused with ``LogError/size(_:)``.
    public static let maximumSize: Int64 = 1 << 62

    /// The number of hashes stored for a tree of `size` leaves: `2·size − popcount(size)`.
    public static func storedHashCount(size: Int64) -> Int64 {
        // Exact for 0...maximumSize; wraps (never traps) outside that range.
        size &+ (size &- Int64(size.nonzeroBitCount))
    }

    /// The stored-hash index of the complete subtree at `level` and `index`
    /// (leaves `[index·2^level, (index+1)·2^level)`).
    public static func storedHashIndex(level: Int, index: Int64) -> Int64 {
        // The subtree is finished by its last leaf m; it is stored `level` places after m's leaf hash.
        // Exact for subtrees inside a tree of at most maximumSize leaves; wraps (never traps) outside.
        let lastLeaf = ((index &+ 1) << Int64(level)) &- 1
        return storedHashCount(size: lastLeaf) &+ Int64(level)
    }

    /// The inverse of ``storedHashIndex(level:index:)``, for `0 <= stored < storedHashCount(size: maximumSize)`
    /// (other values give a meaningless answer, never a crash).
    public static func splitStoredHashIndex(_ stored: Int64) -> (level: Int, index: Int64) {
        // Find the leaf m whose hashes start at or before `stored`: the largest m with count(m) <= stored.
        // count(m) >= m, so m <= stored.
        var lo: Int64 = 0, hi: Int64 = min(max(stored, 0), maximumSize)
        while lo < hi {
            let mid = lo + (hi - lo + 1) / 2
            if storedHashCount(size: mid) <= stored { lo = mid } else { hi = mid - 1 }
        }
        let level = Int(stored - storedHashCount(size: lo))
        return (level, ((lo + 1) >> Int64(level)) - 1)
    }

    // MARK: Appending

    /// The hashes to write when appending `leafHashes` to a tree that has `size` leaves, in index
    /// order, starting at `storedHashCount(size)`. Reads (once) the old subtree hashes it combines with.
    public static func storedHashes(appending leafHashes: [MerkleHash], at size: Int64,
                                    reader: some HashReader) throws -> [StoredHash] {
        let needed = try indexesForAppend(count: leafHashes.count, at: size)
        let old = needed.isEmpty ? [] : try checked(reader.readHashes(needed), count: needed.count)
        return combineForAppend(leafHashes, at: size, old: old)
    }

    /// ``storedHashes(appending:at:reader:)`` for an asynchronous store.
    public static func storedHashes(appending leafHashes: [MerkleHash], at size: Int64,
                                    reader: some AsyncHashReader) async throws -> [StoredHash] {
        let needed = try indexesForAppend(count: leafHashes.count, at: size)
        let old = needed.isEmpty ? [] : try checked(await reader.readHashes(needed), count: needed.count)
        return combineForAppend(leafHashes, at: size, old: old)
    }

    /// The stored indexes (below `storedHashCount(size)`) that appending `count` leaves combines with.
    static func indexesForAppend(count: Int, at size: Int64) throws -> [Int64] {
        guard size >= 0, count >= 0, size <= maximumSize - Int64(count) else {
            throw LogError.size("cannot append \(count) leaves to a tree of size \(size)")
        }
        let base = storedHashCount(size: size)
        var needed = [Int64]()
        for n in size..<(size + Int64(count)) {
            var level = 0
            while (n >> Int64(level)) & 1 == 1 {
                let i = storedHashIndex(level: level, index: (n >> Int64(level)) - 1)
                if i < base { needed.append(i) }
                level += 1
            }
        }
        return needed
    }

    static func combineForAppend(_ leafHashes: [MerkleHash], at size: Int64, old: [MerkleHash]) -> [StoredHash] {
        let base = storedHashCount(size: size)
        var out = [MerkleHash]()
        out.reserveCapacity(2 * leafHashes.count + 64)
        var nextOld = 0
        for (offset, leafHash) in leafHashes.enumerated() {
            let n = size + Int64(offset)
            var h = leafHash
            out.append(h)
            var level = 0
            while (n >> Int64(level)) & 1 == 1 {
                let i = storedHashIndex(level: level, index: (n >> Int64(level)) - 1)
                let left: MerkleHash
                if i < base { left = old[nextOld]; nextOld += 1 } else { left = out[Int(i - base)] }
                h = MerkleHash.node(left, h)
                out.append(h)
                level += 1
            }
        }
        return out.enumerated().map { StoredHash(index: base + Int64($0.offset), hash: $0.element) }
    }

    // MARK: Root, leaf and proofs

    /// The root hash of the tree made of the first `size` leaves (the empty root for 0).
    public static func root(size: Int64, reader: some HashReader) throws -> MerkleHash {
        let plan = try Plan.root(size: size)
        return try plan.combine(plan.read(reader))[0]
    }

    public static func root(size: Int64, reader: some AsyncHashReader) async throws -> MerkleHash {
        let plan = try Plan.root(size: size)
        return try plan.combine(await plan.read(reader))[0]
    }

    /// The stored leaf hash at `index` (the caller checks `index` is below the tree size).
    public static func leafHash(index: Int64, reader: some HashReader) throws -> MerkleHash {
        guard index >= 0, index < maximumSize else { throw LogError.size("leaf index \(index) is out of range") }
        let i = storedHashIndex(level: 0, index: index)
        return try checked(reader.readHashes([i]), count: 1)[0]
    }

    /// The inclusion proof (audit path) of leaf `index` in the tree of `size` leaves,
    /// ordered from the leaf's sibling up to the root's child (RFC 9162 §2.1.3.1).
    public static func inclusionProof(index: Int64, size: Int64, reader: some HashReader) throws -> [MerkleHash] {
        let plan = try Plan.inclusion(index: index, size: size)
        return try plan.combine(plan.read(reader))
    }

    public static func inclusionProof(index: Int64, size: Int64, reader: some AsyncHashReader) async throws -> [MerkleHash] {
        let plan = try Plan.inclusion(index: index, size: size)
        return try plan.combine(await plan.read(reader))
    }

    /// The consistency proof from the tree of `from` leaves to the tree of `to` leaves
    /// (RFC 9162 §2.1.4.1). Empty when `from == to`; `from` must be at least 1.
    public static func consistencyProof(from: Int64, to: Int64, reader: some HashReader) throws -> [MerkleHash] {
        let plan = try Plan.consistency(from: from, to: to)
        return try plan.combine(plan.read(reader))
    }

    public static func consistencyProof(from: Int64, to: Int64, reader: some AsyncHashReader) async throws -> [MerkleHash] {
        let plan = try Plan.consistency(from: from, to: to)
        return try plan.combine(await plan.read(reader))
    }

    /// The inclusion proofs of several leaves in the tree of `size` leaves, in the order of
    /// `indexes`, made with a single read of the distinct stored hashes they need (proofs of
    /// nearby leaves share most of their hashes). Each proof equals ``inclusionProof(index:size:reader:)``'s.
    public static func inclusionProofs(indexes: [Int64], size: Int64, reader: some HashReader) throws -> [[MerkleHash]] {
        let (plans, wanted, slots) = try batchPlans(indexes: indexes, size: size)
        let stored = wanted.isEmpty ? [] : try checked(reader.readHashes(wanted), count: wanted.count)
        return combineBatch(plans, slots: slots, stored: stored)
    }

    public static func inclusionProofs(indexes: [Int64], size: Int64, reader: some AsyncHashReader) async throws -> [[MerkleHash]] {
        let (plans, wanted, slots) = try batchPlans(indexes: indexes, size: size)
        let stored = wanted.isEmpty ? [] : try checked(await reader.readHashes(wanted), count: wanted.count)
        return combineBatch(plans, slots: slots, stored: stored)
    }

    /// The plans, the distinct stored indexes (ascending) and, per plan, where each of its
    /// stored hashes is in that list.
    static func batchPlans(indexes: [Int64], size: Int64) throws -> ([Plan], [Int64], [[Int]]) {
        let plans = try indexes.map { try Plan.inclusion(index: $0, size: size) }
        let perPlan = plans.map(\.indexes)
        let wanted = Array(Set(perPlan.joined())).sorted()
        let position = Dictionary(uniqueKeysWithValues: wanted.enumerated().map { ($0.element, $0.offset) })
        return (plans, wanted, perPlan.map { $0.map { position[$0]! } })
    }

    static func combineBatch(_ plans: [Plan], slots: [[Int]], stored: [MerkleHash]) -> [[MerkleHash]] {
        zip(plans, slots).map { plan, slot in plan.combine(slot.map { stored[$0] }) }
    }

    // MARK: Plans: which leaf ranges to hash, and the stored hashes that make them up

    /// A list of leaf ranges whose Merkle hashes are wanted. Each range is aligned the way the
    /// RFC 9162 recursion produces them, so it splits into complete subtrees, left to right,
    /// whose right fold is the range's hash.
    struct Plan {
        var ranges: [Range<Int64>]
        var emptyTree = false

        static func root(size: Int64) throws -> Plan {
            guard size >= 0, size <= maximumSize else { throw LogError.size("tree size \(size) is out of range") }
            if size == 0 { return Plan(ranges: [], emptyTree: true) }
            return Plan(ranges: [0..<size])
        }

        static func inclusion(index: Int64, size: Int64) throws -> Plan {
            guard size > 0, size <= maximumSize, index >= 0, index < size else {
                throw LogError.size("no inclusion proof for leaf \(index) in a tree of size \(size)")
            }
            var lo: Int64 = 0, hi = size
            var siblings = [Range<Int64>]()
            while hi - lo > 1 {
                let k = largestPowerOfTwo(below: hi - lo)
                if index < lo + k { siblings.append((lo + k)..<hi); hi = lo + k }
                else { siblings.append(lo..<(lo + k)); lo += k }
            }
            return Plan(ranges: siblings.reversed())
        }

        static func consistency(from m: Int64, to n: Int64) throws -> Plan {
            guard m >= 1, m <= n, n <= maximumSize else {
                throw LogError.size("no consistency proof from size \(m) to size \(n) (need 1 <= from <= to)")
            }
            var lo: Int64 = 0, hi = n, rel = m
            var wholeOldTree = true     // RFC 9162's `b`: the old tree is still the whole left edge
            var parts = [Range<Int64>]()
            while rel != hi - lo {
                let k = largestPowerOfTwo(below: hi - lo)
                if rel <= k { parts.append((lo + k)..<hi); hi = lo + k }
                else { parts.append(lo..<(lo + k)); lo += k; rel -= k; wholeOldTree = false }
            }
            if !wholeOldTree { parts.append(lo..<hi) }
            return Plan(ranges: parts.reversed())
        }

        /// The complete subtrees, left to right, that make up `range`.
        static func subtrees(_ range: Range<Int64>) -> [(level: Int, index: Int64)] {
            var out = [(level: Int, index: Int64)]()
            var lo = range.lowerBound
            while lo < range.upperBound {
                var level = 63 - (range.upperBound - lo).leadingZeroBitCount
                if lo != 0 { level = min(level, lo.trailingZeroBitCount) }
                out.append((level, lo >> Int64(level)))
                lo += Int64(1) << Int64(level)
            }
            return out
        }

        var indexes: [Int64] {
            ranges.flatMap { Plan.subtrees($0).map { storedHashIndex(level: $0.level, index: $0.index) } }
        }

        func read(_ reader: some HashReader) throws -> [MerkleHash] {
            let wanted = indexes
            return wanted.isEmpty ? [] : try checked(reader.readHashes(wanted), count: wanted.count)
        }

        func read(_ reader: some AsyncHashReader) async throws -> [MerkleHash] {
            let wanted = indexes
            return wanted.isEmpty ? [] : try checked(await reader.readHashes(wanted), count: wanted.count)
        }

        /// One hash per range, from the stored hashes in `indexes` order.
        func combine(_ stored: [MerkleHash]) -> [MerkleHash] {
            if emptyTree { return [MerkleHash.emptyRoot] }
            var out = [MerkleHash]()
            out.reserveCapacity(ranges.count)
            var next = 0
            for range in ranges {
                let count = Plan.subtrees(range).count
                let parts = stored[next..<(next + count)]
                next += count
                var h = parts[parts.endIndex - 1]
                for left in parts.dropLast().reversed() { h = MerkleHash.node(left, h) }
                out.append(h)
            }
            return out
        }
    }

    /// The largest power of two strictly below `n` (n >= 2).
    static func largestPowerOfTwo(below n: Int64) -> Int64 {
        Int64(1) << Int64(63 - (n - 1).leadingZeroBitCount)
    }

    static func checked(_ hashes: [MerkleHash], count: Int) throws -> [MerkleHash] {
        guard hashes.count == count else {
            throw LogError.storage("hash reader returned \(hashes.count) hashes for \(count) indexes")
        }
        return hashes
    }
}
