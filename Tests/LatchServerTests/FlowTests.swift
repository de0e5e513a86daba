import Foundation
import Hummingbird
import HummingbirdTesting
import LatchCrypto
import LatchDomain
import LatchServer
import LatchStoreSQLite
import LatchWire
import Testing

@Suite("Machine API flows")
struct FlowTests {
    @Test("operator and agent: bootstrap, vault, items, share, agent decrypts", arguments: ["memory", "sqlite"])
    func operatorAndAgent(storeKind: String) async throws {
        let store: any LatchStore = storeKind == "memory" ? MemoryStore() : try await SQLiteLatchStore.open(path: try tempDir() + "/latch.sqlite")
        try await withHarness(store: store) { h in
            let admin = try await h.bootstrap()
            // bootstrap token is single use
            let again = try await h.call(.post, LatchRoutes.bootstrap, body: BootstrapRequest(
                token: "lbt_x", publicKey: admin.key.publicKey.pem, organisationName: "a", tenantName: "b", userName: "c"))
            #expect(again.status == .conflict && again.code == "already_bootstrapped")

            let health = try await h.call(.get, LatchRoutes.healthz)
            #expect(health.status == .ok)

            let me = try await h.call(.get, LatchRoutes.me, key: admin.apiKey)
            #expect(me.status == .ok)
            let meBody = try me.decode(MeResponse.self)
            #expect(meBody.principal.role == "TENANT_ADMIN" && meBody.publicKey?.keyId == admin.key.publicKey.keyId)
            // Authorization: ApiKey header works too
            let viaAuth = try await h.call(.get, LatchRoutes.tenantContext, headers: [.authorization: "ApiKey \(admin.apiKey)"])
            #expect(viaAuth.status == .ok)
            #expect(try viaAuth.decode(TenantContextResponse.self).tenant.name == "prod")

            // same key again is idempotent; a different key is refused
            let same = try await h.call(.post, LatchRoutes.publicKey, key: admin.apiKey, body: RegisterPublicKeyRequest(publicKey: admin.key.publicKey.pem))
            #expect(same.status == .ok)
            let other = try await h.call(.post, LatchRoutes.publicKey, key: admin.apiKey, body: RegisterPublicKeyRequest(publicKey: Keys.pool[1].publicKey.pem))
            #expect(other.status == .conflict && other.code == "key_rotation_required")

            var (vault, created) = try await h.createVault(admin)
            #expect(created.status == .created, "\(String(decoding: created.data, as: UTF8.self))")
            let list = try await h.call(.get, LatchRoutes.vaults, key: admin.apiKey)
            #expect(try list.decode(VaultListResponse.self).vaults.map(\.id) == [vault.id])
            let alias = try await h.call(.get, "/api/v1/machine/vaults/\(vault.id)", key: admin.apiKey)
            #expect(alias.status == .ok)

            let r1 = try await h.putItem(admin, &vault, name: "stripe", fields: [("key", "sk_live_SECRET_1", true), ("note", "n", false)])
            #expect(r1.status == .created, "\(String(decoding: r1.data, as: UTF8.self))")
            let itemId = try r1.decode(ItemDetailResponse.self).id
            let items = try await h.call(.get, LatchRoutes.vaultItems(vault.id), key: admin.apiKey)
            let itemsBody = try items.decode(VaultItemsResponse.self)
            #expect(itemsBody.items.map(\.name) == ["stripe"])
            let summaryEnv = try JSONDecoder().decode(SignedEnvelope<VaultSummaryCheckpoint>.self, from: Data(itemsBody.summaryCheckpoint.utf8))
            try summaryEnv.verify(with: admin.key.publicKey)
            #expect(summaryEnv.checkpoint.version == 2)

            // update: change a value, drop a field, add one
            let r2 = try await h.putItem(admin, &vault, itemId: itemId, name: "stripe", fields: [("key", "sk_live_SECRET_2", true), ("extra", "x", false)])
            #expect(r2.status == .ok, "\(String(decoding: r2.data, as: UTF8.self))")
            let detail = try await h.call(.get, LatchRoutes.vaultItem(vault.id, itemId), key: admin.apiKey).decode(ItemDetailResponse.self)
            #expect(Set(detail.fields.map(\.name)) == ["key", "extra"])

            // stale: replaying the same versions fails
            var stale = vault
            stale.summary.version -= 1
            stale.details[itemId]?.version -= 1
            let r3 = try await h.putItem(admin, &stale, itemId: itemId, name: "stripe", fields: [("key", "old", true)])
            #expect(r3.status == .conflict && r3.code == "stale_version")

            // agent with a READ grant, its key registered, then shared by the admin
            let agent = try await h.createAgent(admin, name: "ci-runner", key: Keys.pool[2])
            let g = try await h.grant(admin, vault: vault.id, [
                PermissionEntry(granteeType: "USER", granteeId: admin.id, level: "ADMIN"),
                PermissionEntry(granteeType: "AGENT", granteeId: agent.id, level: "READ"),
            ])
            #expect(g.status == .ok, "\(String(decoding: g.data, as: UTF8.self))")
            #expect(try g.decode(PermissionsResponse.self).pendingGrants.map(\.principalId) == [agent.id])
            let pending = try await h.call(.get, LatchRoutes.pendingGrants, key: admin.apiKey).decode(PendingGrantsResponse.self)
            #expect(pending.pendingGrants.map(\.principalId) == [agent.id] && pending.pendingGrants[0].hasPublicKey)
            let sh = try await h.share(admin, vault, to: agent)
            #expect(sh.status == .created, "\(String(decoding: sh.data, as: UTF8.self))")
            let pending2 = try await h.call(.get, LatchRoutes.pendingGrants, key: admin.apiKey).decode(PendingGrantsResponse.self)
            #expect(pending2.pendingGrants.isEmpty)

            // the agent fetches its wrapped key, checks the statement, unwraps, decrypts the field
            let wk = try await h.call(.get, LatchRoutes.wrappedKey(vault.id), key: agent.apiKey).decode(WrappedKeysResponse.self)
            let mine = try #require(wk.wrappedKeys.first)
            let stEnv = try JSONDecoder().decode(SignedEnvelope<WrappedKeyStatement>.self, from: Data(mine.statement.utf8))
            try stEnv.verify(with: admin.key.publicKey)
            let wrappedBytes = try #require(Data(base64Encoded: mine.wrappedKey))
            try stEnv.checkpoint.checkMatches(wrappedKey: wrappedBytes, recipient: agent.key.publicKey)
            let dek = try agent.key.unwrap(wrappedBytes, version: mine.dekVersion)
            let keyField = try #require(detail.fields.first { $0.name == "key" })
            let fr = try await h.call(.get, LatchRoutes.field(vault.id, keyField.id), key: agent.apiKey)
            #expect(fr.status == .ok)
            let field = try fr.decode(FieldResponse.self)
            let plain = try FieldEnvelope(string: field.field.value).open(key: dek, context: EnvelopeContext(vaultId: vault.id, itemId: itemId, fieldId: keyField.id, dekVersion: 1))
            #expect(String(decoding: plain, as: UTF8.self) == "sk_live_SECRET_2")
            let env = try await h.call(.get, LatchRoutes.environmentFields(vault.id), key: agent.apiKey).decode(EnvironmentFieldsResponse.self)
            #expect(env.items.first?.fields.map(\.name) == ["key"])
            let pks = try await h.call(.get, LatchRoutes.vaultPublicKeys(vault.id), key: agent.apiKey).decode(PublicKeysResponse.self)
            #expect(Set(pks.publicKeys.map(\.keyId)) == [admin.key.publicKey.keyId, agent.key.publicKey.keyId])

            // a READ agent cannot write
            var agentView = vault
            let w = try await h.putItem(agent, &agentView, name: "evil", fields: [("k", "v", true)])
            #expect(w.status == .forbidden)

            // archive the item with a new summary, then the vault
            let archSummary = vault.nextSummary { $0.removeAll { $0.id == itemId } }
            let arch = try await h.call(.delete, LatchRoutes.vaultItem(vault.id, itemId), key: admin.apiKey,
                                        body: ArchiveItemRequest(summaryCheckpoint: try signed(archSummary, admin.key)))
            #expect(arch.status == .ok, "\(String(decoding: arch.data, as: UTF8.self))")
            let gone = try await h.call(.get, LatchRoutes.vaultItem(vault.id, itemId), key: admin.apiKey)
            #expect(gone.status == .notFound)
            let av = try await h.call(.delete, LatchRoutes.vault(vault.id), key: admin.apiKey)
            #expect(av.status == .ok)
            #expect(try await h.call(.get, LatchRoutes.vaults, key: admin.apiKey).decode(VaultListResponse.self).vaults.isEmpty)

            // the audit chain verifies and recorded the field read
            #expect(try await verifyAuditChain(h.store) > 10)
            let reads = try await h.store.auditEvents(AuditFilter(action: "field.read"))
            #expect(reads.contains { $0.principalId == agent.id && $0.outcome == "success" })
        }
        if let s = store as? SQLiteLatchStore { await s.close() }
    }

