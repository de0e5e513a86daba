import Foundation
import Testing
@testable import LatchGit

/// The pre-commit hook, run by the real `git`.
@Suite struct HookTests {
    static let blocked: [(String, String)] = [
        ("age.txt", "AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ"),
        ("pkcs8.pem", "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VuBCIEIA==\n-----END PRIVATE KEY-----\n"),
        ("rsa.pem", "-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----\n"),
        ("ec.pem", "-----BEGIN EC PRIVATE KEY-----\nMHcC\n-----END EC PRIVATE KEY-----\n"),
        ("id_ed25519", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n-----END OPENSSH PRIVATE KEY-----\n"),
    ]

    func git(_ args: [String], in dir: URL, home: URL) async throws -> ProcessResult {
        guard let git = tool("git") else { throw VectorMissing(name: "git") }
        return try await runProcess(git, args, in: dir, environment: [
            "HOME": home.path, "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
            "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t",
        ])
    }

    /// A temporary directory holding an empty git repository (`repo`, with `.git/hooks`) and a
    /// `home` for git to run with.
    func freshRepository(_ label: String) async throws -> (dir: URL, repo: URL, home: URL, hooks: URL) {
        let dir = try temporaryDirectory(label)
        let repo = dir.appendingPathComponent("repo"), home = dir.appendingPathComponent("home")
        try FileManager.default.createDirectory(at: repo, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
        #expect(try await git(["init", "-q"], in: repo, home: home).status == 0)
        let hooks = repo.appendingPathComponent(".git/hooks")
        try FileManager.default.createDirectory(at: hooks, withIntermediateDirectories: true)
        return (dir, repo, home, hooks)
    }

    @Test func blocksPrivateKeysAndChainsToTheExistingHook() async throws {
        let (dir, repo, home, hooks) = try await freshRepository("gitvault-hook")
        defer { cleanup(dir) }
        // An existing hook that leaves a mark, and must keep running.
        let mark = dir.appendingPathComponent("previous-hook-ran")
        try "#!/bin/sh\necho ran >> '\(mark.path)'\nexit 0\n".write(to: hooks.appendingPathComponent("pre-commit"), atomically: true, encoding: .utf8)
        chmod(hooks.appendingPathComponent("pre-commit").path, 0o755)

        #expect(try PreCommitHook.install(into: hooks, fileSystem: LocalFileSystem()))
        #expect(try !PreCommitHook.install(into: hooks, fileSystem: LocalFileSystem()))   // idempotent
        #expect(FileManager.default.fileExists(atPath: hooks.appendingPathComponent(PreCommitHook.chainedName).path))

        try "hello\n".write(to: repo.appendingPathComponent("ok.txt"), atomically: true, encoding: .utf8)
        #expect(try await git(["add", "ok.txt"], in: repo, home: home).status == 0)
        let ok = try await git(["commit", "-q", "-m", "ok"], in: repo, home: home)
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(try String(contentsOf: mark, encoding: .utf8) == "ran\n")

        for (name, contents) in Self.blocked {
            try contents.write(to: repo.appendingPathComponent(name), atomically: true, encoding: .utf8)
            #expect(try await git(["add", name], in: repo, home: home).status == 0)
            let result = try await git(["commit", "-q", "-m", "leak \(name)"], in: repo, home: home)
            #expect(result.status != 0, "commit of \(name) was not blocked")
            #expect(result.stderr.contains("commit blocked") && result.stderr.contains(name))
            #expect(try await git(["rm", "-q", "--cached", name], in: repo, home: home).status == 0)
        }
        // An encrypted age file passes.
        try Data("age-encryption.org/v1\n-> X25519 abc\n".utf8).write(to: repo.appendingPathComponent("x.enc"))
        #expect(try await git(["add", "x.enc"], in: repo, home: home).status == 0)
        #expect(try await git(["commit", "-q", "-m", "enc"], in: repo, home: home).status == 0)

        // A failing previous hook still blocks the commit.
        try "#!/bin/sh\nexit 3\n".write(to: hooks.appendingPathComponent(PreCommitHook.chainedName), atomically: true, encoding: .utf8)
        chmod(hooks.appendingPathComponent(PreCommitHook.chainedName).path, 0o755)
        try "more\n".write(to: repo.appendingPathComponent("ok.txt"), atomically: true, encoding: .utf8)
        #expect(try await git(["commit", "-q", "-am", "more"], in: repo, home: home).status != 0)
    }

    /// The hook reads the staged contents of every staged file in one pass: one key among many
    /// clean files is found and named alone, and a file whose committed version held a key
    /// passes once the staged version no longer does.
    @Test func checksTheStagedVersionOfManyFiles() async throws {
        let (dir, repo, home, hooks) = try await freshRepository("gitvault-hook-many")
        defer { cleanup(dir) }
        #expect(try PreCommitHook.install(into: hooks, fileSystem: LocalFileSystem()))

        // A key committed past the hook, then removed: the staged version is what counts.
        try Self.blocked[1].1.write(to: repo.appendingPathComponent("legacy.pem"), atomically: true, encoding: .utf8)
        #expect(try await git(["add", "legacy.pem"], in: repo, home: home).status == 0)
        #expect(try await git(["commit", "-q", "--no-verify", "-m", "legacy"], in: repo, home: home).status == 0)
        try "redacted\n".write(to: repo.appendingPathComponent("legacy.pem"), atomically: true, encoding: .utf8)
        #expect(try await git(["add", "legacy.pem"], in: repo, home: home).status == 0)
        let cleaned = try await git(["commit", "-q", "-m", "clean"], in: repo, home: home)
        #expect(cleaned.status == 0, "\(cleaned.stderr)")

        for index in 0..<200 {
            try Data("value \(index)\n".utf8).write(to: repo.appendingPathComponent("file-\(index).txt"))
        }
        #expect(try await git(["add", "."], in: repo, home: home).status == 0)
        let clean = try await git(["commit", "-q", "-m", "many"], in: repo, home: home)
        #expect(clean.status == 0, "\(clean.stderr)")
        // Modified files (the staged blob differs from HEAD's), one of them now holding a key.
        for index in 0..<200 {
            try Data("value \(index) changed\n".utf8).write(to: repo.appendingPathComponent("file-\(index).txt"))
        }
        try Self.blocked[0].1.write(to: repo.appendingPathComponent("file-117.txt"), atomically: true, encoding: .utf8)
        #expect(try await git(["add", "."], in: repo, home: home).status == 0)
        let blocked = try await git(["commit", "-q", "-m", "changed"], in: repo, home: home)
        #expect(blocked.status != 0)
        #expect(blocked.stderr.contains("  file-117.txt") && !blocked.stderr.contains("file-116.txt"), "\(blocked.stderr)")
        try "fine\n".write(to: repo.appendingPathComponent("file-117.txt"), atomically: true, encoding: .utf8)
        #expect(try await git(["add", "file-117.txt"], in: repo, home: home).status == 0)
        let passed = try await git(["commit", "-q", "-m", "changed"], in: repo, home: home)
        #expect(passed.status == 0, "\(passed.stderr)")
    }
}
