import Crypto
import Foundation
import Testing
@testable import LatchLog

struct WycheproofEd25519: Decodable {
    struct Group: Decodable {
        struct Key: Decodable { let pk: Hex }
        struct Case: Decodable { let tcId: Int; let comment: String; let msg: Hex; let sig: Hex; let result: String }
        let publicKey: Key
        let tests: [Case]
    }
    let numberOfTests: Int
    let testGroups: [Group]
}

struct GoNoteExample: Decodable {
    let verifierKey: String
    let signerKey: String
    let text: String
    let signedNote: String
    let verifierKeyWithPlus: String
}

@Suite("Signed notes and checkpoints")
struct SignedNoteTests {
    static let origin = "latchkey.test/log"

    static func signer(_ name: String = origin, seed: UInt64 = 1) throws -> NoteSigner {
        var rng = SeededGenerator(seed: seed)
        return try NoteSigner.generate(name: name, using: &rng)
    }

    static func checkpoint(size: Int = 5) throws -> Checkpoint {
        var store = InMemoryHashStore()
        for i in 0..<size { store.append(leaf: Data("entry \(i)".utf8)) }
        return try Checkpoint(origin: origin, size: UInt64(store.size), root: store.root())
    }

    @Test func wycheproofEd25519ThroughNoteVerifier() throws {
        let file = try loadVectors("ed25519_test", as: WycheproofEd25519.self)
        var valid = 0, invalid = 0
        for group in file.testGroups {
            for t in group.tests {
                let ok = NoteKeys.ed25519Verify(publicKey: group.publicKey.pk.data, signature: t.sig.data, message: t.msg.data)
                #expect(ok == (t.result == "valid"), "tcId \(t.tcId) \(t.comment)")
                if t.result == "valid" { valid += 1 } else { invalid += 1 }
            }
        }
        #expect(valid + invalid == file.numberOfTests)
        #expect(valid == 88 && invalid == 63)
        expectVectorsRan(valid + invalid, "Wycheproof Ed25519 cases (\(valid) valid, \(invalid) invalid)")
    }

    @Test func goSumdbNoteExample() throws {
        let v = try loadVectors("go_sumdb_note", as: GoNoteExample.self)
        let signer = try NoteSigner(secretKeyString: v.signerKey)
        let verifier = try NoteVerifier(keyString: v.verifierKey)
        #expect(signer.verifier == verifier)
        #expect(verifier.keyString == v.verifierKey)
        #expect(signer.secretKeyString == v.signerKey)
        #expect(String(format: "%08x", verifier.keyID) == "c74f20a3")
        // Ed25519 is deterministic: our signature must be the published one, byte for byte.
        let note = try SignedNote.sign(text: v.text, with: [signer])
        #expect(note.encoded == v.signedNote)
        let parsed = try SignedNote(parsing: v.signedNote)
        #expect(parsed.text == v.text)
        #expect(try parsed.verify(with: [verifier]).count == 1)
        // Base64 may contain '+': only the first separators split the key string.
        let plus = try NoteVerifier(keyString: v.verifierKeyWithPlus)
        #expect(plus.name == "TEST" && plus.keyString == v.verifierKeyWithPlus)
        #expect(throws: LogError.self) { try parsed.verify(with: [plus]) }
        expectVectorsRan(1, "Go sumdb/note example")
    }

    @Test func checkpointRoundTrip() throws {
        let signer = try Self.signer()
        let cp = try Self.checkpoint(size: 9)
        let encoded = try cp.signedNote(with: signer)
        #expect(encoded.hasPrefix("\(Self.origin)\n9\n\(cp.root.base64)\n\n\u{2014} \(Self.origin) "))
        #expect(encoded.hasSuffix("\n"))
        let opened = try Checkpoint.open(encoded, origin: Self.origin, verifiers: [signer.verifier])
        #expect(opened == cp)
        // The verifier key string survives a round trip and still verifies.
        let fromString = try NoteVerifier(keyString: signer.verifier.keyString)
        #expect(try Checkpoint.open(encoded, origin: Self.origin, verifiers: [fromString]) == cp)
        // The signer key string too.
        let again = try NoteSigner(secretKeyString: signer.secretKeyString)
        #expect(try again.sign(cp.text) == signer.sign(cp.text))
        // Empty tree.
        let empty = try Checkpoint(origin: Self.origin, size: 0, root: .emptyRoot)
        #expect(empty.text == "\(Self.origin)\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n")
        #expect(try Checkpoint(text: empty.text) == empty)
    }

