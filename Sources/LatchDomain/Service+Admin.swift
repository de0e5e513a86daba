import Foundation
import LatchCrypto

extension LatchService {
    // MARK: principals

    /// Creates an agent and its AGENT API key (returned once). Only TENANT_ADMIN and
    /// TENANT_AGENT_MANAGER may; a key cannot receive permissions its maker's key lacks.
    public func createAgent(_ ctx: AuthContext, name: String, permissions: [String]?, role: String?,
                            publicKeyPEM: String?) async throws -> (Principal, IssuedAPIKey, PublicKeyRecord?) {
        return try await perform(ctx, require: "machine.agent.write", "agent.create", assetType: "AGENT") { tx in
            guard ctx.principal.role == .tenantAdmin || ctx.principal.role == .tenantAgentManager else {
                throw DomainError.forbidden("creating agents needs the TENANT_ADMIN or TENANT_AGENT_MANAGER role")
            }
            try self.validName(name, "agent name")
            let perms = try MachinePermission.expand(permissions ?? MachinePermission.agentDefault)
            if let missing = perms.first(where: { !ctx.apiKey.permissions.contains($0) }) {
                throw DomainError.forbidden("cannot give an agent \(missing), which your own key lacks")
            }
            let r = try TenantRole(rawValue: role ?? "TENANT_MEMBER").orThrow(.invalid("role must be TENANT_MEMBER or TENANT_AGENT_MANAGER"))
            guard r != .tenantAdmin else { throw DomainError.invalid("an agent cannot be TENANT_ADMIN") }
            if r == .tenantAgentManager && ctx.principal.role != .tenantAdmin {
                throw DomainError.forbidden("only a TENANT_ADMIN can make a TENANT_AGENT_MANAGER agent")
            }
            let agent = Principal(id: self.random.uuid(), tenantId: ctx.tenant.id, type: .agent, name: name, role: r,
                                  createdAt: self.clock.now(), createdBy: ctx.principal.id, archived: false)
            try await tx.putPrincipal(agent)
            let issued = try await self.issueKey(principal: agent, scope: .agent, permissions: perms, tx: tx)
            var key: PublicKeyRecord?
            if let pem = publicKeyPEM { key = try await self.registerKey(tx, principal: agent, pem: pem).0 }
            try await self.change(tx, ctx.tenant.id, .principal, agent.id, vault: nil)
            return ((agent, issued, key), "agent=\(agent.id) accessKey=\(issued.record.accessKey)")
        }
    }

    /// Creates a user and a USER API key (returned once). TENANT_ADMIN only; a TENANT_ADMIN user
    /// only with a USER key. The key's permissions default to the maker's key's; it cannot
    /// receive one the maker's key lacks.
    public func createUser(_ ctx: AuthContext, name: String, role: String?, permissions: [String]?) async throws -> (Principal, IssuedAPIKey) {
        return try await perform(ctx, require: "machine.permissions.write", "user.create", assetType: "USER") { tx in
            guard ctx.principal.role == .tenantAdmin else { throw DomainError.forbidden("creating users needs the TENANT_ADMIN role") }
            try self.validName(name, "user name")
            let r = try TenantRole(rawValue: role ?? "TENANT_MEMBER").orThrow(.invalid("role must be TENANT_ADMIN, TENANT_AGENT_MANAGER or TENANT_MEMBER"))
            // A TENANT_ADMIN's USER key can do what a narrower administration key cannot (issue
            // TENANT keys, manage every key of the tenant): a TENANT key must not mint one.
            if r == .tenantAdmin && ctx.apiKey.scope != .user {
                throw DomainError.forbidden("making a TENANT_ADMIN needs a TENANT_ADMIN's USER key, not a \(ctx.apiKey.scope.rawValue) key")
            }
            let perms = try MachinePermission.expand(permissions ?? ctx.apiKey.permissions)
            if let missing = perms.first(where: { !ctx.apiKey.permissions.contains($0) }) {
                throw DomainError.forbidden("cannot give a user \(missing), which your own key lacks")
            }
            let user = Principal(id: self.random.uuid(), tenantId: ctx.tenant.id, type: .user, name: name, role: r,
                                 createdAt: self.clock.now(), createdBy: ctx.principal.id, archived: false)
            try await tx.putPrincipal(user)
            let issued = try await self.issueKey(principal: user, scope: .user, permissions: perms, tx: tx)
            try await self.change(tx, ctx.tenant.id, .principal, user.id, vault: nil)
            return ((user, issued), "user=\(user.id) role=\(r.rawValue)")
        }
    }

    public func listPrincipals(_ ctx: AuthContext, type: PrincipalType) async throws -> [(Principal, PublicKeyRecord?)] {
        return try await perform(ctx, require: "machine.agent.read", type == .agent ? "agent.list" : "user.list", read: true) { tx in
            var out: [(Principal, PublicKeyRecord?)] = []
            for p in try await tx.principals(tenantId: ctx.tenant.id) where p.type == type && !p.archived {
                out.append((p, try await tx.activePublicKey(principalId: p.id)))
            }
            return (out.sorted { ($0.0.name, $0.0.id) < ($1.0.name, $1.0.id) }, nil)
        }
    }

