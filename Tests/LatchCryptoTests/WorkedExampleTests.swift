import Foundation
import Testing
@testable import LatchCrypto

/// Serves fixed bytes as a RandomNumberGenerator (8 bytes per word, little-endian), so the
/// worked example in docs/protocol.md section 1.9 is reproducible. Tests only.
struct FixedBytesRNG: RandomNumberGenerator {
    var bytes: [UInt8]
    var offset = 0
    mutating func next() -> UInt64 {
        var w: UInt64 = 0
        for i in 0..<8 {
            w |= UInt64(bytes[(offset + i) % bytes.count]) << (8 * UInt64(i))
        }
        offset += 8
        return w
    }
}

/// Recomputes every value of the protocol document's worked example from its inputs.
@Suite("docs/protocol.md worked example")
struct WorkedExampleTests {
    struct Example {
        var key: PrincipalPrivateKey
        var dek: DataEncryptionKey
        var context: EnvelopeContext
        var envelope: FieldEnvelope
        var detail: ItemDetailCheckpoint
        var summary: VaultSummaryCheckpoint
    }

    static func build() throws -> Example {
        // The 2048-bit private key of Wycheproof's RSA-OAEP file (public test data).
        struct G: Decodable { var privateKeyPem: String; var tests: [WycheproofTests.OAEPCase] }
        let file = try loadWycheproof("rsa_oaep_2048_sha256_mgf1sha256_test.json", as: G.self)
        let key = try PrincipalPrivateKey(pem: file.testGroups[0].privateKeyPem)
        var rng = FixedBytesRNG(bytes: Array(0x00...0x1f) + Array(0xa0...0xaf))
        let dek = DataEncryptionKey.generate(version: 1, using: &rng)       // bytes 00..1f
        let context = EnvelopeContext(vaultId: "0d7f4a8e-2b1c-4e5f-9a6b-3c2d1e0f4a5b",
                                      itemId: "5e8f9a0b-1c2d-4e3f-8a7b-6c5d4e3f2a1b",
                                      fieldId: "9a8b7c6d-5e4f-4a3b-9c2d-1e0f2a3b4c5d", dekVersion: 1)
        let envelope = try FieldEnvelope.seal(Data("hunter2".utf8), key: dek, context: context, using: &rng) // IV a0..ab
        let detail = ItemDetailCheckpoint(
            vaultItemId: context.itemId, vaultId: context.vaultId, version: 1, name: "GitHub", type: "LOGIN",
            websites: ["https://github.com"], groupId: nil,
            fields: [.init(id: context.fieldId, name: "password", type: "SECRET", order: 0,
                           isEnvironmentVariable: true, envelopeHash: envelope.sha256Hex)])
        let summary = VaultSummaryCheckpoint(
            vaultId: context.vaultId, version: 1, name: "Production", dataClassification: "CONFIDENTIAL",
            currentDekVersion: 1,
            items: [.init(id: detail.vaultItemId, name: detail.name, type: detail.type, websites: detail.websites,
                          groupId: nil, detailHash: detail.hash)])
        return Example(key: key, dek: dek, context: context, envelope: envelope, detail: detail, summary: summary)
    }

