import Foundation
import Hummingbird
import LatchCrypto
import LatchDomain
import LatchStoreSQLite
import LatchWire
import Testing

/// Key rotation (issue 5) through the machine API: continuity signature, complete re-wrap
/// batch, all or nothing.
@Suite("Key rotation (server)")
struct KeyRotationTests {
    /// An admin with three vaults, an agent with READ on the first two (shared), and one item in
    /// the first vault.
    struct World {
        var admin: Party
        var agent: Party
        var v1: VaultModel
        var v2: VaultModel
        var v3: VaultModel
        var itemId: String
        var fieldId: String
    }

    func world(_ h: Harness) async throws -> World {
        let admin = try await h.bootstrap()
        var (v1, _) = try await h.createVault(admin, name: "payments")
        let (v2, _) = try await h.createVault(admin, name: "deploy")
        let (v3, _) = try await h.createVault(admin, name: "private")
        let r = try await h.putItem(admin, &v1, name: "stripe", fields: [("key", "sk_live_ROTATION_TEST", true)])
        #expect(r.status == .created)
        let item = try r.decode(ItemDetailResponse.self)
        let agent = try await h.createAgent(admin, name: "runner", key: Keys.pool[2])
        for v in [v1, v2] {
            let g = try await h.grant(admin, vault: v.id, [
                PermissionEntry(granteeType: "USER", granteeId: admin.id, level: "ADMIN"),
                PermissionEntry(granteeType: "AGENT", granteeId: agent.id, level: "READ"),
            ])
            #expect(g.status == .ok)
            #expect(try await h.share(admin, v, to: agent).status == .created)
        }
        return World(admin: admin, agent: agent, v1: v1, v2: v2, v3: v3, itemId: item.id, fieldId: try #require(item.fields.first).id)
    }

    /// A rotation request; every part can be spoiled by the caller.
    func request(_ p: Party, to new: PrincipalPrivateKey, vaults: [VaultModel], statement: KeyRotationStatement? = nil,
                 statementSigner: PrincipalPrivateKey? = nil, wrapSigner: PrincipalPrivateKey? = nil,
                 dekVersion: Int? = nil) throws -> RegisterPublicKeyRequest {
        let st = statement ?? KeyRotationStatement(principalId: p.id, previousKeyId: p.key.publicKey.keyId, newKeyId: new.publicKey.keyId)
        let wraps = try vaults.map { v -> WrappedKeyInput in
            let wrapped = try new.publicKey.wrap(v.dek)
            let version = dekVersion ?? v.dek.version
            let ws = WrappedKeyStatement(vaultId: v.id, dekVersion: version, recipientKeyId: new.publicKey.keyId, wrappedKey: wrapped)
            return WrappedKeyInput(vaultId: v.id, recipientKeyId: new.publicKey.keyId, dekVersion: version,
                                   wrappedKey: wrapped.base64EncodedString(), statement: try signed(ws, wrapSigner ?? new))
        }
        return RegisterPublicKeyRequest(publicKey: new.publicKey.pem, previousEncryptionKeyId: p.key.publicKey.keyId,
                                        rotationSignature: try signed(st, statementSigner ?? p.key), rewrappedVaultKeys: wraps)
    }

    struct Snapshot: Equatable {
        var activeKeyId: String?
        var keys: [String: String]   // keyId -> status
        var wraps: [String]
        var logSize: Int64
    }

    func snapshot(_ h: Harness, _ p: Party) async throws -> Snapshot {
        try await h.store.read { tx in
            Snapshot(activeKeyId: try await tx.activePublicKey(principalId: p.id)?.keyId,
                     keys: Dictionary(uniqueKeysWithValues: try await tx.publicKeys(principalId: p.id).map { ($0.keyId, $0.status.rawValue) }),
                     wraps: try await tx.wrappedKeys(principalId: p.id).map(\.id).sorted(),
                     logSize: try await tx.logSize())
        }
    }

    @Test("an agent rotates: new key logged and active, old key retired, wraps swapped, values still open", arguments: ["memory", "sqlite"])
    func rotates(storeKind: String) async throws {
        let store: any LatchStore = storeKind == "memory" ? MemoryStore() : try await SQLiteLatchStore.open(path: try tempDir() + "/latch.sqlite")
        try await withHarness(store: store) { h in
            let w = try await world(h)
            let old = w.agent.key, new = Keys.pool[3]
            let body = try request(w.agent, to: new, vaults: [w.v2, w.v1])
            let r = try await h.call(.post, LatchRoutes.publicKey, key: w.agent.apiKey, body: body)
            #expect(r.status == .created, "\(String(decoding: r.data, as: UTF8.self))")
            let out = try r.decode(KeyRotationResponse.self)
            #expect(out.keyId == new.publicKey.keyId && out.previousKeyId == old.publicKey.keyId && out.status == "active")
            #expect(out.rewrappedVaultIds == [w.v1.id, w.v2.id].sorted())

            // GET /me and the signer directory show the new key only
            let me = try await h.call(.get, LatchRoutes.me, key: w.agent.apiKey).decode(MeResponse.self)
            #expect(me.publicKey?.keyId == new.publicKey.keyId && me.principal.activeKeyId == new.publicKey.keyId)
            let dir = try await h.call(.get, LatchRoutes.vaultPublicKeys(w.v1.id), key: w.agent.apiKey).decode(PublicKeysResponse.self)
            #expect(dir.publicKeys.first { $0.principalId == w.agent.id }?.keyId == new.publicKey.keyId)
            #expect(!dir.publicKeys.contains { $0.keyId == old.publicKey.keyId })

            // the store: old key retired (with retiredAt), only new-key wraps, the new key in the log
            let (oldRec, newRec, wraps, leaf) = try await h.store.read { tx in
                let n = try await tx.publicKey(keyId: new.publicKey.keyId)
                return (try await tx.publicKey(keyId: old.publicKey.keyId), n, try await tx.wrappedKeys(principalId: w.agent.id),
                        try await tx.logLeaf(n?.logIndex ?? -1))
            }
            #expect(oldRec?.status == .retired && oldRec?.retiredAt != nil)
            let n = try #require(newRec)
            #expect(n.status == .active && out.logIndex == n.logIndex)
            #expect(leaf == LogLeaf.publicKey(n))
            // the continuity evidence is kept with the new key and verifies against the old one
            let evidence = try JSONDecoder().decode(SignedEnvelope<KeyRotationStatement>.self, from: Data(try #require(n.rotationStatement).utf8))
            try evidence.verifyRotation(from: old.publicKey, to: new.publicKey)
            #expect(evidence.checkpoint.principalId == w.agent.id)
            #expect(Set(wraps.map(\.recipientKeyId)) == [new.publicKey.keyId] && Set(wraps.map(\.vaultId)) == [w.v1.id, w.v2.id])

            // the new key opens the served wrap, and the value decrypts
            let wk = try await h.call(.get, LatchRoutes.wrappedKey(w.v1.id), key: w.agent.apiKey).decode(WrappedKeysResponse.self)
            #expect(wk.wrappedKeys.count == 1)
            let mine = try #require(wk.wrappedKeys.first)
            let env = try JSONDecoder().decode(SignedEnvelope<WrappedKeyStatement>.self, from: Data(mine.statement.utf8))
            try env.verify(with: new.publicKey)
            let bytes = try #require(Data(base64Encoded: mine.wrappedKey))
            try env.checkpoint.checkMatches(wrappedKey: bytes, recipient: new.publicKey)
            let dek = try new.unwrap(bytes, version: mine.dekVersion)
            let field = try await h.call(.get, LatchRoutes.field(w.v1.id, w.fieldId), key: w.agent.apiKey).decode(FieldResponse.self)
            let plain = try FieldEnvelope(string: field.field.value).open(key: dek, context: EnvelopeContext(
                vaultId: w.v1.id, itemId: w.itemId, fieldId: w.fieldId, dekVersion: 1))
            #expect(String(decoding: plain, as: UTF8.self) == "sk_live_ROTATION_TEST")

            // a replay of the same rotation is refused and changes nothing
            let before = try await snapshot(h, w.agent)
            let replay = try await h.call(.post, LatchRoutes.publicKey, key: w.agent.apiKey, body: body)
            #expect(replay.status == .conflict && replay.code == "stale_version", "\(String(decoding: replay.data, as: UTF8.self))")
            #expect(try await snapshot(h, w.agent) == before)
            // going back to the retired key is refused too (it was registered before)
            var rotated = w.agent
            rotated.key = new
            let back = try await h.call(.post, LatchRoutes.publicKey, key: w.agent.apiKey, body: try request(rotated, to: old, vaults: [w.v1, w.v2]))
            #expect(back.status == .conflict && back.code == "conflict")

            // audited, and the chain still verifies
            let events = try await h.store.auditEvents(AuditFilter(action: "key.rotate"))
            #expect(events.map(\.outcome) == ["success", "stale_version", "conflict"])
            #expect(try await verifyAuditChain(h.store) > 10)
        }
        if let s = store as? SQLiteLatchStore { await s.close() }
    }

    @Test("refused rotations change nothing")
    func refusals() async throws {
        try await withHarness { h in
            let w = try await world(h)
            let new = Keys.pool[3], stranger = Keys.pool[4]
            let start = try await snapshot(h, w.agent)
            #expect(start.activeKeyId == w.agent.key.publicKey.keyId && start.wraps.count == 2)

            func post(_ body: RegisterPublicKeyRequest) async throws -> HTTPResult {
                try await h.call(.post, LatchRoutes.publicKey, key: w.agent.apiKey, body: body)
            }
            var cases: [(String, RegisterPublicKeyRequest, HTTPResponse.Status, String)] = [
                ("incomplete batch", try request(w.agent, to: new, vaults: [w.v1]), .conflict, "rotation_batch_incomplete"),
                ("empty batch", try request(w.agent, to: new, vaults: []), .conflict, "rotation_batch_incomplete"),
                ("vault the key does not open", try request(w.agent, to: new, vaults: [w.v1, w.v2, w.v3]), .badRequest, "rotation_batch_invalid"),
                ("duplicate vault", try request(w.agent, to: new, vaults: [w.v1, w.v1, w.v2]), .badRequest, "rotation_batch_invalid"),
                ("statement signed by another key", try request(w.agent, to: new, vaults: [w.v1, w.v2], statementSigner: stranger),
                 .badRequest, "rotation_signature_invalid"),
                ("statement signed by the new key", try request(w.agent, to: new, vaults: [w.v1, w.v2], statementSigner: new),
                 .badRequest, "rotation_signature_invalid"),
                ("statement for another principal", try request(w.agent, to: new, vaults: [w.v1, w.v2], statement: KeyRotationStatement(
                    principalId: w.admin.id, previousKeyId: w.agent.key.publicKey.keyId, newKeyId: new.publicKey.keyId)),
                 .badRequest, "rotation_signature_invalid"),
                ("statement naming another new key", try request(w.agent, to: new, vaults: [w.v1, w.v2], statement: KeyRotationStatement(
                    principalId: w.agent.id, previousKeyId: w.agent.key.publicKey.keyId, newKeyId: stranger.publicKey.keyId)),
                 .badRequest, "rotation_signature_invalid"),
                ("wraps signed by the old key", try request(w.agent, to: new, vaults: [w.v1, w.v2], wrapSigner: w.agent.key),
                 .badRequest, "rotation_batch_invalid"),
                ("wrong DEK version", try request(w.agent, to: new, vaults: [w.v1, w.v2], dekVersion: 2), .conflict, "stale_version"),
            ]
            var forged = try request(w.agent, to: new, vaults: [w.v1, w.v2])
            forged.rewrappedVaultKeys?[1].wrappedKey = try new.publicKey.wrap(.generate(version: 1)).base64EncodedString()
            cases.append(("wrap not matching its statement", forged, .badRequest, "checkpoint_mismatch"))
            var wrongPrevious = try request(w.agent, to: new, vaults: [w.v1, w.v2])
            wrongPrevious.previousEncryptionKeyId = stranger.publicKey.keyId
            cases.append(("previous key is not the active one", wrongPrevious, .conflict, "stale_version"))
            var partial = try request(w.agent, to: new, vaults: [w.v1, w.v2])
            partial.rewrappedVaultKeys = nil
            cases.append(("rotation fields incomplete", partial, .badRequest, "invalid_request"))
            cases.append(("no rotation fields", RegisterPublicKeyRequest(publicKey: new.publicKey.pem), .conflict, "key_rotation_required"))

            for (name, body, status, code) in cases {
                let r = try await post(body)
                #expect(r.status == status && r.code == code, "\(name): \(r.status) \(String(decoding: r.data, as: UTF8.self))")
                #expect(try await snapshot(h, w.agent) == start, "\(name) changed state")
            }
            let incomplete = try await post(try request(w.agent, to: new, vaults: [w.v1]))
            #expect(String(decoding: incomplete.data, as: UTF8.self).contains(w.v2.id), "the error names the missing vault")

            // a key that signed checkpoints and wraps others rely on cannot be rotated yet
            let adminStart = try await snapshot(h, w.admin)
            let adminRotation = try await h.call(.post, LatchRoutes.publicKey, key: w.admin.apiKey,
                                                 body: try request(w.admin, to: new, vaults: [w.v1, w.v2, w.v3]))
            #expect(adminRotation.status == .conflict && adminRotation.code == "rotation_orphans_signatures",
                    "\(String(decoding: adminRotation.data, as: UTF8.self))")
            #expect(try await snapshot(h, w.admin) == adminStart)

            // after all that, the proper rotation still goes through
            let ok = try await post(try request(w.agent, to: new, vaults: [w.v1, w.v2]))
            #expect(ok.status == .created, "\(String(decoding: ok.data, as: UTF8.self))")
        }
    }
}
