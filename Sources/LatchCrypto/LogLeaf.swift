import Foundation

/// What one transparency-log leaf records (issue 5). The leaf's bytes are the canonical JSON
/// (RFC 8785) of this value: the server appends them, and a client rebuilds them from what it
/// was served and checks their inclusion. It lives in the crypto core (beside the checkpoint
/// formats and `CanonicalJSON`) so that the server's domain and the client build the same
/// bytes from one definition; the Merkle leaf hash over these bytes is LatchLog's.
public struct LogLeaf: Codable, Sendable, Equatable {
    public static let publicKeyType = "latchkey.log.publicKey.v1"
    public static let checkpointType = "latchkey.log.checkpoint.v1"

    /// `latchkey.log.publicKey.v1` or `latchkey.log.checkpoint.v1`.
    public var type: String
    public var tenantId: String
    /// Public key: the principal. Checkpoint: the vault (summary) or item (detail).
    public var subjectId: String
    /// Public key: the key id (SHA-256 of its SPKI). Checkpoint: `vaultSummary`, `itemDetail` or `vaultWriters`.
    public var name: String
    /// Checkpoint: lowercase hex SHA-256 of the signed envelope exactly as stored and served; nil for keys.
    public var envelopeSha256: String?

    public init(type: String, tenantId: String, subjectId: String, name: String, envelopeSha256: String?) {
        self.type = type; self.tenantId = tenantId; self.subjectId = subjectId; self.name = name; self.envelopeSha256 = envelopeSha256
    }

    /// A public-key registration: principal `principalId` registered key `keyId`.
    public static func publicKey(tenantId: String, principalId: String, keyId: String) -> LogLeaf {
        LogLeaf(type: publicKeyType, tenantId: tenantId, subjectId: principalId, name: keyId, envelopeSha256: nil)
    }

    public enum CheckpointKind: String, Sendable { case vaultSummary, itemDetail, vaultWriters }

    /// An accepted checkpoint: `envelope` is the signed envelope's JSON text exactly as served.
    public static func checkpoint(_ kind: CheckpointKind, tenantId: String, subjectId: String, envelope: String) -> LogLeaf {
        LogLeaf(type: checkpointType, tenantId: tenantId, subjectId: subjectId, name: kind.rawValue,
                envelopeSha256: SHA256Hex.of(Data(utf8Of: envelope)))
    }

    /// The bytes the leaf hash covers.
    public func leafData() throws -> Data { try CanonicalJSON.encode(self) }
}
