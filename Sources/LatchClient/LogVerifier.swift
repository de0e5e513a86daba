import Foundation
import LatchCrypto
import LatchLog
import LatchWire

/// What a profile trusts about the server's transparency log (issue 5): the pinned log key and
/// the last tree head this client verified. Stored per profile as `log.json` (0600), next to
/// `seen.json`. Holds public data only — never a secret, value or private key.
///
/// ```json
/// {"version":1,"logKey":"latchkey.log/…+1a2b3c4d+AQ…","treeSize":14,"rootHash":"<base64>",
///  "checkpoint":"<signed note>","verified":{"3":"<leaf hash hex>"}}
/// ```
///
/// `verified` maps leaf indexes already proven included in a verified tree head to their leaf
/// hashes: since every later head is checked consistent with the last one, such a leaf stays
/// in the log, and the same leaf needs no new inclusion proof. In memory it is keyed by index
/// (the file keeps decimal strings and hex, as above).
public struct LogTrust: Decodable, Sendable, Equatable {
    public var version: Int = 1
    /// The pinned note verifier key (`name+keyid+base64`).
    public var logKey: String
    /// The last verified tree head (size 0 and no note when only the key is pinned yet).
    public var treeSize: Int64
    public var rootHash: String
    public var checkpoint: String?
    public var verified: [Int64: MerkleHash]

    public init(logKey: String, treeSize: Int64 = 0, rootHash: String = MerkleHash.emptyRoot.base64, checkpoint: String? = nil,
                verified: [Int64: MerkleHash] = [:]) {
        self.logKey = logKey; self.treeSize = treeSize; self.rootHash = rootHash; self.checkpoint = checkpoint; self.verified = verified
    }

    enum CodingKeys: String, CodingKey { case version, logKey, treeSize, rootHash, checkpoint, verified }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        version = try c.decode(Int.self, forKey: .version)
        logKey = try c.decode(String.self, forKey: .logKey)
        treeSize = try c.decode(Int64.self, forKey: .treeSize)
        rootHash = try c.decode(String.self, forKey: .rootHash)
        checkpoint = try c.decodeIfPresent(String.self, forKey: .checkpoint)
        var verified: [Int64: MerkleHash] = [:]
        for (key, hex) in try c.decode([String: String].self, forKey: .verified) {
            guard let index = Int64(key), let hash = MerkleHash(hex: hex) else {
                throw DecodingError.dataCorruptedError(forKey: .verified, in: c, debugDescription: "entry \(key): \(hex) is not a leaf index and hash")
            }
            verified[index] = hash
        }
        self.verified = verified
    }

    /// The file's bytes: the JSON above, written directly (keys in order, `verified` by index),
    /// because a generic encoder spent milliseconds on a file with one entry per proven leaf.
    public func fileData() throws -> Data {
        let strings = JSONEncoder()
        strings.outputFormatting = [.withoutEscapingSlashes]
        func quoted(_ s: String) throws -> String { String(decoding: try strings.encode(s), as: UTF8.self) }
        var out = "{\"checkpoint\":" + (try checkpoint.map(quoted) ?? "null") + ",\"logKey\":" + (try quoted(logKey))
            + ",\"rootHash\":" + (try quoted(rootHash)) + ",\"treeSize\":\(treeSize),\"verified\":{"
        out.reserveCapacity(out.utf8.count + verified.count * 90 + 16)
        for (n, (index, leaf)) in verified.sorted(by: { $0.key < $1.key }).enumerated() {
            out += (n == 0 ? "\"" : ",\"") + String(index) + "\":\"" + leaf.hex + "\""
        }
        out += "},\"version\":\(version)}"
        return Data(out.utf8)
    }

    public static func load(path: String) throws -> LogTrust? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        do {
            let data = try SecureFile.read(path)
            return try readDirect(data) ?? JSONDecoder().decode(LogTrust.self, from: data)
        } catch {
            throw LatchError(.configuration, "transparency-log trust file \(path) is unreadable",
                             hint: "it holds the pinned log key and the last verified tree head; restore it, or delete it only if you trust the server's current log")
        }
    }

    /// The file `fileData` writes, read directly (see `DocScanner`; JSONDecoder's first use of
    /// this type was a twentieth of a `latch get`); nil gives up and JSONDecoder reads it.
    static func readDirect(_ data: Data) -> LogTrust? {
        var version: Int?, logKey, rootHash: String?, treeSize: Int64?, checkpoint: String??, verified: [Int64: MerkleHash]?
        guard DocScanner.read(data, { s, key in
            switch key {
            case "version": return once(&version, s.int())
            case "logKey": return once(&logKey, s.string())
            case "treeSize": return once(&treeSize, s.int64())
            case "rootHash": return once(&rootHash, s.string())
            case "checkpoint": return once(&checkpoint, s.optionalString())
            case "verified":
                var leaves: [Int64: MerkleHash] = [:]
                guard s.object({ s, index in
                    guard let i = Int64(index), leaves[i] == nil, let hex = s.string(), let leaf = MerkleHash(hex: hex) else { return false }
                    leaves[i] = leaf
                    return true
                }) else { return false }
                return once(&verified, leaves)
            default: return s.skipValue()
            }
        }), let version, let logKey, let treeSize, let rootHash, let verified else { return nil }
        var trust = LogTrust(logKey: logKey, treeSize: treeSize, rootHash: rootHash, checkpoint: checkpoint ?? nil, verified: verified)
        trust.version = version
        return trust
    }

    public func save(path: String) throws {
        try SecureFile.makeDirectory((path as NSString).deletingLastPathComponent, mode: 0o700)
        try SecureFile.write(try fileData(), to: path, mode: 0o600)
    }
}

