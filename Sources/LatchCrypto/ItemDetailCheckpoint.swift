import Foundation

/// The signed metadata of one item and the hash of each field's current envelope.
public struct ItemDetailCheckpoint: SignedStatement, JSONStatement {
    public static let statementType = "latchkey.item-detail.v1"

    public struct Field: Sendable, Equatable, Hashable {
        public var id: String
        public var name: String
        public var type: String
        public var order: Int
        public var isEnvironmentVariable: Bool
        /// `FieldEnvelope.sha256Hex` of the field's current value.
        public var envelopeHash: String

        public init(id: String, name: String, type: String, order: Int, isEnvironmentVariable: Bool, envelopeHash: String) {
            self.id = id
            self.name = name
            self.type = type
            self.order = order
            self.isEnvironmentVariable = isEnvironmentVariable
            self.envelopeHash = envelopeHash
        }
    }

    public var vaultItemId: String
    public var vaultId: String
    public var version: Int
    public var name: String
    /// The item's type (for example "LOGIN"). In JSON it is the member `itemType`, because
    /// `type` names the statement type.
    public var type: String
    public var websites: [String]
    public var groupId: String?
    public var fields: [Field]

    public init(vaultItemId: String, vaultId: String, version: Int, name: String, type: String,
                websites: [String], groupId: String?, fields: [Field]) {
        self.vaultItemId = vaultItemId
        self.vaultId = vaultId
        self.version = version
        self.name = name
        self.type = type
        self.websites = websites
        self.groupId = groupId
        self.fields = fields
    }

    /// The `detailHash` a vault summary lists for this item: lowercase hex SHA-256 of this
    /// statement's canonical JSON (the signed bytes).
    public var hash: String { SHA256Hex.of(canonicalBytes) }

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
            "vaultItemId": .string(vaultItemId),
            "vaultId": .string(vaultId),
            "version": .integer(version),
            "name": .string(name),
            "itemType": .string(type),
            "websites": .array(websites.map(JSONValue.string)),
            "groupId": groupId.map(JSONValue.string) ?? .null,
            "fields": .array(fields.map { f in
                .object([
                    "id": .string(f.id),
                    "name": .string(f.name),
                    "type": .string(f.type),
                    "order": .integer(f.order),
                    "isEnvironmentVariable": .bool(f.isEnvironmentVariable),
                    "envelopeHash": .string(f.envelopeHash),
                ])
            }),
        ])
    }

    init(jsonValue: JSONValue) throws {
        var r = try JSONObjectReader(jsonValue, what: "item detail")
        try r.expectType(Self.statementType)
        vaultItemId = try r.string("vaultItemId")
        vaultId = try r.string("vaultId")
        version = try r.int("version")
        name = try r.string("name")
        type = try r.string("itemType")
        websites = try r.stringArray("websites")
        groupId = try r.optionalString("groupId")
        fields = try r.array("fields").map { v in
            var fr = try JSONObjectReader(v, what: "item detail field")
            let f = try Field(id: fr.string("id"), name: fr.string("name"), type: fr.string("type"),
                              order: fr.int("order"), isEnvironmentVariable: fr.bool("isEnvironmentVariable"),
                              envelopeHash: fr.string("envelopeHash"))
            try fr.finish()
            return f
        }
        try r.finish()
    }

    /// Throws unless this checkpoint may follow `previous` (nil: the item's first): same item
    /// and vault, version exactly one more (the first is 1), field ids unique.
    public func checkFollows(_ previous: ItemDetailCheckpoint?) throws {
        guard Set(fields.map(\.id)).count == fields.count else {
            throw LatchCryptoError.versionChain("item \(vaultItemId) detail v\(version) lists a field twice")
        }
        guard let previous else {
            guard version == 1 else {
                throw LatchCryptoError.versionChain("item \(vaultItemId): the first detail checkpoint must be version 1, got \(version)")
            }
            return
        }
        guard previous.vaultItemId == vaultItemId, previous.vaultId == vaultId else {
            throw LatchCryptoError.versionChain("detail of item \(vaultItemId) in vault \(vaultId) cannot follow one of item \(previous.vaultItemId) in vault \(previous.vaultId)")
        }
        guard previous.version < Int.max, version == previous.version + 1 else {
            throw LatchCryptoError.versionChain("item \(vaultItemId): detail v\(version) does not follow v\(previous.version) (expected v\(previous.version &+ 1)); a rollback or a fork")
        }
    }
}
