import Foundation
import Testing
@testable import LatchCrypto

/// A deterministic generator for tests only (SplitMix64): never for real keys.
struct TestRNG: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}

@Suite("Field envelope v3")
struct EnvelopeTests {
    let ctx = EnvelopeContext(vaultId: "6f0a3b52-8d1e-4c55-9a51-0c2d3e4f5a6b", itemId: "item-1", fieldId: "field-1", dekVersion: 2)

    func isEnvelopeError(_ e: LatchCryptoError) -> Bool { if case .envelope = e { true } else { false } }

    @Test("Round trip and wire form")
    func roundTrip() throws {
        var rng = SystemRandomNumberGenerator()
        let dek = DataEncryptionKey.generate(version: 2, using: &rng)
        for size in [0, 1, 15, 16, 17, 1024, 65_536] {
            let plaintext = Data((0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7) })
            let env = try FieldEnvelope.seal(plaintext, key: dek, context: ctx, using: &rng)
            #expect(env.iv.count == 12 && env.tag.count == 16 && env.ciphertext.count == size)
            let parsed = try FieldEnvelope(string: env.string)
            #expect(parsed == env)
            #expect(try parsed.open(key: dek, context: ctx) == plaintext)
            #expect(env.string.hasPrefix("{\"v\":3,\"iv\":\""))
            #expect(env.sha256Hex == hexString(SHA256ForTests.hash(Data(env.string.utf8))))
        }
        // Fresh IVs: two seals of the same plaintext differ.
        let a = try FieldEnvelope.seal(Data("x".utf8), key: dek, context: ctx)
        let b = try FieldEnvelope.seal(Data("x".utf8), key: dek, context: ctx)
        #expect(a.iv != b.iv && a.string != b.string)
    }

    @Test("AAD binds vault, item, field and DEK version")
    func binding() throws {
        var rng = TestRNG(state: 1)
        let dek = DataEncryptionKey.generate(version: 2, using: &rng)
        let env = try FieldEnvelope.seal(Data("hunter2".utf8), key: dek, context: ctx, using: &rng)
        var moved = [ctx, ctx, ctx]
        moved[0].vaultId = "6f0a3b52-8d1e-4c55-9a51-0c2d3e4f5a6c"
        moved[1].itemId = "item-2"
        moved[2].fieldId = "field-2"
        for other in moved {
            expectError(isEnvelopeError, "moved to \(other)") { _ = try env.open(key: dek, context: other) }
        }
        // Same key bytes relabelled as another version: still refused by the AAD.
        let raw = try DataEncryptionKey(unsafeRawBytes: dekBytes(dek), version: 3)
        var v3 = ctx
        v3.dekVersion = 3
        expectError(isEnvelopeError, "other DEK version") { _ = try env.open(key: raw, context: v3) }
        // A key whose version disagrees with the context is refused before decrypting.
        expectError(isEnvelopeError, "key/context version mismatch") { _ = try env.open(key: raw, context: ctx) }
        // Boundary shifting between ids cannot collide thanks to length prefixes.
        let a = EnvelopeContext(vaultId: "ab", itemId: "c", fieldId: "d", dekVersion: 1)
        let b = EnvelopeContext(vaultId: "a", itemId: "bc", fieldId: "d", dekVersion: 1)
        #expect(a.associatedData != b.associatedData)
        // A different key fails too.
        let other = DataEncryptionKey.generate(version: 2, using: &rng)
        expectError(isEnvelopeError, "other DEK") { _ = try env.open(key: other, context: ctx) }
    }

    @Test("Tampered or malformed envelopes are typed envelope errors")
    func tampering() throws {
        var rng = TestRNG(state: 2)
        let dek = DataEncryptionKey.generate(version: 2, using: &rng)
        let env = try FieldEnvelope.seal(Data("correct horse".utf8), key: dek, context: ctx, using: &rng)
        // Flip each byte of iv, tag and ciphertext in turn.
        for part in 0..<3 {
            let bytes = [env.iv, env.tag, env.ciphertext][part]
            for i in 0..<bytes.count {
                var fields = [env.iv, env.tag, env.ciphertext]
                fields[part][fields[part].startIndex + i] ^= 0x01
                let s = "{\"v\":3,\"iv\":\"\(fields[0].base64EncodedString())\",\"t\":\"\(fields[1].base64EncodedString())\",\"d\":\"\(fields[2].base64EncodedString())\"}"
                let t = try FieldEnvelope(string: s)
                expectError(isEnvelopeError, "flip part \(part) byte \(i)") { _ = try t.open(key: dek, context: ctx) }
            }
        }
        let s = env.string
        let malformed = [
            "", "[]", "{}", s.replacingOccurrences(of: "\"v\":3", with: "\"v\":2"),
            s.replacingOccurrences(of: "\"v\":3", with: "\"v\":\"3\""),
            s.replacingOccurrences(of: ",\"d\":", with: ", \"d\":"),              // whitespace
            s.replacingOccurrences(of: "{\"v\":3,", with: "{") .replacingOccurrences(of: "}", with: ",\"v\":3}"),  // order
            s.replacingOccurrences(of: "}", with: ",\"x\":1}"),                   // extra member
            "{\"v\":3,\"iv\":\"AAAA\",\"t\":\"\(env.tag.base64EncodedString())\",\"d\":\"\"}",   // short IV
            "{\"v\":3,\"iv\":\"\(env.iv.base64EncodedString())\",\"t\":\"AAAA\",\"d\":\"\"}",    // short tag
            "{\"v\":3,\"iv\":\"\(env.iv.base64EncodedString())\",\"t\":\"\(env.tag.base64EncodedString())\",\"d\":\"A\"}",
            String(s.dropLast()),
        ]
        for m in malformed {
            expectError(isEnvelopeError, "malformed \(m.prefix(40))") { _ = try FieldEnvelope(string: m) }
        }
        // Empty ids and non-positive versions are refused when sealing.
        var bad = ctx
        bad.fieldId = ""
        expectError(isEnvelopeError, "empty field id") { _ = try FieldEnvelope.seal(Data(), key: dek, context: bad) }
        let v0 = DataEncryptionKey.generate(version: 0, using: &rng)
        var c0 = ctx
        c0.dekVersion = 0
        expectError(isEnvelopeError, "version 0") { _ = try FieldEnvelope.seal(Data(), key: v0, context: c0) }
    }

    @Test("AAD bytes are exactly as documented")
    func aadLayout() {
        let c = EnvelopeContext(vaultId: "v1", itemId: "i", fieldId: "ƒ", dekVersion: 258)
        var expected: [UInt8] = [0, 0, 0, 26] + Array("latchkey field envelope v3".utf8)
        expected += [0, 0, 0, 2] + Array("v1".utf8)
        expected += [0, 0, 0, 1] + Array("i".utf8)
        expected += [0, 0, 0, 2, 0xc6, 0x92]
        expected += [0, 0, 0, 0, 0, 0, 1, 2]
        #expect(Array(c.associatedData) == expected)
    }
}

func dekBytes(_ dek: DataEncryptionKey) -> Data { dek.key.withUnsafeBytes { Data($0) } }

import Crypto
enum SHA256ForTests {
    static func hash(_ d: Data) -> [UInt8] { Array(SHA256.hash(data: d)) }
}
