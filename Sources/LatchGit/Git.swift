import Foundation

/// The git operations the vault performs; `SystemGit` runs the system `git`.
public protocol VaultGit: Sendable {
    /// Whether `directory` is inside a git work tree.
    func isWorkTree(_ directory: URL) -> Bool
    /// `git init` in `directory`.
    func initialize(_ directory: URL) throws
    /// Stages `changed` (with `-f`, so files the .gitignore hides are added too) and the
    /// removal of `removed`, then commits exactly those paths with `message`, leaving any other
    /// staged change staged and uncommitted. Paths are relative to `root`.
    func commit(root: URL, changed: [String], removed: [String], message: String) throws
    /// Fast-forwards the current branch from its remote when the repository has one. Returns
    /// a warning to show when that was not possible, nil when it worked or there is no remote.
    func fastForward(root: URL) -> String?
    /// The directory git runs hooks from (respects `core.hooksPath`).
    func hooksDirectory(root: URL) throws -> URL
    /// Starts staging files in the background while the caller is still writing others (a
    /// grant re-encrypting a whole group); nil when this git cannot. The caller stages each
    /// file once it is complete and then passes them to `commit` as `alreadyStaged`.
    func startStaging(root: URL) throws -> (any VaultStager)?
    /// `commit(root:changed:removed:message:)` where `alreadyStaged` went through a stager.
    func commit(root: URL, changed: [String], removed: [String], message: String, alreadyStaged: [String]) throws
}

/// Stages files as they are finished. `stage` may be called from several threads.
public protocol VaultStager: Sendable {
    func stage(_ paths: [String])
    /// Waits until everything given to `stage` is in the index; throws when staging failed.
    func finish() throws
}

extension VaultGit {
    public func startStaging(root: URL) throws -> (any VaultStager)? { nil }
    public func commit(root: URL, changed: [String], removed: [String], message: String, alreadyStaged: [String]) throws {
        try commit(root: root, changed: alreadyStaged + changed, removed: removed, message: message)
    }
}

/// Runs `git` found on `PATH`.
public struct SystemGit: VaultGit {
    /// Author and committer used when the repository has no `user.name`/`user.email`,
    /// the identity agent-vault commits with.
    public static let fallbackName = "agent-vault"
    public static let fallbackEmail = "agent-vault@localhost"

