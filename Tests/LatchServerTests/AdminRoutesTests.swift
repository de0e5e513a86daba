import Foundation
import Hummingbird
import HummingbirdTesting
import LatchCrypto
import LatchDomain
import LatchServer
import LatchWire
import Testing

@Suite("Vault update and administration routes")
struct AdminRoutesTests {
    @Test("rename a vault with its next summary; stale or mismatched summaries are refused")
    func updateVault() async throws {
        try await withHarness { h in
            let admin = try await h.bootstrap()
            var (vault, _) = try await h.createVault(admin)
            #expect(try await h.putItem(admin, &vault, name: "a", fields: [("k", "v", true)]).status == .created)
            var s = vault.nextSummary { _ in }
            s.name = "renamed"
            let ok = try await h.call(.patch, LatchRoutes.updateVault(vault.id), key: admin.apiKey, body: UpdateVaultRequest(summaryCheckpoint: try signed(s, admin.key)))
            #expect(ok.status == .ok)
            #expect(try ok.decode(VaultResponse.self).vault.name == "renamed")
            let replay = try await h.call(.patch, LatchRoutes.updateVault(vault.id), key: admin.apiKey, body: UpdateVaultRequest(summaryCheckpoint: try signed(s, admin.key)))
            #expect(replay.status == .conflict && replay.code == "stale_version")
            var dropped = s
            dropped.version += 1
            dropped.items = []
            let drop = try await h.call(.patch, LatchRoutes.updateVault(vault.id), key: admin.apiKey, body: UpdateVaultRequest(summaryCheckpoint: try signed(dropped, admin.key)))
            #expect(drop.status == .badRequest && drop.code == "checkpoint_mismatch")
            var badClass = s
            badClass.version += 1
            badClass.dataClassification = "TOP_SECRET"
            let bc = try await h.call(.patch, LatchRoutes.updateVault(vault.id), key: admin.apiKey, body: UpdateVaultRequest(summaryCheckpoint: try signed(badClass, admin.key)))
            #expect(bc.status == .badRequest)
            let dup = try await h.createVault(admin, id: vault.id).1
            #expect(dup.status == .badRequest || dup.status == .conflict)
        }
    }

    @Test("agents, users and permissions listings; operator registers an agent's key")
    func administration() async throws {
        try await withHarness { h in
            let admin = try await h.bootstrap()
            let created = try await h.call(.post, LatchRoutes.agents, key: admin.apiKey, body: CreateAgentRequest(name: "deployer", permissions: ["machine.vault.all"]))
            #expect(created.status == .created)
            let agent = try created.decode(CreatePrincipalResponse.self)
            #expect(agent.permissions == ["machine.vault.read", "machine.vault.secret.read", "machine.vault.write"])
            #expect(agent.apiKey.hasPrefix(agent.accessKey + "."))
            let reg = try await h.call(.post, LatchRoutes.agentPublicKey(agent.principal.id), key: admin.apiKey, body: RegisterAgentKeyRequest(publicKey: Keys.pool[2].publicKey.pem))
            #expect(reg.status == .created)
            let again = try await h.call(.post, LatchRoutes.agentPublicKey(agent.principal.id), key: admin.apiKey, body: RegisterAgentKeyRequest(publicKey: Keys.pool[2].publicKey.pem))
            #expect(again.status == .ok)
            let other = try await h.call(.post, LatchRoutes.agentPublicKey(agent.principal.id), key: admin.apiKey, body: RegisterAgentKeyRequest(publicKey: Keys.pool[3].publicKey.pem))
            #expect(other.status == .conflict && other.code == "key_rotation_required")
            // a key already registered to someone else cannot be reused
            let stolen = try await h.call(.post, LatchRoutes.agents, key: admin.apiKey, body: CreateAgentRequest(name: "x", publicKey: Keys.pool[0].publicKey.pem))
            #expect(stolen.status == .conflict)
            let agents = try await h.call(.get, LatchRoutes.agents, key: admin.apiKey).decode(PrincipalListResponse.self)
            #expect(agents.principals.map(\.name) == ["deployer"] && agents.principals[0].activeKeyId == Keys.pool[2].publicKey.keyId)
            let one = try await h.call(.get, LatchRoutes.agents + "/\(agent.principal.id)", key: admin.apiKey)
            #expect(one.status == .ok)
            let users = try await h.call(.get, LatchRoutes.users, key: admin.apiKey).decode(PrincipalListResponse.self)
            #expect(users.principals.map(\.role) == ["TENANT_ADMIN"])
            // the agent's own key cannot create agents (no agent.write, not a manager)
            let byAgent = try await h.call(.post, LatchRoutes.agents, key: agent.apiKey, body: CreateAgentRequest(name: "sub"))
            #expect(byAgent.status == .forbidden && byAgent.code == "missing_permission")
            let (vault, _) = try await h.createVault(admin)
            #expect(try await h.grant(admin, vault: vault.id, [PermissionEntry(granteeType: "AGENT", granteeId: agent.principal.id, level: "WRITE")]).status == .ok)
            let perms = try await h.call(.get, LatchRoutes.permissions("vault", vault.id), key: admin.apiKey).decode(PermissionsResponse.self)
            #expect(perms.permissions.map(\.level) == ["WRITE"] && perms.pendingGrants.map(\.principalId) == [agent.principal.id])
            let badType = try await h.call(.post, LatchRoutes.setPermissions("FOLDER", vault.id), key: admin.apiKey, body: SetPermissionsRequest(permissions: []))
            #expect(badType.status == .badRequest)
            let badLevel = try await h.grant(admin, vault: vault.id, [PermissionEntry(granteeType: "AGENT", granteeId: agent.principal.id, level: "OWNER")])
            #expect(badLevel.status == .badRequest)
            let ghost = try await h.grant(admin, vault: vault.id, [PermissionEntry(granteeType: "AGENT", granteeId: UUID().uuidString.lowercased(), level: "READ")])
            #expect(ghost.status == .notFound)
        }
    }
}
