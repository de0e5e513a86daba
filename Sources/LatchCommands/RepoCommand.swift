import ArgumentParser
import LatchGitCommands

/// `latch repo …`: git mode, the same commands as the `agent-vault` executable.
public struct RepoCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "repo",
        abstract: "Git mode: an age-encrypted vault in a Git repository (agent-vault compatible).",
        discussion: AgentVaultCommand.configuration.discussion,
        subcommands: AgentVaultCommand.subcommandTypes
    )

    public init() {}
}
