import Foundation

/// API keys after their principal's creation: issuing more (a second key to rotate to, a
/// narrower one for one job, a TENANT administration key), listing them without their secrets,
/// and revoking one.
///
/// Who may act on a principal's keys:
/// - its own: a user on its own keys, with a USER key; a USER or AGENT key may revoke any key of
///   its own principal (the way to kill a key that leaked), a TENANT or ORG key only itself;
/// - an agent's: TENANT_ADMIN or TENANT_AGENT_MANAGER with `machine.agent.write` (the rule for
///   making agents). An agent does not issue keys for itself, so a leaked agent key cannot mint
///   the replacement that would outlive its revocation;
/// - another user's: TENANT_ADMIN with `machine.permissions.write` (the rule for making users).
///
/// Scopes: USER and AGENT keys act as their principal. A TENANT key is a tenant administration
/// key held by a TENANT_ADMIN user: it carries only administration permissions (never secret
/// reads, vault writes or feedback) and cannot register or rotate its principal's public key.
/// An ORG key is held by an organisation owner (Service+Organisation) and carries no machine
/// permission: it reaches the organisation routes only (list tenants, add one).
extension LatchService {
    /// Permissions a TENANT key may carry (and its default).
    public static let tenantKeyPermissions = ["machine.agent.read", "machine.agent.write", "machine.monitoring.read",
                                              "machine.permissions.read", "machine.permissions.write",
                                              "machine.project.read", "machine.project.write", "machine.vault.read"]

    /// Issues a key (returned once) for `principalId` (default: the caller), working until
    /// `expiresAt` when given (which must be in the future).
    public func issueAPIKey(_ ctx: AuthContext, principalId: String?, scope: String?, permissions: [String]?,
                            expiresAt: Date? = nil) async throws -> IssuedAPIKey {
        let now = clock.now()
        let issued: IssuedAPIKey = try await perform(ctx, "apikey.create", assetType: "API_KEY") { tx in
            if let expiresAt, expiresAt <= now {
                throw DomainError.invalid("expiresAt \(Self.iso(expiresAt)) is not in the future (server time \(Self.iso(now)))")
            }
            let target = try await self.keyOwner(tx, ctx, principalId ?? ctx.principal.id, issuing: true)
            let s: APIKeyScope
            if let scope {
                guard let parsed = APIKeyScope(rawValue: scope) else {
                    throw DomainError.invalid("scope must be one of \(APIKeyScope.allCases.map(\.rawValue).joined(separator: ", ")), not '\(scope.prefix(32))'")
                }
                s = parsed
            } else {
                s = target.type == .agent ? .agent : .user
            }
            let defaults: [String]
            switch s {
            case .org:
                guard target.type == .user, try await self.isOrganisationOwner(tx, target) else {
                    throw DomainError.invalid("an ORG key belongs to a TENANT_ADMIN user of the organisation's founding tenant; \(target.id) is not one")
                }
                guard ctx.apiKey.scope == .user, try await self.isOrganisationOwner(tx, ctx.principal) else {
                    throw DomainError.forbidden("ORG keys are issued by a TENANT_ADMIN of the organisation's founding tenant with a USER key")
                }
                guard permissions?.isEmpty ?? true else {
                    throw DomainError.invalid("an ORG key carries no machine permissions: it reaches the organisation routes only")
                }
                defaults = []
            case .agent, .user:
                guard (s == .agent) == (target.type == .agent) else {
                    throw DomainError.invalid("a \(s.rawValue) key must belong to a \(s == .agent ? "n agent" : " user"), and \(target.id) is a\(target.type == .agent ? "n agent" : " user")")
                }
                defaults = s == .agent ? MachinePermission.agentDefault : ctx.apiKey.permissions
            case .tenant:
                guard target.type == .user, target.role == .tenantAdmin else {
                    throw DomainError.invalid("a TENANT key belongs to a TENANT_ADMIN user; \(target.id) is not one")
                }
                guard ctx.principal.role == .tenantAdmin, ctx.apiKey.scope == .user else {
                    throw DomainError.forbidden("TENANT keys are issued by a TENANT_ADMIN with a USER key")
                }
                defaults = Self.tenantKeyPermissions.filter { ctx.apiKey.permissions.contains($0) }
            }
            let perms = try MachinePermission.expand(permissions ?? defaults)
            guard !perms.isEmpty || s == .org else { throw DomainError.invalid("permissions must name at least one machine permission") }
            if s == .tenant, let wrong = perms.first(where: { !Self.tenantKeyPermissions.contains($0) }) {
                throw DomainError.invalid("a TENANT key cannot carry \(wrong); it may carry \(Self.tenantKeyPermissions.joined(separator: ", "))")
            }
            if let missing = perms.first(where: { !ctx.apiKey.permissions.contains($0) }) {
                throw DomainError.forbidden("cannot give a key \(missing), which your own key lacks")
            }
            let issued = try await self.issueKey(principal: target, scope: s, permissions: perms, expiresAt: expiresAt, tx: tx)
            return (issued, "principal=\(target.id) accessKey=\(issued.record.accessKey) scope=\(s.rawValue)"
                        + (expiresAt.map { " expiresAt=\(Self.iso($0))" } ?? ""))
        }
        return issued
    }

