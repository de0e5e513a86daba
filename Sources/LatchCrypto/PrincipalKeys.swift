import Crypto
import CryptoExtras
import Foundation

/// The RSA key sizes Latchkey accepts on import. New keys are 3072 bits.
let acceptedRSABits = 2048...4096

/// A principal's (user's or agent's) RSA private key. It signs statements (RSA-PSS-SHA256,
/// salt 32) and unwraps data-encryption keys (RSA-OAEP-SHA256). Never print or log it.
public struct PrincipalPrivateKey: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    private let decryptionBox: SendableBox<_RSA.Encryption.PrivateKey>
    private var decryption: _RSA.Encryption.PrivateKey { decryptionBox.value }
    /// The same key as a signing key, parsed from the same DER when first needed: swift-crypto
    /// has a type per use, each parse checks the key again, and a process that only reads
    /// secrets (`latch get`) never signs.
    private let signingBox: LazyBox<_RSA.Signing.PrivateKey>
    /// The matching public key (computed once).
    public let publicKey: PrincipalPublicKey

    private init(decryption: _RSA.Encryption.PrivateKey) throws {
        let bits = decryption.keySizeInBits
        guard acceptedRSABits.contains(bits) else { throw LatchCryptoError.keySize(bits) }
        let der = decryption.derRepresentation
        self.decryptionBox = SendableBox(decryption)
        self.signingBox = LazyBox { try _RSA.Signing.PrivateKey(derRepresentation: der) }
        self.publicKey = try PrincipalPublicKey(spkiDER: decryption.publicKey.derRepresentation)
    }

    private func signing() throws -> _RSA.Signing.PrivateKey {
        do {
            return try signingBox.value()
        } catch {
            throw LatchCryptoError.signature("the RSA private key could not be loaded for signing: \(error)")
        }
    }

    /// Generates a new key. Only 2048, 3072 (the default) and 4096 bits are offered.
    /// The randomness comes from the system generator inside swift-crypto (BoringSSL).
    public static func generate(bits: Int = 3072) throws -> PrincipalPrivateKey {
        guard [2048, 3072, 4096].contains(bits) else { throw LatchCryptoError.keySize(bits) }
        do {
            return try PrincipalPrivateKey(decryption: _RSA.Encryption.PrivateKey(keySize: .init(bitCount: bits)))
        } catch let error as LatchCryptoError {
            throw error
        } catch {
            throw LatchCryptoError.pem("RSA key generation failed: \(error)")
        }
    }

    /// Reads a PKCS#8 (`PRIVATE KEY`) or PKCS#1 (`RSA PRIVATE KEY`) PEM key of 2048 to 4096 bits.
    /// Encrypted keys are refused (decrypt them with `openssl pkey` first).
    public init(pem: String) throws {
        let block = try PEMBlock(parsing: pem)
        switch block.label {
        case "PRIVATE KEY", "RSA PRIVATE KEY": break
        case "ENCRYPTED PRIVATE KEY":
            throw LatchCryptoError.pem("encrypted private keys are not supported; decrypt with `openssl pkey` first")
        case "PUBLIC KEY", "RSA PUBLIC KEY":
            throw LatchCryptoError.pem("this is a public key ('\(block.label)'); a private key is needed")
        default:
            throw LatchCryptoError.pem("unsupported PEM type '\(block.label)'; expected 'PRIVATE KEY' (PKCS#8) or 'RSA PRIVATE KEY' (PKCS#1)")
        }
        try self.init(der: block.der, label: block.label)
    }

    /// Reads a DER private key: PKCS#8 PrivateKeyInfo or PKCS#1 RSAPrivateKey.
    public init(der: Data) throws {
        try self.init(der: der, label: "DER")
    }

    private init(der: Data, label: String) throws {
        let key: _RSA.Encryption.PrivateKey
        do {
            // The `unsafe` initialiser admits 1024-bit keys so that we can report their size
            // precisely; the size check in the designated initialiser rejects them.
            key = try _RSA.Encryption.PrivateKey(unsafeDERRepresentation: der)
        } catch {
            throw LatchCryptoError.pem("the '\(label)' block is not an RSA private key (PKCS#8 or PKCS#1)")
        }
        // (`derRepresentation` is the key's PKCS#1 RSAPrivateKey DER.)
        if label == "RSA PRIVATE KEY", key.derRepresentation != der {
            throw LatchCryptoError.pem("the 'RSA PRIVATE KEY' block does not hold PKCS#1 RSAPrivateKey DER")
        }
        if label == "PRIVATE KEY", key.derRepresentation == der {
            throw LatchCryptoError.pem("the 'PRIVATE KEY' block holds PKCS#1 DER; label it 'RSA PRIVATE KEY'")
        }
        try self.init(decryption: key)
    }

    /// PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), 64-character lines, final newline.
    public var pkcs8PEM: String {
        // swift-crypto's own PKCS#8 PEM, re-armoured in the form openssl writes.
        do {
            return PEMBlock(label: "PRIVATE KEY", der: try PEMBlock(parsing: decryption.pkcs8PEMRepresentation).der).text
        } catch {
            preconditionFailure("swift-crypto wrote PKCS#8 PEM that does not parse: \(error)")
        }
    }

    /// PKCS#1 PEM (`-----BEGIN RSA PRIVATE KEY-----`), for tools that want the traditional form.
    public var pkcs1PEM: String {
        PEMBlock(label: "RSA PRIVATE KEY", der: decryption.derRepresentation).text
    }

    public var bits: Int { decryption.keySizeInBits }

    /// Never shows key material: only the size and the public key id.
    public var description: String { "PrincipalPrivateKey(RSA-\(bits), keyId: \(publicKey.keyId), <redacted>)" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }

    /// RSASSA-PSS signature (SHA-256, MGF1-SHA-256, salt length 32) over `message`.
    /// The result is as long as the modulus (384 bytes for RSA-3072).
    public func sign(_ message: some DataProtocol) throws -> Data {
        do {
            return try signing().signature(for: SHA256.hash(data: message), padding: .PSS).rawRepresentation
        } catch let error as LatchCryptoError {
            throw error
        } catch {
            throw LatchCryptoError.signature("RSA-PSS signing failed: \(error)")
        }
    }

    /// RSA-OAEP (SHA-256, MGF1-SHA-256, empty label) decryption of any message (internal:
    /// the public API only unwraps DEKs; tests run Wycheproof through this).
    func oaepDecrypt(_ ciphertext: Data) throws -> Data {
        do {
            return try decryption.decrypt(ciphertext, padding: .PKCS1_OAEP_SHA256)
        } catch {
            throw LatchCryptoError.wrap("RSA-OAEP unwrap failed: the DEK was not wrapped to this key, or it was altered")
        }
    }

    /// Decrypts a wrapped data-encryption key (RSA-OAEP, SHA-256, MGF1-SHA-256, empty label).
    /// `version` is the DEK version the caller expects; it is carried, not checked, here
    /// (the signed wrapped-key statement binds it).
    public func unwrap(_ wrapped: Data, version: Int) throws -> DataEncryptionKey {
        guard version >= 1 else { throw LatchCryptoError.wrap("DEK version \(version) is invalid; versions start at 1") }
        guard wrapped.count == (bits + 7) / 8 else {
            throw LatchCryptoError.wrap("wrapped key is \(wrapped.count) bytes; an RSA-\(bits) wrap is \((bits + 7) / 8) bytes")
        }
        let raw = try oaepDecrypt(wrapped)
        guard raw.count == DataEncryptionKey.byteCount else {
            throw LatchCryptoError.wrap("unwrapped \(raw.count) bytes; a DEK is \(DataEncryptionKey.byteCount) bytes")
        }
        return DataEncryptionKey(key: SymmetricKey(data: raw), version: version)
    }
}