    @Test func tamperedNotesAreRejected() throws {
        let signer = try Self.signer()
        let cp = try Self.checkpoint(size: 9)
        let encoded = try cp.signedNote(with: signer)
        // Change the size, the root, the origin: each breaks the signature.
        let tampered = [
            encoded.replacingOccurrences(of: "\n9\n", with: "\n10\n"),
            encoded.replacingOccurrences(of: cp.root.base64, with: MerkleHash.emptyRoot.base64),
            encoded.replacingOccurrences(of: "\(Self.origin)\n9", with: "evil.test/log\n9"),
        ]
        for t in tampered {
            #expect(t != encoded)
            #expect(throws: LogError.self) { try Checkpoint.open(t, origin: Self.origin, verifiers: [signer.verifier]) }
        }
        // Flip one bit of the signature itself.
        var note = try SignedNote(parsing: encoded)
        note.signatures[0].signature[10] ^= 0x04
        #expect {
            try Checkpoint.open(note.encoded, origin: Self.origin, verifiers: [signer.verifier])
        } throws: { error in
            guard case .signature = error as? LogError else { return false }
            return true
        }
    }

    @Test func wrongKeyUnknownSignaturesAndCosigners() throws {
        let signer = try Self.signer(seed: 1)
        let other = try Self.signer(seed: 2)                 // same name, different key
        let witness = try Self.signer("witness.test/w1", seed: 3)
        let cp = try Self.checkpoint()
        let byOther = try cp.signedNote(with: other)
        #expect {
            try Checkpoint.open(byOther, origin: Self.origin, verifiers: [signer.verifier])
        } throws: { error in
            guard case .signature(let m) = error as? LogError else { return false }
            return m.contains("no signature from a trusted key")
        }
        // An unknown extra signature is ignored when a known one verifies, in either order.
        for signers in [[witness, signer], [signer, witness]] {
            let both = try cp.sign(with: signers).encoded
            #expect(try Checkpoint.open(both, origin: Self.origin, verifiers: [signer.verifier]) == cp)
            #expect(try SignedNote(parsing: both).verify(with: [signer.verifier, witness.verifier]).count == 2)
        }
        // A known key whose signature fails rejects the note, even next to a good one.
        var note = try cp.sign(with: [signer, witness])
        note.signatures[1].signature[0] ^= 1
        #expect(throws: LogError.self) { try note.verify(with: [signer.verifier, witness.verifier]) }
        #expect(try note.verify(with: [signer.verifier]).map(\.name) == [Self.origin])
        // Right key, wrong expected origin.
        let good = try cp.signedNote(with: signer)
        #expect(throws: LogError.checkpoint("origin is \"\(Self.origin)\", expected \"other.test/log\"")) {
            try Checkpoint.open(good, origin: "other.test/log", verifiers: [signer.verifier])
        }
        // No verifiers at all.
        #expect(throws: LogError.self) { try Checkpoint.open(good, origin: Self.origin, verifiers: []) }
    }

    @Test func malformedNotesAreRejected() throws {
        let signer = try Self.signer()
        let cp = try Self.checkpoint()
        let good = try cp.signedNote(with: signer)
        let sigLine = String(good.split(separator: "\n").last!)
        let blob = String(sigLine.split(separator: " ").last!)
        let body = cp.text
        let malformed: [String: String] = [
            "no blank line": body + sigLine + "\n",
            "no final newline": String(good.dropLast()),
            "no signatures": body + "\n",
            "hyphen instead of em dash": body + "\n- \(Self.origin) \(blob)\n",
            "missing space": body + "\n\u{2014}\(Self.origin) \(blob)\n",
            "extra field": body + "\n\u{2014} \(Self.origin) \(blob) x\n",
            "empty name": body + "\n\u{2014}  \(blob)\n",
            "name with plus": body + "\n\u{2014} a+b \(blob)\n",
            "bad base64": body + "\n\u{2014} \(Self.origin) !!!!\n",
            "unpadded base64": body + "\n\u{2014} \(Self.origin) \(blob.replacingOccurrences(of: "=", with: ""))\n",
            "short signature blob": body + "\n\u{2014} \(Self.origin) AAAA\n",
            "tab in text": body.replacingOccurrences(of: "\n5\n", with: "\n5\t\n") + "\n" + sigLine + "\n",
            "carriage return": good.replacingOccurrences(of: "\n", with: "\r\n"),
            "empty text": "\n" + sigLine + "\n",
            "blank line after signatures": good + "\n",
            "too many signatures": body + "\n" + String(repeating: sigLine + "\n", count: 101),
        ]
        for (what, note) in malformed.sorted(by: { $0.key < $1.key }) {
            #expect(throws: LogError.self, "\(what)") { try Checkpoint.open(note, origin: Self.origin, verifiers: [signer.verifier]) }
        }
        // Sixteen signatures of which one is known: accepted.
        let many = try cp.sign(with: (0..<15).map { try Self.signer("w\($0).test", seed: UInt64(100 + $0)) } + [signer])
        #expect(try Checkpoint.open(many.encoded, origin: Self.origin, verifiers: [signer.verifier]) == cp)
        // Bytes that are not UTF-8.
        #expect(throws: LogError.note("not valid UTF-8")) { try SignedNote(parsing: Array(good.utf8) + [0xff, 0x0a]) }
        expectVectorsRan(malformed.count + 1, "malformed note cases")
    }

    @Test func malformedCheckpointBodiesAreRejected() throws {
        let root = MerkleHash.emptyRoot.base64
        let bad = [
            "two lines": "o\n5\n",
            "leading zero": "o\n05\n\(root)\n",
            "sign": "o\n+5\n\(root)\n",
            "negative": "o\n-5\n\(root)\n",
            "spaces": "o\n 5\n\(root)\n",
            "hex size": "o\n0x5\n\(root)\n",
            "overflow": "o\n18446744073709551616\n\(root)\n",
            "empty origin": "\n5\n\(root)\n",
            "short root": "o\n5\n\(Data(count: 31).base64EncodedString())\n",
            "long root": "o\n5\n\(Data(count: 33).base64EncodedString())\n",
            "unpadded root": "o\n5\n\(root.dropLast())\n",
            "non-canonical root": "o\n5\n\(root.dropLast(2))V=\n",
            "empty extension line": "o\n5\n\(root)\n\n",
            "empty line then extension": "o\n5\n\(root)\n\nx\n",
            "no final newline": "o\n5\n\(root)",
        ]
        for (what, text) in bad.sorted(by: { $0.key < $1.key }) {
            #expect(throws: LogError.self, "\(what)") { try Checkpoint(text: text) }
        }
        // A well-formed body with an extension line parses and keeps it.
        let ext = try Checkpoint(text: "o\n18446744073709551615\n\(root)\nextra\n")
        #expect(ext.size == UInt64.max && ext.extensionLines == ["extra"])
        #expect(ext.text == "o\n18446744073709551615\n\(root)\nextra\n")
        #expect(throws: LogError.self) { try Checkpoint(origin: "a\nb", size: 1, root: .emptyRoot) }
        #expect(throws: LogError.self) { try Checkpoint(origin: "o", size: 1, root: .emptyRoot, extensionLines: [""]) }
    }

    @Test func malformedKeyStringsAreRejected() throws {
        let signer = try Self.signer()
        let vkey = signer.verifier.keyString
        let parts = vkey.split(separator: "+").map(String.init)
        let otherID = String(format: "%08x", signer.keyID ^ 1)
        let bad = [
            "", parts[0], "\(parts[0])+\(parts[1])",
            "\(parts[0])+\(otherID)+\(parts[2])",                      // wrong key ID
            "other.name+\(parts[1])+\(parts[2])",                      // name changes the key ID
            "\(parts[0])+\(parts[1].uppercased())+\(parts[2])",
            "\(parts[0])+\(parts[1])+\(Data([0x02]).base64EncodedString())",
            "\(parts[0])+\(parts[1])+\(Data(count: 33).base64EncodedString())",   // type byte 0x00
            vkey + "+x",
        ]
        for k in bad { #expect(throws: LogError.self, "\(k)") { try NoteVerifier(keyString: k) } }
        #expect(throws: LogError.self) { try NoteSigner(secretKeyString: vkey) }
        #expect(throws: LogError.self) { try NoteSigner(secretKeyString: "PRIVATE+KEY+" + vkey) }
        #expect(throws: LogError.self) { try NoteSigner.generate(name: "has space") }
        #expect(throws: LogError.self) { try NoteSigner.generate(name: "") }
        // The key ID is SHA-256(name || 0x0A || 0x01 || public key)[0..<4].
        let digest = Array(SHA256.hash(data: Data(signer.name.utf8) + [0x0a, 0x01] + signer.verifier.publicKeyBytes))
        #expect(signer.keyID == UInt32(digest[0]) << 24 | UInt32(digest[1]) << 16 | UInt32(digest[2]) << 8 | UInt32(digest[3]))
        // Never print the private key: descriptions of the signer must not contain it.
        #expect(!String(describing: signer).contains(String(signer.secretKeyString.split(separator: "+").last!)))
    }
}

