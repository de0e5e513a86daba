import Foundation

/// A signed tree head body in the C2SP tlog-checkpoint format (c2sp.org/tlog-checkpoint):
///
///     <origin>\n
///     <tree size, ASCII decimal, no leading zeros>\n
///     <root hash, standard base64>\n
///     [<extension line>\n ...]
///
/// Parsing is strict: at least three lines, every line non-empty, the size without sign or
/// leading zeros and within UInt64, the root canonical base64 of exactly 32 bytes.
public struct Checkpoint: Sendable, Hashable {
    /// The log's identity, e.g. `latchkey.example/log`.
    public let origin: String
    /// The number of leaves in the tree.
    public let size: UInt64
    /// The RFC 6962 root hash of the tree at `size`.
    public let root: MerkleHash
    /// Opaque extension lines (the spec does not recommend them; Latchkey writes none).
    public let extensionLines: [String]

    public init(origin: String, size: UInt64, root: MerkleHash, extensionLines: [String] = []) throws {
        guard !origin.isEmpty else { throw LogError.checkpoint("the origin is empty") }
        for line in [origin] + extensionLines {
            guard !line.isEmpty else { throw LogError.checkpoint("an extension line is empty") }
            for s in line.unicodeScalars where s.value < 0x20 {
                throw LogError.checkpoint("a line contains a newline or control character")
            }
        }
        self.origin = origin
        self.size = size
        self.root = root
        self.extensionLines = extensionLines
    }

    /// The note text (ends with a newline).
    public var text: String {
        ([origin, String(size), root.base64] + extensionLines).map { $0 + "\n" }.joined()
    }

    /// Parses a checkpoint note text.
    public init(text: String) throws {
        guard text.hasSuffix("\n") else { throw LogError.checkpoint("the text does not end with a newline") }
        let lines = text.dropLast().split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard lines.count >= 3 else {
            throw LogError.checkpoint("needs at least 3 lines (origin, size, root), found \(lines.count)")
        }
        guard lines.allSatisfy({ !$0.isEmpty }) else { throw LogError.checkpoint("contains an empty line") }
        let sizeText = lines[1]
        guard sizeText.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
              sizeText == "0" || !sizeText.hasPrefix("0"),
              let size = UInt64(sizeText)
        else { throw LogError.checkpoint("tree size \"\(sizeText.prefix(32))\" is not a decimal number without leading zeros") }
        guard let root = MerkleHash(base64: lines[2]) else {
            throw LogError.checkpoint("root hash is not canonical base64 of 32 bytes")
        }
        try self.init(origin: lines[0], size: size, root: root, extensionLines: Array(lines[3...]))
    }

    /// Signs this checkpoint as a signed note.
    public func sign(with signers: [NoteSigner]) throws -> SignedNote {
        try SignedNote.sign(text: text, with: signers)
    }

    /// Signs this checkpoint and returns the encoded note.
    public func signedNote(with signer: NoteSigner) throws -> String {
        try sign(with: [signer]).encoded
    }

    /// Opens a signed checkpoint: parses the note, verifies it with `verifiers` (see
    /// ``SignedNote/verify(with:)``), parses the text and checks that the origin is the expected one.
    public static func open(_ encodedNote: String, origin: String, verifiers: [NoteVerifier]) throws -> Checkpoint {
        let note = try SignedNote(parsing: encodedNote)
        try note.verify(with: verifiers)
        let checkpoint = try Checkpoint(text: note.text)
        guard checkpoint.origin == origin else {
            throw LogError.checkpoint("origin is \"\(checkpoint.origin)\", expected \"\(origin)\"")
        }
        return checkpoint
    }
}

extension Checkpoint {
    /// Checks that `leafHash` is leaf `index` of the tree this checkpoint commits to.
    public func verifyInclusion(leafHash: MerkleHash, index: UInt64, proof: [MerkleHash]) throws {
        try MerkleProof.verifyInclusion(index: index, size: size, leafHash: leafHash, proof: proof, root: root)
    }

    /// Checks that this checkpoint extends `older` (same origin, not smaller, consistent roots).
    /// Every tree extends the empty tree, so an `older` of size 0 needs an empty proof and
    /// nothing else (the bare ``MerkleProof/verifyConsistency(size1:size2:proof:root1:root2:)``
    /// refuses size 0).
    public func verifyConsistency(from older: Checkpoint, proof: [MerkleHash]) throws {
        guard older.origin == origin else {
            throw LogError.checkpoint("checkpoints come from different logs (\"\(older.origin)\" and \"\(origin)\")")
        }
        guard older.size <= size else {
            throw LogError.size("the newer checkpoint (size \(size)) is smaller than the older one (size \(older.size)): the log rolled back")
        }
        if older.size == 0 {
            guard proof.isEmpty else { throw LogError.proof("a consistency proof from the empty tree must be empty") }
            guard older.root == MerkleHash.emptyRoot else { throw LogError.proof("a checkpoint of size 0 must carry the empty-tree root") }
            return
        }
        try MerkleProof.verifyConsistency(size1: older.size, size2: size, proof: proof, root1: older.root, root2: root)
    }
}
