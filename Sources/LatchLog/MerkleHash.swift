import Crypto
import Foundation

/// A 32-byte SHA-256 value in an RFC 6962 / RFC 9162 Merkle tree, and the tree's hash functions.
///
/// - leaf hash: `SHA-256(0x00 || leaf input)`
/// - node hash: `SHA-256(0x01 || left || right)`
/// - empty tree: `SHA-256("")`
///
/// The value is stored inline (no heap allocation), so trees of millions of hashes stay cheap.
public struct MerkleHash: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The length of every Merkle hash, in bytes.
    public static let byteCount = 32

    // Four big-endian-agnostic words holding the 32 bytes in memory order.
    private var words: (UInt64, UInt64, UInt64, UInt64)

    private init(words: (UInt64, UInt64, UInt64, UInt64)) { self.words = words }

    /// Makes a hash from exactly 32 bytes; `nil` for any other length.
    public init?(_ bytes: some Collection<UInt8>) {
        guard bytes.count == Self.byteCount else { return nil }
        var w: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        withUnsafeMutableBytes(of: &w) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        self.words = w
    }

    /// Parses 64 hex digits (either case); `nil` otherwise.
    public init?(hex: String) {
        guard let bytes = HexCoding.decode(hex) else { return nil }
        self.init(bytes)
    }

    /// Parses standard padded base64 of exactly 32 bytes; `nil` otherwise (non-canonical encodings too).
    public init?(base64: String) {
        guard let bytes = Base64Coding.decodeCanonical(base64) else { return nil }
        self.init(bytes)
    }

    /// Makes a hash from a SHA-256 digest.
    init(_ digest: SHA256.Digest) {
        var w: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        withUnsafeMutableBytes(of: &w) { dst in
            digest.withUnsafeBytes { src in dst.copyMemory(from: src) }
        }
        self.words = w
    }

    /// The 32 bytes.
    public var bytes: [UInt8] { Swift.withUnsafeBytes(of: words) { Array($0) } }
    /// The 32 bytes as `Data`.
    public var data: Data { Swift.withUnsafeBytes(of: words) { Data($0) } }
    /// Lowercase hex (64 characters).
    public var hex: String { HexCoding.encode(bytes) }
    /// Standard padded base64 (44 characters), as used in checkpoints.
    public var base64: String { data.base64EncodedString() }
    public var description: String { hex }

    /// Calls `body` with the 32 bytes, without copying.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try Swift.withUnsafeBytes(of: words, body)
    }

    public static func == (a: MerkleHash, b: MerkleHash) -> Bool {
        a.words.0 == b.words.0 && a.words.1 == b.words.1 && a.words.2 == b.words.2 && a.words.3 == b.words.3
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(words.0); hasher.combine(words.1); hasher.combine(words.2); hasher.combine(words.3)
    }

    /// Byte-wise (lexicographic) order.
    public static func < (a: MerkleHash, b: MerkleHash) -> Bool { a.bytes.lexicographicallyPrecedes(b.bytes) }

    // MARK: RFC 6962 hashing

    /// The root of the empty tree: `SHA-256("")`.
    public static let emptyRoot = MerkleHash(SHA256.hash(data: [UInt8]()))

    /// The leaf hash of `input`: `SHA-256(0x00 || input)`.
    @inlinable
    public static func leaf(_ input: some DataProtocol) -> MerkleHash {
        if let h = input.withContiguousStorageIfAvailable({ leaf(bytes: UnsafeRawBufferPointer($0)) }) { return h }
        return Array(input).withUnsafeBytes { leaf(bytes: $0) }
    }

    /// The leaf hash of the bytes in `bytes`: `SHA-256(0x00 || bytes)`.
    public static func leaf(bytes: UnsafeRawBufferPointer) -> MerkleHash {
        var hasher = SHA256()
        Swift.withUnsafeBytes(of: UInt8(0)) { hasher.update(bufferPointer: $0) }
        hasher.update(bufferPointer: bytes)
        return MerkleHash(hasher.finalize())
    }

    /// The interior node hash: `SHA-256(0x01 || left || right)`.
    public static func node(_ left: MerkleHash, _ right: MerkleHash) -> MerkleHash {
        withUnsafeTemporaryAllocation(byteCount: 1 + 2 * byteCount, alignment: 8) { buf in
            buf[0] = 1
            left.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: buf[1..<33]).copyMemory(from: $0) }
            right.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: buf[33..<65]).copyMemory(from: $0) }
            var hasher = SHA256()
            hasher.update(bufferPointer: UnsafeRawBufferPointer(buf))
            return MerkleHash(hasher.finalize())
        }
    }

    /// The node hash over raw byte strings of any length: `SHA-256(0x01 || left || right)`.
    /// Only for known-answer tests and verifiers that must hash what they were given.
    public static func node(rawLeft left: some DataProtocol, rawRight right: some DataProtocol) -> MerkleHash {
        var hasher = SHA256()
        Swift.withUnsafeBytes(of: UInt8(1)) { hasher.update(bufferPointer: $0) }
        hasher.update(data: left)
        hasher.update(data: right)
        return MerkleHash(hasher.finalize())
    }
}

/// Lowercase hex without separators.
enum HexCoding {
    static func encode(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(64)
        for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 0x0f)]) }
        return String(decoding: out, as: UTF8.self)
    }

    static func decode(_ text: String) -> [UInt8]? {
        let chars = Array(text.utf8)
        guard chars.count % 2 == 0 else { return nil }
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
            default: return nil
            }
        }
        var out = [UInt8]()
        out.reserveCapacity(chars.count / 2)
        var i = 0
        while i < chars.count {
            guard let hi = nibble(chars[i]), let lo = nibble(chars[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }
}

/// Standard padded base64 (RFC 4648 §4), decoded strictly: the input must be exactly what
/// encoding the decoded bytes gives back (no whitespace, no missing padding, no stray bits).
enum Base64Coding {
    static func decodeCanonical(_ text: String) -> [UInt8]? {
        guard let data = Data(base64Encoded: text), data.base64EncodedString() == text else { return nil }
        return Array(data)
    }
}
