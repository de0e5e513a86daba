/// What went wrong while reading or writing an age file, named by the layer that failed.
///
/// The five kinds match the outcomes the age conformance vectors distinguish:
/// the ASCII armor, the header (including malformed recipient stanzas and a missing payload
/// nonce), no identity matching any stanza, a wrong header MAC, and the encrypted payload.
public enum AgeError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The ASCII armor (`-----BEGIN AGE ENCRYPTED FILE-----`) could not be decoded.
    case armor(String)
    /// The header or a recipient stanza is malformed or forbidden; also used for invalid
    /// arguments when writing a file (no recipients, a mixed scrypt recipient, a bad key string).
    case header(String)
    /// The header is well formed but none of the given identities unwraps any stanza.
    case noMatch
    /// A file key was unwrapped but the header MAC does not verify: the header was altered,
    /// or a stanza was made with a different file key.
    case hmac
    /// The header is valid but the STREAM payload fails to decrypt or is truncated/extended.
    case payload(String)

    public var description: String {
        switch self {
        case .armor(let why):
            return "age armor: \(why)"
        case .header(let why):
            return "age header: \(why)"
        case .noMatch:
            return "age: no identity matched any recipient stanza (wrong key or passphrase, or the file was not encrypted to you)"
        case .hmac:
            return "age header: MAC mismatch (the header was modified or is corrupt)"
        case .payload(let why):
            return "age payload: \(why) (the file is corrupt or truncated)"
        }
    }
}