/// One record the client accepts and checks against the log: the leaf it rebuilds from what
/// it was served, and the index the server says it has.
public struct LogEntry: Sendable, Equatable {
    public enum Kind: String, Sendable, Codable { case vaultSummary, itemDetail, publicKey, vaultWriters }
    public var kind: Kind
    /// Names the record in errors, e.g. `vault 1f… summary checkpoint v3`.
    public var what: String
    public var leaf: LogLeaf
    public var index: Int64?
    public init(kind: Kind, what: String, leaf: LogLeaf, index: Int64?) {
        self.kind = kind; self.what = what; self.leaf = leaf; self.index = index
    }

    public static func summary(tenantId: String, vaultId: String, version: Int, envelope: String, index: Int64?) -> LogEntry {
        LogEntry(kind: .vaultSummary, what: "vault \(vaultId) summary checkpoint v\(version)",
                 leaf: .checkpoint(.vaultSummary, tenantId: tenantId, subjectId: vaultId, envelope: envelope), index: index)
    }
    public static func detail(tenantId: String, vaultId: String, itemId: String, version: Int, envelope: String, index: Int64?) -> LogEntry {
        LogEntry(kind: .itemDetail, what: "item \(itemId) in vault \(vaultId): detail checkpoint v\(version)",
                 leaf: .checkpoint(.itemDetail, tenantId: tenantId, subjectId: itemId, envelope: envelope), index: index)
    }
    public static func writers(tenantId: String, vaultId: String, version: Int, envelope: String, index: Int64?) -> LogEntry {
        LogEntry(kind: .vaultWriters, what: "vault \(vaultId) writer set v\(version)",
                 leaf: .checkpoint(.vaultWriters, tenantId: tenantId, subjectId: vaultId, envelope: envelope), index: index)
    }
    public static func key(tenantId: String, principalId: String, name: String, keyId: String, index: Int64?, role: String) -> LogEntry {
        LogEntry(kind: .publicKey, what: "\(role) key \(keyId.prefix(16))… of \(name) (\(principalId))",
                 leaf: .publicKey(tenantId: tenantId, principalId: principalId, keyId: keyId), index: index)
    }
}

