import Crypto
import Foundation
import Testing

@testable import LatchAge

/// Wycheproof vectors against the primitives age uses, through the same wrappers LatchAge
/// calls (`AgePrimitives`, `X25519Stanza`).
@Suite struct AgePrimitiveTests {
    struct File<Group: Decodable>: Decodable {
        let algorithm: String
        let numberOfTests: Int
        let testGroups: [Group]
    }

    static func load<Group: Decodable>(_ name: String, as: Group.Type) throws -> File<Group> {
        let data = try VectorFiles.data("wycheproof/\(name)")
        let file = try JSONDecoder().decode(File<Group>.self, from: data)
        guard !file.testGroups.isEmpty else { throw VectorError("\(name): no test groups") }
        return file
    }

    static func report(_ name: String, _ counts: [String: (ran: Int, passed: Int, skipped: Int)]) {
        print("wycheproof \(name) by result (ran / passed / skipped):")
        for key in counts.keys.sorted() {
            let c = counts[key]!
            print("  \(key): \(c.ran) / \(c.passed) / \(c.skipped)")
        }
    }

    // MARK: X25519

    struct XDHGroup: Decodable {
        let curve: String
        let tests: [XDHTest]
    }
    struct XDHTest: Decodable {
        let tcId: Int
        let flags: [String]
        let `public`: String
        let `private`: String
        let shared: String
        let result: String
    }

