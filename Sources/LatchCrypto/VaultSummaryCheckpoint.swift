import Foundation

/// The signed list of a vault's live items, with the hash of each item's detail checkpoint.
public struct VaultSummaryCheckpoint: SignedStatement, JSONStatement {
    public static let statementType = "latchkey.vault-summary.v1"

    public struct Item: Sendable, Equatable, Hashable {
        public var id: String
        public var name: String
        public var type: String
        public var websites: [String]
        public var groupId: String?
        /// `ItemDetailCheckpoint.hash` of the item's current detail checkpoint.
        public var detailHash: String

        public init(id: String, name: String, type: String, websites: [String], groupId: String?, detailHash: String) {
            self.id = id
            self.name = name
            self.type = type
            self.websites = websites
            self.groupId = groupId
            self.detailHash = detailHash
        }
    }

    public var vaultId: String
    public var version: Int
    public var name: String
    public var dataClassification: String
    public var currentDekVersion: Int
    public var items: [Item]

    public init(vaultId: String, version: Int, name: String, dataClassification: String, currentDekVersion: Int, items: [Item]) {
        self.vaultId = vaultId
        self.version = version
        self.name = name
        self.dataClassification = dataClassification
        self.currentDekVersion = currentDekVersion
        self.items = items
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
            "name": .string(name),
            "dataClassification": .string(dataClassification),
            "currentDekVersion": .integer(currentDekVersion),
            "items": .array(items.map { item in
                .object([
                    "id": .string(item.id),
                    "name": .string(item.name),
                    "type": .string(item.type),
                    "websites": .array(item.websites.map(JSONValue.string)),
                    "groupId": item.groupId.map(JSONValue.string) ?? .null,
                    "detailHash": .string(item.detailHash),
                ])
            }),
        ])
    }

    init(jsonValue: JSONValue) throws {
        var r = try JSONObjectReader(jsonValue, what: "vault summary")
        try r.expectType(Self.statementType)
        vaultId = try r.string("vaultId")
        version = try r.int("version")
        name = try r.string("name")
        dataClassification = try r.string("dataClassification")
        currentDekVersion = try r.int("currentDekVersion")
        items = try r.array("items").map { v in
            var ir = try JSONObjectReader(v, what: "vault summary item")
            let item = try Item(id: ir.string("id"), name: ir.string("name"), type: ir.string("type"),
                                websites: ir.stringArray("websites"), groupId: ir.optionalString("groupId"),
                                detailHash: ir.string("detailHash"))
            try ir.finish()
            return item
        }
        try r.finish()
    }

    /// Throws unless this checkpoint may follow `previous` (nil: this is the vault's first):
    /// same vault, version exactly one more (the first is 1), DEK version never going back,
    /// and item ids unique.
    public func checkFollows(_ previous: VaultSummaryCheckpoint?) throws {
        guard Set(items.map(\.id)).count == items.count else {
            throw LatchCryptoError.versionChain("vault \(vaultId) summary v\(version) lists an item twice")
        }
        guard currentDekVersion >= 1 else {
            throw LatchCryptoError.versionChain("vault \(vaultId) summary v\(version) names DEK version \(currentDekVersion); versions start at 1")
        }
        guard let previous else {
            guard version == 1 else {
                throw LatchCryptoError.versionChain("vault \(vaultId): the first summary must be version 1, got \(version)")
            }
            return
        }
        guard previous.vaultId == vaultId else {
            throw LatchCryptoError.versionChain("summary of vault \(vaultId) cannot follow one of vault \(previous.vaultId)")
        }
        guard previous.version < Int.max, version == previous.version + 1 else {
            throw LatchCryptoError.versionChain("vault \(vaultId): summary v\(version) does not follow v\(previous.version) (expected v\(previous.version &+ 1)); a rollback or a fork")
        }
        guard currentDekVersion >= previous.currentDekVersion else {
            throw LatchCryptoError.versionChain("vault \(vaultId): DEK version went back from \(previous.currentDekVersion) to \(currentDekVersion)")
        }
    }
}
