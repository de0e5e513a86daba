import Crypto
import Foundation

/// Encrypting and decrypting whole age v1 files in memory (age-encryption.org/v1).
///
/// Supported: X25519 recipients (`age1…`), the ML-KEM-768+X25519 hybrid (`age1pq1…`) and
/// scrypt passphrases. Unknown stanza types are ignored; plugins are not supported.
public enum Age {
    /// Encrypts `plaintext` to `recipients` with the system's secure random source.
    public static func encrypt(
        _ plaintext: some DataProtocol, to recipients: [any AgeRecipient], armored: Bool = false
    ) throws -> Data {
        var rng = SystemRandomNumberGenerator()
        return try encrypt(plaintext, to: recipients, armored: armored, using: &rng)
    }

    /// Encrypts `plaintext` to `recipients`, drawing the file key, payload nonce, ephemeral keys
    /// and salts from `rng` (which must be cryptographically secure outside tests).
    ///
    /// Throws `AgeError.header` when there is no recipient, a scrypt recipient is mixed with
    /// any other, hybrid (post-quantum) and classic recipients are mixed, a work factor is
    /// outside 1…22, or a recipient type is not from this module. The hybrid recipient's
    /// ML-KEM/X25519 encapsulation uses swift-crypto's system random source, not `rng`; so do
    /// X25519 ephemeral keys when `rng` is `SystemRandomNumberGenerator` (one key generation
    /// call instead of four system calls per stanza), still one fresh key per stanza.
    public static func encrypt(
        _ plaintext: some DataProtocol, to recipients: [any AgeRecipient], armored: Bool = false,
        using rng: inout some RandomNumberGenerator
    ) throws -> Data {
        let wrappers = try recipients.map { (recipient) throws(AgeError) -> any AgeStanzaWrapping in
            guard let wrapper = recipient as? any AgeStanzaWrapping else {
                throw .header("unsupported recipient type \(type(of: recipient)) (plugins are not supported)")
            }
            return wrapper
        }
        guard !wrappers.isEmpty else { throw AgeError.header("no recipients") }
        if wrappers.count > 1 && wrappers.contains(where: \.requiresSoleStanza) {
            throw AgeError.header("a passphrase (scrypt) recipient must be the only recipient")
        }
        let postQuantum = wrappers.filter { $0 is AgeHybridRecipient }.count
        if postQuantum > 0 && postQuantum < wrappers.count {
            // Mixing would make the file only as strong as its classic recipients.
            throw AgeError.header("post-quantum hybrid recipients must not be mixed with classic ones")
        }

        let fileKey = AgePrimitives.randomBytes(ageFileKeyLength, using: &rng)
        var stanzas: [AgeStanza] = []
        for wrapper in wrappers { stanzas.append(try wrapper.wrap(fileKey: fileKey, using: &rng)) }

        var file = AgeFormat.headerWithoutMAC(stanzas)
        let mac = AgePrimitives.hmacSHA256(key: headerKey(fileKey), message: file[...])
        file += AgeFormat.macLineTail(mac)

        let nonce = AgePrimitives.randomBytes(AgeStream.nonceLength, using: &rng)
        file += nonce
        file += try AgeStream.seal(Array(plaintext), key: AgeStream.payloadKey(fileKey: fileKey, nonce: nonce[...]))
        return armored ? AgeArmor.encode(file) : Data(file)
    }

    /// Decrypts an age file, binary or ASCII-armored (armor is detected when the first
    /// non-blank line starts with "-", see `AgeArmor.looksArmored`), with the first identity
    /// that unwraps a stanza. All or nothing: no
    /// plaintext is returned unless the whole payload authenticates.
    ///
    /// Throws `AgeError.armor`, `.header`, `.noMatch`, `.hmac` or `.payload`.
    public static func decrypt(_ file: some DataProtocol, identities: [any AgeIdentity]) throws -> Data {
        try decrypt(file, identities: identities, armored: AgeArmor.looksArmored(file))
    }

    /// Decrypts an age file whose encoding is known: `armored` true requires ASCII armor,
    /// false requires the binary format.
    public static func decrypt(_ file: some DataProtocol, identities: [any AgeIdentity], armored: Bool) throws
        -> Data
    {
        var released: [UInt8] = []
        try decrypt(file, identities: identities, armored: armored, released: &released)
        return Data(released)
    }

    /// The decryption core. `released` receives each payload chunk as soon as it authenticates,
    /// so on a `.payload` error it holds what a streaming reader would have returned.
    static func decrypt(
        _ file: some DataProtocol, identities: [any AgeIdentity], armored: Bool, released: inout [UInt8]
    ) throws(AgeError) {
        let binary = armored ? Array(try AgeArmor.decode(file)) : Array(file)
        let (header, payloadOffset) = try AgeFormat.parseHeader(binary)

        if header.stanzas.count > 1 && header.stanzas.contains(where: { $0.type == ScryptStanza.type }) {
            throw .header("an scrypt stanza must be the only stanza in the header")
        }
        guard let fileKey = try unwrapFileKey(header.stanzas, identities: identities) else {
            throw .noMatch
        }
        guard AgePrimitives.isValidHMAC(header.mac, key: headerKey(fileKey), message: header.macInput) else {
            throw .hmac
        }
        guard binary.count - payloadOffset >= AgeStream.nonceLength else {
            throw .header("payload nonce missing or shorter than 16 bytes")
        }
        let nonceEnd = payloadOffset + AgeStream.nonceLength
        let key = AgeStream.payloadKey(fileKey: fileKey, nonce: binary[payloadOffset..<nonceEnd])
        try AgeStream.open(binary[nonceEnd...], key: key, released: &released)
    }

    static func unwrapFileKey(_ stanzas: [AgeStanza], identities: [any AgeIdentity]) throws(AgeError) -> [UInt8]? {
        for identity in identities {
            guard let unwrapper = identity as? any AgeStanzaUnwrapping else {
                throw .header("unsupported identity type \(type(of: identity)) (plugins are not supported)")
            }
            for stanza in stanzas {
                if let fileKey = try unwrapper.unwrap(stanza) {
                    guard fileKey.count == ageFileKeyLength else { throw .header("unwrapped file key is not 16 bytes") }
                    return fileKey
                }
            }
        }
        return nil
    }

    static func headerKey(_ fileKey: [UInt8]) -> [UInt8] {
        AgePrimitives.deriveKeyBytes(ikm: fileKey, salt: [], info: "header")
    }
}