/// What one log verification did (`latch verify` prints it).
public struct LogReport: Sendable, Codable, Equatable {
    /// The pinned log key, and whether this run pinned it (first use or `--log-key`).
    public var logKey: String
    public var pinnedNow: Bool
    public var treeSize: Int64
    public var rootHash: String
    /// The tree size this profile had verified before; nil when none.
    public var previousTreeSize: Int64?
    /// True when a consistency proof from `previousTreeSize` to `treeSize` was fetched and verified.
    public var consistencyProofVerified: Bool
    /// Inclusion proofs fetched and verified in this run.
    public var inclusionProofs: Int
    /// Entries whose leaf was already proven included under an earlier verified head.
    public var inclusionCached: Int
    public var vaultSummaries: Int
    public var itemDetails: Int
    public var publicKeys: Int
    public var writerSets: Int = 0
}

/// The transparency-log checks, pure: no I/O. The caller fetches the tree head and proofs and
/// hands them in; every failure is a `LatchError(.verification, …)` that names what failed.
public enum LogVerifier {
    static let hint = "the server's transparency log does not vouch for what it served; refusing it"

    static func fail(_ message: String, hint: String = LogVerifier.hint) -> LatchError {
        LatchError(.verification, message, hint: hint)
    }

    /// The trust state to verify with: the profile's pinned state, else a new pin of the key
    /// given with `--log-key`/`LATCH_LOG_KEY` (`explicit`), else nothing yet (the caller pins
    /// the served key on first use: `pinnedNow` true and `logKey` empty). An explicit key that
    /// differs from the pinned one is refused.
    public static func pinned(trust: LogTrust?, explicit: (key: String, source: String)?, trustPath: String) throws -> (LogTrust, pinnedNow: Bool) {
        if let explicit {
            do { _ = try NoteVerifier(keyString: explicit.key) } catch {
                throw LatchError(.usage, "the transparency log key from \(explicit.source) is not a note verifier key (\(error))",
                                 hint: "give it as name+keyid+base64, e.g. latchkey.log/0a1b2c3d+1a2b3c4d+AQ…, exactly as the server's operator gives it")
            }
        }
        if let trust {
            if let explicit, explicit.key != trust.logKey {
                throw fail("the transparency log key from \(explicit.source) (\(explicit.key)) is not the key this profile pinned (\(trust.logKey))",
                           hint: "if the server's log key was replaced on purpose, confirm the new key with its operator out of band, then delete \(trustPath) and run `latch verify --log-key NEW_KEY`")
            }
            return (trust, false)
        }
        return (LogTrust(logKey: explicit?.key ?? ""), true)
    }

    /// The verifier for the pinned key, refusing a served key that differs from it. With
    /// nothing pinned yet (`state.logKey` empty) the served key is taken: trust on first use.
    /// `parse` turns the pinned key's text into a verifier (a caller may memoise it).
    public static func verifier(_ state: inout LogTrust, served: String, pinnedNow: Bool, explicitSource: String?,
                                trustPath: String,
                                parse: (String) throws -> NoteVerifier = { try NoteVerifier(keyString: $0) }) throws -> NoteVerifier {
        if state.logKey.isEmpty { state.logKey = served }
        guard served == state.logKey else {
            let message = pinnedNow
                ? "the server's transparency log key is \(served), not the key given by \(explicitSource ?? "--log-key") (\(state.logKey))"
                : "the server's transparency log key changed: this profile pinned \(state.logKey), but the server now serves \(served)"
            throw fail(message,
                       hint: "a server with another log key can rewrite its history, so nothing it serves is accepted; if its operator replaced the key on purpose, confirm the new key with them out of band, then delete \(trustPath) and run `latch verify --log-key NEW_KEY`")
        }
        do { return try parse(state.logKey) } catch {
            throw fail("the server's transparency log key \(state.logKey) is not a valid note verifier key (\(error))")
        }
    }

