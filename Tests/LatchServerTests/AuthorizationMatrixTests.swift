import Foundation
import Hummingbird
import HummingbirdTesting
import LatchCrypto
import LatchDomain
import LatchServer
import LatchWire
import Testing

@Suite("Authorisation matrix")
struct AuthorizationMatrixTests {
    @Test("every caller against every route of another's vault and a foreign tenant: zero unexpected successes")
    func matrix() async throws {
        let store = MemoryStore()
        try await withHarness(store: store) { h in
            let admin = try await h.bootstrap()
            var (vault, _) = try await h.createVault(admin)
            let itemResp = try await h.putItem(admin, &vault, name: "db", fields: [("password", "pw-123", true)])
            let item = try itemResp.decode(ItemDetailResponse.self)
            let fieldId = try #require(item.fields.first?.id)

            let reader = try await h.createAgent(admin, name: "reader", key: Keys.pool[5])
            let stranger = try await h.createAgent(admin, name: "stranger", key: Keys.pool[6])
            #expect(try await h.grant(admin, vault: vault.id, [PermissionEntry(granteeType: "AGENT", granteeId: reader.id, level: "READ")]).status == .ok)
            #expect(try await h.share(admin, vault, to: reader).status == .created)
            let mu = try await h.call(.post, LatchRoutes.users, key: admin.apiKey, body: CreateUserRequest(name: "bob"))
            let memberResp = try mu.decode(CreatePrincipalResponse.self)
            let member = Party(id: memberResp.principal.id, apiKey: memberResp.apiKey, key: Keys.pool[7])
            #expect(try await h.call(.post, LatchRoutes.publicKey, key: member.apiKey, body: RegisterPublicKeyRequest(publicKey: member.key.publicKey.pem)).status == .created)
            let orgId = try await h.call(.get, LatchRoutes.tenantContext, key: admin.apiKey).decode(TenantContextResponse.self).organisation.id
            let foreignT = try await LatchService(store: store).createTenant(organisationId: orgId, tenantName: "other", adminName: "eve",
                                                                             adminPublicKeyPEM: Keys.pool[1].publicKey.pem)
            let foreign = Party(id: foreignT.user.id, apiKey: foreignT.apiKey.apiKey, key: Keys.pool[1])
            // the admin's TENANT administration key, and a spare USER key of the admin's to aim revocations at
            let tenantKey = try await h.call(.post, LatchRoutes.apiKeys, key: admin.apiKey, body: CreateAPIKeyRequest(scope: "TENANT"))
                .decode(APIKeyInfo.self)
            let tenantAdmin = Party(id: admin.id, apiKey: try #require(tenantKey.apiKey), key: admin.key)
            let spare = try await h.call(.post, LatchRoutes.apiKeys, key: admin.apiKey, body: CreateAPIKeyRequest()).decode(APIKeyInfo.self)
            let orgKey = try await h.call(.post, LatchRoutes.apiKeys, key: admin.apiKey, body: CreateAPIKeyRequest(scope: "ORG")).decode(APIKeyInfo.self)
            let orgOwner = Party(id: admin.id, apiKey: try #require(orgKey.apiKey), key: admin.key)
            // an agent with the TENANT_AGENT_MANAGER role: it makes agents, and nothing else here
            let mm = try await h.call(.post, LatchRoutes.agents, key: admin.apiKey, body: CreateAgentRequest(
                name: "manager", permissions: ["machine.agent.read", "machine.agent.write"] + MachinePermission.agentDefault, role: "TENANT_AGENT_MANAGER"))
            let managerResp = try mm.decode(CreatePrincipalResponse.self)
            let manager = Party(id: managerResp.principal.id, apiKey: managerResp.apiKey, key: Keys.pool[2])
            #expect(try await h.call(.post, LatchRoutes.publicKey, key: manager.apiKey, body: RegisterPublicKeyRequest(publicKey: manager.key.publicKey.pem)).status == .created)

            struct Route {
                var name: String; var write: Bool; var ownTenant = false
                var call: @Sendable (Party) async throws -> HTTPResult
            }
            let v = vault
            let routes: [Route] = [
                Route(name: "GET vault", write: false) { try await h.call(.get, LatchRoutes.vault(v.id), key: $0.apiKey) },
                Route(name: "GET vaults alias", write: false) { try await h.call(.get, "/api/v1/machine/vaults/\(v.id)/items", key: $0.apiKey) },
                Route(name: "GET items", write: false) { try await h.call(.get, LatchRoutes.vaultItems(v.id), key: $0.apiKey) },
                Route(name: "GET item", write: false) { try await h.call(.get, LatchRoutes.vaultItem(v.id, item.id), key: $0.apiKey) },
                Route(name: "GET field", write: false) { try await h.call(.get, LatchRoutes.field(v.id, fieldId), key: $0.apiKey) },
                Route(name: "GET env fields", write: false) { try await h.call(.get, LatchRoutes.environmentFields(v.id), key: $0.apiKey) },
                Route(name: "GET wrapped-key", write: false) { try await h.call(.get, LatchRoutes.wrappedKey(v.id), key: $0.apiKey) },
                Route(name: "GET public-keys", write: false) { try await h.call(.get, LatchRoutes.vaultPublicKeys(v.id), key: $0.apiKey) },
                Route(name: "GET permissions", write: true) { try await h.call(.get, LatchRoutes.permissions("VAULT", v.id), key: $0.apiKey) },
                Route(name: "PATCH vault", write: true) { p in
                    var s = v.summary; s.version += 1; s.name = "renamed"
                    return try await h.call(.patch, LatchRoutes.updateVault(v.id), key: p.apiKey, body: UpdateVaultRequest(summaryCheckpoint: try signed(s, p.key)))
                },
                Route(name: "POST item", write: true) { p in
                    var copy = v
                    return try await h.putItem(p, &copy, name: "new", fields: [("k", "v", true)])
                },
                Route(name: "PATCH item", write: true) { p in
                    var copy = v
                    return try await h.putItem(p, &copy, itemId: item.id, name: "db", fields: [("password", "changed", true)])
                },
                Route(name: "DELETE item", write: true) { p in
                    let s = v.nextSummary { $0.removeAll { $0.id == item.id } }
                    return try await h.call(.delete, LatchRoutes.vaultItem(v.id, item.id), key: p.apiKey, body: ArchiveItemRequest(summaryCheckpoint: try signed(s, p.key)))
                },
                Route(name: "POST wrapped-keys", write: true) { p in try await h.share(p, v, to: stranger) },
                Route(name: "POST set-permissions", write: true) { p in
                    try await h.grant(p, vault: v.id, [PermissionEntry(granteeType: p.id == foreign.id ? "USER" : "AGENT", granteeId: p.id, level: "ADMIN")])
                },
                Route(name: "DELETE vault", write: true) { try await h.call(.delete, LatchRoutes.vault(v.id), key: $0.apiKey) },
                Route(name: "POST agents", write: true, ownTenant: true) { p in
                    try await h.call(.post, LatchRoutes.agents, key: p.apiKey, body: CreateAgentRequest(name: "x"))
                },
                Route(name: "POST users", write: true, ownTenant: true) { try await h.call(.post, LatchRoutes.users, key: $0.apiKey, body: CreateUserRequest(name: "x")) },
                Route(name: "POST agent key", write: true) { p in
                    try await h.call(.post, LatchRoutes.agentPublicKey(stranger.id), key: p.apiKey, body: RegisterAgentKeyRequest(publicKey: Keys.pool[3].publicKey.pem))
                },
                Route(name: "POST groups", write: true, ownTenant: true) { try await h.call(.post, LatchRoutes.groups, key: $0.apiKey, body: CreateGroupRequest(name: "g")) },
                Route(name: "GET audit", write: true, ownTenant: true) { try await h.call(.get, LatchRoutes.auditEvents, key: $0.apiKey) },
                Route(name: "POST api-keys for the admin", write: true) { p in
                    try await h.call(.post, LatchRoutes.apiKeys, key: p.apiKey, body: CreateAPIKeyRequest(principalId: admin.id))
                },
                Route(name: "GET the admin's api-keys", write: true) { try await h.call(.get, LatchRoutes.apiKeys + "?principalId=\(admin.id)", key: $0.apiKey) },
                Route(name: "DELETE the admin's api-key", write: true) { try await h.call(.delete, LatchRoutes.apiKey(spare.accessKey), key: $0.apiKey) },
            ]
            // who may do what: the reader may read the vault; nobody but the admin may write or administer.
            // The TENANT key is the admin's, so it is told route by route: it reads vault metadata and
            // administers the tenant, but reads no secret, writes nothing signed and mints no keys for the admin.
            let tenantKeyMay: Set<String> = ["GET vault", "GET vaults alias", "GET items", "GET wrapped-key", "GET public-keys", "GET permissions",
                                             "POST users", "POST groups", "GET audit", "GET the admin's api-keys"]
            let callers: [(String, Party, Bool, Set<String>?)] = [
                ("reader agent", reader, true, nil), ("stranger agent", stranger, false, nil), ("member user", member, false, nil),
                ("foreign admin", foreign, false, nil), ("admin's TENANT key", tenantAdmin, true, tenantKeyMay),
                ("admin's ORG key", orgOwner, false, []),   // organisation routes only: nothing inside a tenant
                ("agent manager", manager, false, ["POST agents"]),
            ]
            var unexpected: [String] = []
            var checked = 0
            for (who, p, canRead, only) in callers {
                for r in routes {
                    let res = try await r.call(p)
                    checked += 1
                    // tenant-wide admin routes act on the caller's own tenant: the foreign admin may use them there
                    let allowed = only.map { $0.contains(r.name) } ?? ((canRead && !r.write) || (r.ownTenant && p.id == foreign.id))
                    let ok = (200..<300).contains(Int(res.status.code))
                    if ok && !allowed { unexpected.append("\(who) → \(r.name): \(res.status.code)") }
                    if !ok && allowed { Issue.record("\(who) was refused \(r.name): \(String(decoding: res.data, as: UTF8.self))") }
                    if !ok { #expect([400, 403, 404, 409].contains(Int(res.status.code)), "\(who) → \(r.name) gave \(res.status.code)") }
                }
                // listings, search and sync must not reveal the vault either (an ORG key may not list at all)
                if only?.isEmpty == true {
                    for path in [LatchRoutes.vaults, LatchRoutes.sync] {
                        #expect(try await h.call(.get, path, key: p.apiKey).status == .forbidden, "\(who) \(path)")
                    }
                    #expect(try await h.call(.post, LatchRoutes.search, key: p.apiKey, body: SearchRequest(query: "db")).status == .forbidden)
                    continue
                }
                let list = try await h.call(.get, LatchRoutes.vaults, key: p.apiKey).decode(VaultListResponse.self)
                #expect(list.vaults.contains { $0.id == v.id } == canRead, "\(who) vault list")
                let sync = try await h.call(.get, LatchRoutes.sync, key: p.apiKey).decode(SyncResponse.self)
                #expect(sync.vaults.contains { $0.vault.id == v.id } == canRead, "\(who) sync")
                let search = try await h.call(.post, LatchRoutes.search, key: p.apiKey, body: SearchRequest(query: "db")).decode(SearchResponse.self)
                #expect(search.results.contains { $0.vaultId == v.id } == canRead, "\(who) search")
            }
            #expect(unexpected.isEmpty, "unexpected successes: \(unexpected)")
            #expect(checked == callers.count * routes.count)
            // the vault is untouched and the admin still reads the original value's envelope
            let after = try await h.call(.get, LatchRoutes.vaultItem(v.id, item.id), key: admin.apiKey).decode(ItemDetailResponse.self)
            #expect(after.fields.first?.value == item.fields.first?.value)
            #expect(try await verifyAuditChain(store) > 0)
        }
    }
}
