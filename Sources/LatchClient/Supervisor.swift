import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs a child process for `latch run`: the secrets are in its environment, SIGINT, SIGTERM
/// and SIGHUP are forwarded to it, its stdout and stderr pass through a `SecretMasker` (unless
/// masking is off), and its status comes back as an exit code (128+N when signal N killed it).
public struct Supervisor: Sendable {
    public var arguments: [String]
    public var environment: [String: String]
    public var maskedValues: [String]
    public var masking: Bool

    public init(arguments: [String], environment: [String: String], maskedValues: [String], masking: Bool = true) {
        self.arguments = arguments
        self.environment = environment
        self.maskedValues = maskedValues
        self.masking = masking
    }

    public static let forwardedSignals: [Int32] = [SIGINT, SIGTERM, SIGHUP]

    /// Run to completion. Returns the exit code to pass on: the child's, 128+N for signal N,
    /// 127 when the command is not found, 126 when it cannot be executed.
    public func run(stdoutFD: Int32 = 1, stderrFD: Int32 = 2) throws -> Int32 {
        guard let command = arguments.first, !command.isEmpty else {
            throw LatchError(.usage, "no command given", hint: "use `latch run -- CMD ARGS...`")
        }
        var outPipe: [Int32] = [-1, -1]
        var errPipe: [Int32] = [-1, -1]
        if masking {
            guard pipe(&outPipe) == 0, pipe(&errPipe) == 0 else {
                throw LatchError(.process, "cannot create pipes: \(String(cString: strerror(errno)))")
            }
        }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if masking {
            posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
            posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)
            for fd in [outPipe[0], outPipe[1], errPipe[0], errPipe[1]] {
                posix_spawn_file_actions_addclose(&actions, fd)
            }
        } else {
            if stdoutFD != 1 { posix_spawn_file_actions_adddup2(&actions, stdoutFD, 1) }
            if stderrFD != 2 { posix_spawn_file_actions_adddup2(&actions, stderrFD, 2) }
        }
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for s in Self.forwardedSignals + [SIGPIPE] { sigaddset(&defaults, s) }
        posix_spawnattr_setsigdefault(&attr, &defaults)
        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        posix_spawnattr_setsigmask(&attr, &emptyMask)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        // Ignore the forwarded signals in this process and relay them instead.
        let relay = SignalRelay()
        let sources = Self.forwardedSignals.map { sig -> DispatchSourceSignal in
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { relay.forward(sig) }
            source.resume()
            return source
        }
        defer {
            for s in sources { s.cancel() }
            for sig in Self.forwardedSignals { signal(sig, SIG_DFL) }
        }

        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for p in argv { free(p) }
            for p in envp { free(p) }
        }
        var pid: pid_t = 0
        let rc = posix_spawnp(&pid, command, &actions, &attr, argv, envp)
        if masking {
            close(outPipe[1])
            close(errPipe[1])
        }
        guard rc == 0 else {
            if masking { close(outPipe[0]); close(errPipe[0]) }
            let reason = String(cString: strerror(rc))
            if rc == ENOENT {
                throw LatchError(.process, "command not found: \(command)", hint: "check the name and PATH", status: 127)
            }
            throw LatchError(.process, "cannot run \(command): \(reason)", status: 126)
        }
        relay.setPid(pid)

        var readers: [Thread] = []
        let done = DispatchGroup()
        if masking {
            for (src, dst) in [(outPipe[0], stdoutFD), (errPipe[0], stderrFD)] {
                done.enter()
                let values = maskedValues
                let t = Thread {
                    Self.pump(from: src, to: dst, masker: SecretMasker(secrets: values))
                    close(src)
                    done.leave()
                }
                t.start()
                readers.append(t)
            }
        }

        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { throw LatchError(.process, "waitpid failed: \(String(cString: strerror(errno)))") }
        }
        relay.setPid(0)
        done.wait()
        let termSig = status & 0x7f
        if termSig == 0 { return (status >> 8) & 0xff }
        return 128 + termSig
    }

    static func pump(from src: Int32, to dst: Int32, masker: SecretMasker) {
        var masker = masker
        var buffer = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(src, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; break }
            if n == 0 { break }
            writeAll(dst, masker.feed(buffer[0..<n]))
        }
        writeAll(dst, masker.finish())
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) {
        var offset = 0
        bytes.withUnsafeBytes { raw in
            while offset < raw.count {
                let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 { if errno == EINTR { continue }; return }
                offset += n
            }
        }
    }
}

/// Holds the child's pid for the signal handlers.
final class SignalRelay: @unchecked Sendable {
    private let lock = NSLock()
    private var pid: pid_t = 0
    func setPid(_ p: pid_t) { lock.lock(); pid = p; lock.unlock() }
    func forward(_ sig: Int32) {
        lock.lock(); let p = pid; lock.unlock()
        if p > 0 { kill(p, sig) }
    }
}
