import Foundation
import Testing
@testable import LatchCrypto

/// Mutated inputs must give a typed error or a value, never a crash.
@Suite("Robustness")
struct RobustnessTests {
    static func mutate(_ input: [UInt8], _ rng: inout TestRNG) -> [UInt8] {
        var b = input
        for _ in 0..<(1 + Int(rng.next() % 3)) {
            switch rng.next() % 4 {
            case 0 where !b.isEmpty: b[Int(rng.next() % UInt64(b.count))] = UInt8(truncatingIfNeeded: rng.next())
            case 1 where !b.isEmpty: b.remove(at: Int(rng.next() % UInt64(b.count)))
            case 2:
                let alphabet = Array("{}[]\",:\\e-.0u\u{7f}".utf8)
                b.insert(alphabet[Int(rng.next() % UInt64(alphabet.count))], at: Int(rng.next() % UInt64(b.count + 1)))
            default: b = Array(b.prefix(Int(rng.next() % UInt64(b.count + 1))))
            }
        }
        return b
    }

    @Test("Canonical JSON: mutated input throws canonicalJSON or yields an idempotent canonical form")
    func canonicalJSONFuzz() throws {
        var rng = TestRNG(state: 42)
        let seed = Array(#"{"a":[1,2.5e-3,-0,true,null,"x\u00e9\ud83d\ude00\n"],"b":{"c":""},"d":1e21}"#.utf8)
        var accepted = 0, rejected = 0
        for _ in 0..<3000 {
            let input = Data(Self.mutate(seed, &rng))
            do {
                let out = try CanonicalJSON.canonicalize(input)
                #expect(try CanonicalJSON.canonicalize(out) == out)
                accepted += 1
            } catch let e as LatchCryptoError {
                guard case .canonicalJSON = e else { Issue.record("wrong layer \(e)"); continue }
                rejected += 1
            }
        }
        print("[fuzz] canonical JSON: \(accepted) accepted, \(rejected) rejected")
        #expect(accepted > 0 && rejected > 0)
    }

    @Test("Envelope and PEM parsers: mutated input throws a typed error")
    func parserFuzz() throws {
        var rng = TestRNG(state: 7)
        let dek = DataEncryptionKey.generate(version: 1, using: &rng)
        let ctx = EnvelopeContext(vaultId: "v", itemId: "i", fieldId: "f", dekVersion: 1)
        let env = Array(try FieldEnvelope.seal(Data("value".utf8), key: dek, context: ctx, using: &rng).string.utf8)
        var opened = 0
        for _ in 0..<2000 {
            let s = String(decoding: Self.mutate(env, &rng), as: UTF8.self)
            do {
                let e = try FieldEnvelope(string: s)
                if (try? e.open(key: dek, context: ctx)) != nil {
                    opened += 1
                    // Only the original bytes may open: there is one spelling per envelope.
                    #expect(Array(s.utf8) == env)
                }
            } catch let e as LatchCryptoError {
                guard case .envelope = e else { Issue.record("wrong layer \(e)"); continue }
            }
        }
        print("[fuzz] envelope: \(opened) of 2000 mutations left the bytes unchanged and opened")
        let pem = Array(TestKeys.alice.publicKey.pem.utf8)
        for _ in 0..<300 {
            let s = String(decoding: Self.mutate(pem, &rng), as: UTF8.self)
            do { _ = try PrincipalPublicKey(pem: s) } catch let e as LatchCryptoError {
                switch e { case .pem, .keySize: break; default: Issue.record("wrong layer \(e)") }
            }
        }
    }
}
