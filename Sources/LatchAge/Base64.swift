/// Strict RFC 4648 base64 (standard alphabet) as age uses it.
///
/// Two dialects: unpadded (header arguments, stanza bodies, the MAC) and padded (ASCII armor).
/// Decoders accept only canonical encodings: no padding where none is expected, the right
/// amount where it is, no characters outside the alphabet and zero unused trailing bits.
enum AgeBase64 {
    private static let alphabet: [UInt8] = Array(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    private static let decodeTable: [Int8] = {
        var table = [Int8](repeating: -1, count: 256)
        for (index, char) in alphabet.enumerated() { table[Int(char)] = Int8(index) }
        return table
    }()

    static func isAlphabet(_ byte: UInt8) -> Bool { decodeTable[Int(byte)] >= 0 }

    static func encode(_ bytes: some Collection<UInt8>, padded: Bool) -> String {
        let input = Array(bytes)
        var out: [UInt8] = []
        out.reserveCapacity((input.count + 2) / 3 * 4)
        var index = 0
        while index + 3 <= input.count {
            let n = UInt32(input[index]) << 16 | UInt32(input[index + 1]) << 8 | UInt32(input[index + 2])
            out.append(alphabet[Int(n >> 18 & 63)])
            out.append(alphabet[Int(n >> 12 & 63)])
            out.append(alphabet[Int(n >> 6 & 63)])
            out.append(alphabet[Int(n & 63)])
            index += 3
        }
        switch input.count - index {
        case 1:
            let n = UInt32(input[index]) << 16
            out.append(alphabet[Int(n >> 18 & 63)])
            out.append(alphabet[Int(n >> 12 & 63)])
            if padded { out.append(contentsOf: [UInt8(ascii: "="), UInt8(ascii: "=")]) }
        case 2:
            let n = UInt32(input[index]) << 16 | UInt32(input[index + 1]) << 8
            out.append(alphabet[Int(n >> 18 & 63)])
            out.append(alphabet[Int(n >> 12 & 63)])
            out.append(alphabet[Int(n >> 6 & 63)])
            if padded { out.append(UInt8(ascii: "=")) }
        default:
            break
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes canonical unpadded base64; nil for anything else.
    static func decodeUnpadded(_ text: some Collection<UInt8>) -> [UInt8]? {
        decodeSymbols(Array(text))
    }

    /// Decodes canonical padded base64 (length a multiple of 4); nil for anything else.
    static func decodePadded(_ text: some Collection<UInt8>) -> [UInt8]? {
        var symbols = Array(text)
        guard symbols.count % 4 == 0 else { return nil }
        var padding = 0
        while padding < 2, let last = symbols.last, last == UInt8(ascii: "=") {
            symbols.removeLast()
            padding += 1
        }
        // A third "=" (or one in the middle) fails the alphabet check below.
        if padding > 0 && symbols.count % 4 != 4 - padding { return nil }
        return decodeSymbols(symbols)
    }

    /// Decodes symbols from the alphabet only (no padding), rejecting non-zero unused bits.
    private static func decodeSymbols(_ symbols: [UInt8]) -> [UInt8]? {
        if symbols.count % 4 == 1 { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(symbols.count * 3 / 4)
        var accumulator: UInt32 = 0
        var bits = 0
        for symbol in symbols {
            let value = decodeTable[Int(symbol)]
            guard value >= 0 else { return nil }
            accumulator = accumulator << 6 | UInt32(value)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
                accumulator &= (1 << UInt32(bits)) - 1
            }
        }
        // Leftover bits (2 or 4) must be zero for the encoding to be canonical.
        guard accumulator == 0 else { return nil }
        return out
    }
}
