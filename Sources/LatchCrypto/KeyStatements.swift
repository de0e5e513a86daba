import Foundation

/// "I wrapped DEK version `dekVersion` of vault `vaultId` to key `recipientKeyId`, and the
/// wrapped bytes hash to `wrappedKeyHash`." Signed by the member who made the wrap.
public struct WrappedKeyStatement: SignedStatement, JSONStatement {
    public static let statementType = "latchkey.wrapped-key.v1"

    public var vaultId: String
    public var dekVersion: Int
    public var recipientKeyId: String
    /// Lowercase hex SHA-256 of the wrapped (RSA-OAEP) DEK bytes.
    public var wrappedKeyHash: String

    public init(vaultId: String, dekVersion: Int, recipientKeyId: String, wrappedKeyHash: String) {
        self.vaultId = vaultId
        self.dekVersion = dekVersion
        self.recipientKeyId = recipientKeyId
        self.wrappedKeyHash = wrappedKeyHash
    }

    /// Builds the statement for `wrappedKey`, hashing it.
    public init(vaultId: String, dekVersion: Int, recipientKeyId: String, wrappedKey: Data) {
        self.init(vaultId: vaultId, dekVersion: dekVersion, recipientKeyId: recipientKeyId,
                  wrappedKeyHash: SHA256Hex.of(wrappedKey))
    }

    /// Throws unless `wrappedKey` is the wrap this statement describes.
    public func checkMatches(wrappedKey: Data, recipient: PrincipalPublicKey) throws {
        try checkMatches(wrappedKey: wrappedKey, recipientKeyId: recipient.keyId)
    }

    /// The same check by the recipient's key id alone.
    public func checkMatches(wrappedKey: Data, recipientKeyId keyId: String) throws {
        guard keyId == recipientKeyId else {
            throw LatchCryptoError.wrap("the wrap statement names recipient \(recipientKeyId), not \(keyId)")
        }
        guard SHA256Hex.of(wrappedKey) == wrappedKeyHash else {
            throw LatchCryptoError.wrap("the wrapped DEK does not match the signed wrap statement")
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
            "dekVersion": .integer(dekVersion),
            "recipientKeyId": .string(recipientKeyId),
            "wrappedKeyHash": .string(wrappedKeyHash),
        ])
    }

    init(jsonValue: JSONValue) throws {
        var r = try JSONObjectReader(jsonValue, what: "wrapped-key statement")
        try r.expectType(Self.statementType)
        vaultId = try r.string("vaultId")
        dekVersion = try r.int("dekVersion")
        recipientKeyId = try r.string("recipientKeyId")
        wrappedKeyHash = try r.string("wrappedKeyHash")
        try r.finish()
    }
}

/// "Principal `principalId` replaces key `previousKeyId` with `newKeyId`." Signed by the
/// previous key, which proves continuity.
public struct KeyRotationStatement: SignedStatement, JSONStatement {
    public static let statementType = "latchkey.key-rotation.v1"

    public var principalId: String
    public var previousKeyId: String
    public var newKeyId: String

    public init(principalId: String, previousKeyId: String, newKeyId: String) {
        self.principalId = principalId
        self.previousKeyId = previousKeyId
        self.newKeyId = newKeyId
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
            "principalId": .string(principalId),
            "previousKeyId": .string(previousKeyId),
            "newKeyId": .string(newKeyId),
        ])
    }

    init(jsonValue: JSONValue) throws {
        var r = try JSONObjectReader(jsonValue, what: "key-rotation statement")
        try r.expectType(Self.statementType)
        principalId = try r.string("principalId")
        previousKeyId = try r.string("previousKeyId")
        newKeyId = try r.string("newKeyId")
        try r.finish()
    }
}

extension SignedEnvelope where Statement == KeyRotationStatement {
    /// Verifies a rotation from `previous` to `new`: signed by `previous`, naming both keys,
    /// and the key actually changes.
    public func verifyRotation(from previous: PrincipalPublicKey, to new: PrincipalPublicKey) throws {
        try verify(with: previous)
        guard checkpoint.previousKeyId == previous.keyId, checkpoint.newKeyId == new.keyId else {
            throw LatchCryptoError.versionChain("the rotation statement names keys \(checkpoint.previousKeyId) → \(checkpoint.newKeyId), not \(previous.keyId) → \(new.keyId)")
        }
        guard previous.keyId != new.keyId else {
            throw LatchCryptoError.versionChain("a rotation must change the key")
        }
    }
}
