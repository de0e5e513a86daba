import Foundation

/// Effective access: READ < WRITE < ADMIN on PROJECT, VAULT and VAULT_ITEM, granted to a user,
/// agent, security group or project. A principal's level on an asset is the highest of
/// - grants on the asset to the principal or to a group it belongs to;
/// - grants on the asset to a project the principal can at least READ (level as granted);
/// - for a vault in a project, the principal's level on that project;
/// - for an item, its vault's level;
/// - TENANT_ADMIN: ADMIN on every asset of its tenant.
/// Nothing crosses tenants.
public struct AccessResolver: Sendable {
    public let tx: any StoreTransaction
    public init(_ tx: any StoreTransaction) { self.tx = tx }

    func subjects(_ p: Principal) async throws -> Set<String> {
        Set([p.id] + (try await tx.groupIds(of: p.id)))
    }

    func fromGrants(_ grants: [PermissionGrant], _ p: Principal, _ subjects: Set<String>, depth: Int) async throws -> AccessLevel? {
        var best: AccessLevel?
        for g in grants where g.tenantId == p.tenantId {
            var level: AccessLevel?
            switch g.granteeType {
            case .user, .agent, .group:
                if subjects.contains(g.granteeId) { level = g.level }
            case .project:
                if depth < 1, try await projectLevel(p, projectId: g.granteeId, subjects: subjects, depth: depth + 1) != nil { level = g.level }
            }
            if let l = level, best.map({ l > $0 }) ?? true { best = l }
        }
        return best
    }

    func projectLevel(_ p: Principal, projectId: String, subjects: Set<String>, depth: Int) async throws -> AccessLevel? {
        if p.role == .tenantAdmin, let pr = try await tx.project(projectId), pr.tenantId == p.tenantId { return .admin }
        return try await fromGrants(tx.grants(assetId: projectId), p, subjects, depth: depth)
    }

    public func projectAccess(_ p: Principal, projectId: String) async throws -> AccessLevel? {
        try await projectLevel(p, projectId: projectId, subjects: subjects(p), depth: 0)
    }

    public func vaultAccess(_ p: Principal, _ v: Vault) async throws -> AccessLevel? {
        guard v.tenantId == p.tenantId, !p.archived else { return nil }
        if p.role == .tenantAdmin { return .admin }
        let s = try await subjects(p)
        var best = try await fromGrants(tx.grants(assetId: v.id), p, s, depth: 0)
        if let pid = v.projectId, let l = try await projectLevel(p, projectId: pid, subjects: s, depth: 0), best.map({ l > $0 }) ?? true {
            best = l
        }
        return best
    }

    public func itemAccess(_ p: Principal, _ v: Vault, _ i: Item) async throws -> AccessLevel? {
        guard i.tenantId == p.tenantId else { return nil }
        var best = try await vaultAccess(p, v)
        if let l = try await fromGrants(tx.grants(assetId: i.id), p, subjects(p), depth: 0), best.map({ l > $0 }) ?? true { best = l }
        return best
    }

    /// Every principal of the vault's tenant with at least READ, and its level.
    public func members(_ v: Vault) async throws -> [(Principal, AccessLevel)] {
        var out: [(Principal, AccessLevel)] = []
        for p in try await tx.principals(tenantId: v.tenantId) where !p.archived {
            if let l = try await vaultAccess(p, v) { out.append((p, l)) }
        }
        return out
    }
}
