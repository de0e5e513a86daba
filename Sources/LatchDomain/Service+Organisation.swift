import Foundation

/// The organisation level: its tenants, listed and added with an ORG key.
///
/// Who owns an organisation: a TENANT_ADMIN user of its founding tenant (the one bootstrap made
/// with it, recorded in the organisation; for a store bootstrapped before that, its earliest). An ORG key is such a user's, carries no machine permission and reaches only
/// these routes: it never reads or changes anything inside a tenant, its own included, so a
/// leaked ORG key can add tenants but cannot touch any tenant's assets. Each new tenant gets its
/// own TENANT_ADMIN, whose key pair is made on that admin's host.
extension LatchService {
    /// Whether `p` owns its organisation (see above).
    func isOrganisationOwner(_ tx: any StoreTransaction, _ p: Principal) async throws -> Bool {
        guard p.type == .user, p.role == .tenantAdmin, !p.archived, let home = try await tx.tenant(p.tenantId),
              let org = try await tx.organisation(home.organisationId) else { return false }
        if let founding = org.foundingTenantId { return founding == home.id }
        let earliest = try await tx.tenants(organisationId: org.id).min { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
        return earliest?.id == home.id
    }

    func requireOrganisationKey(_ tx: any StoreTransaction, _ ctx: AuthContext) async throws {
        guard ctx.apiKey.scope == .org else {
            throw DomainError.forbidden("organisation routes need an ORG key (an organisation owner's: `latch apikey create --scope ORG`), not a \(ctx.apiKey.scope.rawValue) key")
        }
        guard try await isOrganisationOwner(tx, ctx.principal) else {
            throw DomainError.forbidden("\(ctx.principal.name) no longer owns the organisation (a TENANT_ADMIN of its founding tenant)")
        }
    }

    /// The caller's organisation and its tenants, oldest first.
    public func organisation(_ ctx: AuthContext) async throws -> (Organisation, [Tenant]) {
        try await perform(ctx, "org.read", assetType: "ORGANISATION", assetId: ctx.tenant.organisationId, read: true) { tx in
            try await self.requireOrganisationKey(tx, ctx)
            guard let org = try await tx.organisation(ctx.tenant.organisationId) else {
                throw DomainError.notFound("organisation \(ctx.tenant.organisationId) does not exist")
            }
            let tenants = try await tx.tenants(organisationId: org.id).sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
            return ((org, tenants), nil)
        }
    }

    /// Adds a tenant to the caller's organisation with its first TENANT_ADMIN (`adminPublicKeyPEM`
    /// made on that admin's host); returns that admin's USER key once.
    public func createTenant(_ ctx: AuthContext, name: String, adminName: String, adminPublicKeyPEM: String) async throws -> BootstrapResult {
        try await perform(ctx, "org.tenant.create", assetType: "TENANT") { tx in
            try await self.requireOrganisationKey(tx, ctx)
            if try await tx.tenants(organisationId: ctx.tenant.organisationId).contains(where: { $0.name == name }) {
                throw DomainError.conflict("the organisation already has a tenant named \(name)")
            }
            let r = try await self.addTenant(tx, organisationId: ctx.tenant.organisationId, tenantName: name, adminName: adminName,
                                             adminPublicKeyPEM: adminPublicKeyPEM)
            return (r, "tenant=\(r.tenant.id) admin=\(r.user.id)")
        }
    }
}
