import Foundation
import Testing
@testable import LatchClient
import LatchLog

/// `log.json` held in memory between syncs and written behind them (`TrustFile`).
@Suite struct TrustFileTests {
    func tempDir() throws -> String {
        let dir = NSTemporaryDirectory() + "latch-trust-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    func sample(size: Int64, leaves: Int) -> LogTrust {
        var verified: [Int64: MerkleHash] = [:]
        for i in 0..<leaves { verified[Int64(i * 7)] = MerkleHash.leaf(Data("leaf \(i)".utf8)) }
        return LogTrust(logKey: "latchkey.log/test+01020304+AQID", treeSize: size, rootHash: MerkleHash.leaf(Data("root \(size)".utf8)).base64,
                        checkpoint: "latchkey.log/test\n\(size)\nroot \"quoted\" \\ back/slash\n\n— sig\n", verified: verified)
    }

    @Test func fileFormatRoundTrips() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let t = sample(size: 2003, leaves: 1003)
        try t.save(path: dir + "/log.json")
        #expect(try LogTrust.load(path: dir + "/log.json") == t)
        #expect(SecureFile.mode(of: dir + "/log.json") == 0o600)
        // the documented shape: decimal index keys and hex leaf hashes
        let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/log.json"))) as? [String: Any])
        let verified = try #require(json["verified"] as? [String: String])
        #expect(verified["7"] == t.verified[7]?.hex)
        #expect(json["treeSize"] as? Int == 2003)
        // a corrupt entry is refused, not skipped
        try Data(#"{"version":1,"logKey":"k","treeSize":1,"rootHash":"r","verified":{"x":"00"}}"#.utf8).write(to: URL(fileURLWithPath: dir + "/log.json"))
        #expect(throws: LatchError.self) { try LogTrust.load(path: dir + "/log.json") }
    }

    @Test func savesAreCurrentAtOnceAndOnDiskAfterFlush() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/p/log.json"
        let file = TrustFile(path: path)
        #expect(try file.load() == nil)
        let first = sample(size: 10, leaves: 3)
        try file.save(first, durably: true)
        #expect(try LogTrust.load(path: path) == first)
        var next = first
        for size in Int64(11)...Int64(60) {   // a burst of saves: each is current at once
            next = sample(size: size, leaves: Int(size))
            try file.save(next)
            #expect(try file.load() == next)
        }
        try file.flush()
        #expect(try LogTrust.load(path: path) == next)
        #expect(SecureFile.mode(of: path) == 0o600)
    }

    @Test func aWriteByAnotherProcessIsReadAgain() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/log.json"
        let mine = TrustFile(path: path)
        try mine.save(sample(size: 5, leaves: 2), durably: true)
        #expect(try mine.load()?.treeSize == 5)
        // another process of the same profile verifies a newer head and writes the file
        let other = sample(size: 9, leaves: 4)
        try other.save(path: path)
        #expect(try mine.load() == other)
    }

    @Test("a head another process wrote since is kept when it is further on; an older one is replaced")
    func concurrentProcessesNeverGoBack() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/log.json"
        let mine = TrustFile(path: path)
        try mine.save(sample(size: 5, leaves: 2), durably: true)
        // while this process syncs from 5 to 7, another one of the profile gets to 9 and writes
        let other = sample(size: 9, leaves: 4)
        try other.save(path: path)
        try mine.save(sample(size: 7, leaves: 3), durably: true)
        #expect(try LogTrust.load(path: path) == other, "the head at 9 stays on disk")
        #expect(try mine.load() == other, "and this process goes on from it")
        // an older head on disk is replaced as before
        try sample(size: 8, leaves: 1).save(path: path)
        try mine.save(sample(size: 12, leaves: 5), durably: true)
        #expect(try LogTrust.load(path: path) == sample(size: 12, leaves: 5))
    }

    @Test("two roots at one tree size from two processes of a profile are reported as a split view")
    func splitViewBetweenProcesses() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/log.json"
        let mine = TrustFile(path: path)
        try mine.save(sample(size: 5, leaves: 2), durably: true)
        var forked = sample(size: 7, leaves: 3)
        forked.rootHash = MerkleHash.leaf(Data("another tree".utf8)).base64
        try forked.save(path: path)
        let e = #expect(throws: LatchError.self) { try mine.save(sample(size: 7, leaves: 3), durably: true) }
        #expect(e?.kind == .verification && e?.message.contains("two different trees of size 7") == true, "\(e?.message ?? "no error")")
        #expect(try LogTrust.load(path: path) == forked, "the first head stays as evidence")
    }

    @Test func aFailedWriteIsReported() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data("not a directory".utf8).write(to: URL(fileURLWithPath: dir + "/blocker"))
        let file = TrustFile(path: dir + "/blocker/log.json")
        try file.save(sample(size: 1, leaves: 1))
        let e = #expect(throws: LatchError.self) { try file.flush() }
        #expect(e?.message.contains("blocker") == true, "\(e?.message ?? "no error")")
        try file.flush()   // reported once
    }
}
