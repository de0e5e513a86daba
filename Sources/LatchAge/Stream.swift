import Crypto

/// The age payload: a 16-byte nonce, then the plaintext in 64 KiB chunks, each sealed with
/// ChaCha20-Poly1305 under HKDF-SHA-256(file key, salt = nonce, info = "payload"). The AEAD
/// nonce is an 11-byte big-endian chunk counter followed by 0x01 for the final chunk, 0x00
/// otherwise. The final chunk may be short; it is empty only when the whole plaintext is.
enum AgeStream {
    static let nonceLength = 16
    static let chunkSize = 64 * 1024
    static let sealedChunkSize = chunkSize + AgePrimitives.tagLength

    static func payloadKey(fileKey: [UInt8], nonce: ArraySlice<UInt8>) -> SymmetricKey {
        SymmetricKey(data: AgePrimitives.deriveKeyBytes(ikm: fileKey, salt: Array(nonce), info: "payload"))
    }

    static func chunkNonce(counter: UInt64, final: Bool) -> [UInt8] {
        var nonce = [UInt8](repeating: 0, count: 12)
        for index in 0..<8 { nonce[3 + index] = UInt8(truncatingIfNeeded: counter >> UInt64(8 * (7 - index))) }
        nonce[11] = final ? 1 : 0
        return nonce
    }

    /// Seals `plaintext` chunk by chunk (everything after the payload nonce).
    static func seal(_ plaintext: [UInt8], key: SymmetricKey) throws(AgeError) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(plaintext.count + (plaintext.count / chunkSize + 1) * AgePrimitives.tagLength)
        var offset = 0
        var counter: UInt64 = 0
        repeat {
            let end = min(offset + chunkSize, plaintext.count)
            let final = end == plaintext.count
            out += try AgePrimitives.seal(
                key: key, nonce: chunkNonce(counter: counter, final: final), plaintext: plaintext[offset..<end])
            offset = end
            counter += 1
        } while offset < plaintext.count
        return out
    }

    /// Opens the sealed chunks. Each chunk's plaintext is appended to `released` as soon as its
    /// tag verifies (a short chunk only as the final chunk); nothing after a final chunk is.
    /// Throws `.payload` when any chunk fails, the final chunk is missing, an empty final chunk
    /// follows other chunks, or data follows the final chunk.
    static func open(_ sealed: ArraySlice<UInt8>, key: SymmetricKey, released: inout [UInt8]) throws(AgeError) {
        guard !sealed.isEmpty else { throw .payload("no chunks after the payload nonce") }
        var offset = sealed.startIndex
        var counter: UInt64 = 0
        while true {
            let remaining = sealed.endIndex - offset
            if remaining == 0 { throw .payload("file ends without a final chunk") }
            if remaining < sealedChunkSize {
                // A short chunk can only be the final one.
                guard
                    let plain = AgePrimitives.open(
                        key: key, nonce: chunkNonce(counter: counter, final: true), sealed: sealed[offset...])
                else { throw .payload("chunk \(counter) failed to authenticate") }
                if plain.isEmpty && counter > 0 {
                    throw .payload("final chunk is empty but the payload is not")
                }
                released += plain
                return
            }
            let chunk = sealed[offset..<(offset + sealedChunkSize)]
            offset += sealedChunkSize
            if let plain = AgePrimitives.open(key: key, nonce: chunkNonce(counter: counter, final: false), sealed: chunk) {
                released += plain
                counter += 1
                continue
            }
            // A full-length chunk may be the final one.
            guard let plain = AgePrimitives.open(key: key, nonce: chunkNonce(counter: counter, final: true), sealed: chunk)
            else { throw .payload("chunk \(counter) failed to authenticate") }
            released += plain
            guard offset == sealed.endIndex else { throw .payload("data after the final chunk") }
            return
        }
    }
}
