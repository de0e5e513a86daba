import Foundation
import Hummingbird
import HummingbirdTesting
import LatchCrypto
import LatchDomain
import LatchServer
import LatchWire
import Testing

@Suite("API keys: issue, list, revoke; USER, AGENT, TENANT and ORG scopes")
struct APIKeyTests {
    func issue(_ h: Harness, _ by: String, _ req: CreateAPIKeyRequest) async throws -> HTTPResult {
        try await h.call(.post, LatchRoutes.apiKeys, key: by, body: req)
    }
    func me(_ h: Harness, _ key: String) async throws -> HTTPResult { try await h.call(.get, LatchRoutes.me, key: key) }

    @Test("a user's second key: shown once, listed without secrets, the first revoked at once; the last admin key is kept")
    func userKeys() async throws {
        let store = MemoryStore()
        try await withHarness(store: store) { h in
            let admin = try await h.bootstrap()
            // the tenant's only TENANT_ADMIN USER key cannot be revoked
            let firstAccess = String(admin.apiKey.split(separator: ".")[0])
            let lone = try await h.call(.delete, LatchRoutes.apiKey(firstAccess), key: admin.apiKey)
            #expect(lone.status == .conflict && lone.code == "conflict", "\(String(decoding: lone.data, as: UTF8.self))")

            let r = try await issue(h, admin.apiKey, CreateAPIKeyRequest(permissions: ["machine.vault.read", "machine.agent.read"]))
            #expect(r.status == .created, "\(String(decoding: r.data, as: UTF8.self))")
            let second = try r.decode(APIKeyInfo.self)
            let secondKey = try #require(second.apiKey)
            #expect(second.scope == "USER" && second.principalId == admin.id && !second.revoked)
            #expect(second.permissions == ["machine.agent.read", "machine.vault.read"])
            #expect(secondKey.hasPrefix(second.accessKey + "."))
            let meSecond = try await me(h, secondKey).decode(MeResponse.self)
            #expect(meSecond.scope == "USER" && meSecond.principal.id == admin.id && meSecond.permissions == second.permissions)

            let listed = try await h.call(.get, LatchRoutes.apiKeys, key: admin.apiKey)
            #expect(listed.status == .ok)
            let text = String(decoding: listed.data, as: UTF8.self)
            let keys = try listed.decode(APIKeyListResponse.self).apiKeys
            #expect(Set(keys.map(\.accessKey)) == [firstAccess, second.accessKey])
            #expect(keys.allSatisfy { $0.apiKey == nil })
            let secret = String(secondKey.split(separator: ".")[1])
            #expect(!text.contains(secret) && !text.contains(Hashing.sha256Hex(secret)) && !text.contains("secretHash"))

            // any key of the user revokes another of its keys
            let revoke = try await h.call(.delete, LatchRoutes.apiKey(firstAccess), key: secondKey)
            #expect(revoke.status == .ok, "\(String(decoding: revoke.data, as: UTF8.self))")
            #expect(try revoke.decode(APIKeyInfo.self).revoked)
            #expect(try await me(h, admin.apiKey).status == .unauthorized)
            #expect(try await me(h, secondKey).status == .ok)
            let again = try await h.call(.delete, LatchRoutes.apiKey(firstAccess), key: secondKey)
            #expect(again.status == .ok)
            #expect(try again.decode(APIKeyInfo.self).revoked)
            // and now it is the last one
            let last = try await h.call(.delete, LatchRoutes.apiKey(second.accessKey), key: secondKey)
            #expect(last.status == .conflict)
            // a key cannot hand out what it lacks
            let escalate = try await issue(h, secondKey, CreateAPIKeyRequest(permissions: ["machine.vault.secret.read"]))
            #expect(escalate.status == .forbidden, "\(String(decoding: escalate.data, as: UTF8.self))")

            let events = try await store.auditEvents(AuditFilter(limit: 1000))
            #expect(events.contains { $0.action == "apikey.create" && $0.outcome == "success" && ($0.detail ?? "").contains(second.accessKey) })
            #expect(events.contains { $0.action == "apikey.revoke" && $0.outcome == "success" && $0.assetId == firstAccess })
            #expect(events.contains { $0.action == "apikey.revoke" && $0.outcome == "conflict" })
            #expect(try await verifyAuditChain(store) > 0)
        }
    }

