import Foundation
import Hummingbird
import LatchCrypto
import LatchDomain
import LatchStoreSQLite
import LatchWire
import Testing

/// The vault's signed writer set (issue 5) through the machine API: stored as a chain, each
/// link checked as a client checks it, logged, and served with the signer directory.
@Suite("Vault writer sets (server)")
struct WritersTests {
    func text(_ r: HTTPResult) -> String { String(decoding: r.data, as: UTF8.self) }

    func post(_ h: Harness, _ p: Party, _ vaultId: String, _ st: VaultWritersStatement, signer: PrincipalPrivateKey? = nil) async throws -> HTTPResult {
        try await h.call(.post, LatchRoutes.vaultWriters(vaultId), key: p.apiKey,
                         body: UpdateWritersRequest(statement: try signed(st, signer ?? p.key)))
    }

    func directory(_ h: Harness, _ p: Party, _ vaultId: String) async throws -> PublicKeysResponse {
        try await h.call(.get, LatchRoutes.vaultPublicKeys(vaultId), key: p.apiKey).decode(PublicKeysResponse.self)
    }

    @Test("an ADMIN signs the chain; each version is logged and served with its signer's key", arguments: ["memory", "sqlite"])
    func chain(storeKind: String) async throws {
        let store: any LatchStore = storeKind == "memory" ? MemoryStore() : try await SQLiteLatchStore.open(path: try tempDir() + "/latch.sqlite")
        try await withHarness(store: store) { h in
            let admin = try await h.bootstrap()
            let (v, created) = try await h.createVault(admin)
            #expect(created.status == .created)
            let agent = try await h.createAgent(admin, name: "writer", key: Keys.pool[2])
            #expect(try await h.grant(admin, vault: v.id, [PermissionEntry(granteeType: "USER", granteeId: admin.id, level: "ADMIN"),
                                                          PermissionEntry(granteeType: "AGENT", granteeId: agent.id, level: "WRITE")]).status == .ok)

            // A vault made without one (as before writer sets) gets its first version from an ADMIN.
            let v1 = VaultWritersStatement.genesis(vaultId: v.id, creatorId: admin.id)
            let r1 = try await post(h, admin, v.id, v1)
            #expect(r1.status == .ok, "\(text(r1))")
            let v2 = v1.setting(agent.id, to: .write)
            let r2 = try await post(h, admin, v.id, v2)
            #expect(r2.status == .ok, "\(text(r2))")

            let dir = try await directory(h, agent, v.id)
            let links = try #require(dir.writers)
            #expect(links.count == 2)
            let parsed = try links.map { try JSONDecoder().decode(SignedEnvelope<VaultWritersStatement>.self, from: Data($0.statement.utf8)) }
            #expect(parsed.map(\.checkpoint) == [v1, v2])
            for (link, env) in zip(links, parsed) {
                #expect(link.signerId == admin.id && link.signerPublicKey == admin.key.publicKey.pem)
                try env.verify(with: admin.key.publicKey)
                let keyLeaf = try await h.store.read { tx in try await tx.logLeaf(link.signerKeyLogIndex ?? -1) }
                #expect(keyLeaf == LogLeaf.publicKey(tenantId: try #require(try await h.store.read { tx in try await tx.principal(admin.id) }).tenantId,
                                                     principalId: admin.id, keyId: admin.key.publicKey.keyId))
            }
            let (leaf, tenantId) = try await h.store.read { tx in
                (try await tx.logLeaf(dir.writersLogIndex ?? -1), try await tx.vault(v.id)?.tenantId ?? "")
            }
            #expect(leaf == LogLeaf.checkpoint(.vaultWriters, tenantId: tenantId, subjectId: v.id, envelope: links[1].statement))
        }
        if let s = store as? SQLiteLatchStore { await s.close() }
    }

    @Test("refusals: not an ADMIN, stale or broken link, someone else's key, unknown principal")
    func refusals() async throws {
        try await withHarness { h in
            let admin = try await h.bootstrap()
            let (v, _) = try await h.createVault(admin)
            let reader = try await h.createAgent(admin, name: "reader", key: Keys.pool[2])
            #expect(try await h.grant(admin, vault: v.id, [PermissionEntry(granteeType: "USER", granteeId: admin.id, level: "ADMIN"),
                                                          PermissionEntry(granteeType: "AGENT", granteeId: reader.id, level: "READ")]).status == .ok)
            let v1 = VaultWritersStatement.genesis(vaultId: v.id, creatorId: admin.id)
            #expect(try await post(h, admin, v.id, v1).status == .ok)

            // the reader: not ADMIN on the vault here (and not in the signed set)
            let selfMade = try await post(h, reader, v.id, v1.setting(reader.id, to: .admin))
            #expect(selfMade.status == .forbidden, "\(text(selfMade))")
            // the same version again, and a link whose hash does not match
            let again = try await post(h, admin, v.id, v1)
            #expect(again.status == .conflict && text(again).contains("does not follow"), "\(text(again))")
            var broken = v1.setting(reader.id, to: .write)
            broken.previousHash = String(repeating: "0", count: 64)
            let b = try await post(h, admin, v.id, broken)
            #expect(b.status == .conflict, "\(text(b))")
            // signed with a key that is not the caller's
            let foreign = try await post(h, admin, v.id, v1.setting(reader.id, to: .write), signer: reader.key)
            #expect(foreign.status != .ok && text(foreign).contains("another principal's key"), "\(text(foreign))")
            // a principal that does not exist
            let ghost = try await post(h, admin, v.id, v1.setting("no-such-principal", to: .write))
            #expect(ghost.status == .notFound, "\(text(ghost))")
            // another vault's statement
            let (other, _) = try await h.createVault(admin, name: "other")
            let cross = try await post(h, admin, v.id, VaultWritersStatement.genesis(vaultId: other.id, creatorId: admin.id).setting(reader.id, to: .write))
            #expect(cross.status != .ok && text(cross).contains("is for vault"), "\(text(cross))")
            // nothing of that was stored
            #expect(try await directory(h, admin, v.id).writers?.count == 1)

            // A tenant admin that is ADMIN on the vault here but not in the signed set cannot sign.
            let ops = try await h.createAgent(admin, name: "ops", key: Keys.pool[3], permissions: ["machine.vault.read", "machine.vault.write"])
            #expect(try await h.grant(admin, vault: v.id, [PermissionEntry(granteeType: "USER", granteeId: admin.id, level: "ADMIN"),
                                                          PermissionEntry(granteeType: "AGENT", granteeId: ops.id, level: "ADMIN")]).status == .ok)
            let usurp = try await post(h, ops, v.id, v1.setting(ops.id, to: .admin))
            #expect(usurp.status == .forbidden && text(usurp).contains("writer set v1"), "\(text(usurp))")
        }
    }

    @Test("a write from someone the newest signed writer set does not list is refused, whatever the grants say", arguments: ["memory", "sqlite"])
    func writesNeedTheSignedSet(storeKind: String) async throws {
        let store: any LatchStore = storeKind == "memory" ? MemoryStore() : try await SQLiteLatchStore.open(path: try tempDir() + "/latch.sqlite")
        try await withHarness(store: store) { h in
            let admin = try await h.bootstrap()
            var (v, _) = try await h.createVault(admin)
            let member = try await h.createAgent(admin, name: "ci", key: Keys.pool[2], permissions: ["machine.vault.read", "machine.vault.write"])
            // WRITE through a group: the server's grants allow the write, the signed set does not list the member.
            let g = try await h.call(.post, LatchRoutes.groups, key: admin.apiKey, body: CreateGroupRequest(name: "deployers")).decode(GroupInfo.self)
            #expect(try await h.call(.put, LatchRoutes.groupMembers(g.id), key: admin.apiKey, body: SetGroupMembersRequest(members: [member.id])).status == .ok)
            #expect(try await h.grant(admin, vault: v.id, [PermissionEntry(granteeType: "USER", granteeId: admin.id, level: "ADMIN"),
                                                          PermissionEntry(granteeType: "GROUP", granteeId: g.id, level: "WRITE")]).status == .ok)
            #expect(try await h.share(admin, v, to: member).status == .created)
            let v1 = VaultWritersStatement.genesis(vaultId: v.id, creatorId: admin.id)
            #expect(try await post(h, admin, v.id, v1).status == .ok)
            #expect(try await h.putItem(admin, &v, name: "stripe", fields: [("key", "sk_1", true)]).status == .created)
            let itemId = try #require(v.summary.items.first?.id)

            let vaultId = v.id
            func snapshot() async throws -> (Int, [String]) {
                try await h.store.read { tx in
                    (try #require(try await tx.vault(vaultId)).summaryVersion, try await tx.items(vaultId: vaultId).map(\.detailCheckpoint).sorted())
                }
            }
            let before = try await snapshot()
            var mine = v
            let create = try await h.putItem(member, &mine, name: "new", fields: [("k", "x", true)])
            let update = try await h.putItem(member, &mine, itemId: itemId, name: "stripe", fields: [("key", "sk_2", true)])
            let summary = try await h.call(.patch, LatchRoutes.updateVault(v.id), key: member.apiKey,
                                           body: UpdateVaultRequest(summaryCheckpoint: try signed(v.nextSummary { _ in }, member.key)))
            for (name, r) in [("create", create), ("update", update), ("summary", summary)] {
                #expect(r.status == .forbidden && text(r).contains("signed writer set v1"), "\(name): \(r.status) \(text(r))")
            }
            #expect(try await snapshot() == before, "a refused write changed the store")

            // Once an ADMIN of the set signs the member in, the same write goes through.
            #expect(try await post(h, admin, v.id, v1.setting(member.id, to: .write)).status == .ok)
            mine = v
            let accepted = try await h.putItem(member, &mine, itemId: itemId, name: "stripe", fields: [("key", "sk_2", true)])
            #expect(accepted.status == .ok, "\(text(accepted))")
        }
        if let s = store as? SQLiteLatchStore { await s.close() }
    }
}