/// A principal's RSA public key, identified by `keyId` (SHA-256 of its SPKI DER).
public struct PrincipalPublicKey: Sendable, Hashable {
    private let verifying: _RSA.Signing.PublicKey
    /// SubjectPublicKeyInfo DER, as re-encoded by the library (canonical DER).
    public let spkiDER: Data

    /// Reads an SPKI (`PUBLIC KEY`) or PKCS#1 (`RSA PUBLIC KEY`) PEM key of 2048 to 4096 bits.
    public init(pem: String) throws {
        let block = try PEMBlock(parsing: pem)
        switch block.label {
        case "PUBLIC KEY":
            try self.init(spkiDER: block.der)
        case "RSA PUBLIC KEY":
            let key: _RSA.Signing.PublicKey
            do {
                key = try _RSA.Signing.PublicKey(unsafeDERRepresentation: block.der)
            } catch {
                throw LatchCryptoError.pem("the 'RSA PUBLIC KEY' block is not PKCS#1 RSAPublicKey DER")
            }
            guard key.pkcs1DERRepresentation == block.der else {
                throw LatchCryptoError.pem("the 'RSA PUBLIC KEY' block is not PKCS#1 RSAPublicKey DER")
            }
            try self.init(spkiDER: key.derRepresentation)
        case "PRIVATE KEY", "RSA PRIVATE KEY":
            throw LatchCryptoError.pem("this is a private key; give the public key ('PUBLIC KEY')")
        default:
            throw LatchCryptoError.pem("unsupported PEM type '\(block.label)'; expected 'PUBLIC KEY' (SPKI) or 'RSA PUBLIC KEY' (PKCS#1)")
        }
    }

