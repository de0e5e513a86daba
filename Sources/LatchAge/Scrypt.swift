import Crypto
import CryptoExtras

/// A passphrase recipient: the file key is wrapped under scrypt(passphrase). A file encrypted
/// to it may have no other recipient.
public struct AgeScryptRecipient: AgeRecipient, Sendable {
    private let passphrase: [UInt8]
    /// log2 of the scrypt cost N; 1…22 (checked when encrypting). age's default is 18.
    public let workFactor: Int

    public init(passphrase: String, workFactor: Int = 18) {
        self.passphrase = Array(passphrase.utf8)
        self.workFactor = workFactor
    }
}

/// A passphrase identity: unwraps scrypt stanzas whose work factor is at most
/// `AgeScryptIdentity.maxWorkFactor`.
public struct AgeScryptIdentity: AgeIdentity, Sendable, CustomStringConvertible {
    /// The largest work factor accepted when decrypting (like age, 22: about 4 GiB and seconds
    /// of CPU). Larger values are refused before scrypt runs.
    public static let maxWorkFactor = 22
    private let passphrase: [UInt8]

    public init(passphrase: String) {
        self.passphrase = Array(passphrase.utf8)
    }

    public var description: String { "AgeScryptIdentity(passphrase: redacted)" }
}

// MARK: - Stanza: "-> scrypt <base64 16-byte salt> <log2 N>" with a 32-byte body

enum ScryptStanza {
    static let type = "scrypt"
    static let saltLabel = Array("age-encryption.org/v1/scrypt".utf8)
    static let saltLength = 16

    static func wrapKey(passphrase: [UInt8], salt: [UInt8], workFactor: Int) throws(AgeError) -> SymmetricKey {
        guard !passphrase.isEmpty else { throw .header("empty scrypt passphrase") }
        guard (1...AgeScryptIdentity.maxWorkFactor).contains(workFactor) else {
            throw .header("scrypt work factor \(workFactor) outside 1…\(AgeScryptIdentity.maxWorkFactor)")
        }
        do {
            return try KDF.Scrypt.deriveKey(
                from: passphrase, salt: saltLabel + salt, outputByteCount: 32,
                rounds: 1 << workFactor, blockSize: 8, parallelism: 1)
        } catch {
            throw .header("scrypt failed: \(error)")
        }
    }

    /// The work factor argument: decimal digits, no sign or leading zero, at most the cap.
    static func parseWorkFactor(_ text: String) -> Int? {
        let bytes = Array(text.utf8)
        guard let first = bytes.first, first >= UInt8(ascii: "1"), first <= UInt8(ascii: "9"),
            bytes.count <= 2,
            bytes.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
            let value = Int(text), value <= AgeScryptIdentity.maxWorkFactor
        else { return nil }
        return value
    }
}

extension AgeScryptRecipient: AgeStanzaWrapping {
    var requiresSoleStanza: Bool { true }

    func wrap(fileKey: [UInt8], using rng: inout some RandomNumberGenerator) throws(AgeError) -> AgeStanza {
        let salt = AgePrimitives.randomBytes(ScryptStanza.saltLength, using: &rng)
        let key = try ScryptStanza.wrapKey(passphrase: passphrase, salt: salt, workFactor: workFactor)
        let body = try AgePrimitives.seal(key: key, nonce: ageZeroNonce, plaintext: fileKey)
        return AgeStanza(
            type: ScryptStanza.type, arguments: [AgeBase64.encode(salt, padded: false), String(workFactor)],
            body: body)
    }
}

extension AgeScryptIdentity: AgeStanzaUnwrapping {
    func unwrap(_ stanza: AgeStanza) throws(AgeError) -> [UInt8]? {
        guard stanza.type == ScryptStanza.type else { return nil }
        guard stanza.arguments.count == 2 else { throw .header("scrypt stanza must have exactly two arguments") }
        guard let salt = AgeBase64.decodeUnpadded(stanza.arguments[0].utf8), salt.count == ScryptStanza.saltLength
        else { throw .header("scrypt salt is not canonical base64 of 16 bytes") }
        guard let workFactor = ScryptStanza.parseWorkFactor(stanza.arguments[1]) else {
            throw .header(
                "scrypt work factor must be a decimal from 1 to \(AgeScryptIdentity.maxWorkFactor) without leading zeros")
        }
        guard stanza.body.count == ageWrappedFileKeyLength else {
            throw .header("scrypt stanza body must be 32 bytes")
        }
        // An empty passphrase cannot have made this stanza here; treat it as not matching.
        guard !passphrase.isEmpty else { return nil }
        let key = try ScryptStanza.wrapKey(passphrase: passphrase, salt: salt, workFactor: workFactor)
        return AgePrimitives.open(key: key, nonce: ageZeroNonce, sealed: stanza.body[...])
    }
}
