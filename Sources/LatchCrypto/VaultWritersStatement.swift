import Foundation

/// "These principals may sign vault `vaultId`'s checkpoints": the vault's signed writer set,
/// version-chained. Version 1 is signed by the vault's creator, who lists itself as ADMIN;
/// each later version names the hash of the one before and is signed by a principal that
/// version lists as ADMIN. READ members are not listed: they never sign checkpoints.
///
/// A client accepts a summary or detail checkpoint only from a principal in the writer set
/// it verified, so a server that raises a member's access level in its database gains
/// nothing: only an ADMIN's private key can add a writer.
public struct VaultWritersStatement: SignedStatement, JSONStatement {
    public static let statementType = "latchkey.vault-writers.v1"

    public enum Level: String, Sendable, Equatable, Hashable, CaseIterable {
        case write = "WRITE", admin = "ADMIN"
    }

    public struct Writer: Sendable, Equatable, Hashable {
        public var principalId: String
        public var accessLevel: Level
        public init(principalId: String, accessLevel: Level) {
            self.principalId = principalId
            self.accessLevel = accessLevel
        }
    }

    public var vaultId: String
    public var version: Int
    /// `hash` of the previous version; nil exactly for version 1.
    public var previousHash: String?
    /// Sorted by principal id, one entry per principal.
    public var writers: [Writer]

    public init(vaultId: String, version: Int, previousHash: String?, writers: [Writer]) {
        self.vaultId = vaultId
        self.version = version
        self.previousHash = previousHash
        self.writers = writers.sorted { $0.principalId < $1.principalId }
    }

    /// Version 1: the creator alone, as ADMIN.
    public static func genesis(vaultId: String, creatorId: String) -> VaultWritersStatement {
        VaultWritersStatement(vaultId: vaultId, version: 1, previousHash: nil, writers: [Writer(principalId: creatorId, accessLevel: .admin)])
    }

    /// The next version, with the writer list as `edit` leaves it.
    public func next(_ edit: (inout [Writer]) -> Void) -> VaultWritersStatement {
        var list = writers
        edit(&list)
        return VaultWritersStatement(vaultId: vaultId, version: version + 1, previousHash: hash, writers: list)
    }

    /// The next version with `principalId` set to `level` (nil removes it).
    public func setting(_ principalId: String, to level: Level?) -> VaultWritersStatement {
        next { list in
            list.removeAll { $0.principalId == principalId }
            if let level { list.append(Writer(principalId: principalId, accessLevel: level)) }
        }
    }

    public func level(of principalId: String) -> Level? {
        writers.first { $0.principalId == principalId }?.accessLevel
    }

    /// Lowercase hex SHA-256 of the canonical JSON (the signed bytes); the next version's
    /// `previousHash`.
    public var hash: String { SHA256Hex.of(canonicalBytes) }

    /// Checks that `next`, signed by principal `signerId`, may follow `self` (or, when `self`
    /// is nil, may start the chain): same vault, version + 1, hash link, signer an ADMIN of
    /// the version it follows (of itself for version 1), and a well-formed writer list.
    /// The envelope's signature is the caller's to check against the signer's key.
    public static func checkLink(_ next: VaultWritersStatement, follows previous: VaultWritersStatement?, signerId: String) throws {
        let label = "vault \(next.vaultId) writer set v\(next.version)"
        guard Set(next.writers.map(\.principalId)).count == next.writers.count else {
            throw LatchCryptoError.versionChain("\(label) lists a principal twice")
        }
        guard let previous else {
            guard next.version == 1, next.previousHash == nil else {
                throw LatchCryptoError.versionChain("\(label) is not a first version (version 1 with no previousHash)")
            }
            guard next.level(of: signerId) == .admin else {
                throw LatchCryptoError.versionChain("\(label) is signed by \(signerId), which it does not list as ADMIN")
            }
            return
        }
        guard next.vaultId == previous.vaultId else {
            throw LatchCryptoError.versionChain("\(label) follows a writer set of vault \(previous.vaultId)")
        }
        guard next.version == previous.version + 1, next.previousHash == previous.hash else {
            throw LatchCryptoError.versionChain("\(label) does not follow v\(previous.version) (version or previousHash differs)")
        }
        guard previous.level(of: signerId) == .admin else {
            throw LatchCryptoError.versionChain("\(label) is signed by \(signerId), which v\(previous.version) does not list as ADMIN")
        }
    }

    // MARK: Codable and signed bytes (one definition: `jsonValue`)

    /// The bytes that are signed: RFC 8785 canonical JSON of the statement, `type` included.
    public var canonicalJSON: Data { canonicalBytes }

    /// Parses the statement from any valid JSON spelling of it.
    public init(json: Data) throws { try self.init(jsonValue: CanonicalJSON.parse(json)) }

    public init(from decoder: any Decoder) throws { try self.init(jsonValue: JSONValue(from: decoder)) }

    public func encode(to encoder: any Encoder) throws { try jsonValue.encode(to: encoder) }

    var jsonValue: JSONValue {
        .object([
            "type": .string(Self.statementType),
            "vaultId": .string(vaultId),
            "version": .integer(version),
            "previousHash": previousHash.map(JSONValue.string) ?? .null,
            "writers": .array(writers.map { w in
                .object(["principalId": .string(w.principalId), "accessLevel": .string(w.accessLevel.rawValue)])
            }),
        ])
    }

    init(jsonValue: JSONValue) throws {
        var r = try JSONObjectReader(jsonValue, what: "vault writer set")
        try r.expectType(Self.statementType)
        vaultId = try r.string("vaultId")
        version = try r.int("version")
        previousHash = try r.optionalString("previousHash")
        var list: [Writer] = []
        for entry in try r.array("writers") {
            var w = try JSONObjectReader(entry, what: "vault writer set entry")
            let id = try w.string("principalId")
            let text = try w.string("accessLevel")
            guard let level = Level(rawValue: text) else {
                throw LatchCryptoError.statement("vault writer set entry: accessLevel must be WRITE or ADMIN, not \(text)")
            }
            try w.finish()
            list.append(Writer(principalId: id, accessLevel: level))
        }
        guard list.map(\.principalId) == list.map(\.principalId).sorted() else {
            throw LatchCryptoError.statement("vault writer set: writers must be sorted by principalId")
        }
        writers = list
        try r.finish()
    }
}
