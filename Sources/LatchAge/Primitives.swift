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
        SymmetricKey(data: deriveKeyBytes(ikm: Array(ikm), salt: Array(salt), info: info))
    }

    /// HKDF-SHA-256 (RFC 5869) to 32 bytes: extract, then one block of expand. Written over
    /// `HMACSHA256` because age makes several of these per recipient and file, and the generic
    /// `HKDF` spent most of its time converting its arguments (tests check both agree).
    static func deriveKeyBytes(ikm: [UInt8], salt: [UInt8], info: String) -> [UInt8] {
        deriveKeyBytes(ikm: ikm, salt: salt, info: Array(info.utf8))
    }

    static func deriveKeyBytes(ikm: [UInt8], salt: [UInt8], info: [UInt8]) -> [UInt8] {
        // An empty salt is HashLen zero bytes; a zero-padded key gives the same HMAC.
        var extract = HMACSHA256(key: salt)
        extract.update(ikm)
        var expand = HMACSHA256(key: extract.finalize())
        expand.update(info)
        expand.update([0x01])
        return expand.finalize()
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

    /// HMAC-SHA-256 of `message` with a raw key (see `HMACSHA256`).
    static func hmacSHA256(key: [UInt8], message: ArraySlice<UInt8>) -> [UInt8] {
        var mac = HMACSHA256(key: key)
        message.withUnsafeBytes { mac.update($0) }
        return mac.finalize()
    }

    /// Whether `mac` is the HMAC-SHA-256 of `message`, compared in constant time.
    static func isValidHMAC(_ mac: [UInt8], key: [UInt8], message: ArraySlice<UInt8>) -> Bool {
        let expected = hmacSHA256(key: key, message: message)
        guard mac.count == expected.count else { return false }
        var difference: UInt8 = 0
        for index in 0..<expected.count { difference |= mac[index] ^ expected[index] }
        return difference == 0
    }

    /// `count` bytes from a caller-supplied generator.
    static func randomBytes(_ count: Int, using rng: inout some RandomNumberGenerator) -> [UInt8] {
        if rng is SystemRandomNumberGenerator && count > 0 {
            // The system generator makes a system call per 8 bytes; swift-crypto's (BoringSSL's
            // generator, seeded from the same source) fills the whole buffer in one call.
            return SymmetricKey(size: SymmetricKeySize(bitCount: count * 8)).withUnsafeBytes { Array($0) }
        }
        var out: [UInt8] = []
        out.reserveCapacity(count + 8)
        while out.count < count {
            withUnsafeBytes(of: rng.next().littleEndian) { out.append(contentsOf: $0) }
        }
        return Array(out.prefix(count))
    }
}

/// HMAC-SHA-256 (RFC 2104) over swift-crypto's SHA-256: the key, hashed first when longer than
/// the 64-byte block and zero-padded, XORed with 0x36 keys the inner hash and with 0x5c the
/// outer one.
struct HMACSHA256 {
    private var inner = SHA256()
    private var outerPad: [UInt8]

    init(key: [UInt8]) {
        var block = key.count > SHA256.blockByteCount ? Array(SHA256.hash(data: key)) : key
        block += [UInt8](repeating: 0, count: SHA256.blockByteCount - block.count)
        outerPad = block.map { $0 ^ 0x5c }
        let innerPad = block.map { $0 ^ 0x36 }
        innerPad.withUnsafeBytes { inner.update(bufferPointer: $0) }
    }

    mutating func update(_ bytes: UnsafeRawBufferPointer) { inner.update(bufferPointer: bytes) }
    mutating func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { inner.update(bufferPointer: $0) } }

    func finalize() -> [UInt8] {
        var outer = SHA256()
        outerPad.withUnsafeBytes { outer.update(bufferPointer: $0) }
        inner.finalize().withUnsafeBytes { outer.update(bufferPointer: $0) }
        return outer.finalize().withUnsafeBytes { Array($0) }
    }
}
