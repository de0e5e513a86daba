import Foundation
import Testing
@testable import LatchGit

/// Loads a reference file from `Vectors/`; fails loudly when the resources are missing.
func vector(_ name: String) throws -> String {
    guard let url = Bundle.module.url(forResource: "Vectors/\(name)", withExtension: nil)
        ?? Bundle.module.resourceURL?.appendingPathComponent("Vectors").appendingPathComponent(name),
        FileManager.default.fileExists(atPath: url.path)
    else {
        Issue.record("reference file Vectors/\(name) not found in the test bundle")
        throw VectorMissing(name: name)
    }
    return try String(contentsOf: url, encoding: .utf8)
}

struct VectorMissing: Error { let name: String }

/// A fresh temporary directory, removed by the caller with `cleanup`.
func temporaryDirectory(_ label: String = "gitvault") throws -> URL {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("\(label)-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url.resolvingSymlinksInPath()
}

func cleanup(_ url: URL) { try? FileManager.default.removeItem(at: url) }

/// Finds an executable on PATH; records an issue naming the tool when it is missing.
func tool(_ name: String) -> URL? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    for dir in path.split(separator: ":") {
        let candidate = URL(fileURLWithPath: String(dir)).appendingPathComponent(name)
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
    }
    Issue.record("`\(name)` is not installed (CI installs it via .ci/run: apt-get install \(name))")
    return nil
}

struct ProcessResult {
    var status: Int32
    var stdout: Data
    var stderr: String
    var out: String { String(decoding: stdout, as: UTF8.self) }
}

/// Runs `executable args…` in `directory` with exactly `environment`, waiting on a thread of
/// its own: a test blocked on a child must not hold one of the few threads all async tests share.
func runProcess(_ executable: URL, _ args: [String], in directory: URL, environment: [String: String],
                input: Data? = nil) async throws -> ProcessResult {
    try await withCheckedThrowingContinuation { k in
        Thread { k.resume(with: Result { try runProcessBlocking(executable, args, in: directory, environment: environment, input: input) }) }.start()
    }
}

func runProcessBlocking(_ executable: URL, _ args: [String], in directory: URL, environment: [String: String],
                input: Data? = nil) throws -> ProcessResult {
    let process = Process()
    process.executableURL = executable
    process.arguments = args
    process.currentDirectoryURL = directory
    process.environment = environment
    let out = Pipe(), err = Pipe(), inPipe = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = input == nil ? FileHandle.nullDevice : inPipe
    try process.run()
    if let input {
        inPipe.fileHandleForWriting.write(input)
        try inPipe.fileHandleForWriting.close()
    }
    let errBox = DataBox()
    let done = DispatchSemaphore(value: 0)
    DispatchQueue.global().async {
        errBox.data = err.fileHandleForReading.readDataToEndOfFile()
        done.signal()
    }
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    done.wait()
    process.waitUntilExit()
    return ProcessResult(status: process.terminationStatus, stdout: outData,
                         stderr: String(decoding: errBox.data, as: UTF8.self))
}

final class DataBox: @unchecked Sendable { var data = Data() }

/// A `VaultGit` that records commits instead of running git, for model tests.
final class RecordingGit: VaultGit, @unchecked Sendable {
    private let lock = NSLock()
    private var _commits: [(message: String, changed: [String], removed: [String])] = []
    var commits: [(message: String, changed: [String], removed: [String])] {
        lock.lock(); defer { lock.unlock() }; return _commits
    }
    func isWorkTree(_ directory: URL) -> Bool { true }
    func initialize(_ directory: URL) throws {}
    func commit(root: URL, changed: [String], removed: [String], message: String) throws {
        lock.lock(); _commits.append((message, changed, removed)); lock.unlock()
    }
    func fastForward(root: URL) -> String? { nil }
    func hooksDirectory(root: URL) throws -> URL { root.appendingPathComponent(".git/hooks") }
}

/// A deterministic generator (SplitMix64) for reproducible keys in model tests.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