    @Test("agent keys: managers issue and revoke them; an agent lists and revokes its own but issues none")
    func agentKeys() async throws {
        try await withHarness { h in
            let admin = try await h.bootstrap()
            let agent = try await h.createAgent(admin, name: "ci", key: Keys.pool[5])
            let other = try await h.createAgent(admin, name: "other", key: Keys.pool[6])

            let r = try await issue(h, admin.apiKey, CreateAPIKeyRequest(principalId: agent.id))
            #expect(r.status == .created, "\(String(decoding: r.data, as: UTF8.self))")
            let k2 = try r.decode(APIKeyInfo.self)
            #expect(k2.scope == "AGENT" && k2.principalId == agent.id && k2.permissions == MachinePermission.agentDefault.sorted())
            let k2Key = try #require(k2.apiKey)

            let selfIssue = try await issue(h, agent.apiKey, CreateAPIKeyRequest())
            #expect(selfIssue.status == .forbidden)
            let otherIssue = try await issue(h, agent.apiKey, CreateAPIKeyRequest(principalId: other.id))
            #expect(otherIssue.status == .forbidden)
            let wrongScope = try await issue(h, admin.apiKey, CreateAPIKeyRequest(principalId: agent.id, scope: "USER"))
            #expect(wrongScope.status == .badRequest && wrongScope.code == "invalid_request")

            let own = try await h.call(.get, LatchRoutes.apiKeys, key: agent.apiKey)
            #expect(own.status == .ok)
            #expect(try own.decode(APIKeyListResponse.self).apiKeys.count == 2)
            let snoop = try await h.call(.get, LatchRoutes.apiKeys + "?principalId=\(other.id)", key: agent.apiKey)
            #expect(snoop.status == .forbidden)
            let adminList = try await h.call(.get, LatchRoutes.apiKeys + "?principalId=\(admin.id)", key: agent.apiKey)
            #expect(adminList.status == .forbidden)

            // an agent revokes its own leaked key; not another's
            let otherAccess = String(other.apiKey.split(separator: ".")[0])
            #expect(try await h.call(.delete, LatchRoutes.apiKey(otherAccess), key: agent.apiKey).status == .forbidden)
            #expect(try await h.call(.delete, LatchRoutes.apiKey(k2.accessKey), key: agent.apiKey).status == .ok)
            #expect(try await me(h, k2Key).status == .unauthorized)
            #expect(try await me(h, agent.apiKey).status == .ok)
            // the whole tenant's keys: the admin only
            let all = try await h.call(.get, LatchRoutes.apiKeys + "?all=true", key: admin.apiKey)
            #expect(all.status == .ok)
            let everyKey = try all.decode(APIKeyListResponse.self).apiKeys
            #expect(Set(everyKey.map(\.principalId)) == [admin.id, agent.id, other.id] && everyKey.count == 4)
            #expect(try await h.call(.get, LatchRoutes.apiKeys + "?all=true", key: agent.apiKey).status == .forbidden)
            #expect(try await h.call(.get, LatchRoutes.apiKeys + "?all=maybe", key: admin.apiKey).status == .badRequest)
            #expect(try await h.call(.get, LatchRoutes.apiKeys + "?all=true&principalId=\(agent.id)", key: admin.apiKey).status == .badRequest)
            // the admin revokes the other agent's key
            #expect(try await h.call(.delete, LatchRoutes.apiKey(otherAccess), key: admin.apiKey).status == .ok)
            #expect(try await me(h, other.apiKey).status == .unauthorized)
        }
    }

