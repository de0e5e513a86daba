import Foundation
import Testing
@testable import LatchClient

@Suite struct MaskerTests {
    let mark = "<concealed by latch>"

    func run(_ secrets: [String], _ chunks: [String]) -> String {
        var m = SecretMasker(secrets: secrets)
        var out: [UInt8] = []
        for c in chunks { out += m.feed(Array(c.utf8)) }
        out += m.finish()
        return String(decoding: out, as: UTF8.self)
    }

    @Test func masksWholeAndSplitValues() {
        let text = "token=sk-live-12345 and again sk-live-12345!"
        let expected = "token=\(mark) and again \(mark)!"
        #expect(run(["sk-live-12345"], [text]) == expected)
        // every possible split into two reads, and byte-by-byte
        for cut in 0...text.utf8.count {
            let bytes = Array(text.utf8)
            var m = SecretMasker(secrets: ["sk-live-12345"])
            let out = m.feed(bytes[0..<cut]) + m.feed(bytes[cut...]) + m.finish()
            #expect(String(decoding: out, as: UTF8.self) == expected, "cut at \(cut)")
        }
        #expect(run(["sk-live-12345"], text.map { String($0) }) == expected)
    }

    @Test func longestMatchWins() {
        #expect(run(["pass", "password123"], ["my password123 and pass"]) == "my \(mark) and \(mark)")
        #expect(run(["pass", "password123"], ["my pas", "sword1", "23!"]) == "my \(mark)!")
        // a longer candidate that fails to complete still lets the shorter one match
        #expect(run(["pass", "password123"], ["passwordX"]) == "\(mark)wordX")
        #expect(run(["pass", "password123"], ["password1"]) == "\(mark)word1")
    }

    @Test func heldBackTailIsReleasedAtEnd() {
        var m = SecretMasker(secrets: ["abcdef"])
        let first = m.feed(Array("xxabc".utf8))
        #expect(String(decoding: first, as: UTF8.self) == "xx")
        #expect(String(decoding: m.finish(), as: UTF8.self) == "abc")
    }

    @Test func shortValuesAreNotMaskedButReported() {
        let m = SecretMasker(secrets: ["1", "abc", "abcd", ""])
        #expect(m.skipped == ["1", "abc"])
        #expect(run(["1", "abcd"], ["1 abcd 1"]) == "1 \(mark) 1")
    }

    @Test func multibyteAndNewlineValues() {
        #expect(run(["pässwörd✓", "line1\nline2"], ["x pässw", "örd✓ line1", "\nline2 y"]) == "x \(mark) \(mark) y")
    }
}

@Suite struct SupervisorTests {
    func capture(_ s: Supervisor) throws -> (Int32, String, String) {
        let dir = try temporaryDirectory()
        let outPath = dir + "/out", errPath = dir + "/err"
        FileManager.default.createFile(atPath: outPath, contents: nil)
        FileManager.default.createFile(atPath: errPath, contents: nil)
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        let err = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        let code = try s.run(stdoutFD: out.fileDescriptor, stderrFD: err.fileDescriptor)
        try out.close(); try err.close()
        return (code, try String(contentsOfFile: outPath, encoding: .utf8), try String(contentsOfFile: errPath, encoding: .utf8))
    }

    @Test func injectsMasksAndPassesExitCode() throws {
        let s = Supervisor(arguments: ["/bin/sh", "-c", "echo \"out:$DB_PASSWORD\"; echo \"err:$DB_PASSWORD\" >&2; exit 3"],
                           environment: ["DB_PASSWORD": "hunter2-secret", "PATH": "/usr/bin:/bin"],
                           maskedValues: ["hunter2-secret"])
        let (code, out, err) = try capture(s)
        #expect(code == 3)
        #expect(out == "out:<concealed by latch>\n")
        #expect(err == "err:<concealed by latch>\n")
    }

    @Test func noMaskingPassesValuesThrough() throws {
        var s = Supervisor(arguments: ["sh", "-c", "printf %s \"$V\""], environment: ["V": "visible-value", "PATH": "/usr/bin:/bin"],
                           maskedValues: ["visible-value"], masking: false)
        s.masking = false
        // without masking the child writes straight to our fds
        let (code, out, _) = try capture(s)
        #expect(code == 0)
        #expect(out == "visible-value")
    }

    @Test func signalDeathIs128PlusN() throws {
        let s = Supervisor(arguments: ["/bin/sh", "-c", "kill -TERM $$"], environment: [:], maskedValues: [])
        #expect(try capture(s).0 == 128 + 15)
    }

    @Test func missingCommand() throws {
        let s = Supervisor(arguments: ["definitely-not-a-command-xyz"], environment: ["PATH": "/usr/bin:/bin"], maskedValues: [])
        let e = #expect(throws: LatchError.self) { try capture(s) }
        #expect(e?.status == 127)
        #expect(e?.message.contains("command not found") == true)
    }
}
