import Foundation
import Testing

/// Loads files from this target's `Vectors/` resource folder. Missing files fail loudly.
enum Vectors {
    static func data(_ path: String) throws -> Data {
        guard let root = Bundle.module.resourceURL?.appendingPathComponent("Vectors") else {
            throw VectorError("the test bundle has no resource folder; Vectors/ was not copied")
        }
        let url = root.appendingPathComponent(path)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw VectorError("vector file Vectors/\(path) is missing from the test bundle")
        }
        return try Data(contentsOf: url)
    }

    static func text(_ path: String) throws -> String {
        String(decoding: try data(path), as: UTF8.self)
    }
}

struct VectorError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

func hex(_ s: String) throws -> Data {
    guard s.count % 2 == 0 else { throw VectorError("odd-length hex") }
    var out = Data(capacity: s.count / 2)
    var it = s.utf8.makeIterator()
    func nibble(_ c: UInt8) throws -> UInt8 {
        switch c {
        case 48...57: return c - 48
        case 97...102: return c - 87
        case 65...70: return c - 55
        default: throw VectorError("bad hex digit")
        }
    }
    while let a = it.next(), let b = it.next() { out.append(try nibble(a) << 4 | nibble(b)) }
    return out
}

func hexString(_ d: some Sequence<UInt8>) -> String { d.map { String(format: "%02x", $0) }.joined() }

/// Wycheproof's common file layout (see Vectors/README.md), generic over group and test.
struct WycheproofFile<Group: Decodable>: Decodable {
    var algorithm: String
    var numberOfTests: Int
    var testGroups: [Group]
}

struct WycheproofGroup<Test: Decodable>: Decodable {
    var tests: [Test]
}

protocol WycheproofCase: Decodable {
    var tcId: Int { get }
    var result: String { get }
    var flags: [String] { get }
}

/// Counts vectors and prints one summary line per file.
struct VectorTally {
    let name: String
    var ran = 0, passed = 0, skipped = 0
    var skipReasons: [String: Int] = [:]
    var failures: [String] = []

    mutating func record(_ ok: Bool, _ id: String) {
        ran += 1
        if ok { passed += 1 } else { failures.append(id) }
    }

    mutating func skip(_ reason: String) {
        skipped += 1
        skipReasons[reason, default: 0] += 1
    }

    func finish(expectedTotal: Int, sourceLocation: SourceLocation = #_sourceLocation) {
        let reasons = skipReasons.map { "\($0.value) skipped: \($0.key)" }.sorted().joined(separator: "; ")
        print("[vectors] \(name): ran \(ran), passed \(passed), skipped \(skipped)\(reasons.isEmpty ? "" : " (\(reasons))")")
        #expect(ran > 0, "no vector ran for \(name)", sourceLocation: sourceLocation)
        #expect(ran + skipped == expectedTotal, "\(name): \(ran + skipped) of \(expectedTotal) vectors accounted for", sourceLocation: sourceLocation)
        #expect(failures.isEmpty, "\(name) failed: \(failures.joined(separator: ", "))", sourceLocation: sourceLocation)
    }
}

func loadWycheproof<Group: Decodable>(_ file: String, as: Group.Type) throws -> WycheproofFile<Group> {
    let parsed = try JSONDecoder().decode(WycheproofFile<Group>.self, from: Vectors.data("wycheproof/\(file)"))
    guard !parsed.testGroups.isEmpty, parsed.numberOfTests > 0 else {
        throw VectorError("\(file) holds no test vectors")
    }
    return parsed
}
