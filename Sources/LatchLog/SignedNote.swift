import Crypto
import Foundation

/// One signature line of a C2SP signed note: `— <name> base64(keyID(4, big-endian) || signature)`.
public struct NoteSignature: Sendable, Hashable {
    /// The key name (non-empty, no Unicode spaces, no `+`).
    public var name: String
    /// The 32-bit key ID (first four bytes of the line's decoded signature field).
    public var keyID: UInt32
    /// The algorithm's signature bytes (for Ed25519, 64 bytes).
    public var signature: Data

    public init(name: String, keyID: UInt32, signature: Data) {
        self.name = name
        self.keyID = keyID
        self.signature = signature
    }

    /// The line as it appears in a note, including the final newline.
    public var line: String {
        var blob = Data()
        blob.append(contentsOf: withUnsafeBytes(of: keyID.bigEndian, Array.init))
        blob.append(signature)
        return "\u{2014} \(name) \(blob.base64EncodedString())\n"
    }
}

/// A C2SP signed note (c2sp.org/signed-note): a UTF-8 text ending in a newline, a blank line, and
/// one or more signature lines. Parsing is strict: valid UTF-8, no control characters other than
/// newline, a non-empty text, well-formed signature lines, canonical base64, at most
/// ``maximumSignatures`` signatures.
public struct SignedNote: Sendable, Hashable {
    /// More signatures than this make a note malformed (the spec asks verifiers to accept at least 16).
    public static let maximumSignatures = 100

    /// The signed text, including its final newline.
    public var text: String
    public var signatures: [NoteSignature]

    public init(text: String, signatures: [NoteSignature]) throws {
        try Self.checkText(text)
        self.text = text
        self.signatures = signatures
    }

    /// Signs `text` with every signer (at least one).
    public static func sign(text: String, with signers: [NoteSigner]) throws -> SignedNote {
        guard !signers.isEmpty else { throw LogError.signature("a note needs at least one signer") }
        try checkText(text)
        return try SignedNote(text: text, signatures: signers.map { try $0.sign(text) })
    }

    /// The encoded note: text, blank line, signature lines.
    public var encoded: String {
        text + "\n" + signatures.map(\.line).joined()
    }

    /// Parses an encoded note from bytes, rejecting invalid UTF-8.
    public init(parsing bytes: some Collection<UInt8>) throws {
        guard let s = String(validating: bytes, as: UTF8.self) else {
            throw LogError.note("not valid UTF-8")
        }
        try self.init(parsing: s)
    }

    /// Parses an encoded note. Does not verify any signature: use ``verify(with:)``.
    public init(parsing encoded: String) throws {
        for scalar in encoded.unicodeScalars where scalar.value < 0x20 && scalar != "\n" {
            throw LogError.note("contains control character U+\(String(scalar.value, radix: 16, uppercase: true)) (only newline is allowed)")
        }
        let bytes = Array(encoded.utf8)
        guard bytes.last == 0x0a else { throw LogError.note("does not end with a newline") }
        // The text ends at the last blank line: find the last "\n\n".
        var split: Int? = nil
        var i = bytes.count - 2
        while i >= 0 {
            if bytes[i] == 0x0a && bytes[i + 1] == 0x0a { split = i; break }
            i -= 1
        }
        guard let cut = split else { throw LogError.note("no blank line separates the text from the signatures") }
        let text = String(decoding: bytes[...cut], as: UTF8.self)
        let sigBlock = bytes[(cut + 2)...]
        guard !sigBlock.isEmpty else { throw LogError.note("has no signature lines") }
        var signatures = [NoteSignature]()
        for rawLine in sigBlock.split(separator: 0x0a, omittingEmptySubsequences: false).dropLast() {
            signatures.append(try Self.parseSignatureLine(String(decoding: rawLine, as: UTF8.self)))
            guard signatures.count <= Self.maximumSignatures else {
                throw LogError.note("has more than \(Self.maximumSignatures) signatures")
            }
        }
        try self.init(text: text, signatures: signatures)
    }

    /// Verifies the note against trusted keys and returns the signatures that verified.
    ///
    /// Signatures whose (name, key ID) match no verifier are ignored. A signature from a known key
    /// that fails to verify rejects the whole note. At least one known signature must verify.
    @discardableResult
    public func verify(with verifiers: [NoteVerifier]) throws -> [NoteSignature] {
        var verified = [NoteSignature]()
        for sig in signatures {
            guard let verifier = verifiers.first(where: { $0.name == sig.name && $0.keyID == sig.keyID }) else {
                continue
            }
            guard verifier.isValidSignature(sig.signature, for: text.utf8Data) else {
                throw LogError.signature("signature by \(sig.name)+\(String(format: "%08x", sig.keyID)) does not verify; the note was altered or forged")
            }
            verified.append(sig)
        }
        guard !verified.isEmpty else {
            let names = Set(signatures.map(\.name)).sorted().joined(separator: ", ")
            throw LogError.signature("no signature from a trusted key (note signed by: \(names.isEmpty ? "nobody" : names)); check the log's verifier key")
        }
        return verified
    }

