import ArgumentParser
import LatchCommands

/// `latchd`: the whole `latch` command tree in one self-contained binary, the one a server
/// host needs (`latchd serve`). `latch serve`, `latch mcp` and `latch repo` run it.
@main
struct LatchDaemonCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "latch",
        abstract: "Latchkey: a zero-trust secret manager for humans and AI agents.",
        version: LatchVersion.string,
        subcommands: LatchDaemonCommand.areaSubcommands
    )

    /// Subcommands, one line per area. Keep to your own line when adding one.
    static var areaSubcommands: [any ParsableCommand.Type] {
        var commands: [any ParsableCommand.Type] = []
        // server: serve
        commands.append(ServeCommand.self)
        commands.append(RepoCommand.self)  // git mode: repo
        // client: init, configure, get, env, run, vault, secret, agent, ...
        commands += ClientCommands.all
        // mcp
        commands.append(MCPCommand.self)
        return commands
    }
}
