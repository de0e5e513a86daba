import ArgumentParser

/// The `latch` command. Every subcommand is a thin call into the client, the server or the
/// git vault; none holds logic of its own.
@main
struct LatchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "latch",
        abstract: "Latchkey: a zero-trust secret manager for humans and AI agents.",
        version: LatchVersion.string,
        subcommands: LatchCommand.areaSubcommands
    )
}

enum LatchVersion {
    static let string = "0.1.0"
}

extension LatchCommand {
    /// Subcommands, one line per area. Keep to your own line when adding one.
    static var areaSubcommands: [any ParsableCommand.Type] {
        var commands: [any ParsableCommand.Type] = []
        // server: serve
        commands.append(ServeCommand.self)
        commands.append(RepoCommand.self)  // git mode: repo
        // client: init, configure, get, env, run, vault, secret, agent, ...
        // mcp
        return commands
    }
}