@Suite("Checkpoint proof helpers")
struct CheckpointProofTests {
    @Test func inclusionAndConsistencyAgainstCheckpoints() throws {
        var store = InMemoryHashStore()
        let origin = "latchkey.test/log"
        let empty = try Checkpoint(origin: origin, size: 0, root: store.root())
        for i in 0..<100 { store.append(leaf: Data("e\(i)".utf8)) }
        let at100 = try Checkpoint(origin: origin, size: 100, root: store.root())
        for i in 100..<173 { store.append(leaf: Data("e\(i)".utf8)) }
        let at173 = try Checkpoint(origin: origin, size: 173, root: store.root())

        try at173.verifyConsistency(from: at100, proof: store.consistencyProof(from: 100, to: 173))
        try at173.verifyConsistency(from: empty, proof: [])
        try at173.verifyConsistency(from: at173, proof: [])
        try at173.verifyInclusion(leafHash: MerkleHash.leaf(Data("e150".utf8)), index: 150, proof: store.inclusionProof(index: 150, size: 173))

        #expect(throws: LogError.self) { try at100.verifyConsistency(from: at173, proof: []) }      // rollback
        #expect(throws: LogError.self) { try at173.verifyConsistency(from: empty, proof: [at100.root]) }
        #expect(throws: LogError.self) {
            try at173.verifyConsistency(from: Checkpoint(origin: "other.test/log", size: 100, root: at100.root),
                                        proof: store.consistencyProof(from: 100, to: 173))
        }
        #expect(throws: LogError.self) {   // a forked history: same size, different root
            try at173.verifyConsistency(from: Checkpoint(origin: origin, size: 100, root: MerkleHash.leaf(Data("fork".utf8))),
                                        proof: store.consistencyProof(from: 100, to: 173))
        }
        #expect(throws: LogError.self) {
            try at100.verifyInclusion(leafHash: MerkleHash.leaf(Data("e150".utf8)), index: 150, proof: store.inclusionProof(index: 150, size: 173))
        }
    }
}
