import Crypto
import Foundation

/// An X25519 identity: 32 random bytes, written as Bech32 `AGE-SECRET-KEY-1…` (upper case).
///
/// Its description never shows the secret; use `string` deliberately when you must store it.
public struct AgeX25519Identity: AgeIdentity, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    static let hrp = "age-secret-key-"
    private let secret: [UInt8]
    private let privateKey: Curve25519.KeyAgreement.PrivateKey
    /// The public key, kept: every unwrap hashes it into the wrapping key's salt.
    private let publicKeyBytes: [UInt8]

    private init(secret: [UInt8]) throws(AgeError) {
        guard secret.count == 32,
            let key = try? Curve25519.KeyAgreement.PrivateKey(rawRepresentation: secret)
        else { throw .header("an X25519 identity must be 32 bytes") }
        self.secret = secret
        self.privateKey = key
        self.publicKeyBytes = Array(key.publicKey.rawRepresentation)
    }

    /// A new identity from the system's secure random source.
    public static func generate() -> Self {
        var rng = SystemRandomNumberGenerator()
        return generate(using: &rng)
    }

    /// A new identity from the given random source (which must be cryptographically secure
    /// outside tests).
    public static func generate(using rng: inout some RandomNumberGenerator) -> Self {
        // 32 bytes always make a valid X25519 scalar, so this cannot fail.
        while true {
            if let identity = try? Self(secret: AgePrimitives.randomBytes(32, using: &rng)) { return identity }
        }
    }

    /// Parses `AGE-SECRET-KEY-1…` (Bech32, either all upper or all lower case). Surrounding
    /// whitespace is not accepted: trim key files before calling.
    public init(string: String) throws {
        guard let (hrp, data) = Bech32.decode(string), hrp == Self.hrp else {
            throw AgeError.header("not an age X25519 identity (expected AGE-SECRET-KEY-1…)")
        }
        try self.init(secret: data)
    }

    /// Parses an identity file as `age-keygen` writes it: one `AGE-SECRET-KEY-1…` per line,
    /// with blank lines and `#` comment lines ignored and surrounding whitespace (also CR)
    /// trimmed. Throws when a line is not an identity or there is none.
    public static func parseKeyFile(_ text: String) throws -> [AgeX25519Identity] {
        var identities: [AgeX25519Identity] = []
        for (number, rawLine) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let line = rawLine.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty || line.hasPrefix("#") { continue }
            do {
                identities.append(try AgeX25519Identity(string: line))
            } catch {
                throw AgeError.header("key file line \(number + 1) is not an AGE-SECRET-KEY-1… identity")
            }
        }
        guard !identities.isEmpty else { throw AgeError.header("key file holds no AGE-SECRET-KEY-1… identity") }
        return identities
    }

    /// The Bech32 encoding, `AGE-SECRET-KEY-1…` in upper case. This is the secret key.
    public var string: String { Bech32.encode(hrp: Self.hrp, data: secret, uppercase: true) }

    /// The public recipient for this identity.
    public var recipient: AgeX25519Recipient {
        AgeX25519Recipient(publicKey: privateKey.publicKey)
    }

    public var description: String { "AgeX25519Identity(recipient: \(recipient.string))" }
    public var debugDescription: String { description }
}

/// An X25519 recipient: a Curve25519 public key, written as Bech32 `age1…` (lower case).
public struct AgeX25519Recipient: AgeRecipient, Sendable, Hashable, CustomStringConvertible {
    static let hrp = "age"
    let publicKeyBytes: [UInt8]

    init(publicKey: Curve25519.KeyAgreement.PublicKey) {
        publicKeyBytes = Array(publicKey.rawRepresentation)
    }

    /// Parses `age1…` (Bech32, either all lower or all upper case).
    public init(string: String) throws {
        guard let (hrp, data) = Bech32.decode(string), hrp == Self.hrp, data.count == 32 else {
            throw AgeError.header("not an age X25519 recipient (expected age1… with a 32-byte key)")
        }
        publicKeyBytes = data
    }