    static func checkText(_ text: String) throws {
        guard !text.isEmpty else { throw LogError.note("the text is empty") }
        guard text.hasSuffix("\n") else { throw LogError.note("the text does not end with a newline") }
        for scalar in text.unicodeScalars where scalar.value < 0x20 && scalar != "\n" {
            throw LogError.note("the text contains control character U+\(String(scalar.value, radix: 16, uppercase: true))")
        }
    }

    static func parseSignatureLine(_ line: String) throws -> NoteSignature {
        let prefix = "\u{2014} "
        guard line.hasPrefix(prefix) else {
            throw LogError.note("signature line does not start with an em dash and a space")
        }
        let rest = line.dropFirst(prefix.count)
        let parts = rest.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 2 else {
            throw LogError.note("signature line is not \"— <name> <base64>\"")
        }
        let name = String(parts[0])
        try NoteKeys.checkName(name)
        guard let blob = Base64Coding.decodeCanonical(String(parts[1])), blob.count >= 5 else {
            throw LogError.note("signature of \(name) is not canonical base64 of a key ID and a signature")
        }
        let keyID = blob[0..<4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        return NoteSignature(name: name, keyID: keyID, signature: Data(blob[4...]))
    }
}

/// A trusted Ed25519 note key: verifies note signatures by `name` with this public key.
///
/// Its string form is `<name>+<key ID as 8 hex digits>+<base64(0x01 || 32-byte public key)>`,
/// where key ID = the first four bytes (big-endian) of `SHA-256(name || 0x0A || 0x01 || public key)`.
public struct NoteVerifier: Sendable, Hashable {
    public let name: String
    public let keyID: UInt32
    /// The raw 32-byte Ed25519 public key.
    public let publicKeyBytes: Data

    public init(name: String, publicKey: Curve25519.Signing.PublicKey) throws {
        try NoteKeys.checkName(name)
        self.name = name
        self.publicKeyBytes = publicKey.rawRepresentation
        self.keyID = NoteKeys.ed25519KeyID(name: name, publicKey: publicKey.rawRepresentation)
    }

    /// For a name already checked and a key ID already computed.
    init(checkedName: String, keyID: UInt32, publicKeyBytes: Data) {
        self.name = checkedName
        self.keyID = keyID
        self.publicKeyBytes = publicKeyBytes
    }

    /// Parses a verifier key string (`name+hex8+base64`). The key ID must match the key.
    public init(keyString: String) throws {
        // Standard base64 may itself contain '+', so only the first two separate fields.
        let parts = keyString.split(separator: "+", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw LogError.key("verifier key is not <name>+<hex key ID>+<base64 key>") }
        let name = String(parts[0])
        do { try NoteKeys.checkName(name) } catch { throw LogError.key("verifier key name is invalid: \(error)") }
        guard let id = NoteKeys.parseKeyID(String(parts[1])) else {
            throw LogError.key("verifier key ID is not 8 lowercase hex digits")
        }
        guard let blob = Base64Coding.decodeCanonical(String(parts[2])), blob.count == 33, blob[0] == 0x01 else {
            throw LogError.key("verifier key is not base64 of 0x01 followed by a 32-byte Ed25519 public key")
        }
        let raw = Data(blob[1...])
        guard NoteKeys.ed25519KeyID(name: name, publicKey: raw) == id else {
            throw LogError.key("verifier key ID does not match its name and public key")
        }
        self.name = name
        self.keyID = id
        self.publicKeyBytes = raw
    }

    /// The verifier key string.
    public var keyString: String {
        "\(name)+\(String(format: "%08x", keyID))+\((Data([0x01]) + publicKeyBytes).base64EncodedString())"
    }

    /// Ed25519 (RFC 8032) verification of `signature` over `message` with this key.
    public func isValidSignature(_ signature: Data, for message: Data) -> Bool {
        NoteKeys.ed25519Verify(publicKey: publicKeyBytes, signature: signature, message: message)
    }
}

/// An Ed25519 note signing key with its name. Holds a private key: never print or log it.
///
/// Its string form (for configuration files only) is
/// `PRIVATE+KEY+<name>+<key ID as 8 hex digits>+<base64(0x01 || 32-byte Ed25519 seed)>`.
public struct NoteSigner: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public let name: String
    public let keyID: UInt32
    private let privateKey: Curve25519.Signing.PrivateKey

    public init(name: String, privateKey: Curve25519.Signing.PrivateKey) throws {
        try NoteKeys.checkName(name)
        self.name = name
        self.privateKey = privateKey
        self.keyID = NoteKeys.ed25519KeyID(name: name, publicKey: privateKey.publicKey.rawRepresentation)
    }