    static let keyId = #"c963778ab59460a32e2e78aed3deddd8ab2358812381ad455c675f907444a6d6"#
    static let aadHex = #"0000001a6c617463686b6579206669656c6420656e76656c6f70652076330000002430643766346138652d326231632d346535662d396136622d3363326431653066346135620000002435653866396130622d316332642d346533662d386137622d3663356434653366326131620000002439613862376336642d356534662d346133622d396332642d3165306632613362346335640000000000000001"#
    static let envelope = #"{"v":3,"iv":"oKGio6Slpqeoqaqr","t":"fD4Vwf7uf2uBF/FYcNDulA==","d":"jm0SWSC5MA=="}"#
    static let envelopeHash = #"13b783c1a3738e3aaedaab6354ef290e7586d7482a442aaba209c551c7759d89"#
    static let detailJSON = #"{"fields":[{"envelopeHash":"13b783c1a3738e3aaedaab6354ef290e7586d7482a442aaba209c551c7759d89","id":"9a8b7c6d-5e4f-4a3b-9c2d-1e0f2a3b4c5d","isEnvironmentVariable":true,"name":"password","order":0,"type":"SECRET"}],"groupId":null,"itemType":"LOGIN","name":"GitHub","type":"latchkey.item-detail.v1","vaultId":"0d7f4a8e-2b1c-4e5f-9a6b-3c2d1e0f4a5b","vaultItemId":"5e8f9a0b-1c2d-4e3f-8a7b-6c5d4e3f2a1b","version":1,"websites":["https://github.com"]}"#
    static let detailHash = #"a35f52cd3e130c59a30522d1c6ab60c3c173618f95060701f79cf30d1d35748e"#
    static let summaryJSON = #"{"currentDekVersion":1,"dataClassification":"CONFIDENTIAL","items":[{"detailHash":"a35f52cd3e130c59a30522d1c6ab60c3c173618f95060701f79cf30d1d35748e","groupId":null,"id":"5e8f9a0b-1c2d-4e3f-8a7b-6c5d4e3f2a1b","name":"GitHub","type":"LOGIN","websites":["https://github.com"]}],"name":"Production","type":"latchkey.vault-summary.v1","vaultId":"0d7f4a8e-2b1c-4e5f-9a6b-3c2d1e0f4a5b","version":1}"#
    static let summarySignature = #"L3rc90/K3mawsH0uh766myc/+PD5RsBNHL5UVXklLDEp99o23zCkT+pF561ZU1UsAOwf2uOXg/c3LtnBAr2YMQ270/SWtzZ13yUw3AF+gP2afs9RBud+l3JefpqL3irSRqmACtFtXPtn+s19RrXdAgv4Whnf0jy/FJ2UJXTRXSSmS9z1d8RYLpIxAybmxriMMOKIXGefXzW5ZF+Dzn1Vppw8IchF2gDBH9j3nFmpi+zOGRujUsYHaDvUJVZVEejK7mytvlq8dyYnwXnx/SAipF5GaMo+Dngyys51Byr+z2hEupp4YkbenWDtYQjAa7qmGInWJ8gnwjkW/lu+LnYCoA=="#
    static let wrappedDEK = #"LxK8tkOU3xG84dadtun0/TSacduVozjGB8/SSH88rSsZFpSgN2ZUORbrDXCl307omZjx++4URjqVydA089cGKyqaGuloWPQIKEwcOlTAOhcvYYhQ4mbmB8DpohNzwZqB8/cop0+xQnST5hMHqCgYPz6yxkLaDxeEQbOuVhcFCJE6Q7AeBhpQ+aIauVHgMWrOkKT7aFmc7s5K2IGrJZJ25sHsdN/KbzIjVAV1TMx/Kx43z+9+LZ9mEICaanbVQafbZUZdjsYmA36gDAW09a8GEF0r2ivf/vX6u60M1uxmRBoguJd6NAM3T/h79GO0dfjS8e4Hkd6ybRcdyb/zmj2eSQ=="#
    static let wrapStatementJSON = #"{"dekVersion":1,"recipientKeyId":"c963778ab59460a32e2e78aed3deddd8ab2358812381ad455c675f907444a6d6","type":"latchkey.wrapped-key.v1","vaultId":"0d7f4a8e-2b1c-4e5f-9a6b-3c2d1e0f4a5b","wrappedKeyHash":"772f955cb034a40a586c6ccbc406b5a82b59d062fc76506ef9deaafa2063f3be"}"#

    @Test("Every value in the worked example is reproduced")
    func workedExample() throws {
        let ex = try Self.build()
        let values: [(String, String, String)] = [
            ("keyId", ex.key.publicKey.keyId, Self.keyId),
            ("aadHex", hexString(ex.context.associatedData), Self.aadHex),
            ("envelope", ex.envelope.string, Self.envelope),
            ("envelopeHash", ex.envelope.sha256Hex, Self.envelopeHash),
            ("detailJSON", String(decoding: ex.detail.canonicalJSON, as: UTF8.self), Self.detailJSON),
            ("detailHash", ex.detail.hash, Self.detailHash),
            ("summaryJSON", String(decoding: ex.summary.canonicalJSON, as: UTF8.self), Self.summaryJSON),
        ]
        for (name, computed, documented) in values {
            if computed != documented { print("[worked example] \(name) = \(computed)") }
            #expect(computed == documented, "\(name)")
        }
        #expect(try ex.envelope.open(key: ex.dek, context: ex.context) == Data("hunter2".utf8))

        // Randomised values (PSS salt, OAEP seed) are checked by verifying / unwrapping.
        let sigEnvelope = SignedEnvelope(checkpoint: ex.summary, signerKeyId: Self.keyId, signature: Self.summarySignature)
        do { try sigEnvelope.verify(with: ex.key.publicKey) } catch {
            let fresh = try SignedEnvelope.sign(ex.summary, with: ex.key)
            print("[worked example] summarySignature = \(fresh.signature)")
            Issue.record("documented summary signature does not verify: \(error)")
        }
        if let wrapped = Data(base64Encoded: Self.wrappedDEK), let dek = try? ex.key.unwrap(wrapped, version: 1) {
            #expect(dekBytes(dek) == dekBytes(ex.dek))
            let st = WrappedKeyStatement(vaultId: ex.context.vaultId, dekVersion: 1, recipientKeyId: Self.keyId, wrappedKey: wrapped)
            let json = String(decoding: st.canonicalJSON, as: UTF8.self)
            if json != Self.wrapStatementJSON { print("[worked example] wrapStatementJSON = \(json)") }
            #expect(json == Self.wrapStatementJSON)
        } else {
            print("[worked example] wrappedDEK = \(try ex.key.publicKey.wrap(ex.dek).base64EncodedString())")
            Issue.record("documented wrapped DEK does not unwrap")
        }
    }
}
