import LatchGitCommands

// `agent-vault`: a drop-in replacement for agent-vault 0.1.0's command line.
AgentVaultCommand.main()