    /// A new key whose 32-byte seed comes from `rng`.
    public static func generate(name: String, using rng: inout some RandomNumberGenerator) throws -> NoteSigner {
        var seed = [UInt8](repeating: 0, count: 32)
        for i in seed.indices { seed[i] = UInt8.random(in: 0...255, using: &rng) }
        defer { seed = [UInt8](repeating: 0, count: 32) }
        let key: Curve25519.Signing.PrivateKey
        do { key = try Curve25519.Signing.PrivateKey(rawRepresentation: seed) } catch {
            throw LogError.key("could not make an Ed25519 key from the seed")
        }
        return try NoteSigner(name: name, privateKey: key)
    }

    /// A new key from the system's secure random source.
    public static func generate(name: String) throws -> NoteSigner {
        var rng = SystemRandomNumberGenerator()
        return try generate(name: name, using: &rng)
    }

    /// Parses a signer key string (`PRIVATE+KEY+name+hex8+base64`). The key ID must match.
    public init(secretKeyString: String) throws {
        // Standard base64 may itself contain '+', so only the first four separate fields.
        let parts = secretKeyString.split(separator: "+", maxSplits: 4, omittingEmptySubsequences: false)
        guard parts.count == 5, parts[0] == "PRIVATE", parts[1] == "KEY" else {
            throw LogError.key("signer key is not PRIVATE+KEY+<name>+<hex key ID>+<base64 seed>")
        }
        let name = String(parts[2])
        do { try NoteKeys.checkName(name) } catch { throw LogError.key("signer key name is invalid: \(error)") }
        guard let id = NoteKeys.parseKeyID(String(parts[3])) else {
            throw LogError.key("signer key ID is not 8 lowercase hex digits")
        }
        guard let blob = Base64Coding.decodeCanonical(String(parts[4])), blob.count == 33, blob[0] == 0x01,
              let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: blob[1...])
        else { throw LogError.key("signer key is not base64 of 0x01 followed by a 32-byte Ed25519 seed") }
        try self.init(name: name, privateKey: key)
        guard keyID == id else { throw LogError.key("signer key ID does not match its name and key") }
    }

    /// DANGER: the private key in clear text, for writing to a 0600 configuration file only.
    public var secretKeyString: String {
        "PRIVATE+KEY+\(name)+\(String(format: "%08x", keyID))+\((Data([0x01]) + privateKey.rawRepresentation).base64EncodedString())"
    }

    /// Names the key only; the private key is never part of a description.
    public var description: String { "NoteSigner(\(name)+\(String(format: "%08x", keyID)))" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["name": name, "keyID": keyID]) }

    /// The matching verifier (public key).
    public var verifier: NoteVerifier {
        NoteVerifier(checkedName: name, keyID: keyID, publicKeyBytes: privateKey.publicKey.rawRepresentation)
    }

    /// Signs `text` (a note text ending in a newline).
    public func sign(_ text: String) throws -> NoteSignature {
        try SignedNote.checkText(text)
        do {
            let sig = try privateKey.signature(for: Data(text.utf8))
            return NoteSignature(name: name, keyID: keyID, signature: sig)
        } catch {
            throw LogError.signature("Ed25519 signing failed")
        }
    }
}

enum NoteKeys {
    /// Signature type byte for Ed25519 in C2SP signed notes.
    static let ed25519Type: UInt8 = 0x01

    /// `SHA-256(name || 0x0A || 0x01 || key)[0..<4]` as a big-endian integer.
    static func ed25519KeyID(name: String, publicKey: Data) -> UInt32 {
        var h = SHA256()
        h.update(data: Data(name.utf8))
        h.update(data: [0x0a, ed25519Type])
        h.update(data: publicKey)
        return h.finalize().prefix(4).reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
    }

    /// Ed25519 verification (RFC 8032 as implemented by swift-crypto / BoringSSL: S must be
    /// below the group order). Any malformed key or signature length is simply invalid.
    static func ed25519Verify(publicKey: Data, signature: Data, message: Data) -> Bool {
        guard publicKey.count == 32, signature.count == 64,
              let key = try? Curve25519.Signing.PublicKey(rawRepresentation: publicKey) else { return false }
        return key.isValidSignature(signature, for: message)
    }

    static func checkName(_ name: String) throws {
        guard !name.isEmpty else { throw LogError.note("key name is empty") }
        for s in name.unicodeScalars {
            if s == "+" { throw LogError.note("key name \"\(name)\" contains a plus sign") }
            if s.properties.isWhitespace { throw LogError.note("key name contains a space") }
            if s.value < 0x20 { throw LogError.note("key name contains a control character") }
        }
    }

    static func parseKeyID(_ hex: String) -> UInt32? {
        guard hex.utf8.count == 8, hex == hex.lowercased(), let bytes = HexCoding.decode(hex) else { return nil }
        return bytes.reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
    }
}

extension String {
    /// This string's UTF-8 as `Data`, copied without the generic `Data(_: some Sequence)` (whose
    /// dynamic casts cost a short process a scan of every conformance record on first use).
    var utf8Data: Data {
        var text = self
        return text.withUTF8 { $0.isEmpty ? Data() : Data(bytes: $0.baseAddress!, count: $0.count) }
    }
}