    /// The keys of `principalId` (default: the caller), or with `wholeTenant` every key of the
    /// tenant (TENANT_ADMIN with `machine.agent.read`), newest first, secrets never included.
    public func listAPIKeys(_ ctx: AuthContext, principalId: String?, wholeTenant: Bool = false) async throws -> [APIKeyRecord] {
        try await perform(ctx, "apikey.list", assetType: "API_KEY", read: true) { tx in
            let keys: [APIKeyRecord]
            if wholeTenant {
                guard principalId == nil else { throw DomainError.invalid("all=true lists every key of the tenant; leave out principalId") }
                guard ctx.apiKey.scope != .org else { throw DomainError.forbidden("an ORG key reaches the organisation routes only") }
                try ctx.require("machine.agent.read")
                guard ctx.principal.role == .tenantAdmin else { throw DomainError.forbidden("listing every key of the tenant needs the TENANT_ADMIN role") }
                keys = try await tx.apiKeys(tenantId: ctx.tenant.id)
            } else {
                keys = try await tx.apiKeys(principalId: try await self.keyOwner(tx, ctx, principalId ?? ctx.principal.id, issuing: false).id)
            }
            return (keys.sorted { ($0.createdAt, $0.accessKey) > ($1.createdAt, $1.accessKey) }, wholeTenant ? "all" : nil)
        }
    }

    /// Revokes a key at once (this replica's cached authentications are dropped; other replicas
    /// stop accepting it within their cache's lifetime). Revoking a revoked key changes nothing.
    /// Refused when it would leave the tenant with no TENANT_ADMIN able to sign in with a USER key.
    public func revokeAPIKey(_ ctx: AuthContext, accessKey: String) async throws -> APIKeyRecord {
        let revoked: APIKeyRecord = try await perform(ctx, "apikey.revoke", assetType: "API_KEY", assetId: String(accessKey.prefix(64))) { tx in
            guard accessKey.count <= 64, var key = try await tx.apiKey(accessKey: accessKey), key.tenantId == ctx.tenant.id else {
                throw DomainError.notFound("API key \(accessKey.prefix(64)) does not exist")
            }
            if key.principalId != ctx.principal.id {
                _ = try await self.keyOwner(tx, ctx, key.principalId, issuing: true)
            } else if key.accessKey != ctx.apiKey.accessKey && ctx.apiKey.scope != .user && ctx.apiKey.scope != .agent {
                throw DomainError.forbidden("a \(ctx.apiKey.scope.rawValue) key revokes only itself; revoke the user's other keys with one of its USER keys")
            }
            guard !key.revoked else { return (key, "already revoked") }
            if key.scope == .user, try await !self.otherAdminKeyExists(tx, ctx.tenant.id, besides: key.accessKey) {
                throw DomainError.conflict("revoking \(key.accessKey) would leave the tenant without a TENANT_ADMIN USER key; issue another key first (POST /api-keys)")
            }
            key.revoked = true
            try await tx.putAPIKey(key)
            return (key, "principal=\(key.principalId) scope=\(key.scope.rawValue)")
        }
        await invalidateAuthCache()
        return revoked
    }

    /// The principal whose keys the caller acts on, after the rules above (`issuing`: issue or
    /// revoke; otherwise list).
    func keyOwner(_ tx: any StoreTransaction, _ ctx: AuthContext, _ id: String, issuing: Bool) async throws -> Principal {
        guard ctx.apiKey.scope != .org else {
            throw DomainError.forbidden("an ORG key reaches the organisation routes only (and may revoke itself)")
        }
        try Self.checkId(id, "principal id")
        guard let p = try await tx.principal(id), p.tenantId == ctx.tenant.id, !p.archived else {
            throw DomainError.notFound("principal \(id) does not exist")
        }
        let own = p.id == ctx.principal.id
        switch (p.type, own) {
        case (.user, true):
            if issuing, ctx.apiKey.scope != .user {
                throw DomainError.forbidden("a user's keys are issued with one of its USER keys, not a \(ctx.apiKey.scope.rawValue) key")
            }
        case (.agent, true):
            if issuing { throw DomainError.forbidden("an agent's keys are issued by a TENANT_ADMIN or TENANT_AGENT_MANAGER, not by the agent itself") }
        case (.agent, false):
            try ctx.require(issuing ? "machine.agent.write" : "machine.agent.read")
            guard ctx.principal.role == .tenantAdmin || ctx.principal.role == .tenantAgentManager else {
                throw DomainError.forbidden("an agent's keys are managed by a TENANT_ADMIN or TENANT_AGENT_MANAGER")
            }
        case (.user, false):
            try ctx.require(issuing ? "machine.permissions.write" : "machine.agent.read")
            guard ctx.principal.role == .tenantAdmin else { throw DomainError.forbidden("another user's keys are managed by a TENANT_ADMIN") }
        }
        return p
    }

    static func iso(_ d: Date) -> String { d.formatted(.iso8601) }

    /// Whether a TENANT_ADMIN user of the tenant holds a live USER key other than `besides`.
    func otherAdminKeyExists(_ tx: any StoreTransaction, _ tenantId: String, besides: String) async throws -> Bool {
        let now = clock.now()
        for p in try await tx.principals(tenantId: tenantId) where p.type == .user && p.role == .tenantAdmin && !p.archived {
            if try await tx.apiKeys(principalId: p.id).contains(where: { $0.scope == .user && $0.isLive(at: now) && $0.accessKey != besides }) {
                return true
            }
        }
        return false
    }
}
