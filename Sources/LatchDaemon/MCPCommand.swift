import ArgumentParser
import Foundation
import LatchClient
import LatchCommands
import LatchWire
import MCP

/// `latch mcp`: a stdio MCP server over the same client (profile or environment). Only the
/// protocol goes to stdout; failures are tool results with isError.
struct MCPCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "mcp",
        abstract: "Run a stdio MCP server exposing Latchkey tools (read-only unless --allow-writes).")
    @OptionGroup var options: ProfileOption
    @Flag(name: .customLong("allow-writes"), help: "Also offer latch_machine_request (any machine API call).") var allowWrites = false
    @OptionGroup var repoOptions: RepoReadOptions

    func run() async throws {
        let session = MCPSession(profile: options.profile, environment: options.environment)
        let server = Server(name: "latch", version: LatchVersion.string, capabilities: .init(tools: .init(listChanged: false)))
        // --repo: also agent_vault_get/agent_vault_list on that git-mode vault (RepoMCP.swift).
        let repoAccess = try RepoMCP.open(repoOptions)
        let tools = MCPTools.definitions(allowWrites: allowWrites) + (repoAccess == nil ? [] : RepoMCP.definitions)
        let allowWrites = self.allowWrites
        await server.withMethodHandler(ListTools.self) { _ in .init(tools: tools) }
        await server.withMethodHandler(CallTool.self) { params in
            if let repoAccess, let result = RepoMCP.call(params.name, params.arguments ?? [:], access: repoAccess) { return result }
            do {
                let text = try await MCPTools.call(params.name, params.arguments ?? [:], session: session, allowWrites: allowWrites)
                return .init(content: [.text(text: text, annotations: nil, _meta: nil)], isError: false)
            } catch let e as LatchError {
                return .init(content: [.text(text: e.description, annotations: nil, _meta: nil)], isError: true)
            } catch {
                return .init(content: [.text(text: String(describing: error), annotations: nil, _meta: nil)], isError: true)
            }
        }
        try await server.start(transport: StdioTransport())
        await server.waitUntilCompleted()
    }
}

/// Connects on first use and keeps the client.
actor MCPSession {
    let profile: String?
    let environment: [String: String]
    var latch: Latch?
    init(profile: String?, environment: [String: String]) { self.profile = profile; self.environment = environment }

    func client(refresh: Bool) async throws -> Latch {
        if let latch {
            if refresh { try await latch.refresh() }
            return latch
        }
        let l = try await Latch.create(profile: profile, environment: environment)
        latch = l
        return l
    }
}

enum MCPTools {
    static func schema(_ properties: [String: Value] = [:], required: [String] = []) -> Value {
        .object(["type": .string("object"), "properties": .object(properties), "required": .array(required.map { .string($0) }),
                 "additionalProperties": .bool(false)])
    }
    static func str(_ description: String) -> Value { .object(["type": .string("string"), "description": .string(description)]) }
    static let readOnly = Tool.Annotations(readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false)

    static func definitions(allowWrites: Bool) -> [Tool] {
        var tools = [
            Tool(name: "latch_auth_status", description: "Who the configured credentials are, and which server.",
                 inputSchema: schema(), annotations: readOnly),
            Tool(name: "latch_list_vaults", description: "List the vaults this identity can see (names and ids, no values).",
                 inputSchema: schema(), annotations: readOnly),
            Tool(name: "latch_list_vault_items", description: "List a vault's items and field names (verified; no values).",
                 inputSchema: schema(["vault": str("Vault name or id.")], required: ["vault"]), annotations: readOnly),
            Tool(name: "latch_search_secrets", description: "Find secrets by name. Returns names only, never values.",
                 inputSchema: schema(["query": str("Substring of the env name, vault, item or field name; empty lists all.")], required: ["query"]),
                 annotations: readOnly),
            Tool(name: "latch_get_secret", description: "Return one secret value by its exact env name (ITEM_FIELD, ITEM, or VAULT/ITEM/FIELD).",
                 inputSchema: schema(["name": str("Exact secret name as returned by latch_search_secrets.")], required: ["name"]),
                 annotations: readOnly),
            Tool(name: "latch_list_projects", description: "List projects.", inputSchema: schema(), annotations: readOnly),
            Tool(name: "latch_get_project", description: "One project with its vaults.",
                 inputSchema: schema(["projectId": str("Project id.")], required: ["projectId"]), annotations: readOnly),
            Tool(name: "latch_submit_feedback", description: "Send feedback about Latchkey (agent keys only).",
                 inputSchema: schema(["summary": str("One-line summary."), "details": str("Details."),
                                      "desiredOutcome": str("What you wanted to happen.")], required: ["summary"]),
                 annotations: .init(readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false)),
        ]
        if allowWrites {
            tools.append(Tool(name: "latch_machine_request", description: "Send one raw machine API request (may change data).",
                              inputSchema: schema(["method": str("GET, POST, PATCH, PUT or DELETE."),
                                                   "path": str("Path under /api/v1/machine."),
                                                   "body": str("JSON request body.")], required: ["method", "path"]),
                              annotations: .init(readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: false)))
        }
        return tools
    }

