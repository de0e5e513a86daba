import Crypto
import Foundation
import LatchCrypto
import LatchLog

// The server's transparency log (issue 5): an RFC 6962 Merkle tree over every public-key
// registration and every accepted checkpoint, kept in the store next to the data it covers
// (appended in the same transaction), with tree heads signed by the server's Ed25519 log key.
// The maths is LatchLog's; this file only maps leaves and stored hashes onto store rows.

// `LogLeaf` (the leaf's fields and bytes) is LatchCrypto's, shared with the client.
extension LogLeaf {
    public static func publicKey(_ k: PublicKeyRecord) -> LogLeaf {
        publicKey(tenantId: k.tenantId, principalId: k.principalId, keyId: k.keyId)
    }

    public func leafHash() throws -> MerkleHash { MerkleHash.leaf(try leafData()) }
}

/// The log's settings keys and row layout.
enum LogRows {
    static let sizeSetting = "log_size"
    /// Stored-hash and leaf indexes as fixed-width decimal ids, so id order is index order.
    static func id(_ i: Int64) -> String {
        let s = String(i)
        return String(repeating: "0", count: max(0, 19 - s.count)) + s
    }
}

/// Reads stored hashes from the store, for LatchLog's tree maths.
struct StoreHashReader: AsyncHashReader {
    let tx: any StoreTransaction
    /// One `getMany` for the distinct indexes (a batch of proofs asks for many).
    func readHashes(_ indexes: [Int64]) async throws -> [MerkleHash] {
        let distinct = Array(Set(indexes))
        var found: [String: MerkleHash] = [:]
        for row in try await tx.getMany(.logHashes, ids: distinct.map(LogRows.id)) {
            if let h = MerkleHash(hex: row.doc) { found[row.id] = h }
        }
        return try indexes.map { i in
            guard let h = found[LogRows.id(i)] else {
                throw StoreError(.corrupt, "transparency log hash \(i) is missing or malformed")
            }
            return h
        }
    }
}

extension StoreTransaction {
    /// Leaves in the log.
    public func logSize() async throws -> Int64 {
        guard let s = try await setting(LogRows.sizeSetting) else { return 0 }
        guard let n = Int64(s), n >= 0 else { throw StoreError(.corrupt, "transparency log size '\(s)' is not a count") }
        return n
    }

    /// Appends `leaf` in this transaction; returns its index.
    public func appendLogLeaf(_ leaf: LogLeaf) async throws -> Int64 {
        let size = try await logSize()
        let stored = try await MerkleTree.storedHashes(appending: [try leaf.leafHash()], at: size, reader: StoreHashReader(tx: self))
        for h in stored {
            guard try await insert(.logHashes, StoreRow(id: LogRows.id(h.index), tenantId: nil, parentId: nil, lookup: nil, doc: h.hash.hex)) else {
                throw StoreError(.corrupt, "transparency log hash \(h.index) already exists (log size \(size))")
            }
        }
        let doc = String(decoding: try leaf.leafData(), as: UTF8.self)
        _ = try await insert(.logLeaves, StoreRow(id: LogRows.id(size), tenantId: leaf.tenantId, parentId: leaf.subjectId, lookup: leaf.name, doc: doc))
        try await setSetting(LogRows.sizeSetting, String(size + 1))
        return size
    }

    /// The leaf at `index`, as stored.
    public func logLeaf(_ index: Int64) async throws -> LogLeaf? {
        guard let row = try await get(.logLeaves, id: LogRows.id(index)) else { return nil }
        do { return try JSONDecoder().decode(LogLeaf.self, from: Data(row.doc.utf8)) } catch {
            throw StoreError(.corrupt, "transparency log leaf \(index) does not decode: \(error)")
        }
    }

    public func logRoot(size: Int64) async throws -> MerkleHash {
        try await MerkleTree.root(size: size, reader: StoreHashReader(tx: self))
    }
    public func logInclusionProof(index: Int64, size: Int64) async throws -> [MerkleHash] {
        try await MerkleTree.inclusionProof(index: index, size: size, reader: StoreHashReader(tx: self))
    }
    public func logConsistencyProof(from: Int64, to: Int64) async throws -> [MerkleHash] {
        try await MerkleTree.consistencyProof(from: from, to: to, reader: StoreHashReader(tx: self))
    }
    /// Inclusion proofs of several leaves, in `indexes` order, from one read of the distinct hashes they need.
    public func logInclusionProofs(indexes: [Int64], size: Int64) async throws -> [[MerkleHash]] {
        try await MerkleTree.inclusionProofs(indexes: indexes, size: size, reader: StoreHashReader(tx: self))
    }
}

// MARK: - The service's side

