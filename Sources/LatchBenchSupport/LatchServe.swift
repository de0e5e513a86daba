import Foundation

/// A real `latch serve` for the benchmark executables: started on a free loopback port with its
/// data in `dir` (rate limit off), its output in `dir/serve.log`.
public struct BenchServer {
    public let process: Process
    public let url: String
    public let dir: String

    /// Starts `binary serve` and waits (up to 30 s) for it to print the URL it listens on.
    public init(binary: String, dir: String) throws {
        let log = dir + "/serve.log"
        FileManager.default.createFile(atPath: log, contents: nil)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = ["serve", "--data-dir", dir + "/data", "--port", "0", "--rate-limit", "0"]
        p.environment = ["PATH": "/usr/bin:/bin", "LATCH_HOME": dir + "/server-home"]
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        p.standardOutput = handle
        p.standardError = handle
        try p.run()
        for _ in 0..<600 {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            if let r = text.range(of: "listening on http") {
                process = p
                url = String(text[text.index(r.upperBound, offsetBy: -4)...].prefix { !$0.isWhitespace })
                self.dir = dir
                return
            }
            if !p.isRunning { break }
            usleep(50_000)
        }
        p.terminate()
        throw BenchServerError(message: "latch serve did not start: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
    }

    /// The one-time bootstrap token the server wrote on its first start.
    public func bootstrapToken() throws -> String {
        try String(contentsOfFile: dir + "/data/bootstrap-token", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

public struct BenchServerError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
