/// Every failure in the transparency-log layer. The case names the part that failed; the message says
/// what was wrong and, where it helps, what to do about it. No case ever carries key material.
public enum LogError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A hash had the wrong length or encoding (a Merkle hash is exactly 32 bytes).
    case hash(String)
    /// A leaf index, tree size or size pair is out of range for the requested operation.
    case size(String)
    /// An inclusion or consistency proof did not verify, or is malformed.
    case proof(String)
    /// The hash store failed, returned the wrong number of hashes, or lacks a hash it should hold.
    case storage(String)
    /// The checkpoint (signed tree head) text is malformed or is not the one expected.
    case checkpoint(String)
    /// The signed-note envelope is malformed (encoding, separator, signature-line syntax).
    case note(String)
    /// A signature is missing, does not verify, or no trusted key signed the note.
    case signature(String)
    /// A note signer or verifier key string is malformed.
    case key(String)

    public var description: String {
        switch self {
        case .hash(let m): return "transparency log: hash: \(m)"
        case .size(let m): return "transparency log: size: \(m)"
        case .proof(let m): return "transparency log: proof: \(m)"
        case .storage(let m): return "transparency log: storage: \(m)"
        case .checkpoint(let m): return "transparency log: checkpoint: \(m)"
        case .note(let m): return "transparency log: signed note: \(m)"
        case .signature(let m): return "transparency log: note signature: \(m)"
        case .key(let m): return "transparency log: note key: \(m)"
        }
    }
}
