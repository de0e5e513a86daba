/// Every failure in the crypto core. The case names the layer that failed; the message says
/// what was wrong and, where it helps, what to do. Messages never contain key material.
public enum LatchCryptoError: Error, Equatable, CustomStringConvertible, Sendable {
    /// A key could not be read or written: bad PEM armour, wrong PEM type, bad DER.
    case pem(String)
    /// An RSA key has a size outside 2048...4096 bits (the associated value is the size found).
    case keySize(Int)
    /// Wrapping or unwrapping a data-encryption key (RSA-OAEP) failed.
    case wrap(String)
    /// A field envelope is malformed or does not open under this key and context.
    case envelope(String)
    /// A signature is malformed, was made by another key, or does not verify.
    case signature(String)
    /// A signed statement does not follow the previous one (version, vault, key).
    case versionChain(String)
    /// Input is not JSON that RFC 8785 can canonicalise.
    case canonicalJSON(String)
    /// A signed statement's JSON is missing a field, has a wrong type or an unknown field.
    case statement(String)

    public var description: String {
        switch self {
        case .pem(let m): return "crypto/pem: \(m)"
        case .keySize(let bits):
            return "crypto/key size: RSA key of \(bits) bits; Latchkey accepts 2048 to 4096 bits (3072 recommended)"
        case .wrap(let m): return "crypto/wrap: \(m)"
        case .envelope(let m): return "crypto/envelope: \(m)"
        case .signature(let m): return "crypto/signature: \(m)"
        case .versionChain(let m): return "crypto/version chain: \(m)"
        case .canonicalJSON(let m): return "crypto/canonical JSON: \(m)"
        case .statement(let m): return "crypto/statement: \(m)"
        }
    }
}