    /// Opens the served tree head with the pinned key.
    /// `verifiedBefore` is the signed note of the last head this profile verified with the same
    /// pinned key: a byte-identical note is not checked again (an agent that polls an unchanged
    /// log pays no signature check), anything else is.
    public static func openHead(_ r: LogCheckpointResponse, verifier: NoteVerifier, verifiedBefore: String? = nil) throws -> Checkpoint {
        let head: Checkpoint
        do {
            if let verifiedBefore, !verifiedBefore.isEmpty, verifiedBefore == r.checkpoint {
                head = try Checkpoint(text: try SignedNote(parsing: r.checkpoint).text)
                guard head.origin == verifier.name else { throw LogError.checkpoint("origin is \"\(head.origin)\", expected \"\(verifier.name)\"") }
            } else {
                head = try Checkpoint.open(r.checkpoint, origin: verifier.name, verifiers: [verifier])
            }
        } catch {
            throw fail("the transparency log tree head is not signed by the pinned log key \(verifier.keyString) (\(error))")
        }
        guard head.size <= UInt64(MerkleTree.maximumSize), Int64(head.size) == r.treeSize, head.root.base64 == r.rootHash else {
            throw fail("the transparency log checkpoint response says size \(r.treeSize) root \(r.rootHash), but its signed note says size \(head.size) root \(head.root.base64)")
        }
        return head
    }

    /// Whether moving from `previous` to `head` needs a consistency proof (both non-empty, head larger).
    public static func needsConsistencyProof(from previous: LogTrust, to head: Checkpoint) -> Bool {
        previous.treeSize > 0 && Int64(head.size) > previous.treeSize
    }

    /// Checks that `head` extends the head `previous` verified before: a smaller tree is a
    /// rollback, the same size with another root or a failing proof is a fork.
    public static func checkConsistency(from previous: LogTrust, to head: Checkpoint, proof: [MerkleHash]) throws {
        let size = Int64(head.size)
        guard previous.treeSize > 0 else { return }
        guard let oldRoot = MerkleHash(base64: previous.rootHash) else {
            throw LatchError(.configuration, "the last verified tree head in the trust file has a malformed root hash")
        }
        guard size >= previous.treeSize else {
            throw fail("transparency log rolled back: the server's tree head has \(size) leaves, fewer than the \(previous.treeSize) this profile verified before (rollback or fork)")
        }
        if size == previous.treeSize {
            guard head.root == oldRoot else {
                throw fail("transparency log forked: tree size \(size) now has root \(head.root.base64), but root \(previous.rootHash) when this profile verified it before")
            }
            return
        }
        do {
            let old = try Checkpoint(origin: head.origin, size: UInt64(previous.treeSize), root: oldRoot)
            try head.verifyConsistency(from: old, proof: proof)
        } catch {
            throw fail("transparency log forked: the server cannot prove that tree size \(size) (root \(head.root.base64)) extends tree size \(previous.treeSize) (root \(previous.rootHash)) this profile verified before (consistency proof failed: \(error))")
        }
    }

    /// Checks this profile's verified tree head against a witness: another client's tree head,
    /// signed by the same log key. Both must be views of one log, so the smaller must be a
    /// prefix of the larger (`proof`: the server's consistency proof between them; the same
    /// size needs the same root). A server that shows two clients two histories fails here.
    public static func checkWitness(_ witness: Checkpoint, against mine: Checkpoint, proof: [MerkleHash]) throws {
        let label = "this profile's tree head (size \(mine.size), root \(mine.root.base64)) and the witness's (size \(witness.size), root \(witness.root.base64))"
        if witness.size == mine.size {
            guard witness.root == mine.root else { throw fail("transparency log split view: \(label) differ at the same size") }
            return
        }
        let (small, large) = witness.size < mine.size ? (witness, mine) : (mine, witness)
        do { try large.verifyConsistency(from: small, proof: proof) } catch {
            throw fail("transparency log split view: the server cannot prove that one of \(label) extends the other (\(error))")
        }
    }

    /// Opens a witness's signed tree head (the signed note text) with the pinned key.
    public static func openWitness(_ note: String, verifier: NoteVerifier) throws -> Checkpoint {
        do { return try Checkpoint.open(note, origin: verifier.name, verifiers: [verifier]) } catch {
            throw LatchError(.usage, "the witness tree head is not a checkpoint signed by the pinned log key \(verifier.keyString) (\(error))",
                             hint: "give the signed note another client printed with `latch verify --print-head`")
        }
    }

    /// The entry's leaf index, checked present and inside the tree.
    public static func index(of entry: LogEntry, in head: Checkpoint) throws -> Int64 {
        guard let index = entry.index else {
            throw fail("\(entry.what) has no transparency log index: the server did not say where it is logged (a server older than the log, or one hiding it)")
        }
        guard index >= 0, UInt64(index) < head.size else {
            throw fail("\(entry.what) claims transparency log index \(index), outside the tree of size \(head.size)")
        }
        return index
    }