    static func json(_ value: some Encodable) throws -> String {
        String(decoding: try LatchJSON.encoder().encode(value), as: UTF8.self)
    }

    static func arg(_ args: [String: Value], _ name: String, required: Bool = true) throws -> String? {
        if let v = args[name]?.stringValue { return v }
        if required { throw LatchError(.usage, "missing string argument \"\(name)\"") }
        return nil
    }

    struct AuthStatus: Encodable { var principal: PrincipalInfo; var accessKey: String; var keyId: String; var server: String; var vaults: Int }
    struct ItemRow: Encodable { var id: String; var name: String; var type: String; var fields: [String] }
    struct Items: Encodable { var vaultId: String; var vault: String; var items: [ItemRow] }

    static func call(_ name: String, _ args: [String: Value], session: MCPSession, allowWrites: Bool) async throws -> String {
        switch name {
        case "latch_auth_status":
            let l = try await session.client(refresh: false)
            return try json(AuthStatus(principal: l.identity.principal, accessKey: l.identity.accessKey, keyId: l.keyId,
                                       server: l.configuration.baseURL.absoluteString, vaults: l.verifiedVaults.count))
        case "latch_list_vaults":
            return try json(["vaults": try await session.client(refresh: false).listVaults()])
        case "latch_list_vault_items":
            let v = try await session.client(refresh: false).verifiedVault(try arg(args, "vault") ?? "")
            return try json(Items(vaultId: v.id, vault: v.name, items: v.items.map { ItemRow(id: $0.id, name: $0.name, type: $0.type, fields: $0.fields.map(\.name)) }))
        case "latch_search_secrets":
            return try json(["secrets": try await session.client(refresh: true).search(try arg(args, "query") ?? "")])
        case "latch_get_secret":
            return try await session.client(refresh: true).get(try arg(args, "name") ?? "")
        case "latch_list_projects":
            return try json(try await session.client(refresh: false).http.getJSON(ProjectListResponse.self, LatchRoutes.projects))
        case "latch_get_project":
            let id = try arg(args, "projectId") ?? ""
            return try json(try await session.client(refresh: false).http.getJSON(ProjectResponse.self, LatchRoutes.projects + "/" + id))
        case "latch_submit_feedback":
            let body = FeedbackRequest(surface: "MCP", summary: try arg(args, "summary") ?? "", details: try arg(args, "details", required: false),
                                       desiredOutcome: try arg(args, "desiredOutcome", required: false))
            return try json(try await session.client(refresh: false).http.postJSON(FeedbackResponse.self, LatchRoutes.feedback, body: body))
        case "latch_machine_request" where allowWrites:
            let body = try arg(args, "body", required: false)
            let data = try await session.client(refresh: false).request(method: try arg(args, "method") ?? "GET", path: try arg(args, "path") ?? "",
                                                                        body: body.map { Data($0.utf8) })
            return String(decoding: data, as: UTF8.self)
        default:
            throw LatchError(.usage, "unknown tool \(name)")
        }
    }
}
