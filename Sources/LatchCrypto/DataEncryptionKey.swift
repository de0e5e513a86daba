import Crypto
import Foundation

/// A vault data-encryption key: 32 random bytes (an AES-256 key) and its version number.
/// Deliberately not Codable and not printable; it leaves the process only wrapped.
public struct DataEncryptionKey: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    static let byteCount = 32

    let key: SymmetricKey
    public let version: Int

    init(key: SymmetricKey, version: Int) {
        self.key = key
        self.version = version
    }

    /// A fresh key from `rng` (use a cryptographically secure generator).
    public static func generate(version: Int, using rng: inout some RandomNumberGenerator) -> Self {
        var bytes = [UInt8](repeating: 0, count: byteCount)
        for i in stride(from: 0, to: byteCount, by: 8) {
            var word = rng.next()
            for j in 0..<8 {
                bytes[i + j] = UInt8(truncatingIfNeeded: word)
                word >>= 8
            }
        }
        return Self(key: SymmetricKey(data: bytes), version: version)
    }

    /// A fresh key from the system's secure random generator.
    public static func generate(version: Int) -> Self {
        var rng = SystemRandomNumberGenerator()
        return generate(version: version, using: &rng)
    }

    /// Rebuilds a DEK from its 32 raw bytes. Dangerous: only for a local cache that is itself
    /// protected; the normal way to get a DEK is `PrincipalPrivateKey.unwrap`.
    public init(unsafeRawBytes bytes: some DataProtocol, version: Int) throws {
        guard bytes.count == Self.byteCount else {
            throw LatchCryptoError.wrap("a DEK is \(Self.byteCount) bytes, got \(bytes.count)")
        }
        self.init(key: SymmetricKey(data: Data(bytes)), version: version)
    }

    public var description: String { "DataEncryptionKey(version: \(version), <redacted>)" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }
}
