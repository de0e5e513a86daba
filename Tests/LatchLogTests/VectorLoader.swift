import Foundation
import Testing

/// Loads a JSON vector file from the test bundle's `Vectors/` folder and decodes it.
/// Fails the calling test loudly when the file is missing or cannot be decoded.
func loadVectors<T: Decodable>(_ name: String, as type: T.Type = T.self,
                               sourceLocation: SourceLocation = #_sourceLocation) throws -> T {
    let url = Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Vectors")
        ?? Bundle.module.url(forResource: name, withExtension: "json")
    let found = try #require(url, "vector file Vectors/\(name).json is missing from the test bundle", sourceLocation: sourceLocation)
    let data = try Data(contentsOf: found)
    #expect(!data.isEmpty, "vector file \(name).json is empty", sourceLocation: sourceLocation)
    return try JSONDecoder().decode(T.self, from: data)
}

/// Fails unless at least one vector was found, and reports how many ran.
func expectVectorsRan(_ count: Int, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(count > 0, "no \(what) vectors were found", sourceLocation: sourceLocation)
    print("LatchLogTests: ran \(count) \(what)")
}

/// Hex in JSON vectors (lowercase, possibly empty).
struct Hex: Decodable, Hashable, CustomStringConvertible {
    let data: Data
    init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let bytes = Hex.decode(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "bad hex \(text)"))
        }
        data = Data(bytes)
    }
    init(_ data: Data) { self.data = data }
    var description: String { data.map { String(format: "%02x", $0) }.joined() }

    static func decode(_ text: String) -> [UInt8]? {
        var out = [UInt8]()
        var chars = Array(text.utf8)[...]
        guard chars.count % 2 == 0 else { return nil }
        while let hi = chars.popFirst(), let lo = chars.popFirst() {
            guard let byte = UInt8(String(decoding: [hi, lo], as: UTF8.self), radix: 16) else { return nil }
            out.append(byte)
        }
        return out
    }
}

/// A small deterministic generator (SplitMix64) so property tests are reproducible.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}