    public func getPrincipal(_ ctx: AuthContext, id: String) async throws -> (Principal, PublicKeyRecord?) {
        return try await perform(ctx, require: "machine.agent.read", "principal.read", assetId: id, read: true) { tx in
            try Self.checkId(id, "principal id")
            guard let p = try await tx.principal(id), p.tenantId == ctx.tenant.id else { throw DomainError.notFound("principal \(id) does not exist") }
            return ((p, try await tx.activePublicKey(principalId: id)), nil)
        }
    }

    /// An operator registers an agent's public key (the agent made the pair locally).
    public func registerAgentKey(_ ctx: AuthContext, agentId: String, pem: String) async throws -> (PublicKeyRecord, created: Bool) {
        return try await perform(ctx, require: "machine.agent.write", "key.register", assetType: "AGENT", assetId: agentId) { tx in
            try Self.checkId(agentId, "agent id")
            guard ctx.principal.role == .tenantAdmin || ctx.principal.role == .tenantAgentManager else {
                throw DomainError.forbidden("registering an agent's key needs the TENANT_ADMIN or TENANT_AGENT_MANAGER role")
            }
            guard let a = try await tx.principal(agentId), a.tenantId == ctx.tenant.id, a.type == .agent, !a.archived else {
                throw DomainError.notFound("agent \(agentId) does not exist")
            }
            let r = try await self.registerKey(tx, principal: a, pem: pem)
            return (r, "keyId=\(r.0.keyId)")
        }
    }

    // MARK: permissions

    func loadAsset(_ tx: any StoreTransaction, _ ctx: AuthContext, _ type: AssetType, _ id: String) async throws -> (AccessLevel?, [Vault]) {
        try Self.checkId(id, "asset id")
        let r = AccessResolver(tx)
        switch type {
        case .vault:
            guard let v = try await tx.vault(id), v.tenantId == ctx.tenant.id else { throw DomainError.notFound("vault \(id) does not exist") }
            return (try await r.vaultAccess(ctx.principal, v), [v])
        case .project:
            guard let p = try await tx.project(id), p.tenantId == ctx.tenant.id else { throw DomainError.notFound("project \(id) does not exist") }
            let vs = try await tx.vaults(tenantId: ctx.tenant.id).filter { $0.projectId == p.id }
            return (try await r.projectAccess(ctx.principal, projectId: id), vs)
        case .vaultItem:
            guard let i = try await tx.item(id), i.tenantId == ctx.tenant.id, let v = try await tx.vault(i.vaultId) else {
                throw DomainError.notFound("item \(id) does not exist")
            }
            return (try await r.itemAccess(ctx.principal, v, i), [])
        }
    }

    /// Replaces every grant on an asset. Principals that gain access to a vault without holding
    /// its current DEK become pending grants, which any DEK holder's client can fulfil.
    public func setPermissions(_ ctx: AuthContext, assetType: String, assetId: String,
                               entries: [(granteeType: String, granteeId: String, level: String)]) async throws -> ([PermissionGrant], [PendingGrant]) {
        return try await perform(ctx, require: "machine.permissions.write", "permissions.set", assetType: assetType.uppercased(), assetId: assetId) { tx in
            guard let type = AssetType(rawValue: assetType.uppercased().replacingOccurrences(of: "-", with: "_")) else {
                throw DomainError.invalid("asset type \(assetType.prefix(40)) is not PROJECT, VAULT or VAULT_ITEM")
            }
            let parsed = try entries.map { e throws(DomainError) -> (GranteeType, String, AccessLevel) in
                guard let g = GranteeType(rawValue: e.granteeType) else { throw .invalid("granteeType \(e.granteeType.prefix(40)) is not USER, AGENT, GROUP or PROJECT") }
                guard let l = AccessLevel(rawValue: e.level) else { throw .invalid("level \(e.level.prefix(40)) is not READ, WRITE or ADMIN") }
                try Self.checkId(e.granteeId, "granteeId")
                return (g, e.granteeId, l)
            }
            guard parsed.count <= 1000 else { throw DomainError.invalid("at most 1000 permissions per asset") }
            let (level, vaults) = try await self.loadAsset(tx, ctx, type, assetId)
            guard let level else { throw DomainError.notFound("\(type.rawValue.lowercased()) \(assetId) does not exist or is not shared with you") }
            guard level >= .admin else { throw DomainError.forbidden("changing permissions needs ADMIN; you have \(level.rawValue)") }
            let now = self.clock.now()
            var new: [String: PermissionGrant] = [:]
            for (g, id, l) in parsed {
                switch g {
                case .user, .agent:
                    guard let p = try await tx.principal(id), p.tenantId == ctx.tenant.id, p.type.rawValue == g.rawValue else {
                        throw DomainError.notFound("\(g.rawValue.lowercased()) \(id) does not exist in this tenant")
                    }
                case .group:
                    guard let gr = try await tx.group(id), gr.tenantId == ctx.tenant.id else { throw DomainError.notFound("group \(id) does not exist") }
                case .project:
                    guard let pr = try await tx.project(id), pr.tenantId == ctx.tenant.id else { throw DomainError.notFound("project \(id) does not exist") }
                    guard type != .project else { throw DomainError.invalid("a project cannot be granted to a project") }
                }
                let grant = PermissionGrant(tenantId: ctx.tenant.id, assetType: type, assetId: assetId, granteeType: g, granteeId: id, level: l, createdAt: now)
                new[grant.id] = grant
            }
            for old in try await tx.grants(assetId: assetId) where new[old.id] == nil && old.assetType == type {
                try await tx.deleteGrant(old.id)
                try await self.change(tx, ctx.tenant.id, .grant, old.id, vault: type == .vault ? assetId : nil)
            }
            for g in new.values.sorted(by: { $0.id < $1.id }) {
                try await tx.putGrant(g)
                try await self.change(tx, ctx.tenant.id, .grant, g.id, vault: type == .vault ? assetId : nil)
            }
            var pending: [PendingGrant] = []
            var dropped: [String] = []
            for v in vaults {
                dropped += try await self.dropNonMemberWraps(tx, v)   // removed access loses its wraps at once
                pending += try await self.recomputePending(tx, v)
            }
            return ((new.values.sorted { $0.id < $1.id }, pending),
                    "grants=\(new.count) pending=\(pending.count)" + (dropped.isEmpty ? "" : " droppedWraps=\(dropped.joined(separator: ","))"))
        }
    }

