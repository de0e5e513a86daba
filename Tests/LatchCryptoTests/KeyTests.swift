import Crypto
import CryptoExtras
import Foundation
import Testing
@testable import LatchCrypto

/// One generated RSA-3072 key shared by the suites (generation takes a moment).
enum TestKeys {
    static let alice: PrincipalPrivateKey = { generateOrFail() }()
    static let bob: PrincipalPrivateKey = { generateOrFail() }()

    private static func generateOrFail() -> PrincipalPrivateKey {
        do { return try PrincipalPrivateKey.generate() } catch { fatalError("RSA key generation failed: \(error)") }
    }
}

func expectError(_ expected: (LatchCryptoError) -> Bool, _ what: String,
                 sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) {
    do {
        try body()
        Issue.record("\(what): no error thrown", sourceLocation: sourceLocation)
    } catch let e as LatchCryptoError {
        #expect(expected(e), "\(what): wrong error \(e)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("\(what): untyped error \(error)", sourceLocation: sourceLocation)
    }
}

@Suite("Principal keys")
struct KeyTests {
    @Test("Generated keys are RSA-3072 and round-trip through PEM")
    func generateAndPEM() throws {
        let key = TestKeys.alice
        #expect(key.bits == 3072)
        #expect(key.pkcs8PEM.hasPrefix("-----BEGIN PRIVATE KEY-----\n"))
        #expect(key.pkcs8PEM.hasSuffix("-----END PRIVATE KEY-----\n"))
        #expect(key.pkcs8PEM.split(separator: "\n").allSatisfy { $0.count <= 64 })
        let again = try PrincipalPrivateKey(pem: key.pkcs8PEM)
        #expect(again.publicKey == key.publicKey)
        let fromPKCS1 = try PrincipalPrivateKey(pem: key.pkcs1PEM)
        #expect(fromPKCS1.publicKey == key.publicKey)
        #expect(key.pkcs1PEM.hasPrefix("-----BEGIN RSA PRIVATE KEY-----\n"))

        let pub = key.publicKey
        #expect(pub.bits == 3072)
        #expect(pub.pem.hasPrefix("-----BEGIN PUBLIC KEY-----\n"))
        #expect(try PrincipalPublicKey(pem: pub.pem) == pub)
        #expect(try PrincipalPublicKey(spkiDER: pub.spkiDER) == pub)
        // The key id is SHA-256 over the SPKI DER, lower-case hex.
        #expect(pub.keyId == SHA256.hash(data: pub.spkiDER).map { String(format: "%02x", $0) }.joined())
        #expect(pub.keyId.count == 64 && pub.keyId == pub.keyId.lowercased())
        #expect(TestKeys.bob.publicKey.keyId != pub.keyId)
    }

    @Test("Keys and DEKs never print their secret parts; CRLF and indented PEM loads")
    func redaction() throws {
        let key = TestKeys.alice
        let pemBody = key.pkcs8PEM.split(separator: "\n")[1]
        var dumped = ""
        dump(key, to: &dumped)
        for text in [String(describing: key), String(reflecting: key), "\(key)", dumped] {
            #expect(!text.contains(pemBody) && text.contains("redacted") || text == dumped && !text.contains(pemBody))
        }
        let dek = try DataEncryptionKey(unsafeRawBytes: Data(repeating: 0x41, count: 32), version: 1)
        var dekDump = ""
        dump(dek, to: &dekDump)
        for text in [String(describing: dek), String(reflecting: dek), dekDump] {
            #expect(!text.contains("65, 65") && !text.contains("AAAA") && !text.contains("4141"))
        }
        let crlf = key.pkcs8PEM.replacingOccurrences(of: "\n", with: "\r\n")
        #expect(try PrincipalPrivateKey(pem: crlf).publicKey == key.publicKey)
        let padded = "comment line\n" + key.publicKey.pem + "\n\n"
        #expect(try PrincipalPublicKey(pem: padded) == key.publicKey)
        let indented = key.publicKey.pem.split(separator: "\n").map { "\t " + $0 + " \r" }.joined(separator: "\n")
        #expect(try PrincipalPublicKey(pem: indented) == key.publicKey)
    }

    @Test("PKCS#1 public key PEM is accepted and maps to the same SPKI")
    func pkcs1Public() throws {
        let pub = TestKeys.alice.publicKey
        let spki = try _RSAForTests.pkcs1PublicPEM(of: pub)
        #expect(try PrincipalPublicKey(pem: spki) == pub)
    }

    @Test("Key sizes outside 2048...4096 are refused with keySize")
    func keySizes() throws {
        let small = try Vectors.text("keys/rsa1024-pkcs1.pem")
        expectError({ $0 == .keySize(1024) }, "1024-bit private key") { _ = try PrincipalPrivateKey(pem: small) }
        let big = try Vectors.text("keys/rsa8192-pkcs8.pem")
        expectError({ $0 == .keySize(8192) }, "8192-bit private key") { _ = try PrincipalPrivateKey(pem: big) }
        let bigPub = try Vectors.text("keys/rsa8192-public.pem")
        expectError({ $0 == .keySize(8192) }, "8192-bit public key") { _ = try PrincipalPublicKey(pem: bigPub) }
        let smallPub = try Vectors.text("keys/rsa1024-public.pem")
        expectError({ $0 == .keySize(1024) }, "1024-bit public key") { _ = try PrincipalPublicKey(pem: smallPub) }
        for bits in [1024, 3000, 8192] {
            expectError({ $0 == .keySize(bits) }, "generate \(bits)") { _ = try PrincipalPrivateKey.generate(bits: bits) }
        }
    }