    /// Reads SubjectPublicKeyInfo DER (rsaEncryption). The DER must be canonical: the key
    /// id is computed over these exact bytes, so one key has exactly one id.
    public init(spkiDER: Data) throws {
        let key: _RSA.Signing.PublicKey
        do {
            key = try _RSA.Signing.PublicKey(unsafeDERRepresentation: spkiDER)
        } catch {
            throw LatchCryptoError.pem("not an RSA SubjectPublicKeyInfo (SPKI) DER public key")
        }
        guard key.derRepresentation == spkiDER else {
            throw LatchCryptoError.pem("not canonical rsaEncryption SPKI DER (PKCS#1 or RSA-PSS-parameter forms are not accepted here)")
        }
        guard acceptedRSABits.contains(key.keySizeInBits) else { throw LatchCryptoError.keySize(key.keySizeInBits) }
        self.verifying = key
        self.spkiDER = spkiDER
    }

    /// SPKI PEM (`-----BEGIN PUBLIC KEY-----`), 64-character lines, final newline.
    public var pem: String { PEMBlock(label: "PUBLIC KEY", der: spkiDER).text }

    /// The key id (fingerprint): lowercase hex SHA-256 of `spkiDER`, 64 characters.
    public var keyId: String { SHA256Hex.of(spkiDER) }

    public var bits: Int { verifying.keySizeInBits }

    /// Checks an RSASSA-PSS signature (SHA-256, MGF1-SHA-256, salt length 32).
    public func isValidSignature(_ signature: Data, for message: some DataProtocol) -> Bool {
        guard signature.count == (bits + 7) / 8 else { return false }
        return verifying.isValidSignature(
            _RSA.Signing.RSASignature(rawRepresentation: signature), for: SHA256.hash(data: message), padding: .PSS)
    }

    /// Wraps a DEK to this key: RSA-OAEP, SHA-256, MGF1-SHA-256, empty label. The result is
    /// as long as the modulus and differs on every call (OAEP is randomised).
    public func wrap(_ dek: DataEncryptionKey) throws -> Data {
        // Loaded here, not with the key: a client that only verifies signatures (`latch get`)
        // would parse every directory key twice for nothing. The DER already parsed as this key.
        let encryption: _RSA.Encryption.PublicKey
        do { encryption = try _RSA.Encryption.PublicKey(derRepresentation: spkiDER) } catch {
            throw LatchCryptoError.wrap("the SPKI key could not be loaded for encryption: \(error)")
        }
        do {
            return try dek.key.withUnsafeBytes { raw in
                try encryption.encrypt(Data(raw), padding: .PKCS1_OAEP_SHA256)
            }
        } catch {
            throw LatchCryptoError.wrap("RSA-OAEP wrap failed: \(error)")
        }
    }

    public static func == (a: Self, b: Self) -> Bool { a.spkiDER == b.spkiDER }
    public func hash(into hasher: inout Hasher) { hasher.combine(spkiDER) }
}

/// swift-crypto marks `_RSA.Signing` keys Sendable but not the `_RSA.Encryption` ones, although
/// both wrap the same immutable BoringSSL key object (whose operations are thread-safe). The box
/// is never mutated after initialisation.
final class SendableBox<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

/// A value made on first use, at most once, from any thread.
final class LazyBox<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var made: Value?
    private let make: () throws -> Value
    init(_ make: @escaping () throws -> Value) { self.make = make }
    func value() throws -> Value {
        try lock.withLock {
            if let made { return made }
            let v = try make()
            made = v
            return v
        }
    }
}