    let executable: URL
    let baseEnvironment: [String: String]

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        guard let git = Self.find("git", path: environment["PATH"] ?? "/usr/bin:/bin") else {
            throw GitVaultError.git(command: "", status: 127, message: "git not found on PATH; install git")
        }
        executable = git
        var env = environment
        env["GIT_TERMINAL_PROMPT"] = "0"
        env["LC_ALL"] = "C"
        baseEnvironment = env
    }

    static func find(_ name: String, path: String) -> URL? {
        for dir in path.split(separator: ":") where !dir.isEmpty {
            let candidate = URL(fileURLWithPath: String(dir)).appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        return nil
    }

    public struct Result: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
    }

    /// Runs `git -C root args…`, feeding `input` on stdin.
    public func run(_ args: [String], in root: URL, input: Data? = nil, extraEnvironment: [String: String] = [:]) throws -> Result {
        let process = Process()
        process.executableURL = executable
        process.arguments = ["-C", root.path] + args
        process.environment = baseEnvironment.merging(extraEnvironment) { $1 }
        let out = Pipe(), err = Pipe(), inPipe = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input == nil ? FileHandle.nullDevice : inPipe
        // waitUntilExit polls a run loop in 50 ms steps on Linux; a vault command runs up to
        // seven git commands, so wait for the termination handler instead.
        let exited = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in exited.signal() }
        do { try process.run() } catch {
            throw GitVaultError.git(command: args.first ?? "", status: 127, message: "cannot run \(executable.path): \(error)")
        }
        if let input {
            let writer = inPipe.fileHandleForWriting
            DispatchQueue.global().async {
                writer.write(input)
                try? writer.close()
            }
        }
        // Read both pipes concurrently so neither fills up.
        let errData = LockedData()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async {
            errData.set(err.fileHandleForReading.readDataToEndOfFile())
            group.leave()
        }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        exited.wait()
        return Result(status: process.terminationStatus,
                      stdout: String(decoding: outData, as: UTF8.self),
                      stderr: String(decoding: errData.get(), as: UTF8.self))
    }

    @discardableResult
    func check(_ args: [String], in root: URL, input: Data? = nil, extraEnvironment: [String: String] = [:]) throws -> Result {
        let result = try run(args, in: root, input: input, extraEnvironment: extraEnvironment)
        guard result.status == 0 else {
            throw GitVaultError.git(command: args.first ?? "", status: result.status,
                                    message: result.stderr.isEmpty ? result.stdout : result.stderr)
        }
        return result
    }

    public func isWorkTree(_ directory: URL) -> Bool {
        guard let result = try? run(["rev-parse", "--is-inside-work-tree"], in: directory) else { return false }
        return result.status == 0 && result.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "true"
    }

    public func initialize(_ directory: URL) throws {
        try check(["init", "-q"], in: directory)
    }

    static func pathspec(_ paths: [String]) -> Data {
        var data = Data()
        for path in paths {
            data.append(contentsOf: Array(path.utf8))
            data.append(0)
        }
        return data
    }

    public func commit(root: URL, changed: [String], removed: [String], message: String) throws {
        try commit(root: root, changed: changed, removed: removed, message: message, alreadyStaged: [])
    }

    /// `update-index` of the paths on stdin. A big-file threshold of 1 byte streams the blobs
    /// into one pack instead of one loose object file each (about 9x faster for a grant
    /// touching 2,000 files); compression level 1 packs them as small as the default level
    /// (age headers are base64, payloads random) at a fraction of the CPU. Only this
    /// invocation is affected.
    static let updateIndex = ["-c", "core.bigFileThreshold=1", "-c", "pack.compression=1",
                              "update-index", "--add", "--remove", "-z", "--stdin"]

    /// The environment of `update-index`: git sets up and frees a zlib stream (about 256 KiB)
    /// per file, and glibc gave that memory back to the kernel each time, so every file paid
    /// for fresh zeroed pages; these tunables keep it (ignored by other C libraries).
    static func updateIndexEnvironment(_ base: [String: String]) -> [String: String] {
        var environment = base
        let keep = "glibc.malloc.trim_threshold=268435456:glibc.malloc.top_pad=16777216"
        environment["GLIBC_TUNABLES"] = base["GLIBC_TUNABLES"].map { $0 + ":" + keep } ?? keep
        return environment
    }

    /// One `git update-index --stdin` fed while the files are being written.
    public func startStaging(root: URL) throws -> (any VaultStager)? {
        try SystemGitStager(executable: executable, root: root, environment: baseEnvironment)
    }

    public func commit(root: URL, changed: [String], removed: [String], message: String, alreadyStaged: [String]) throws {
        if !changed.isEmpty {
            // update-index takes exact paths (no pathspec matching, which is quadratic in git
            // add) and ignores .gitignore, like `git add -f`. A big-file threshold of 1 byte
            // streams the blobs into one pack instead of one loose object file each (about 9x
            // faster for a grant touching 2,000 files); only this invocation is affected.
            try check(Self.updateIndex, in: root, input: Self.pathspec(changed),
                      extraEnvironment: Self.updateIndexEnvironment(baseEnvironment))
        }
        if !removed.isEmpty {
            try check(["rm", "-r", "-q", "--cached", "--ignore-unmatch", "--pathspec-from-file=-", "--pathspec-file-nul"],
                      in: root, input: Self.pathspec(removed))
        }
        // Only the paths that git knows (in HEAD or the index) can be named to `commit --only`.
        var known = Set(changed).union(alreadyStaged)
        if !removed.isEmpty {
            let tracked = try run(["ls-tree", "-r", "-z", "--name-only", "--full-tree", "HEAD"], in: root)
            let inHead = tracked.status == 0 ? tracked.stdout.split(separator: "\0").map(String.init) : []
            for path in removed {
                if inHead.contains(where: { $0 == path || $0.hasPrefix(path + "/") }) { known.insert(path) }
            }
        }
        guard !known.isEmpty else { return }
        var identity: [String: String] = [:]
        // Both settings in one git command; like `git config user.name`, the last value wins.
        var name = "", email = ""
        let settings = try run(["config", "--get-regexp", "^user\\.(name|email)$"], in: root).stdout
        for line in settings.split(whereSeparator: \.isNewline) {
            let parts = line.split(separator: " ", maxSplits: 1)
            let value = parts.count == 2 ? parts[1].trimmingCharacters(in: .whitespaces) : ""
            if parts.first == "user.name" { name = value } else if parts.first == "user.email" { email = value }
        }
        if name.isEmpty || email.isEmpty {
            identity = ["GIT_AUTHOR_NAME": Self.fallbackName, "GIT_AUTHOR_EMAIL": Self.fallbackEmail,
                        "GIT_COMMITTER_NAME": Self.fallbackName, "GIT_COMMITTER_EMAIL": Self.fallbackEmail]
        }
        // When nothing but our paths is staged, a plain commit is the same as `--only` and
        // much faster; otherwise `--only` keeps the other staged changes out of the commit.
        let prefix = try check(["rev-parse", "--show-prefix"], in: root).stdout
            .trimmingCharacters(in: .newlines)
        let ours = Set(known.map { prefix + $0 })
        let removedDirectories = removed.map { prefix + $0 + "/" }
        let staged = try run(["diff", "--cached", "--name-only", "--no-renames", "-z"], in: root)
        let onlyOurs = staged.status == 0 && staged.stdout.split(separator: "\0").allSatisfy { entry in
            let path = String(entry)
            return ours.contains(path) || removedDirectories.contains { path.hasPrefix($0) }
        }
        let args = onlyOurs ? ["commit", "-q", "-m", message]
            : ["commit", "-q", "--only", "-m", message, "--pathspec-from-file=-", "--pathspec-file-nul"]
        let result = try run(args, in: root, input: onlyOurs ? nil : Self.pathspec(known.sorted()),
                             extraEnvironment: identity)
        if result.status != 0 {
            // Nothing changed (e.g. revoking a group the agent did not have): no commit, no error.
            if result.stdout.contains("nothing to commit") || result.stdout.contains("no changes added to commit") { return }
            throw GitVaultError.git(command: "commit", status: result.status,
                                    message: result.stderr.isEmpty ? result.stdout : result.stderr)
        }
    }

    public func fastForward(root: URL) -> String? {
        guard let remotes = try? run(["remote"], in: root), remotes.status == 0 else { return nil }
        let names = remotes.stdout.split(whereSeparator: \.isNewline).map(String.init)
        guard !names.isEmpty else { return nil }
        guard let pull = try? run(["pull", "--ff-only", "-q"], in: root) else {
            return "could not run git pull; reading the local copy of the vault"
        }
        if pull.status == 0 { return nil }
        let reason = (pull.stderr.isEmpty ? pull.stdout : pull.stderr)
            .split(whereSeparator: \.isNewline).first.map(String.init) ?? "status \(pull.status)"
        return "could not fast-forward from \(names.contains("origin") ? "origin" : names[0]) (\(reason)); reading the local copy of the vault"
    }

    public func hooksDirectory(root: URL) throws -> URL {
        let result = try check(["rev-parse", "--git-path", "hooks"], in: root)
        let path = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        return path.hasPrefix("/") ? URL(fileURLWithPath: path) : root.appendingPathComponent(path)
    }
}

