import Crypto
import Foundation

/// The symmetric primitives age is built from, as thin wrappers over swift-crypto that never
/// trap on bad sizes (they return nil or throw instead).
enum AgePrimitives {
    static let keyLength = 32
    static let tagLength = 16

    /// HKDF-SHA-256 extract-then-expand (RFC 5869). Refuses lengths above 255 × 32 bytes.
    static func hkdfSHA256(
        ikm: some DataProtocol, salt: some DataProtocol, info: some DataProtocol, outputByteCount: Int
    ) -> [UInt8]? {
        guard outputByteCount >= 0, outputByteCount <= 255 * SHA256.byteCount else { return nil }
        if outputByteCount == 0 { return [] }
        let key = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: Data(ikm)), salt: Data(salt), info: Data(info),
            outputByteCount: outputByteCount)
        return key.withUnsafeBytes { Array($0) }
    }

    /// HKDF-SHA-256 to a 32-byte key, for the fixed-size derivations age makes.
    static func deriveKey(ikm: some DataProtocol, salt: some DataProtocol, info: String) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: Data(ikm)), salt: Data(salt), info: Data(info.utf8),
            outputByteCount: keyLength)
    }

    /// ChaCha20-Poly1305 (RFC 8439) seal: returns ciphertext || tag. The nonce must be 12 bytes.
    static func seal(key: SymmetricKey, nonce: [UInt8], plaintext: some DataProtocol, aad: [UInt8] = []) throws(AgeError)
        -> [UInt8]
    {
        do {
            let box = try ChaChaPoly.seal(
                plaintext, using: key, nonce: ChaChaPoly.Nonce(data: nonce), authenticating: aad)
            return Array(box.ciphertext) + Array(box.tag)
        } catch {
            throw .header("ChaCha20-Poly1305 seal failed: \(error)")
        }
    }

    /// ChaCha20-Poly1305 open of ciphertext || tag; nil when the input is too short or the tag
    /// does not verify (or the nonce is not 12 bytes).
    static func open(key: SymmetricKey, nonce: [UInt8], sealed: ArraySlice<UInt8>, aad: [UInt8] = []) -> [UInt8]? {
        guard sealed.count >= tagLength else { return nil }
        let split = sealed.endIndex - tagLength
        do {
            let box = try ChaChaPoly.SealedBox(
                nonce: ChaChaPoly.Nonce(data: nonce), ciphertext: sealed[..<split], tag: sealed[split...])
            return Array(try ChaChaPoly.open(box, using: key, authenticating: aad))
        } catch {
            return nil
        }
    }

    static func hmacSHA256(key: SymmetricKey, message: some DataProtocol) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: message, using: key))
    }

    static func isValidHMAC(_ mac: [UInt8], key: SymmetricKey, message: some DataProtocol) -> Bool {
        HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: message, using: key)
    }

    /// `count` bytes from a caller-supplied generator.
    static func randomBytes(_ count: Int, using rng: inout some RandomNumberGenerator) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(count + 8)
        while out.count < count {
            withUnsafeBytes(of: rng.next().littleEndian) { out.append(contentsOf: $0) }
        }
        return Array(out.prefix(count))
    }
}