    @Test func x25519() throws {
        let file = try Self.load("x25519_test.json", as: XDHGroup.self)
        var counts: [String: (ran: Int, passed: Int, skipped: Int)] = [:]
        var failures: [String] = []
        var zeroCases = 0
        for group in file.testGroups {
            #expect(group.curve == "curve25519")
            for test in group.tests {
                counts[test.result, default: (0, 0, 0)].ran += 1
                let key = try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: unhex(test.private))
                let point = try unhex(test.public)
                let expected = try unhex(test.shared)
                // The raw primitive (swift-crypto) must match the vector.
                let raw = try key.sharedSecretFromKeyAgreement(
                    with: Curve25519.KeyAgreement.PublicKey(rawRepresentation: point)
                ).withUnsafeBytes { Array($0) }
                // age's wrapper must match too, except that it refuses the all-zero output.
                let wrapped = X25519Stanza.sharedSecret(key, point)
                var ok = raw == expected
                if expected.allSatisfy({ $0 == 0 }) {
                    zeroCases += 1
                    ok = ok && wrapped == nil
                } else {
                    ok = ok && wrapped == expected
                }
                if ok { counts[test.result]!.passed += 1 } else { failures.append("tcId \(test.tcId)") }
            }
        }
        Self.report("x25519_test.json", counts)
        print("  all-zero shared secrets refused by the age wrapper: \(zeroCases)")
        #expect(failures.isEmpty, "\(failures)")
        #expect(counts.values.map(\.ran).reduce(0, +) == file.numberOfTests)
        #expect(zeroCases > 0)
    }

    // MARK: ChaCha20-Poly1305

    struct AEADGroup: Decodable {
        let ivSize: Int
        let keySize: Int
        let tagSize: Int
        let tests: [AEADTest]
    }
    struct AEADTest: Decodable {
        let tcId: Int
        let key, iv, aad, msg, ct, tag: String
        let result: String
    }

    @Test func chacha20Poly1305() throws {
        let file = try Self.load("chacha20_poly1305_test.json", as: AEADGroup.self)
        var counts: [String: (ran: Int, passed: Int, skipped: Int)] = [:]
        var failures: [String] = []
        for group in file.testGroups {
            for test in group.tests {
                counts[test.result, default: (0, 0, 0)].ran += 1
                let key = SymmetricKey(data: try unhex(test.key))
                let nonce = try unhex(test.iv)
                let aad = try unhex(test.aad)
                let msg = try unhex(test.msg)
                let sealed = try unhex(test.ct) + unhex(test.tag)
                let opened = AgePrimitives.open(key: key, nonce: nonce, sealed: sealed[...], aad: aad)
                var ok: Bool
                switch test.result {
                case "valid":
                    let resealed = try? AgePrimitives.seal(key: key, nonce: nonce, plaintext: msg, aad: aad)
                    ok = opened == msg && resealed == sealed
                case "invalid":
                    ok = opened == nil
                default:
                    ok = true
                }
                if group.ivSize != 96 { ok = ok && opened == nil }  // age only uses 12-byte nonces
                if ok { counts[test.result]!.passed += 1 } else { failures.append("tcId \(test.tcId)") }
            }
        }
        Self.report("chacha20_poly1305_test.json", counts)
        #expect(failures.isEmpty, "\(failures)")
        #expect(counts.values.map(\.ran).reduce(0, +) == file.numberOfTests)
    }

    // MARK: HKDF-SHA-256

    struct HKDFGroup: Decodable {
        let tests: [HKDFTest]
    }
    struct HKDFTest: Decodable {
        let tcId: Int
        let ikm, salt, info: String
        let size: Int
        let okm: String
        let result: String
    }

    @Test func hkdfSHA256() throws {
        let file = try Self.load("hkdf_sha256_test.json", as: HKDFGroup.self)
        var counts: [String: (ran: Int, passed: Int, skipped: Int)] = [:]
        var failures: [String] = []
        for group in file.testGroups {
            for test in group.tests {
                counts[test.result, default: (0, 0, 0)].ran += 1
                let out = AgePrimitives.hkdfSHA256(
                    ikm: try unhex(test.ikm), salt: try unhex(test.salt), info: try unhex(test.info),
                    outputByteCount: test.size)
                let ok: Bool
                switch test.result {
                case "valid": ok = try out == unhex(test.okm)
                case "invalid": ok = out == nil
                default: ok = true
                }
                if ok { counts[test.result]!.passed += 1 } else { failures.append("tcId \(test.tcId)") }
            }
        }
        Self.report("hkdf_sha256_test.json", counts)
        #expect(failures.isEmpty, "\(failures)")
        #expect(counts.values.map(\.ran).reduce(0, +) == file.numberOfTests)
    }

    /// The 32-byte derivation age uses (our HMAC over swift-crypto's SHA-256) against the
    /// Wycheproof vectors of that size.
    @Test func deriveKeyBytesMatchesWycheproof() throws {
        let file = try Self.load("hkdf_sha256_test.json", as: HKDFGroup.self)
        var ran = 0
        for group in file.testGroups {
            for test in group.tests where test.result == "valid" && test.size == 32 {
                let out = AgePrimitives.deriveKeyBytes(
                    ikm: try unhex(test.ikm), salt: try unhex(test.salt), info: try unhex(test.info))
                #expect(try out == unhex(test.okm), "tcId \(test.tcId)")
                ran += 1
            }
        }
        #expect(ran > 0)
    }

    /// `HMACSHA256` agrees with swift-crypto's HMAC for keys shorter than, as long as and
    /// longer than the block, and messages fed in one or several pieces.
    @Test func hmacMatchesSwiftCrypto() {
        var rng = TestRNG(seed: 3)
        for keyLength in [0, 1, 16, 32, 63, 64, 65, 100, 200] {
            for messageLength in [0, 1, 55, 56, 64, 65, 1000] {
                let key = AgePrimitives.randomBytes(keyLength, using: &rng)
                let message = AgePrimitives.randomBytes(messageLength, using: &rng)
                let expected = Array(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key)))
                #expect(AgePrimitives.hmacSHA256(key: key, message: message[...]) == expected)
                var pieces = HMACSHA256(key: key)
                pieces.update(Array(message.prefix(messageLength / 3)))
                pieces.update(Array(message.dropFirst(messageLength / 3)))
                #expect(pieces.finalize() == expected)
                #expect(AgePrimitives.isValidHMAC(expected, key: key, message: message[...]))
                var wrong = expected
                wrong[messageLength % 32] ^= 0x01
                #expect(!AgePrimitives.isValidHMAC(wrong, key: key, message: message[...]))
                #expect(!AgePrimitives.isValidHMAC(Array(expected.dropLast()), key: key, message: message[...]))
            }
        }
    }

    /// The fixed-size derivation age uses agrees with the general one.
    @Test func deriveKeyMatchesGeneralHKDF() {
        let ikm = [UInt8](repeating: 0x0b, count: 22)
        let salt = [UInt8](0...12)
        let general = AgePrimitives.hkdfSHA256(ikm: ikm, salt: salt, info: Array("header".utf8), outputByteCount: 32)
        let fixed = AgePrimitives.deriveKey(ikm: ikm, salt: salt, info: "header").withUnsafeBytes { Array($0) }
        #expect(general == fixed)
    }
}