    @Test("TENANT keys administer the tenant but never act as the admin's cryptographic identity")
    func tenantAndOrgKeys() async throws {
        try await withHarness { h in
            let admin = try await h.bootstrap()
            var (vault, _) = try await h.createVault(admin)
            let item = try await h.putItem(admin, &vault, name: "db", fields: [("password", "pw", true)]).decode(ItemDetailResponse.self)
            let fieldId = try #require(item.fields.first?.id)

            let r = try await issue(h, admin.apiKey, CreateAPIKeyRequest(scope: "TENANT"))
            #expect(r.status == .created, "\(String(decoding: r.data, as: UTF8.self))")
            let t = try r.decode(APIKeyInfo.self)
            #expect(t.scope == "TENANT" && t.permissions == LatchService.tenantKeyPermissions)
            let tKey = try #require(t.apiKey)

            // administration works
            #expect(try await h.call(.get, LatchRoutes.agents, key: tKey).status == .ok)
            #expect(try await h.call(.get, LatchRoutes.auditEvents, key: tKey).status == .ok)
            // it hands out only what it holds: an agent that reads secrets needs a USER key's maker
            let reader = try await h.call(.post, LatchRoutes.agents, key: tKey, body: CreateAgentRequest(name: "reader"))
            #expect(reader.status == .forbidden)
            let made = try await h.call(.post, LatchRoutes.agents, key: tKey, body: CreateAgentRequest(name: "deployer", permissions: ["machine.vault.read"]))
            #expect(made.status == .created)
            let agentId = try made.decode(CreatePrincipalResponse.self).principal.id
            #expect(try await issue(h, tKey, CreateAPIKeyRequest(principalId: agentId)).status == .forbidden)
            #expect(try await issue(h, tKey, CreateAPIKeyRequest(principalId: agentId, permissions: ["machine.vault.read"])).status == .created)
            // the admin's identity does not come with it
            let field = try await h.call(.get, LatchRoutes.field(vault.id, fieldId), key: tKey)
            #expect(field.status == .forbidden && field.code == "missing_permission")
            let reg = try await h.call(.post, LatchRoutes.publicKey, key: tKey, body: RegisterPublicKeyRequest(publicKey: Keys.pool[3].publicKey.pem))
            #expect(reg.status == .forbidden, "\(String(decoding: reg.data, as: UTF8.self))")
            #expect(try await issue(h, tKey, CreateAPIKeyRequest()).status == .forbidden)
            #expect(try await issue(h, tKey, CreateAPIKeyRequest(scope: "TENANT")).status == .forbidden)
            let adminAccess = String(admin.apiKey.split(separator: ".")[0])
            #expect(try await h.call(.delete, LatchRoutes.apiKey(adminAccess), key: tKey).status == .forbidden)

            // what a TENANT key may not be, or belong to
            let secretRead = try await issue(h, admin.apiKey, CreateAPIKeyRequest(scope: "TENANT", permissions: ["machine.vault.secret.read"]))
            #expect(secretRead.status == .badRequest && secretRead.code == "invalid_request")
            let mu = try await h.call(.post, LatchRoutes.users, key: admin.apiKey, body: CreateUserRequest(name: "bob"))
            let bob = try mu.decode(CreatePrincipalResponse.self)
            #expect(try await issue(h, admin.apiKey, CreateAPIKeyRequest(principalId: bob.principal.id, scope: "TENANT")).status == .badRequest)
            #expect(try await issue(h, bob.apiKey, CreateAPIKeyRequest(scope: "TENANT")).status == .badRequest)
            #expect(try await issue(h, bob.apiKey, CreateAPIKeyRequest(principalId: admin.id)).status == .forbidden)
            // a user made with a TENANT key gets at most that key's permissions
            let viaTenant = try await h.call(.post, LatchRoutes.users, key: tKey, body: CreateUserRequest(name: "carol"))
            #expect(viaTenant.status == .created)
            #expect(try viaTenant.decode(CreatePrincipalResponse.self).permissions == LatchService.tenantKeyPermissions)
            let grab = try await h.call(.post, LatchRoutes.users, key: tKey, body: CreateUserRequest(name: "dave", permissions: ["machine.vault.secret.read"]))
            #expect(grab.status == .forbidden)
            // nor can it make a TENANT_ADMIN (whose USER key could issue TENANT keys); the admin's USER key can
            let raise = try await h.call(.post, LatchRoutes.users, key: tKey, body: CreateUserRequest(name: "erin", role: "TENANT_ADMIN"))
            #expect(raise.status == .forbidden && raise.code == "forbidden", "\(String(decoding: raise.data, as: UTF8.self))")
            #expect(try await h.call(.post, LatchRoutes.users, key: admin.apiKey, body: CreateUserRequest(name: "erin", role: "TENANT_ADMIN")).status == .created)
            #expect(try await h.call(.get, LatchRoutes.apiKeys + "?principalId=\(admin.id)", key: bob.apiKey).status == .forbidden)
            // the admin manages bob's keys
            #expect(try await issue(h, admin.apiKey, CreateAPIKeyRequest(principalId: bob.principal.id)).status == .created)

            let bogus = try await issue(h, admin.apiKey, CreateAPIKeyRequest(scope: "ROOT"))
            #expect(bogus.status == .badRequest && bogus.code == "invalid_request")

            // a TENANT key revokes itself
            #expect(try await h.call(.delete, LatchRoutes.apiKey(t.accessKey), key: tKey).status == .ok)
            #expect(try await me(h, tKey).status == .unauthorized)
        }
    }

