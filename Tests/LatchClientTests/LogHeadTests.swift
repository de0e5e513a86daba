import Foundation
import Testing
import LatchClient
import LatchLog
import LatchWire

// The tree head check (issue 5): a head byte-identical to the last verified one skips only the
// signature check; any other note, including one that differs from it by its signature alone,
// is checked in full.
@Suite struct LogHeadTests {
    let signer: NoteSigner
    let head: Checkpoint
    let note: String

    init() throws {
        signer = try NoteSigner.generate(name: "latchkey.log/test")
        head = try Checkpoint(origin: signer.name, size: 7, root: MerkleHash.leaf(Data("seven".utf8)))
        note = try head.signedNote(with: signer)
    }

    func response(_ checkpoint: String) -> LogCheckpointResponse {
        LogCheckpointResponse(treeSize: 7, rootHash: head.root.base64, checkpoint: checkpoint, logKey: signer.verifier.keyString)
    }

    @Test("an unchanged head opens without a signature check, and gives the same checkpoint")
    func unchangedHead() throws {
        let checked = try LogVerifier.openHead(response(note), verifier: signer.verifier)
        let reused = try LogVerifier.openHead(response(note), verifier: signer.verifier, verifiedBefore: note)
        #expect(checked == head && reused == head)
    }

    @Test("a forged or re-signed head is refused even when an earlier head was verified")
    func changedHeadIsChecked() throws {
        let attacker = try NoteSigner.generate(name: signer.name)   // same name, another key
        let forged = try head.signedNote(with: attacker)
        #expect(forged != note)
        #expect(throws: LatchError.self) {
            try LogVerifier.openHead(response(forged), verifier: signer.verifier, verifiedBefore: note)
        }
        // A head whose signature bytes were altered (same text) is not the verified note either.
        var bytes = Array(note.utf8)
        let last = bytes.count - 3
        bytes[last] = bytes[last] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        let altered = String(decoding: bytes, as: UTF8.self)
        #expect(altered != note)
        #expect(throws: LatchError.self) {
            try LogVerifier.openHead(response(altered), verifier: signer.verifier, verifiedBefore: note)
        }
        // A bigger tree signed by the log key is of course accepted.
        let next = try Checkpoint(origin: signer.name, size: 8, root: MerkleHash.leaf(Data("eight".utf8)))
        let nextNote = try next.signedNote(with: signer)
        #expect(try LogVerifier.openHead(LogCheckpointResponse(treeSize: 8, rootHash: next.root.base64, checkpoint: nextNote,
                                                               logKey: signer.verifier.keyString),
                                         verifier: signer.verifier, verifiedBefore: note) == next)
    }
}
