/// Something a file can be encrypted to. The recipient types in this module make their own
/// stanzas; other conformances are refused by `Age.encrypt` (plugins are not supported).
public protocol AgeRecipient {}

/// Something that can unwrap a file key from a stanza. Conformances outside this module are
/// refused by `Age.decrypt`.
public protocol AgeIdentity {}

/// How a recipient type makes its stanza (internal: file keys never leave this module).
protocol AgeStanzaWrapping {
    /// True when the header must contain only this stanza (scrypt).
    var requiresSoleStanza: Bool { get }
    func wrap(fileKey: [UInt8], using rng: inout some RandomNumberGenerator) throws(AgeError) -> AgeStanza
}

/// How an identity type unwraps a stanza.
protocol AgeStanzaUnwrapping {
    /// Returns the 16-byte file key, or nil when the stanza is not addressed to this identity
    /// or does not open with it. Throws `.header` when the stanza is of this identity's type but
    /// malformed or forbidden.
    func unwrap(_ stanza: AgeStanza) throws(AgeError) -> [UInt8]?
}

/// The length of every age file key.
let ageFileKeyLength = 16
/// A wrapped file key: 16 bytes plus the 16-byte Poly1305 tag.
let ageWrappedFileKeyLength = ageFileKeyLength + AgePrimitives.tagLength
/// Stanza bodies are sealed with an all-zero nonce (each wrap key is used once).
let ageZeroNonce = [UInt8](repeating: 0, count: 12)