final class LockedData: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    func set(_ value: Data) { lock.lock(); data = value; lock.unlock() }
    func get() -> Data { lock.lock(); defer { lock.unlock() }; return data }
}

/// A running `git update-index --add --remove -z --stdin`: paths are written to its stdin as
/// they come; `finish` closes it and checks the exit status.
final class SystemGitStager: VaultStager, @unchecked Sendable {
    private let process = Process()
    private let input = Pipe()
    private let lock = NSLock()
    private let errorOutput = LockedData()
    private let drained = DispatchGroup()
    private let exited = DispatchSemaphore(value: 0)
    private var broken = false
    private var finished = false

    init(executable: URL, root: URL, environment: [String: String]) throws {
        process.executableURL = executable
        process.arguments = ["-C", root.path] + SystemGit.updateIndex
        process.environment = SystemGit.updateIndexEnvironment(environment)
        process.standardInput = input
        process.standardOutput = FileHandle.nullDevice
        let err = Pipe()
        process.standardError = err
        process.terminationHandler = { [exited] _ in exited.signal() }
        do { try process.run() } catch {
            throw GitVaultError.git(command: "update-index", status: 127, message: "cannot run \(executable.path): \(error)")
        }
        drained.enter()
        DispatchQueue.global().async { [errorOutput, drained] in
            errorOutput.set(err.fileHandleForReading.readDataToEndOfFile())
            drained.leave()
        }
    }

    /// A stager dropped without `finish` (its command failed) still lets git end.
    deinit { try? finish() }

    func stage(_ paths: [String]) {
        let data = SystemGit.pathspec(paths)
        lock.lock(); defer { lock.unlock() }
        assert(!finished, "stage after finish")
        guard !broken else { return }
        do { try input.fileHandleForWriting.write(contentsOf: data) } catch { broken = true }
    }

    /// Closes the input and waits for git; later calls return at once.
    func finish() throws {
        lock.lock()
        if finished { lock.unlock(); return }
        finished = true
        try? input.fileHandleForWriting.close()
        lock.unlock()
        drained.wait()
        exited.wait()
        guard process.terminationStatus == 0, !broken else {
            throw GitVaultError.git(command: "update-index", status: process.terminationStatus,
                                    message: String(decoding: errorOutput.get(), as: UTF8.self))
        }
    }
}
