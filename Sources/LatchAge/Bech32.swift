/// Bech32 (BIP 173, checksum constant 1) without the 90-character limit, as age uses it for
/// `age1…` recipients and `AGE-SECRET-KEY-1…` identities.
enum Bech32 {
    private static let charset: [UInt8] = Array("qpzry9x8gf2tvdw0s3jn54khce6mua7l".utf8)

    private static let charsetIndex: [Int8] = {
        var table = [Int8](repeating: -1, count: 128)
        for (index, char) in charset.enumerated() { table[Int(char)] = Int8(index) }
        return table
    }()

    private static func polymod(_ values: [UInt8]) -> UInt32 {
        let generator: [UInt32] = [0x3b6a_57b2, 0x2650_8e6d, 0x1ea1_19fa, 0x3d42_33dd, 0x2a14_62b3]
        var checksum: UInt32 = 1
        for value in values {
            let top = checksum >> 25
            checksum = (checksum & 0x1ff_ffff) << 5 ^ UInt32(value)
            for bit in 0..<5 where (top >> UInt32(bit)) & 1 == 1 {
                checksum ^= generator[bit]
            }
        }
        return checksum
    }

    private static func expandHRP(_ hrp: [UInt8]) -> [UInt8] {
        hrp.map { $0 >> 5 } + [0] + hrp.map { $0 & 31 }
    }

    /// Regroups bits; when decoding (`pad == false`) leftover bits must be fewer than
    /// `from` and all zero.
    private static func convertBits(_ data: [UInt8], from: Int, to: Int, pad: Bool) -> [UInt8]? {
        var accumulator = 0
        var bits = 0
        var out: [UInt8] = []
        let maxValue = (1 << to) - 1
        for value in data {
            guard Int(value) >> from == 0 else { return nil }
            accumulator = (accumulator << from) | Int(value)
            bits += from
            while bits >= to {
                bits -= to
                out.append(UInt8((accumulator >> bits) & maxValue))
            }
            accumulator &= (1 << bits) - 1
        }
        if pad {
            if bits > 0 { out.append(UInt8((accumulator << (to - bits)) & maxValue)) }
        } else if bits >= from || accumulator != 0 {
            return nil
        }
        return out
    }

    /// Encodes `data` with a lowercase human-readable part; the caller chooses the case.
    static func encode(hrp: String, data: [UInt8], uppercase: Bool) -> String {
        let hrpBytes = Array(hrp.lowercased().utf8)
        let values = convertBits(data, from: 8, to: 5, pad: true) ?? []
        let checksumInput = expandHRP(hrpBytes) + values + [0, 0, 0, 0, 0, 0]
        let checksum = polymod(checksumInput) ^ 1
        var out = hrpBytes + [UInt8(ascii: "1")]
        out += values.map { charset[Int($0)] }
        for index in 0..<6 {
            out.append(charset[Int((checksum >> UInt32(5 * (5 - index))) & 31)])
        }
        let text = String(decoding: out, as: UTF8.self)
        return uppercase ? text.uppercased() : text
    }

    /// Decodes a Bech32 string: returns the lowercase human-readable part and the 8-bit data,
    /// or nil if the string is mixed-case, has a bad character or checksum, or bad padding.
    static func decode(_ text: String) -> (hrp: String, data: [UInt8])? {
        let bytes = Array(text.utf8)
        guard bytes.allSatisfy({ $0 >= 33 && $0 <= 126 }) else { return nil }
        let hasLower = bytes.contains { $0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z") }
        let hasUpper = bytes.contains { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }
        guard !(hasLower && hasUpper) else { return nil }
        let lower = bytes.map { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") ? $0 + 32 : $0 }
        guard let separator = lower.lastIndex(of: UInt8(ascii: "1")),
            separator >= 1, lower.count - separator - 1 >= 6
        else { return nil }
        let hrp = Array(lower[..<separator])
        var values: [UInt8] = []
        for char in lower[(separator + 1)...] {
            guard char < 128, charsetIndex[Int(char)] >= 0 else { return nil }
            values.append(UInt8(charsetIndex[Int(char)]))
        }
        guard polymod(expandHRP(hrp) + values) == 1 else { return nil }
        guard let data = convertBits(Array(values.dropLast(6)), from: 5, to: 8, pad: false) else {
            return nil
        }
        return (String(decoding: hrp, as: UTF8.self), data)
    }
}
