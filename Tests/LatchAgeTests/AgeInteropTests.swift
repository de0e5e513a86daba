import Foundation
import Testing

@testable import LatchAge

/// Runs external commands for the interop tests, with files for all I/O (no pipe deadlocks).
struct ExternalTool {
    let path: String

    /// Finds `name` on PATH (or /usr/bin); fails naming the tool and how to get it.
    init(_ name: String, package: String) throws {
        let dirs = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init)
            + ["/usr/bin", "/usr/local/bin"]
        guard let dir = dirs.first(where: { FileManager.default.isExecutableFile(atPath: "\($0)/\(name)") }) else {
            throw VectorError(
                "the `\(name)` command is not installed (Debian package \(package); .ci/run installs it)")
        }
        path = "\(dir)/\(name)"
    }

    struct Result {
        let status: Int32
        let output: Data
        let stderr: String
        var stdout: String { String(decoding: output, as: UTF8.self) }
    }

    func run(_ arguments: [String], in directory: TempDirectory, stdin: Data = Data()) throws -> Result {
        let id = UUID().uuidString
        let inURL = directory.url("stdin-\(id)")
        let outURL = directory.url("stdout-\(id)")
        let errURL = directory.url("stderr-\(id)")
        try stdin.write(to: inURL)
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.currentDirectoryURL = directory.root
        process.standardInput = try FileHandle(forReadingFrom: inURL)
        process.standardOutput = try FileHandle(forWritingTo: outURL)
        process.standardError = try FileHandle(forWritingTo: errURL)
        try process.run()
        process.waitUntilExit()
        return Result(
            status: process.terminationStatus,
            output: try Data(contentsOf: outURL),
            stderr: String(decoding: try Data(contentsOf: errURL), as: UTF8.self))
    }
}

/// A fresh directory under the system temp dir, removed by `remove()`.
struct TempDirectory {
    let root: URL

    init() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("latchage-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }

    func url(_ name: String) -> URL { root.appendingPathComponent(name) }

    /// Writes a key file readable by its owner only (0600).
    func writeSecret(_ name: String, _ text: String) throws -> String {
        let path = url(name).path
        guard
            FileManager.default.createFile(
                atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600])
        else { throw VectorError("cannot write \(path)") }
        return path
    }

    func remove() { try? FileManager.default.removeItem(at: root) }
}

/// Interoperability with the reference `age` / `age-keygen` commands (Debian package `age`).
@Suite struct AgeInteropTests {
    struct Case: CustomStringConvertible, Sendable {
        let size: Int
        let recipients: Int
        let armored: Bool
        var description: String { "\(size) bytes, \(recipients) recipient(s)\(armored ? ", armored" : "")" }
    }

    static let cases: [Case] = [
        Case(size: 11, recipients: 1, armored: false),
        Case(size: 11, recipients: 3, armored: false),
        Case(size: 1000, recipients: 2, armored: true),
        Case(size: 0, recipients: 1, armored: false),
        Case(size: 0, recipients: 1, armored: true),
        Case(size: 65536, recipients: 1, armored: false),
        Case(size: 200_000, recipients: 2, armored: false),
        Case(size: 200_000, recipients: 1, armored: true),
    ]

    static func plaintext(_ size: Int, seed: UInt64) -> Data {
        var rng = TestRNG(seed: seed)
        return Data(AgePrimitives.randomBytes(size, using: &rng))
    }

    /// The secret line of an age-keygen key file.
    static func secretLine(_ keyFile: String) throws -> String {
        guard let line = keyFile.split(separator: "\n").first(where: { $0.hasPrefix("AGE-SECRET-KEY-1") }) else {
            throw VectorError("no AGE-SECRET-KEY-1 line in the age-keygen output")
        }
        return String(line)
    }

    @Test(arguments: cases)
    func ourOutputDecryptsWithAge(_ testCase: Case) throws {
        let age = try ExternalTool("age", package: "age")
        let dir = try TempDirectory()
        defer { dir.remove() }
        var rng = TestRNG(seed: UInt64(testCase.size * 10 + testCase.recipients))
        let identities = (0..<testCase.recipients).map { _ in AgeX25519Identity.generate(using: &rng) }
        let plaintext = Self.plaintext(testCase.size, seed: 42)
        let file = try Age.encrypt(
            plaintext, to: identities.map(\.recipient), armored: testCase.armored, using: &rng)
        #expect(AgeArmor.looksArmored(file) == testCase.armored)
        try file.write(to: dir.url("in.age"))
        for (index, identity) in identities.enumerated() {
            let key = try dir.writeSecret("key\(index).txt", identity.string + "\n")
            // Plaintext read from age's stdout: with -o, age creates no file for an empty one.
            let result = try age.run(["-d", "-i", key, "in.age"], in: dir)
            #expect(result.status == 0, "age -d failed: \(result.stderr)")
            #expect(result.output == plaintext)
        }
        let stranger = try dir.writeSecret("stranger.txt", AgeX25519Identity.generate(using: &rng).string + "\n")
        let refused = try age.run(["-d", "-i", stranger, "-o", dir.url("nope").path, "in.age"], in: dir)
        #expect(refused.status != 0, "age -d must refuse a key that is not a recipient")
    }