    /// Members of `v` without a wrap of its current DEK become pending grants; others are cleared.
    func recomputePending(_ tx: any StoreTransaction, _ v: Vault) async throws -> [PendingGrant] {
        let wraps = try await tx.wrappedKeys(vaultId: v.id).filter { $0.dekVersion == v.currentDekVersion }
        let holders = Set(wraps.map(\.principalId))
        let members = try await AccessResolver(tx).members(v)
        let want = Dictionary(members.filter { !holders.contains($0.0.id) }.map { ($0.0.id, $0.1) }, uniquingKeysWith: { a, _ in a })
        for old in try await tx.pendingGrants(vaultId: v.id) where want[old.principalId] == nil {
            try await tx.deletePendingGrant(old.id)
        }
        let existing = Dictionary(try await tx.pendingGrants(vaultId: v.id).map { ($0.principalId, $0) }, uniquingKeysWith: { a, _ in a })
        var out: [PendingGrant] = []
        for (pid, level) in want.sorted(by: { $0.key < $1.key }) {
            if var e = existing[pid] {
                if e.level != level { e.level = level; try await tx.putPendingGrant(e) }
                out.append(e)
            } else {
                let g = PendingGrant(vaultId: v.id, tenantId: v.tenantId, principalId: pid, level: level, createdAt: clock.now())
                try await tx.putPendingGrant(g)
                out.append(g)
            }
        }
        return out
    }

    public func permissions(_ ctx: AuthContext, assetType: String, assetId: String) async throws -> ([PermissionGrant], [PendingGrant]) {
        return try await perform(ctx, require: "machine.permissions.read", "permissions.read", assetType: assetType.uppercased(), assetId: assetId, read: true) { tx in
            guard let type = AssetType(rawValue: assetType.uppercased().replacingOccurrences(of: "-", with: "_")) else {
                throw DomainError.invalid("asset type \(assetType.prefix(40)) is not PROJECT, VAULT or VAULT_ITEM")
            }
            let (level, _) = try await self.loadAsset(tx, ctx, type, assetId)
            guard level != nil else { throw DomainError.notFound("\(type.rawValue.lowercased()) \(assetId) does not exist or is not shared with you") }
            let pending = type == .vault ? try await tx.pendingGrants(vaultId: assetId) : []
            return ((try await tx.grants(assetId: assetId).filter { $0.assetType == type }, pending), nil)
        }
    }

    /// Pending grants the caller can fulfil: on vaults where it holds the current DEK.
    public func pendingGrants(_ ctx: AuthContext) async throws -> [(PendingGrant, Principal, Bool)] {
        return try await perform(ctx, require: "machine.vault.read", "permissions.pending", read: true) { tx in
            var out: [(PendingGrant, Principal, Bool)] = []
            let mine = try await tx.wrappedKeys(principalId: ctx.principal.id)
            for g in try await tx.pendingGrants(tenantId: ctx.tenant.id) {
                guard let v = try await tx.vault(g.vaultId), !v.archived,
                      mine.contains(where: { $0.vaultId == v.id && $0.dekVersion == v.currentDekVersion }),
                      let p = try await tx.principal(g.principalId) else { continue }
                out.append((g, p, try await tx.activePublicKey(principalId: p.id) != nil))
            }
            return (out, nil)
        }
    }
}

extension Optional {
    func orThrow(_ e: DomainError) throws(DomainError) -> Wrapped {
        guard let v = self else { throw e }
        return v
    }
}
