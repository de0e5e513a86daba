import Crypto
import Foundation

/// A post-quantum hybrid identity (ML-KEM-768 + X25519, the X-Wing KEM): a 32-byte seed,
/// written as Bech32 `AGE-SECRET-KEY-PQ-1…` (upper case).
///
/// Its description never shows the secret.
public struct AgeHybridIdentity: AgeIdentity, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    static let hrp = "age-secret-key-pq-"
    private let seed: [UInt8]
    private let privateKey: XWingMLKEM768X25519.PrivateKey

    private init(seed: [UInt8]) throws(AgeError) {
        guard seed.count == 32,
            let key = try? XWingMLKEM768X25519.PrivateKey(seedRepresentation: seed, publicKey: nil)
        else { throw .header("a hybrid identity must be a 32-byte seed") }
        self.seed = seed
        self.privateKey = key
    }

    public static func generate() -> Self {
        var rng = SystemRandomNumberGenerator()
        return generate(using: &rng)
    }

    public static func generate(using rng: inout some RandomNumberGenerator) -> Self {
        while true {
            if let identity = try? Self(seed: AgePrimitives.randomBytes(32, using: &rng)) { return identity }
        }
    }

    /// Parses `AGE-SECRET-KEY-PQ-1…`.
    public init(string: String) throws {
        guard let (hrp, data) = Bech32.decode(string), hrp == Self.hrp else {
            throw AgeError.header("not an age hybrid identity (expected AGE-SECRET-KEY-PQ-1…)")
        }
        try self.init(seed: data)
    }

    /// The Bech32 encoding, `AGE-SECRET-KEY-PQ-1…`. This is the secret key.
    public var string: String { Bech32.encode(hrp: Self.hrp, data: seed, uppercase: true) }

    public var recipient: AgeHybridRecipient {
        AgeHybridRecipient(publicKeyBytes: Array(privateKey.publicKey.rawRepresentation))
    }

    public var description: String { "AgeHybridIdentity(recipient: \(recipient.string.prefix(24))…)" }
    public var debugDescription: String { description }
}

/// A post-quantum hybrid recipient: the 1216-byte X-Wing public key (ML-KEM-768
/// encapsulation key || X25519 public key), written as Bech32 `age1pq1…` (lower case).
public struct AgeHybridRecipient: AgeRecipient, Sendable, Hashable, CustomStringConvertible {
    static let hrp = "age1pq"
    static let publicKeyLength = 1216
    let publicKeyBytes: [UInt8]

    init(publicKeyBytes: [UInt8]) { self.publicKeyBytes = publicKeyBytes }

    /// Parses `age1pq1…`.
    public init(string: String) throws {
        guard let (hrp, data) = Bech32.decode(string), hrp == Self.hrp, data.count == Self.publicKeyLength,
            (try? XWingMLKEM768X25519.PublicKey(rawRepresentation: data)) != nil
        else { throw AgeError.header("not an age hybrid recipient (expected age1pq1… with a 1216-byte key)") }
        publicKeyBytes = data
    }

    public var string: String { Bech32.encode(hrp: Self.hrp, data: publicKeyBytes, uppercase: false) }
    public var description: String { string }
}

// MARK: - Stanza: "-> mlkem768x25519 <base64 enc (1120 bytes)>" with a 32-byte body
//
// The body is HPKE (RFC 9180) base-mode SealBase of the file key with KEM X-Wing
// (MLKEM768-X25519), KDF HKDF-SHA256, AEAD ChaCha20-Poly1305, info
// "age-encryption.org/mlkem768x25519" and empty AAD; enc is the encapsulated key.

enum HybridStanza {
    static let type = "mlkem768x25519"
    static let info = Data("age-encryption.org/mlkem768x25519".utf8)
    static let encLength = 1120
    static let x25519ShareOffset = 1088
    static let ciphersuite = HPKE.Ciphersuite(kem: .XWingMLKEM768X25519, kdf: .HKDF_SHA256, aead: .chaChaPoly)

    /// Any fixed scalar: X25519 with a clamped scalar gives all zeros exactly for low-order
    /// points, whatever the scalar.
    static let probe = try? Curve25519.KeyAgreement.PrivateKey(rawRepresentation: [UInt8](repeating: 0x5a, count: 32))

    /// True when the X25519 part of `enc` is a low-order point (all-zero shared secret).
    static func hasLowOrderShare(_ enc: [UInt8]) -> Bool {
        guard let probe else { return true }
        return X25519Stanza.sharedSecret(probe, Array(enc[x25519ShareOffset...])) == nil
    }
}

extension AgeHybridRecipient: AgeStanzaWrapping {
    var requiresSoleStanza: Bool { false }

    /// The X-Wing encapsulation draws its randomness from swift-crypto's system source, not
    /// from `rng`.
    func wrap(fileKey: [UInt8], using rng: inout some RandomNumberGenerator) throws(AgeError) -> AgeStanza {
        do {
            let key = try XWingMLKEM768X25519.PublicKey(rawRepresentation: publicKeyBytes)
            var sender = try HPKE.Sender(recipientKey: key, ciphersuite: HybridStanza.ciphersuite, info: HybridStanza.info)
            let body = try sender.seal(fileKey, authenticating: Data())
            return AgeStanza(
                type: HybridStanza.type, arguments: [AgeBase64.encode(Array(sender.encapsulatedKey), padded: false)],
                body: Array(body))
        } catch {
            throw .header("hybrid (ML-KEM-768+X25519) encapsulation failed: \(error)")
        }
    }
}

extension AgeHybridIdentity: AgeStanzaUnwrapping {
    func unwrap(_ stanza: AgeStanza) throws(AgeError) -> [UInt8]? {
        guard stanza.type == HybridStanza.type else { return nil }
        guard stanza.arguments.count == 1 else { throw .header("mlkem768x25519 stanza must have exactly one argument") }
        guard let enc = AgeBase64.decodeUnpadded(stanza.arguments[0].utf8), enc.count == HybridStanza.encLength else {
            throw .header("mlkem768x25519 enc is not canonical base64 of 1120 bytes")
        }
        guard stanza.body.count == ageWrappedFileKeyLength else {
            throw .header("mlkem768x25519 stanza body must be 32 bytes")
        }
        guard !HybridStanza.hasLowOrderShare(enc) else {
            throw .header("mlkem768x25519 X25519 share is a low-order point (all-zero shared secret)")
        }
        do {
            var recipient = try HPKE.Recipient(
                privateKey: privateKey, ciphersuite: HybridStanza.ciphersuite, info: HybridStanza.info,
                encapsulatedKey: Data(enc))
            return Array(try recipient.open(stanza.body, authenticating: Data()))
        } catch {
            return nil
        }
    }
}