/// A signed tree head as served: the C2SP checkpoint signed note and the key that verifies it.
public struct LogTreeHead: Sendable {
    public var size: Int64
    public var root: MerkleHash
    /// The signed note (checkpoint text, blank line, signature line).
    public var signedNote: String
    /// The log's verifier key (`name+keyid+base64`), which clients pin.
    public var verifierKey: String
}

extension LatchService {
    /// Records the log's public key in the store the first time; afterwards refuses a
    /// different one (replicas sharing a database must share the log key).
    public func registerLogKey(_ verifier: NoteVerifier) async throws {
        let key = verifier.keyString
        try await store.write { tx in
            if let known = try await tx.setting("log_verifier_key") {
                guard known == key else {
                    throw DomainError(.conflict, code: "log_key_mismatch",
                                      "this store's transparency log is signed by \(known), but this server holds the log key \(key); give every replica the same log key file")
                }
                return
            }
            try await tx.setSetting("log_verifier_key", key)
        }
    }

    func logged(_ key: PublicKeyRecord, _ tx: any StoreTransaction) async throws -> PublicKeyRecord {
        var k = key
        k.logIndex = try await tx.appendLogLeaf(.publicKey(key))
        return k
    }

    func logCheckpoint(_ tx: any StoreTransaction, _ kind: LogLeaf.CheckpointKind, tenantId: String, subjectId: String,
                       envelope: String) async throws -> Int64 {
        try await tx.appendLogLeaf(.checkpoint(kind, tenantId: tenantId, subjectId: subjectId, envelope: envelope))
    }

    /// The latest tree head, signed now by `signer`.
    public func logTreeHead(_ ctx: AuthContext, signer: NoteSigner?) async throws -> LogTreeHead {
        guard let signer else {
            throw DomainError(.unavailable, code: "log_key_missing", "this server has no transparency log key; start it with one (latch serve makes it on first start)")
        }
        return try await perform(ctx, "transparency.checkpoint", read: true) { tx in
            let size = try await tx.logSize()
            let root = try await tx.logRoot(size: size)
            let note = try Checkpoint(origin: signer.name, size: UInt64(size), root: root).signedNote(with: signer)
            return (LogTreeHead(size: size, root: root, signedNote: note, verifierKey: signer.verifier.keyString), "size=\(size)")
        }
    }

    public func logInclusionProof(_ ctx: AuthContext, leafIndex: Int64, treeSize: Int64) async throws -> [MerkleHash] {
        try await perform(ctx, "transparency.proof", read: true) { tx in
            let size = try await tx.logSize()
            guard treeSize > 0, treeSize <= size, leafIndex >= 0, leafIndex < treeSize else {
                throw DomainError.invalid("need 0 <= leafIndex < treeSize <= \(size) (the log's size); got leafIndex \(leafIndex), treeSize \(treeSize)")
            }
            return (try await tx.logInclusionProof(index: leafIndex, size: treeSize), nil)
        }
    }

    /// The most leaf indexes one batch inclusion-proof request may name.
    public static let maxInclusionBatch = 2048

    /// Inclusion proofs of up to ``maxInclusionBatch`` leaves in the tree of `treeSize` leaves,
    /// in the order asked (a repeated index gets its proof again).
    public func logInclusionProofs(_ ctx: AuthContext, leafIndexes: [Int64], treeSize: Int64) async throws -> [[MerkleHash]] {
        try await perform(ctx, "transparency.proof", read: true) { tx in
            guard !leafIndexes.isEmpty else { throw DomainError.invalid("leafIndexes must name at least one leaf") }
            guard leafIndexes.count <= Self.maxInclusionBatch else {
                throw DomainError.invalid("leafIndexes names \(leafIndexes.count) leaves; at most \(Self.maxInclusionBatch) per request (split the batch)")
            }
            let size = try await tx.logSize()
            guard treeSize > 0, treeSize <= size else {
                throw DomainError.invalid("need 0 < treeSize <= \(size) (the log's size); got treeSize \(treeSize)")
            }
            if let bad = leafIndexes.first(where: { $0 < 0 || $0 >= treeSize }) {
                throw DomainError.invalid("need 0 <= leafIndex < treeSize (\(treeSize)) for every entry of leafIndexes; got \(bad)")
            }
            return (try await tx.logInclusionProofs(indexes: leafIndexes, size: treeSize), "leaves=\(leafIndexes.count)")
        }
    }

    public func logConsistencyProof(_ ctx: AuthContext, from: Int64, to: Int64) async throws -> [MerkleHash] {
        try await perform(ctx, "transparency.proof", read: true) { tx in
            let size = try await tx.logSize()
            guard from >= 0, from <= to, to <= size else {
                throw DomainError.invalid("need 0 <= from <= to <= \(size) (the log's size); got from \(from), to \(to)")
            }
            return (try await tx.logConsistencyProof(from: from, to: to), nil)
        }
    }
}