    @Test("ORG keys: an organisation owner's, no machine permission; they list and add tenants and touch nothing inside one")
    func orgKeys() async throws {
        let store = MemoryStore()
        let clock = TestClock()
        try await withHarness(store: store, clock: clock) { h in
            let admin = try await h.bootstrap()
            let (vault, _) = try await h.createVault(admin)
            let r = try await issue(h, admin.apiKey, CreateAPIKeyRequest(scope: "ORG"))
            #expect(r.status == .created, "\(String(decoding: r.data, as: UTF8.self))")
            let o = try r.decode(APIKeyInfo.self)
            #expect(o.scope == "ORG" && o.permissions.isEmpty && o.principalId == admin.id)
            let orgKey = try #require(o.apiKey)
            #expect(try await issue(h, admin.apiKey, CreateAPIKeyRequest(scope: "ORG", permissions: ["machine.vault.read"])).status == .badRequest)
            #expect(try await h.call(.get, LatchRoutes.organisation, key: admin.apiKey).status == .forbidden)   // a USER key

            let view = try await h.call(.get, LatchRoutes.organisation, key: orgKey)
            #expect(view.status == .ok, "\(String(decoding: view.data, as: UTF8.self))")
            let before = try view.decode(OrganisationResponse.self)
            #expect(before.organisation.name == "Acme" && before.tenants.map(\.name) == ["prod"])

            clock.advance(1)
            let made = try await h.call(.post, LatchRoutes.organisationTenants, key: orgKey,
                                        body: CreateTenantRequest(name: "staging", adminName: "sam", adminPublicKey: Keys.pool[2].publicKey.pem))
            #expect(made.status == .created, "\(String(decoding: made.data, as: UTF8.self))")
            let sam = try made.decode(BootstrapResponse.self)
            #expect(sam.organisationId == before.organisation.id && sam.keyId == Keys.pool[2].publicKey.keyId)
            let samMe = try await me(h, sam.apiKey).decode(MeResponse.self)
            #expect(samMe.principal.tenantId == sam.tenantId && samMe.principal.role == "TENANT_ADMIN")
            #expect(try await h.call(.get, LatchRoutes.vaults, key: sam.apiKey).decode(VaultListResponse.self).vaults.isEmpty)
            #expect(try await h.call(.get, LatchRoutes.vault(vault.id), key: sam.apiKey).status == .notFound)
            let after = try await h.call(.get, LatchRoutes.organisation, key: orgKey).decode(OrganisationResponse.self)
            #expect(after.tenants.map(\.name) == ["prod", "staging"])
            let again = try await h.call(.post, LatchRoutes.organisationTenants, key: orgKey,
                                         body: CreateTenantRequest(name: "staging", adminName: "x", adminPublicKey: Keys.pool[3].publicKey.pem))
            #expect(again.status == .conflict)
            let badKey = try await h.call(.post, LatchRoutes.organisationTenants, key: orgKey,
                                          body: CreateTenantRequest(name: "qa", adminName: "x", adminPublicKey: "not a key"))
            #expect(badKey.status == .badRequest && badKey.code == "invalid_public_key")

            // owners only: the new tenant's admin is not one, nor a member of the founding tenant
            #expect(try await issue(h, sam.apiKey, CreateAPIKeyRequest(scope: "ORG")).status == .badRequest)
            #expect(try await h.call(.get, LatchRoutes.organisation, key: sam.apiKey).status == .forbidden)
            let bob = try await h.call(.post, LatchRoutes.users, key: admin.apiKey, body: CreateUserRequest(name: "bob")).decode(CreatePrincipalResponse.self)
            #expect(try await issue(h, bob.apiKey, CreateAPIKeyRequest(scope: "ORG")).status == .badRequest)
            #expect(try await issue(h, admin.apiKey, CreateAPIKeyRequest(principalId: bob.principal.id, scope: "ORG")).status == .badRequest)

            // nothing inside a tenant, its own included
            for (path, what) in [(LatchRoutes.vaults, "vaults"), (LatchRoutes.vault(vault.id), "vault"), (LatchRoutes.agents, "agents"),
                                 (LatchRoutes.auditEvents, "audit"), (LatchRoutes.sync, "sync")] {
                let res = try await h.call(.get, path, key: orgKey)
                #expect(res.status == .forbidden, "ORG key on \(what): \(res.status)")
            }
            #expect(try await h.call(.post, LatchRoutes.publicKey, key: orgKey, body: RegisterPublicKeyRequest(publicKey: Keys.pool[4].publicKey.pem)).status == .forbidden)
            #expect(try await issue(h, orgKey, CreateAPIKeyRequest()).status == .forbidden)
            #expect(try await issue(h, orgKey, CreateAPIKeyRequest(scope: "ORG")).status == .forbidden)
            let adminAccess = String(admin.apiKey.split(separator: ".")[0])
            #expect(try await h.call(.delete, LatchRoutes.apiKey(adminAccess), key: orgKey).status == .forbidden)

            let events = try await store.auditEvents(AuditFilter(limit: 1000))
            #expect(events.contains { $0.action == "org.tenant.create" && $0.outcome == "success" && $0.accessKey == o.accessKey })
            #expect(events.contains { $0.action == "tenant.create" && $0.tenantId == sam.tenantId })
            #expect(try await verifyAuditChain(store) > 0)
            // an owner who stops being one loses the key's reach
            #expect(try await h.call(.delete, LatchRoutes.apiKey(o.accessKey), key: orgKey).status == .ok)
            #expect(try await h.call(.get, LatchRoutes.organisation, key: orgKey).status == .unauthorized)
        }
    }

