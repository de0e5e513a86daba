import Foundation
import LatchCommands
import LatchGit
import LatchGitCommands
import MCP

/// The git-mode tools of `latch mcp --repo DIR`, named and shaped as agent-vault's own MCP
/// server (`agent-vault-mcp`) offers them: `agent_vault_get(secret)` and
/// `agent_vault_list(group?)`. Logic is `RepoAccess`; values go to the MCP client only.
enum RepoMCP {
    static let getTool = "agent_vault_get"
    static let listTool = "agent_vault_list"

    /// The vault of `--repo`, or nil without it. A missing vault stops the server at start
    /// (exit 4), as `agent-vault-mcp` does; the key is resolved per call.
    static func open(_ options: RepoReadOptions) throws -> RepoAccess? {
        guard let repo = options.repo else { return nil }
        return try RepoClient.failing { try RepoAccess(repo: repo, key: options.key) }
    }

    static var definitions: [Tool] {
        [
            Tool(name: getTool,
                 description: "Retrieve a decrypted secret from the git-mode vault (agent-vault). Returns the plaintext value.",
                 inputSchema: MCPTools.schema(["secret": MCPTools.str("The secret path, e.g. \"stripe/api-key\".")], required: ["secret"]),
                 annotations: MCPTools.readOnly),
            Tool(name: listTool,
                 description: "List the secrets in the git-mode vault with their metadata (no values).",
                 inputSchema: MCPTools.schema(["group": MCPTools.str("Only the secrets of this group.")]),
                 annotations: MCPTools.readOnly),
        ]
    }

    /// The tool's result, or nil when `name` is not one of ours. Failures are isError results
    /// whose text is the command line's `error: …` line and whose structured content carries the
    /// command line's exit status (`{"exitCode": 3}` for not authorised, and so on).
    static func call(_ name: String, _ args: [String: Value], access: RepoAccess) -> CallTool.Result? {
        guard name == getTool || name == listTool else { return nil }
        do {
            let text: String
            if name == getTool {
                guard let secret = args["secret"]?.stringValue else {
                    throw GitVaultError.usage("missing string argument \"secret\"")
                }
                let (value, warning) = try access.get(secret)
                if let warning { FileHandle.standardError.write(Data("latch: warning: \(warning)\n".utf8)) }
                text = String(decoding: value, as: UTF8.self)
            } else {
                text = try access.listText(group: args["group"]?.stringValue)
            }
            return .init(content: [.text(text: text, annotations: nil, _meta: nil)], isError: false)
        } catch {
            let report = RepoAccess.report(error)
            return .init(content: [.text(text: report.message, annotations: nil, _meta: nil)],
                         structuredContent: .object(["exitCode": .int(Int(report.exitCode))]), isError: true)
        }
    }
}
