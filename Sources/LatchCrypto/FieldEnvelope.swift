import Crypto
import Foundation

/// Where a field value lives. Its bytes are the envelope's associated data, so a ciphertext
/// opens only under the same vault, item, field and DEK version.
public struct EnvelopeContext: Sendable, Hashable {
    public var vaultId: String
    public var itemId: String
    public var fieldId: String
    public var dekVersion: Int

    public init(vaultId: String, itemId: String, fieldId: String, dekVersion: Int) {
        self.vaultId = vaultId
        self.itemId = itemId
        self.fieldId = fieldId
        self.dekVersion = dekVersion
    }

    /// Domain-separation label, the first component of the associated data.
    static let label = "latchkey field envelope v3"

    /// The AES-GCM associated data:
    /// `u32be(len) ‖ label ‖ u32be(len) ‖ vaultId ‖ u32be(len) ‖ itemId ‖ u32be(len) ‖ fieldId ‖ u64be(dekVersion)`,
    /// strings as UTF-8, lengths in bytes.
    public var associatedData: Data {
        var out = Data()
        for part in [Self.label, vaultId, itemId, fieldId] {
            let bytes = Array(part.utf8)
            withUnsafeBytes(of: UInt32(truncatingIfNeeded: bytes.count).bigEndian) { out.append(contentsOf: $0) }
            out.append(contentsOf: bytes)
        }
        withUnsafeBytes(of: UInt64(truncatingIfNeeded: dekVersion).bigEndian) { out.append(contentsOf: $0) }
        return out
    }

    fileprivate func validate(for key: DataEncryptionKey) throws {
        guard dekVersion >= 1 else {
            throw LatchCryptoError.envelope("DEK version \(dekVersion) is invalid; versions start at 1")
        }
        guard key.version == dekVersion else {
            throw LatchCryptoError.envelope("the context names DEK version \(dekVersion) but the key is version \(key.version); unwrap the matching DEK")
        }
        for (name, value) in [("vaultId", vaultId), ("itemId", itemId), ("fieldId", fieldId)] where value.isEmpty {
            throw LatchCryptoError.envelope("\(name) is empty; every envelope is bound to a vault, item and field")
        }
    }
}

/// A field value encrypted under a vault DEK: AES-256-GCM, 96-bit random IV, 128-bit tag.
/// Wire form (exact bytes, nothing else accepted): `{"v":3,"iv":"<b64>","t":"<b64>","d":"<b64>"}`.
public struct FieldEnvelope: Sendable, Hashable {
    public static let version = 3

    public let iv: Data
    public let tag: Data
    public let ciphertext: Data

    private init(iv: Data, tag: Data, ciphertext: Data) {
        self.iv = iv
        self.tag = tag
        self.ciphertext = ciphertext
    }

    /// Parses the wire form. Only the exact serialisation this type writes is accepted (member
    /// order v, iv, t, d; no whitespace; canonical padded base64), so one envelope has one
    /// string and one `sha256Hex`.
    public init(string: String) throws {
        let value: JSONValue
        do {
            value = try CanonicalJSON.parse(Data(utf8Of: string))
        } catch {
            throw LatchCryptoError.envelope("not JSON: \(error)")
        }
        guard case .object(let m) = value else { throw LatchCryptoError.envelope("not a JSON object") }
        guard case .number(let v)? = m["v"] else { throw LatchCryptoError.envelope("missing version field 'v'") }
        guard v == Double(Self.version) else {
            throw LatchCryptoError.envelope("envelope version \(v) is not supported; this build reads version 3")
        }
        guard m.count == 4, case .string(let ivText)? = m["iv"], case .string(let tText)? = m["t"],
              case .string(let dText)? = m["d"]
        else { throw LatchCryptoError.envelope("a v3 envelope has exactly the string fields iv, t and d") }
        guard let iv = Base64.decodeStrict(ivText), iv.count == 12 else {
            throw LatchCryptoError.envelope("'iv' must be 12 bytes in canonical base64")
        }
        guard let tag = Base64.decodeStrict(tText), tag.count == 16 else {
            throw LatchCryptoError.envelope("'t' must be 16 bytes in canonical base64")
        }
        guard let d = Base64.decodeStrict(dText) else { throw LatchCryptoError.envelope("'d' is not canonical base64") }
        self.init(iv: iv, tag: tag, ciphertext: d)
        guard self.string == string else {
            throw LatchCryptoError.envelope("not in the canonical v3 form {\"v\":3,\"iv\":…,\"t\":…,\"d\":…} (no whitespace, this member order)")
        }
    }

    public var string: String {
        "{\"v\":3,\"iv\":\"\(iv.base64EncodedString())\",\"t\":\"\(tag.base64EncodedString())\",\"d\":\"\(ciphertext.base64EncodedString())\"}"
    }

    /// Lowercase hex SHA-256 of `string`'s UTF-8 bytes (the `envelopeHash` of item details).
    public var sha256Hex: String { SHA256Hex.of(Data(utf8Of: string)) }

    /// Lowercase hex SHA-256 of `text` as served, unparsed: equal to a signed `envelopeHash`
    /// only for the exact canonical envelope that was signed.
    public static func sha256Hex(ofServed text: String) -> String { SHA256Hex.of(Data(utf8Of: text)) }

    public static func seal(_ plaintext: some DataProtocol, key: DataEncryptionKey, context: EnvelopeContext,
                            using rng: inout some RandomNumberGenerator) throws -> FieldEnvelope {
        try context.validate(for: key)
        var ivBytes = [UInt8](repeating: 0, count: 12)
        var word = rng.next()
        for i in 0..<12 {
            if i == 8 { word = rng.next() }
            ivBytes[i] = UInt8(truncatingIfNeeded: word)
            word >>= 8
        }
        do {
            let box = try AES.GCM.seal(plaintext, using: key.key, nonce: AES.GCM.Nonce(data: ivBytes),
                                       authenticating: context.associatedData)
            return FieldEnvelope(iv: Data(ivBytes), tag: box.tag, ciphertext: box.ciphertext)
        } catch {
            throw LatchCryptoError.envelope("AES-GCM seal failed: \(error)")
        }
    }

    public static func seal(_ plaintext: some DataProtocol, key: DataEncryptionKey,
                            context: EnvelopeContext) throws -> FieldEnvelope {
        var rng = SystemRandomNumberGenerator()
        return try seal(plaintext, key: key, context: context, using: &rng)
    }

    public func open(key: DataEncryptionKey, context: EnvelopeContext) throws -> Data {
        try context.validate(for: key)
        do {
            let box = try AES.GCM.SealedBox(nonce: AES.GCM.Nonce(data: iv), ciphertext: ciphertext, tag: tag)
            return try AES.GCM.open(box, using: key.key, authenticating: context.associatedData)
        } catch {
            throw LatchCryptoError.envelope("authentication failed: the envelope was altered, or belongs to another vault, item, field or DEK version")
        }
    }
}
