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

    /// The ids a grant may name for the principal: its own, and its groups' (looked up only when
    /// a group grant has to be matched: a check that direct grants settle never reads them).
    final class Subjects {
        let principal: Principal
        var groups: Set<String>?
        init(_ p: Principal) { principal = p }
        func contains(_ id: String, _ tx: any StoreTransaction, group: Bool) async throws -> Bool {
            if id == principal.id { return true }
            guard group else { return false }
            if groups == nil { groups = Set(try await tx.groupIds(of: principal.id)) }
            return groups?.contains(id) ?? false
        }
    }

    /// The highest level `grants` give; stops early once `enough` is reached.
    func fromGrants(_ grants: [PermissionGrant], _ p: Principal, _ subjects: Subjects, depth: Int,
                    enough: AccessLevel) async throws -> AccessLevel? {
        var best: AccessLevel?
        // Direct grants first: they need no further reads.
        for g in grants.sorted(by: { Self.cost($0.granteeType) < Self.cost($1.granteeType) }) where g.tenantId == p.tenantId {
            if let b = best, g.level <= b { continue }
            var level: AccessLevel?
            switch g.granteeType {
            case .user, .agent, .group:
                if try await subjects.contains(g.granteeId, tx, group: g.granteeType == .group) { level = g.level }
            case .project:
                if depth < 1, try await projectLevel(p, projectId: g.granteeId, subjects: subjects, depth: depth + 1, enough: .read) != nil {
                    level = g.level
                }
            }
            if let l = level, best.map({ l > $0 }) ?? true { best = l }
            if let b = best, b >= enough { return b }
        }
        return best
    }

    static func cost(_ t: GranteeType) -> Int {
        switch t { case .user, .agent: 0; case .group: 1; case .project: 2 }
    }

    func projectLevel(_ p: Principal, projectId: String, subjects: Subjects, depth: Int, enough: AccessLevel) async throws -> AccessLevel? {
        if p.role == .tenantAdmin, let pr = try await tx.project(projectId), pr.tenantId == p.tenantId { return .admin }
        return try await fromGrants(tx.grants(assetId: projectId), p, subjects, depth: depth, enough: enough)
    }

    public func projectAccess(_ p: Principal, projectId: String) async throws -> AccessLevel? {
        try await projectLevel(p, projectId: projectId, subjects: Subjects(p), depth: 0, enough: .admin)
    }

    /// The principal's level on the vault. With `enough`, the answer may stop at the first level
    /// at or above it (a caller that only compares with `enough` skips the remaining reads).
    public func vaultAccess(_ p: Principal, _ v: Vault, enough: AccessLevel = .admin) async throws -> AccessLevel? {
        try await vaultLevel(p, VaultAccessView(v), Subjects(p), enough: enough)
    }

    func vaultLevel(_ p: Principal, _ v: VaultAccessView, _ s: Subjects, enough: AccessLevel) async throws -> AccessLevel? {
        guard v.tenantId == p.tenantId, !p.archived else { return nil }
        if p.role == .tenantAdmin { return .admin }
        var best = try await fromGrants(tx.grants(assetId: v.id), p, s, depth: 0, enough: enough)
        if let b = best, b >= enough { return b }
        if let pid = v.projectId, let l = try await projectLevel(p, projectId: pid, subjects: s, depth: 0, enough: enough),
           best.map({ l > $0 }) ?? true {
            best = l
        }
        return best
    }

    /// The principal's level on the item (see `vaultAccess` for `enough`).
    public func itemAccess(_ p: Principal, _ v: Vault, _ i: Item, enough: AccessLevel = .admin) async throws -> AccessLevel? {
        try await itemLevel(p, VaultAccessView(v), i, enough: enough)
    }

    func itemLevel(_ p: Principal, _ v: VaultAccessView, _ i: Item, enough: AccessLevel) async throws -> AccessLevel? {
        guard i.tenantId == p.tenantId else { return nil }
        let s = Subjects(p)
        var best = try await vaultLevel(p, v, s, enough: enough)
        if let b = best, b >= enough { return b }
        if let l = try await fromGrants(tx.grants(assetId: i.id), p, s, depth: 0, enough: enough), best.map({ l > $0 }) ?? true { best = l }
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

/// The members of a vault an access check reads. Decoded from a vault document it skips the
/// signed summary checkpoint and writer set, which grow with the vault.
struct VaultAccessView: Decodable, Sendable {
    var id: String
    var tenantId: String
    var projectId: String?
    var archived: Bool
    init(_ v: Vault) { id = v.id; tenantId = v.tenantId; projectId = v.projectId; archived = v.archived }
}