    @Test("checkpoint rules: bad signature, foreign signer, mismatched contents")
    func checkpointRules() async throws {
        try await withHarness { h in
            let admin = try await h.bootstrap()
            var (vault, _) = try await h.createVault(admin)
            // signed by a key that is not registered
            let r1 = try await h.putItem(admin, &vault, name: "a", fields: [("k", "v", true)], signer: Keys.pool[3])
            #expect(r1.status == .badRequest && r1.code == "unknown_signer")
            // tampered signature
            let id = UUID().uuidString.lowercased()
            let d = ItemDetailCheckpoint(vaultItemId: id, vaultId: vault.id, version: 1, name: "a", type: "LOGIN", websites: [], groupId: nil, fields: [])
            let s = vault.nextSummary { $0.append(.init(id: id, name: "a", type: "LOGIN", websites: [], groupId: nil, detailHash: d.hash)) }
            var env = try JSONSerialization.jsonObject(with: Data(try signed(d, admin.key).utf8)) as? [String: Any] ?? [:]
            env["signature"] = Data(repeating: 1, count: 256).base64EncodedString()
            let badSig = String(decoding: try JSONSerialization.data(withJSONObject: env), as: UTF8.self)
            let r2 = try await h.call(.post, LatchRoutes.vaultItems(vault.id), key: admin.apiKey,
                                      body: CreateItemRequest(detailCheckpoint: badSig, summaryCheckpoint: try signed(s, admin.key), fields: []))
            #expect(r2.status == .badRequest && r2.code == "bad_signature")
            // summary whose item entry disagrees with the detail
            var s2 = s
            s2.items[0].name = "b"
            let r3 = try await h.call(.post, LatchRoutes.vaultItems(vault.id), key: admin.apiKey,
                                      body: CreateItemRequest(detailCheckpoint: try signed(d, admin.key), summaryCheckpoint: try signed(s2, admin.key), fields: []))
            #expect(r3.status == .badRequest && r3.code == "checkpoint_mismatch")
            // envelope hash mismatch
            let fid = UUID().uuidString.lowercased()
            let e = try FieldEnvelope.seal(Data("v".utf8), key: vault.dek, context: EnvelopeContext(vaultId: vault.id, itemId: id, fieldId: fid, dekVersion: 1))
            let d4 = ItemDetailCheckpoint(vaultItemId: id, vaultId: vault.id, version: 1, name: "a", type: "LOGIN", websites: [], groupId: nil,
                                          fields: [.init(id: fid, name: "k", type: "SECRET", order: 0, isEnvironmentVariable: true, envelopeHash: String(repeating: "0", count: 64))])
            let s4 = vault.nextSummary { $0.append(.init(id: id, name: "a", type: "LOGIN", websites: [], groupId: nil, detailHash: d4.hash)) }
            let r4 = try await h.call(.post, LatchRoutes.vaultItems(vault.id), key: admin.apiKey,
                                      body: CreateItemRequest(detailCheckpoint: try signed(d4, admin.key), summaryCheckpoint: try signed(s4, admin.key),
                                                              fields: [FieldValueInput(id: fid, value: e.string)]))
            #expect(r4.status == .badRequest && r4.code == "checkpoint_mismatch")
            // nothing was half-written
            let items = try await h.call(.get, LatchRoutes.vaultItems(vault.id), key: admin.apiKey).decode(VaultItemsResponse.self)
            #expect(items.items.isEmpty)
            let ok = try await h.putItem(admin, &vault, name: "a", fields: [("k", "v", true)])
            #expect(ok.status == .created)
        }
    }
}
