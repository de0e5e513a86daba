import Crypto
import Foundation
import Testing
@testable import LatchCrypto

@Suite("Wycheproof")
struct WycheproofTests {
    struct OAEPCase: WycheproofCase {
        var tcId: Int, result: String, flags: [String], msg: String, ct: String, label: String
    }
    struct OAEPGroup: Decodable {
        var privateKeyPem: String
        var sha: String, mgfSha: String
        var tests: [OAEPCase]
    }

    @Test("RSA-OAEP-2048 SHA-256/MGF1-SHA-256 decrypt (empty label)")
    func oaep() throws {
        let file = try loadWycheproof("rsa_oaep_2048_sha256_mgf1sha256_test.json", as: OAEPGroup.self)
        var tally = VectorTally(name: "rsa_oaep_2048_sha256_mgf1sha256")
        for group in file.testGroups {
            #expect(group.sha == "SHA-256" && group.mgfSha == "SHA-256")
            let key = try PrincipalPrivateKey(pem: group.privateKeyPem)
            #expect(key.bits == 2048)
            for t in group.tests {
                guard t.label.isEmpty else {
                    tally.skip("non-empty OAEP label; swift-crypto's _RSA.Encryption API has no label parameter")
                    continue
                }
                let out = try? key.oaepDecrypt(hex(t.ct))
                switch t.result {
                case "valid": tally.record(try out == hex(t.msg), "tc\(t.tcId)")
                case "invalid": tally.record(out == nil, "tc\(t.tcId)")
                default: tally.record(false, "tc\(t.tcId) unexpected result \(t.result)")
                }
            }
        }
        tally.finish(expectedTotal: file.numberOfTests)
    }

    struct PSSCase: WycheproofCase {
        var tcId: Int, result: String, flags: [String], msg: String, sig: String
    }
    struct PSSGroup: Decodable {
        var publicKeyDer: String, publicKeyPem: String
        var sha: String, mgfSha: String, sLen: Int
        var tests: [PSSCase]
    }

    @Test("RSA-PSS-2048 SHA-256, MGF1-SHA-256, salt 32 verify (all cases)")
    func pss() throws {
        let file = try loadWycheproof("rsa_pss_2048_sha256_mgf1_32_test.json", as: PSSGroup.self)
        var tally = VectorTally(name: "rsa_pss_2048_sha256_mgf1_32")
        for group in file.testGroups {
            #expect(group.sha == "SHA-256" && group.mgfSha == "SHA-256" && group.sLen == 32)
            let key = try PrincipalPublicKey(spkiDER: hex(group.publicKeyDer))
            #expect(try PrincipalPublicKey(pem: group.publicKeyPem) == key)
            for t in group.tests {
                let ok = try key.isValidSignature(hex(t.sig), for: hex(t.msg))
                switch t.result {
                case "valid": tally.record(ok, "tc\(t.tcId)")
                case "invalid": tally.record(!ok, "tc\(t.tcId)")
                default: tally.record(false, "tc\(t.tcId) unexpected result \(t.result)")
                }
            }
        }
        tally.finish(expectedTotal: file.numberOfTests)
    }

    struct GCMCase: WycheproofCase {
        var tcId: Int, result: String, flags: [String]
        var key: String, iv: String, aad: String, msg: String, ct: String, tag: String
    }
    struct GCMGroup: Decodable {
        var ivSize: Int, keySize: Int, tagSize: Int
        var tests: [GCMCase]
    }

    /// AES-GCM as the envelope uses it (swift-crypto `AES.GCM`, 12-byte nonce, 16-byte tag),
    /// for every key size.
    @Test("AES-GCM seal/open, every 96-bit-IV case")
    func aesGCM() throws {
        let file = try loadWycheproof("aes_gcm_test.json", as: GCMGroup.self)
        var tally = VectorTally(name: "aes_gcm (96-bit IV)")
        for group in file.testGroups {
            for t in group.tests {
                guard group.ivSize == 96 else {
                    tally.skip("IV is not 96 bits; envelopes use only 96-bit IVs")
                    continue
                }
                guard group.tagSize == 128 else {
                    tally.skip("tag of \(group.tagSize) bits; envelopes use 128-bit tags")
                    continue
                }
                let key = SymmetricKey(data: try hex(t.key))
                let nonce = try AES.GCM.Nonce(data: hex(t.iv))
                let aad = try hex(t.aad), msg = try hex(t.msg), ct = try hex(t.ct), tag = try hex(t.tag)
                let opened: Data? = {
                    guard let box = try? AES.GCM.SealedBox(nonce: nonce, ciphertext: ct, tag: tag) else { return nil }
                    return try? AES.GCM.open(box, using: key, authenticating: aad)
                }()
                switch t.result {
                case "valid":
                    let sealed = try AES.GCM.seal(msg, using: key, nonce: nonce, authenticating: aad)
                    tally.record(sealed.ciphertext == ct && sealed.tag == tag && opened == msg, "tc\(t.tcId)")
                case "invalid":
                    tally.record(opened == nil, "tc\(t.tcId)")
                default: tally.record(false, "tc\(t.tcId) unexpected result \(t.result)")
                }
            }
        }
        tally.finish(expectedTotal: file.numberOfTests)
        #expect(tally.ran == 197, "FORMAT.md counts 197 tests with 96-bit IVs")
    }
}