    /// The Bech32 encoding, `age1…` in lower case.
    public var string: String { Bech32.encode(hrp: Self.hrp, data: publicKeyBytes, uppercase: false) }
    public var description: String { string }
}

// MARK: - Stanza: "-> X25519 <base64 ephemeral share>" with a 32-byte body

enum X25519Stanza {
    static let type = "X25519"
    static let info = "age-encryption.org/v1/X25519"

    static func wrapKey(sharedSecret: [UInt8], share: [UInt8], recipient: [UInt8]) -> SymmetricKey {
        SymmetricKey(data: AgePrimitives.deriveKeyBytes(ikm: sharedSecret, salt: share + recipient, info: info))
    }

    /// X25519 of a scalar and a point; nil if the point is malformed or the result is all zero
    /// (a low-order point: swift-crypto does not reject it, so we do).
    static func sharedSecret(_ key: Curve25519.KeyAgreement.PrivateKey, _ point: [UInt8]) -> [UInt8]? {
        guard point.count == 32,
            let publicKey = try? Curve25519.KeyAgreement.PublicKey(rawRepresentation: point),
            let shared = try? key.sharedSecretFromKeyAgreement(with: publicKey)
        else { return nil }
        let bytes = shared.withUnsafeBytes { Array($0) }
        guard bytes.count == 32 else { return nil }
        // Constant-time check for the all-zero output.
        var accumulator: UInt8 = 0
        for byte in bytes { accumulator |= byte }
        return accumulator == 0 ? nil : bytes
    }
}

extension AgeX25519Recipient: AgeStanzaWrapping {
    var requiresSoleStanza: Bool { false }

    func wrap(fileKey: [UInt8], using rng: inout some RandomNumberGenerator) throws(AgeError) -> AgeStanza {
        for _ in 0..<8 {
            let ephemeral: Curve25519.KeyAgreement.PrivateKey
            if rng is SystemRandomNumberGenerator {
                ephemeral = Curve25519.KeyAgreement.PrivateKey()
            } else {
                let ephemeralSecret = AgePrimitives.randomBytes(32, using: &rng)
                guard let key = try? Curve25519.KeyAgreement.PrivateKey(rawRepresentation: ephemeralSecret)
                else { continue }
                ephemeral = key
            }
            let share = Array(ephemeral.publicKey.rawRepresentation)
            guard let shared = X25519Stanza.sharedSecret(ephemeral, publicKeyBytes) else {
                throw .header("recipient \(string) is a low-order point; refusing to encrypt to it")
            }
            let key = X25519Stanza.wrapKey(sharedSecret: shared, share: share, recipient: publicKeyBytes)
            let body = try AgePrimitives.seal(key: key, nonce: ageZeroNonce, plaintext: fileKey)
            return AgeStanza(type: X25519Stanza.type, arguments: [AgeBase64.encode(share, padded: false)], body: body)
        }
        throw .header("could not generate an ephemeral X25519 key")
    }
}

extension AgeX25519Identity: AgeStanzaUnwrapping {
    func unwrap(_ stanza: AgeStanza) throws(AgeError) -> [UInt8]? {
        guard stanza.type == X25519Stanza.type else { return nil }
        guard stanza.arguments.count == 1 else { throw .header("X25519 stanza must have exactly one argument") }
        guard let share = AgeBase64.decodeUnpadded(stanza.arguments[0].utf8), share.count == 32 else {
            throw .header("X25519 share is not canonical base64 of 32 bytes")
        }
        guard stanza.body.count == ageWrappedFileKeyLength else {
            throw .header("X25519 stanza body must be 32 bytes")
        }
        guard let shared = X25519Stanza.sharedSecret(privateKey, share) else {
            throw .header("X25519 share is a low-order point (all-zero shared secret)")
        }
        let key = X25519Stanza.wrapKey(sharedSecret: shared, share: share, recipient: publicKeyBytes)
        return AgePrimitives.open(key: key, nonce: ageZeroNonce, sealed: stanza.body[...])
    }
}