    public static func leafHash(_ entry: LogEntry) throws -> MerkleHash {
        try canonicalLeafBytes(entry.leaf).withUnsafeBytes { MerkleHash.leaf(bytes: $0) }
    }

    /// `leaf.leafData()` (RFC 8785 canonical JSON).
    public static func canonicalLeafData(_ leaf: LogLeaf) throws -> Data { Data(try canonicalLeafBytes(leaf)) }

    /// The canonical leaf bytes, written directly when no value needs an escape: the keys in JCS
    /// order and plain strings. A generic canonical encode costs ~80 µs, which for the 1,000
    /// entries of a large vault was a third of the log check (issue 5, performance). Any value
    /// with `"`, `\` or a control character takes the generic path.
    static func canonicalLeafBytes(_ leaf: LogLeaf) throws -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(224)
        out.append(UInt8(ascii: "{"))
        func member(_ key: StaticString, _ value: String?) -> Bool {
            guard let value else { return true }
            if value.utf8.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C }) { return false }
            if out.count > 1 { out.append(UInt8(ascii: ",")) }
            out.append(UInt8(ascii: "\""))
            out.append(contentsOf: UnsafeBufferPointer(start: key.utf8Start, count: key.utf8CodeUnitCount))
            out.append(contentsOf: [UInt8(ascii: "\""), UInt8(ascii: ":"), UInt8(ascii: "\"")])
            out.append(contentsOf: value.utf8)
            out.append(UInt8(ascii: "\""))
            return true
        }
        guard member("envelopeSha256", leaf.envelopeSha256), member("name", leaf.name), member("subjectId", leaf.subjectId),
              member("tenantId", leaf.tenantId), member("type", leaf.type) else {
            return Array(try leaf.leafData())
        }
        out.append(UInt8(ascii: "}"))
        return out
    }

    /// Checks that the entry's rebuilt leaf is leaf `index` of `head`.
    public static func checkInclusion(_ entry: LogEntry, leafHash: MerkleHash, index: Int64, head: Checkpoint, proof: [MerkleHash]) throws {
        do { try head.verifyInclusion(leafHash: leafHash, index: UInt64(index), proof: proof) } catch {
            throw fail("\(entry.what) is not in the transparency log: the inclusion proof for leaf \(index) in tree size \(head.size) does not verify (\(error))")
        }
    }

    /// The proofs of a batch answer, in the order of `asked`: the answer must be for `treeSize`,
    /// hold exactly one proof per asked index in that order, and every position must name one
    /// of its hashes. (Whether each proof leads to the signed root is `checkInclusion`'s job.)
    public static func batchProofs(_ r: LogInclusionBatchResponse, asked: [Int64], treeSize: Int64) throws -> [[MerkleHash]] {
        guard r.treeSize == treeSize else {
            throw fail("the batch of inclusion proofs is for tree size \(r.treeSize), not the size \(treeSize) that was asked")
        }
        guard r.proofs.count == asked.count, zip(r.proofs, asked).allSatisfy({ $0.leafIndex == $1 }) else {
            throw fail("the batch of inclusion proofs does not answer the \(asked.count) leaves that were asked (\(r.proofs.count) proofs, or in another order)")
        }
        let hashes = try r.hashes.map { s in
            guard let h = MerkleHash(base64: s) else { throw fail("the batch of inclusion proofs holds a hash that is not base64 of 32 bytes") }
            return h
        }
        return try r.proofs.map { p in
            try p.path.map { i in
                guard i >= 0, i < hashes.count else {
                    throw fail("the inclusion proof for leaf \(p.leafIndex) names hash \(i) of a batch that has \(hashes.count)")
                }
                return hashes[i]
            }
        }
    }

    static func hashes(_ r: LogProofResponse, what: String) throws -> [MerkleHash] {
        try r.proof.map { s in
            guard let h = MerkleHash(base64: s) else { throw fail("the \(what) proof holds a hash that is not base64 of 32 bytes") }
            return h
        }
    }
}
