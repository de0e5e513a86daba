import Crypto
import Foundation
import Testing
@testable import LatchCrypto

@Suite("Unwrap memo")
struct UnwrapMemoTests {
    /// A deterministic generator, so a sealed memo can be compared byte for byte.
    struct Counter: RandomNumberGenerator {
        var n: UInt64 = 0
        mutating func next() -> UInt64 { n &+= 0x9E37_79B9_7F4A_7C15; return n }
    }

    static func raw(_ dek: DataEncryptionKey) -> Data { dek.key.withUnsafeBytes { Data($0) } }

    /// A wrapped DEK of alice's, and the DEK it unwraps to.
    static func wrapped(version: Int) throws -> (Data, DataEncryptionKey) {
        let dek = DataEncryptionKey.generate(version: version)
        return (try TestKeys.alice.publicKey.wrap(dek), dek)
    }

    @Test("A sealed memo opens only under its own key, and answers what unwrap would")
    func roundTrip() throws {
        let (w1, dek1) = try Self.wrapped(version: 1)
        let (w2, dek2) = try Self.wrapped(version: 2)
        var memo = UnwrapMemo(keyId: TestKeys.alice.publicKey.keyId)
        memo.remember(try TestKeys.alice.unwrap(w1, version: 1), unwrapping: w1)
        memo.remember(dek2, unwrapping: w2)
        let k = try UnwrapMemo.SealingKey(privateKeyPEM: TestKeys.alice.pkcs8PEM)
        var rng = Counter()
        let sealed = try memo.sealed(with: k, using: &rng)
        #expect(sealed.starts(with: Data("LKM1".utf8)))
        for dek in [dek1, dek2] {
            let raw = Self.raw(dek)
            #expect(sealed.range(of: raw) == nil && sealed.range(of: Data(raw.base64EncodedString().utf8)) == nil,
                    "the DEK must not appear in the sealed memo")
        }

        let opened = try #require(UnwrapMemo.open(sealed, with: k))
        #expect(opened.keyId == TestKeys.alice.publicKey.keyId && opened.count == 2)
        #expect(opened.dek(unwrapping: w1, version: 1).map(Self.raw) == Self.raw(dek1))
        #expect(opened.dek(unwrapping: w2, version: 2).map(Self.raw) == Self.raw(dek2))
        #expect(opened.dek(unwrapping: w2, version: 2)?.version == 2)
        #expect(opened.dek(unwrapping: w1, version: 2) == nil, "another version of the same bytes is a miss")
        #expect(opened.dek(unwrapping: try Self.wrapped(version: 1).0, version: 1) == nil)

        // another private key, or the same key spelt as PKCS#1, derives another sealing key
        #expect(UnwrapMemo.open(sealed, with: try .init(privateKeyPEM: TestKeys.bob.pkcs8PEM)) == nil)
        #expect(UnwrapMemo.open(sealed, with: try .init(privateKeyPEM: TestKeys.alice.pkcs1PEM)) == nil)
        // the same memo sealed again: a fresh nonce, so other bytes
        #expect(try memo.sealed(with: k, using: &rng) != sealed)
    }

    @Test("An altered, truncated or foreign memo does not open")
    func tampering() throws {
        let (w, dek) = try Self.wrapped(version: 1)
        var memo = UnwrapMemo(keyId: "k")
        memo.remember(dek, unwrapping: w)
        let k = try UnwrapMemo.SealingKey(privateKeyPEM: TestKeys.alice.pkcs8PEM)
        var rng = Counter()
        let sealed = try memo.sealed(with: k, using: &rng)
        for i in [0, 4, 15, 16, sealed.count / 2, sealed.count - 1] {
            var bad = sealed
            bad[bad.startIndex + i] ^= 0x01
            #expect(UnwrapMemo.open(bad, with: k) == nil, "byte \(i) altered")
        }
        #expect(UnwrapMemo.open(sealed.prefix(sealed.count - 1), with: k) == nil)
        #expect(UnwrapMemo.open(sealed.prefix(20), with: k) == nil)
        #expect(UnwrapMemo.open(Data(), with: k) == nil)
        #expect(UnwrapMemo.open(Data("{\"key\":\"k\"}".utf8), with: k) == nil)
    }

    @Test("keep(onlyUnwrapping:) drops the entries of wrapped keys no longer served")
    func pruning() throws {
        let (w1, d1) = try Self.wrapped(version: 1)
        let (w2, d2) = try Self.wrapped(version: 2)
        var memo = UnwrapMemo()
        memo.remember(d1, unwrapping: w1)
        memo.remember(d2, unwrapping: w2)
        memo.keep(onlyUnwrapping: [w2])
        #expect(memo.count == 1 && memo.dek(unwrapping: w1, version: 1) == nil && memo.dek(unwrapping: w2, version: 2) != nil)
        memo.keep(onlyUnwrapping: [Data]())
        #expect(memo.count == 0)
    }

    @Test("Signature checks are sealed with the DEKs, open again, and are pruned to those still used")
    func signatureChecks() throws {
        let envelope = try SignedEnvelope.sign(WrappedKeyStatement(vaultId: "v", dekVersion: 1, recipientKeyId: "k", wrappedKeyHash: "h"),
                                               with: TestKeys.alice)
        let d1 = try envelope.signatureDigest()
        let d2 = try SignedEnvelope(checkpoint: envelope.checkpoint, signerKeyId: envelope.signerKeyId, signature: "AAAA").signatureDigest()
        #expect(d1 != d2 && d1.utf8.count == 64)
        var memo = UnwrapMemo(keyId: TestKeys.alice.publicKey.keyId)
        memo.rememberVerified(d1)
        memo.rememberVerified(d2)
        let k = try UnwrapMemo.SealingKey(privateKeyPEM: TestKeys.alice.pkcs8PEM)
        var rng = Counter()
        var opened = try #require(UnwrapMemo.open(try memo.sealed(with: k, using: &rng), with: k))
        #expect(opened.hasVerified(d1) && opened.hasVerified(d2) && opened.signatureCount == 2)
        opened.keep(onlyVerified: [d2])
        #expect(!opened.hasVerified(d1) && opened.hasVerified(d2))
        #expect(!UnwrapMemo(keyId: nil).hasVerified(d1))
    }

    @Test("The memo's description never shows a DEK")
    func redaction() throws {
        let (w, dek) = try Self.wrapped(version: 1)
        var memo = UnwrapMemo(keyId: "k")
        memo.remember(dek, unwrapping: w)
        let raw = Self.raw(dek)
        for text in [String(describing: memo), String(reflecting: memo), "\(memo)"] {
            #expect(!text.contains(raw.base64EncodedString()) && !text.contains(raw.map { String(format: "%02x", $0) }.joined()))
        }
    }
}
