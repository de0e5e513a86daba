import Foundation

/// A statement that principals sign. `statementType` is written as the `type` member of the
/// signed JSON, so a signature over one kind of statement never verifies as another.
public protocol SignedStatement: Codable, Sendable, Equatable {
    static var statementType: String { get }
    /// The exact bytes a signature over this statement covers: its canonical JSON (RFC 8785).
    func canonicalSignedBytes() throws -> Data
    /// The statement from the `checkpoint` member of an envelope that `SignedEnvelope.decode(text:)`
    /// parsed. The crypto core's statements read it directly; the default goes through JSONDecoder.
    init(statementJSON: StatementJSON) throws
}

/// A statement's JSON as an envelope's parser read it (opaque outside the crypto core).
public struct StatementJSON: Sendable {
    let value: JSONValue
}

extension SignedStatement {
    public func canonicalSignedBytes() throws -> Data { try CanonicalJSON.encode(self) }

    public init(statementJSON: StatementJSON) throws {
        self = try JSONDecoder().decode(Self.self, from: Data(CanonicalJSON.serialize(statementJSON.value)))
    }
}

/// Statements are built from and read into a JSON tree (internal), which gives one source of
/// truth for both the wire form and the signed canonical bytes.
protocol JSONStatement: SignedStatement {
    var jsonValue: JSONValue { get }
    init(jsonValue: JSONValue) throws
}

extension JSONStatement {
    var canonicalBytes: Data { Data(CanonicalJSON.serialize(jsonValue)) }
    /// Serialised from the statement's own JSON tree. (A protocol witness, not an `as?` cast:
    /// each cast to this protocol scans every conformance record in the binary once per type,
    /// a measurable part of a short `latch get`.)
    public func canonicalSignedBytes() throws -> Data { canonicalBytes }

    public init(statementJSON: StatementJSON) throws { try self.init(jsonValue: statementJSON.value) }
}

/// `{checkpoint, signerKeyId, signature}`: a statement, the key id of the signer, and the
/// base64 RSA-PSS-SHA256 signature over the statement's canonical JSON.
public struct SignedEnvelope<Statement: SignedStatement>: Codable, Sendable, Equatable {
    public let checkpoint: Statement
    public let signerKeyId: String
    public let signature: String

    public init(checkpoint: Statement, signerKeyId: String, signature: String) {
        self.checkpoint = checkpoint
        self.signerKeyId = signerKeyId
        self.signature = signature
    }

    /// Decodes an envelope's JSON text as `JSONDecoder` does, reading it with the crypto core's
    /// own strict parser when it can: JSONDecoder's first use of each envelope type in a short
    /// process (`latch get`) costs more than the reading itself. Text the strict parser refuses (a
    /// duplicate member, a lone surrogate escape...) goes to JSONDecoder, so the value, or the
    /// error, is JSONDecoder's. Members other than the three are ignored, as JSONDecoder does.
    public static func decode(text: String) throws -> Self {
        if let direct = try? readDirect(text) { return direct }
        return try JSONDecoder().decode(Self.self, from: Data(utf8Of: text))
    }

    static func readDirect(_ text: String) throws -> Self? {
        var parser = JSONParser(bytes: Array(text.utf8))
        guard case .object(let members) = try parser.parseDocument(), let checkpoint = members["checkpoint"],
              case .string(let signerKeyId)? = members["signerKeyId"], case .string(let signature)? = members["signature"]
        else { return nil }
        return Self(checkpoint: try Statement(statementJSON: StatementJSON(value: checkpoint)), signerKeyId: signerKeyId, signature: signature)
    }

    /// Names this exact signature check (hex SHA-256 over a domain prefix, the signer's key id,
    /// the signature and the signed bytes): equal only for the same key id, signature and
    /// statement. What `UnwrapMemo` keeps of a check that passed.
    public func signatureDigest() throws -> String {
        var input = Array("latchkey verified signature v1".utf8)
        input.append(0)
        input.append(contentsOf: signerKeyId.utf8)
        input.append(0)
        input.append(contentsOf: signature.utf8)
        input.append(0)
        input.append(contentsOf: try Self.signedBytes(of: checkpoint))
        return SHA256Hex.of(input)
    }

    /// The exact bytes a signature covers.
    public static func signedBytes(of statement: Statement) throws -> Data {
        try statement.canonicalSignedBytes()
    }

    public static func sign(_ statement: Statement, with key: PrincipalPrivateKey) throws -> Self {
        let sig = try key.sign(signedBytes(of: statement))
        return Self(checkpoint: statement, signerKeyId: key.publicKey.keyId, signature: sig.base64EncodedString())
    }

    /// Throws unless `key` is the signer named in the envelope and the signature verifies over
    /// the canonical JSON of `checkpoint`.
    public func verify(with key: PrincipalPublicKey) throws {
        guard signerKeyId == key.keyId else {
            throw LatchCryptoError.signature("signed by key \(signerKeyId), not by the expected key \(key.keyId)")
        }
        guard let sig = Base64.decodeStrict(signature) else {
            throw LatchCryptoError.signature("the signature is not canonical base64")
        }
        guard key.isValidSignature(sig, for: try Self.signedBytes(of: checkpoint)) else {
            throw LatchCryptoError.signature("the \(Statement.statementType) signature does not verify: the statement was altered or signed by another key")
        }
    }

    /// Verifies against whichever of `keys` has the id named in `signerKeyId` (for example a
    /// vault's member keys from the trust store) and returns that key.
    @discardableResult
    public func verify(trusting keys: some Sequence<PrincipalPublicKey>) throws -> PrincipalPublicKey {
        guard let key = keys.first(where: { $0.keyId == signerKeyId }) else {
            throw LatchCryptoError.signature("signer \(signerKeyId) is not among the trusted keys")
        }
        try verify(with: key)
        return key
    }

    /// The whole envelope as RFC 8785 canonical JSON (a stable wire form).
    public func canonicalJSON() throws -> Data {
        let statement = try CanonicalJSON.parse(Self.signedBytes(of: checkpoint))
        return Data(CanonicalJSON.serialize(.object([
            "checkpoint": statement, "signerKeyId": .string(signerKeyId), "signature": .string(signature),
        ])))
    }
}