    @Test("Bad PEM is a typed pem error")
    func badPEM() throws {
        let good = TestKeys.alice.pkcs8PEM
        let cases: [(String, String)] = [
            ("empty", ""),
            ("no armour", "hello"),
            ("no END", "-----BEGIN PRIVATE KEY-----\nAAAA\n"),
            ("wrong END", good.replacingOccurrences(of: "END PRIVATE KEY", with: "END RSA PRIVATE KEY")),
            ("bad base64", "-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n"),
            ("not a key", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
            ("certificate", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
            ("public as private", TestKeys.alice.publicKey.pem),
            ("two blocks", good + good),
            ("encrypted", "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"),
            ("PKCS#8 labelled PKCS#1", good.replacingOccurrences(of: "PRIVATE KEY", with: "RSA PRIVATE KEY")),
            ("truncated", String(good.prefix(400)) + "\n-----END PRIVATE KEY-----\n"),
        ]
        for (what, text) in cases {
            expectError({ if case .pem = $0 { true } else { false } }, what) { _ = try PrincipalPrivateKey(pem: text) }
        }
        expectError({ if case .pem = $0 { true } else { false } }, "private as public") {
            _ = try PrincipalPublicKey(pem: good)
        }
        expectError({ if case .pem = $0 { true } else { false } }, "garbage SPKI") {
            _ = try PrincipalPublicKey(spkiDER: Data([0x30, 0x03, 0x02, 0x01, 0x01]))
        }
        // An SPKI with trailing bytes is not canonical and would give the key a second id.
        expectError({ if case .pem = $0 { true } else { false } }, "SPKI with trailing data") {
            _ = try PrincipalPublicKey(spkiDER: TestKeys.alice.publicKey.spkiDER + Data([0]))
        }
    }

    @Test("DEK wrap and unwrap")
    func wrap() throws {
        var rng = SystemRandomNumberGenerator()
        let dek = DataEncryptionKey.generate(version: 4, using: &rng)
        let wrapped = try TestKeys.alice.publicKey.wrap(dek)
        #expect(wrapped.count == 384)
        #expect(try TestKeys.alice.publicKey.wrap(dek) != wrapped, "OAEP is randomised")
        let back = try TestKeys.alice.unwrap(wrapped, version: 4)
        #expect(back.version == 4)
        // The unwrapped key opens what the original sealed.
        let ctx = EnvelopeContext(vaultId: "v", itemId: "i", fieldId: "f", dekVersion: 4)
        let env = try FieldEnvelope.seal(Data("s3cret".utf8), key: dek, context: ctx)
        #expect(try env.open(key: back, context: ctx) == Data("s3cret".utf8))
        #expect(!String(describing: dek).contains("s3cret") && String(describing: dek).contains("redacted"))

        expectError({ if case .wrap = $0 { true } else { false } }, "unwrap with the wrong key") {
            _ = try TestKeys.bob.unwrap(wrapped, version: 4)
        }
        var tampered = wrapped
        tampered[100] ^= 1
        expectError({ if case .wrap = $0 { true } else { false } }, "tampered wrap") {
            _ = try TestKeys.alice.unwrap(tampered, version: 4)
        }
        expectError({ if case .wrap = $0 { true } else { false } }, "short wrap") {
            _ = try TestKeys.alice.unwrap(wrapped.prefix(10), version: 4)
        }
        expectError({ if case .wrap = $0 { true } else { false } }, "bad version") {
            _ = try TestKeys.alice.unwrap(wrapped, version: 0)
        }
    }

    @Test("PSS signatures: sign, verify, reject tampering and other keys")
    func signatures() throws {
        let msg = Data("message".utf8)
        let sig = try TestKeys.alice.sign(msg)
        #expect(sig.count == 384)
        #expect(TestKeys.alice.publicKey.isValidSignature(sig, for: msg))
        #expect(!TestKeys.alice.publicKey.isValidSignature(sig, for: Data("messagf".utf8)))
        #expect(!TestKeys.bob.publicKey.isValidSignature(sig, for: msg))
        var bad = sig
        bad[5] ^= 0x80
        #expect(!TestKeys.alice.publicKey.isValidSignature(bad, for: msg))
        #expect(!TestKeys.alice.publicKey.isValidSignature(sig.dropLast(), for: msg))
        #expect(!TestKeys.alice.publicKey.isValidSignature(Data(), for: msg))
    }
}

/// Builds a PKCS#1 `RSA PUBLIC KEY` PEM with swift-crypto directly, independent of our code.
enum _RSAForTests {
    static func pkcs1PublicPEM(of key: PrincipalPublicKey) throws -> String {
        try _RSA.Signing.PublicKey(derRepresentation: key.spkiDER).pkcs1PEMRepresentation
    }
}
