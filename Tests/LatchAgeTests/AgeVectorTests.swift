import Foundation
import Testing

@testable import LatchAge

/// One C2SP CCTV age vector: `key: value` lines, a blank line, then the age file.
struct AgeVector {
    let name: String
    var expect = ""
    var payload: String?
    var identities: [String] = []
    var passphrases: [String] = []
    var armored = false
    var compressed = false
    var unknownKeys: [String] = []
    var file: [UInt8] = []

    init(name: String, bytes: [UInt8]) throws {
        self.name = name
        guard let split = (0..<max(0, bytes.count - 1)).first(where: { bytes[$0] == 0x0a && bytes[$0 + 1] == 0x0a })
        else { throw VectorError("\(name): no blank line after the vector header") }
        let headerText = String(decoding: bytes[..<split], as: UTF8.self)
        for line in headerText.split(separator: "\n") {
            guard let colon = line.range(of: ": ") else { throw VectorError("\(name): bad header line \(line)") }
            let key = String(line[..<colon.lowerBound])
            let value = String(line[colon.upperBound...])
            switch key {
            case "expect": expect = value
            case "payload": payload = value
            case "identity": identities.append(value)
            case "passphrase": passphrases.append(value)
            case "armored": armored = value == "yes"
            case "compressed":
                guard value == "zlib" else { unknownKeys.append("compressed: \(value)"); continue }
                compressed = true
            case "file key", "comment": break
            default: unknownKeys.append(key)
            }
        }
        file = Array(bytes[(split + 2)...])
    }

    /// Why this vector cannot run here, or nil.
    var skipReason: String? {
        if !unknownKeys.isEmpty { return "unknown header keys \(unknownKeys) (upstream says skip)" }
        return nil
    }

    /// The vector's identities and passphrases as LatchAge identities.
    func ageIdentities() throws -> [any AgeIdentity] {
        var out: [any AgeIdentity] = try identities.map { text -> any AgeIdentity in
            text.hasPrefix("AGE-SECRET-KEY-PQ-1") ? try AgeHybridIdentity(string: text) : try AgeX25519Identity(string: text)
        }
        out += passphrases.map { AgeScryptIdentity(passphrase: $0) }
        return out
    }
}

/// The outcome names used by the vectors' `expect` key.
func outcomeName(_ error: AgeError?) -> String {
    switch error {
    case nil: return "success"
    case .armor: return "armor failure"
    case .header: return "header failure"
    case .noMatch: return "no match"
    case .hmac: return "HMAC failure"
    case .payload: return "payload failure"
    }
}

@Suite struct AgeVectorTests {
    static let expectValues = [
        "success", "header failure", "armor failure", "payload failure", "no match", "HMAC failure",
    ]

    static func loadAll() throws -> [AgeVector] {
        let directory = try VectorFiles.directory("age")
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .filter { !$0.hasPrefix(".") && $0 != "README.md" && $0 != "FORMAT.md" }
            .sorted()
        guard !names.isEmpty else { throw VectorError("no age vectors found in Vectors/age") }
        return try names.map { name in
            guard let data = FileManager.default.contents(atPath: directory.appendingPathComponent(name).path) else {
                throw VectorError("cannot read vector \(name)")
            }
            return try AgeVector(name: name, bytes: Array(data))
        }
    }

    /// Runs one vector: returns the outcome name and the plaintext released before any error.
    static func run(_ vector: AgeVector, autodetect: Bool = false) throws -> (
        outcome: String, released: [UInt8], detail: String
    ) {
        let identities = try vector.ageIdentities()
        let file = vector.compressed ? try zlibInflate(vector.file) : vector.file
        var released: [UInt8] = []
        do {
            let armored = autodetect ? AgeArmor.looksArmored(file) : vector.armored
            try Age.decrypt(file, identities: identities, armored: armored, released: &released)
            return ("success", released, "")
        } catch {
            return (outcomeName(error), released, error.description)
        }
    }

    @Test func cctvVectors() throws {
        let vectors = try Self.loadAll()
        #expect(vectors.count == 143, "expected the 143 CCTV age vectors, found \(vectors.count)")
        var ran: [String: Int] = [:]
        var passed: [String: Int] = [:]
        var skipped: [String: Int] = [:]
        var failures: [String] = []
        for vector in vectors {
            #expect(Self.expectValues.contains(vector.expect), "\(vector.name): unknown expect \(vector.expect)")
            if let reason = vector.skipReason {
                skipped[vector.expect, default: 0] += 1
                print("age vector \(vector.name): skipped: \(reason)")
                continue
            }
            ran[vector.expect, default: 0] += 1
            let (outcome, released, detail) = try Self.run(vector)
            if ProcessInfo.processInfo.environment["AGE_VECTORS_VERBOSE"] != nil {
                print("age vector \(vector.name): \(outcome) \(detail)")
            }
            var problems: [String] = []
            if outcome != vector.expect { problems.append("got \(outcome), expected \(vector.expect)") }
            if vector.expect == "success" || vector.expect == "payload failure" {
                if let payload = vector.payload {
                    let got = sha256Hex(released)
                    if got != payload { problems.append("released plaintext SHA-256 \(got) ≠ \(payload)") }
                } else {
                    problems.append("vector has no payload hash")
                }
            }
            if problems.isEmpty {
                passed[vector.expect, default: 0] += 1
            } else {
                failures.append("\(vector.name): \(problems.joined(separator: "; "))")
            }
        }
        print("age CCTV vectors by expect (ran / passed / skipped):")
        for value in Self.expectValues {
            print("  \(value): \(ran[value, default: 0]) / \(passed[value, default: 0]) / \(skipped[value, default: 0])")
        }
        let totalRan = ran.values.reduce(0, +)
        let totalPassed = passed.values.reduce(0, +)
        print("  total: \(totalRan) / \(totalPassed) / \(skipped.values.reduce(0, +))")
        #expect(failures.isEmpty, "failing vectors:\n\(failures.joined(separator: "\n"))")
        #expect(totalRan == 143, "expected to run all 143 vectors (124 classic, 19 PQ hybrid)")
        #expect(totalPassed == totalRan)
    }

    /// `Age.decrypt` without the `armored` hint must reach the same outcome, except where the
    /// armor's first line is garbage (then the file reads as a malformed binary header).
    @Test func armorAutodetectionAgreesWithTheVectorFlag() throws {
        let known = ["armor_garbage_leading": "header failure"]
        var checked = 0
        for vector in try Self.loadAll() where vector.skipReason == nil {
            let explicit = try Self.run(vector).outcome
            let detected = try Self.run(vector, autodetect: true).outcome
            let expected = known[vector.name] ?? explicit
            #expect(detected == expected, "\(vector.name): autodetect gave \(detected), explicit \(explicit)")
            checked += 1
        }
        #expect(checked == 143)
    }

    /// Vectors that decrypt also decrypt through the public API, and re-encrypting their
    /// plaintext to a fresh key round-trips.
    @Test func successVectorsThroughThePublicAPI() throws {
        var count = 0
        for vector in try Self.loadAll() where vector.skipReason == nil && vector.expect == "success" {
            let file = vector.compressed ? try zlibInflate(vector.file) : vector.file
            let plaintext = try Age.decrypt(Data(file), identities: vector.ageIdentities())
            #expect(sha256Hex(plaintext) == vector.payload, "\(vector.name)")
            count += 1
        }
        #expect(count == 26)
    }
}