    @Test("a key with expiresAt stops at that moment, cached or not, and does not count as the last admin key after it")
    func expiry() async throws {
        let clock = TestClock()
        try await withHarness(clock: clock) { h in
            let admin = try await h.bootstrap()
            let past = try await issue(h, admin.apiKey, CreateAPIKeyRequest(expiresAt: clock.now()))
            #expect(past.status == .badRequest && past.code == "invalid_request")
            let r = try await issue(h, admin.apiKey, CreateAPIKeyRequest(expiresAt: clock.now().addingTimeInterval(2)))
            #expect(r.status == .created, "\(String(decoding: r.data, as: UTF8.self))")
            let k = try r.decode(APIKeyInfo.self)
            let key = try #require(k.apiKey)
            #expect(k.expiresAt == clock.now().addingTimeInterval(2))
            let first = try await me(h, key)                     // now in the authentication cache (5 s)
            #expect(first.status == .ok)
            #expect(try first.decode(MeResponse.self).expiresAt == k.expiresAt)
            #expect(try await me(h, admin.apiKey).decode(MeResponse.self).expiresAt == nil)
            clock.advance(1.5)
            #expect(try await me(h, key).status == .ok)
            clock.advance(1)
            #expect(try await me(h, key).status == .unauthorized)
            let listed = try await h.call(.get, LatchRoutes.apiKeys, key: admin.apiKey).decode(APIKeyListResponse.self)
            #expect(listed.apiKeys.first { $0.accessKey == k.accessKey }?.expiresAt == k.expiresAt)
            // an expired key is no way back in: the admin's only live USER key stays
            let firstAccess = String(admin.apiKey.split(separator: ".")[0])
            #expect(try await h.call(.delete, LatchRoutes.apiKey(firstAccess), key: admin.apiKey).status == .conflict)
        }
    }

    @Test("bad ids, unknown keys and another tenant's keys")
    func badInput() async throws {
        let store = MemoryStore()
        try await withHarness(store: store) { h in
            let admin = try await h.bootstrap()
            let orgId = try await h.call(.get, LatchRoutes.tenantContext, key: admin.apiKey).decode(TenantContextResponse.self).organisation.id
            let foreign = try await LatchService(store: store).createTenant(organisationId: orgId, tenantName: "other", adminName: "eve",
                                                                            adminPublicKeyPEM: Keys.pool[1].publicKey.pem)
            let badId = try await issue(h, admin.apiKey, CreateAPIKeyRequest(principalId: "nope"))
            #expect(badId.status == .badRequest && badId.code == "invalid_id")
            #expect(try await issue(h, admin.apiKey, CreateAPIKeyRequest(principalId: foreign.user.id)).status == .notFound)
            #expect(try await h.call(.get, LatchRoutes.apiKeys + "?principalId=\(foreign.user.id)", key: admin.apiKey).status == .notFound)
            #expect(try await h.call(.delete, LatchRoutes.apiKey(foreign.apiKey.record.accessKey), key: admin.apiKey).status == .notFound)
            #expect(try await h.call(.delete, LatchRoutes.apiKey("lk_0000"), key: admin.apiKey).status == .notFound)
            let unknownPerm = try await issue(h, admin.apiKey, CreateAPIKeyRequest(permissions: ["machine.root"]))
            #expect(unknownPerm.status == .badRequest)
            let none = try await issue(h, admin.apiKey, CreateAPIKeyRequest(permissions: []))
            #expect(none.status == .badRequest)
            let wrongType = try await h.call(.post, LatchRoutes.apiKeys, key: admin.apiKey, json: Data(#"{"scope":7}"#.utf8))
            #expect(wrongType.status == .badRequest)
            // the foreign admin's key still works: nothing was touched
            #expect(try await me(h, foreign.apiKey.apiKey).status == .ok)
        }
    }
}