    @Test(arguments: cases)
    func ageOutputDecryptsWithOurs(_ testCase: Case) throws {
        let age = try ExternalTool("age", package: "age")
        let keygen = try ExternalTool("age-keygen", package: "age")
        let dir = try TempDirectory()
        defer { dir.remove() }
        var identities: [AgeX25519Identity] = []
        var recipientArgs: [String] = []
        for index in 0..<testCase.recipients {
            let path = dir.url("key\(index).txt").path
            let made = try keygen.run(["-o", path], in: dir)
            #expect(made.status == 0, "age-keygen failed: \(made.stderr)")
            let identity = try AgeX25519Identity(string: Self.secretLine(String(contentsOfFile: path, encoding: .utf8)))
            identities.append(identity)
            recipientArgs += ["-r", identity.recipient.string]
        }
        let plaintext = Self.plaintext(testCase.size, seed: 7)
        try plaintext.write(to: dir.url("plain"))
        let result = try age.run(
            ["-e"] + recipientArgs + (testCase.armored ? ["-a"] : []) + ["-o", "out.age", "plain"], in: dir)
        #expect(result.status == 0, "age -e failed: \(result.stderr)")
        let file = try Data(contentsOf: dir.url("out.age"))
        #expect(AgeArmor.looksArmored(file) == testCase.armored)
        for identity in identities {
            #expect(try Age.decrypt(file, identities: [identity]) == plaintext)
        }
        #expect(throws: AgeError.noMatch) { try Age.decrypt(file, identities: [AgeX25519Identity.generate()]) }
    }

    @Test func keysFromAgeKeygenLoadAndOursLoadInAge() throws {
        let keygen = try ExternalTool("age-keygen", package: "age")
        let dir = try TempDirectory()
        defer { dir.remove() }
        // age-keygen → ours.
        let made = try keygen.run(["-o", "theirs.txt"], in: dir)
        #expect(made.status == 0, "age-keygen failed: \(made.stderr)")
        let keyFile = try String(contentsOfFile: dir.url("theirs.txt").path, encoding: .utf8)
        let theirs = try AgeX25519Identity(string: Self.secretLine(keyFile))
        let fromFile = try AgeX25519Identity.parseKeyFile(keyFile)
        #expect(fromFile.map(\.recipient) == [theirs.recipient])
        #expect(keyFile.contains("# public key: \(theirs.recipient.string)\n"))
        #expect(theirs.string == (try Self.secretLine(keyFile)))
        let attributes = try FileManager.default.attributesOfItem(atPath: dir.url("theirs.txt").path)
        #expect((attributes[.posixPermissions] as? Int).map { $0 & 0o077 } == 0)
        // ours → age-keygen -y (with and without a trailing newline, as agent-vault stores them).
        let ours = AgeX25519Identity.generate()
        for (name, text) in [("ours.txt", ours.string + "\n"), ("ours-bare.txt", ours.string)] {
            let path = try dir.writeSecret(name, text)
            let derived = try keygen.run(["-y", path], in: dir)
            #expect(derived.status == 0, "age-keygen -y failed: \(derived.stderr)")
            #expect(derived.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == ours.recipient.string)
        }
    }

    /// age reads passphrases only from a terminal; `script` (util-linux) gives it one.
    @Test func scryptInteropThroughATerminal() throws {
        let age = try ExternalTool("age", package: "age")
        let script = try ExternalTool("script", package: "bsdutils (util-linux)")
        let dir = try TempDirectory()
        defer { dir.remove() }
        let passphrase = "correct horse battery staple"
        let plaintext = Self.plaintext(70_000, seed: 9)

        // Ours (work factor 10 to keep the test fast) → age -d.
        var rng = TestRNG(seed: 10)
        let ours = try Age.encrypt(plaintext, to: [AgeScryptRecipient(passphrase: passphrase, workFactor: 10)], using: &rng)
        try ours.write(to: dir.url("ours.age"))
        let decrypted = try script.run(
            ["-qec", "'\(age.path)' -d -o ours.out ours.age", "/dev/null"], in: dir, stdin: Data("\(passphrase)\n".utf8))
        #expect(decrypted.status == 0, "age -d (passphrase) failed: \(decrypted.stdout) \(decrypted.stderr)")
        #expect(FileManager.default.contents(atPath: dir.url("ours.out").path) == plaintext)

        // age -p (its default work factor, 18) → ours.
        try plaintext.write(to: dir.url("plain"))
        let encrypted = try script.run(
            ["-qec", "'\(age.path)' -p -o theirs.age plain", "/dev/null"], in: dir,
            stdin: Data("\(passphrase)\n\(passphrase)\n".utf8))
        #expect(encrypted.status == 0, "age -p failed: \(encrypted.stdout) \(encrypted.stderr)")
        let theirs = try Data(contentsOf: dir.url("theirs.age"))
        #expect(String(decoding: theirs.prefix(40), as: UTF8.self).contains("-> scrypt "))
        #expect(try Age.decrypt(theirs, identities: [AgeScryptIdentity(passphrase: passphrase)]) == plaintext)
        #expect(throws: AgeError.noMatch) {
            try Age.decrypt(theirs, identities: [AgeScryptIdentity(passphrase: "wrong")])
        }
    }
}
