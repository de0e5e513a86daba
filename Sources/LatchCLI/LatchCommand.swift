import ArgumentParser
import Foundation
import LatchCommands
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The `latch` command. It holds the client and git mode itself and hands `serve` and `mcp`
/// to `latchd` (installed beside it) by replacing itself with that process, so the commands
/// an agent runs on every start (`get`, `env`, `run`) load neither the server, nor the MCP
/// SDK, nor libcurl. Every subcommand is a thin call into the client, the server or
/// the git vault; none holds logic of its own.
@main
struct LatchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "latch",
        abstract: "Latchkey: a zero-trust secret manager for humans and AI agents.",
        version: LatchVersion.string,
        subcommands: [ServeForward.self, RepoCommand.self] + ClientCommands.all + [MCPForward.self]
    )

    static func main() async {
        let arguments = Self.arguments()
        if arguments.count > 1, Daemon.commands.contains(arguments[1]) {
            Daemon.replaceProcess(arguments: Array(arguments.dropFirst()))
        }
        // `get`, `env` and `run` on this thread alone (see `CallingThreadExecutor`).
        if let code = CallingThreadExecutor.run({ await QuickCommands.run(Array(arguments.dropFirst())) }) {
            #if canImport(Glibc)
            Glibc.exit(code)
            #else
            Darwin.exit(code)
            #endif
        }
        do {
            var command = try parseAsRoot(nil)
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}

extension LatchCommand {
    /// The command line, read from argv directly: `CommandLine.arguments` builds it with a
    /// generic `map` whose first use costs a short process a scan of every conformance record.
    static func arguments() -> [String] {
        var out: [String] = []
        out.reserveCapacity(Int(CommandLine.argc))
        for i in 0..<Int(CommandLine.argc) {
            guard let p = CommandLine.unsafeArgv[i] else { break }
            out.append(String(cString: p))
        }
        return out
    }
}

/// `latchd`: the same command tree with the server, the MCP server and git mode in it.
enum Daemon {
    /// An array, not a set: a `Set<String>` here is the first hashed collection of a `latch get`,
    /// and instantiating its type costs a scan of every protocol conformance in the binary.
    static let commands = ["serve", "mcp"]

    /// Replaces this process with `latchd ARGUMENTS` from this executable's directory (same
    /// process id, so signals, exit codes and standard streams stay the caller's).
    static func replaceProcess(arguments: [String]) -> Never {
        let path = URL(fileURLWithPath: executablePath()).deletingLastPathComponent().appendingPathComponent("latchd").path
        let argv: [UnsafeMutablePointer<CChar>?] = (["latchd"] + arguments).map { strdup($0) } + [nil]
        execv(path, argv)
        let reason = String(cString: strerror(errno))
        FileHandle.standardError.write(Data("latch: error: `latch \(arguments[0])` runs \(path), which cannot be started (\(reason)); install latchd beside latch (`swift build --product latchd` builds it)\n".utf8))
        exit(69)   // EX_UNAVAILABLE
    }

    static func executablePath() -> String {
        #if os(Linux)
        if let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return path }
        #endif
        return Bundle.main.executablePath ?? CommandLine.arguments[0]
    }
}

// Entries for `latch --help`; `main` hands these names to latchd before parsing.
struct ServeForward: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "serve", abstract: "Run the Latchkey server (machine API); see `latch serve --help`.")
}

struct MCPForward: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "mcp", abstract: "Run the MCP server on stdio; see `latch mcp --help`.")
}
