import Foundation
import Hummingbird
import LatchCrypto
import LatchDomain
import LatchStoreSQLite
import LatchWire
import Testing

/// Revocation (issue 5) at the server: removing a grant drops the principal's wraps at once,
/// and `POST /vault/:id/dek-rotation` rotates the DEK all or nothing.
@Suite("DEK rotation (server)")
struct DekRotationTests {
    struct World {
        var admin: Party
        var a1: Party
        var a2: Party
        var v: VaultModel
    }

    /// An admin with one vault (two items, three fields) shared READ to agents a1 and a2.
    func world(_ h: Harness) async throws -> World {
        let admin = try await h.bootstrap()
        var (v, _) = try await h.createVault(admin, name: "payments")
        #expect(try await h.putItem(admin, &v, name: "stripe", fields: [("key", "sk_live_DEK_1", true)]).status == .created)
        #expect(try await h.putItem(admin, &v, name: "db", type: "DATABASE", fields: [("user", "app", true), ("password", "pw_DEK_2", true)]).status == .created)
        let a1 = try await h.createAgent(admin, name: "a1", key: Keys.pool[2])
        let a2 = try await h.createAgent(admin, name: "a2", key: Keys.pool[3])
        #expect(try await h.grant(admin, vault: v.id, entries(admin, [a1, a2])).status == .ok)
        for a in [a1, a2] { #expect(try await h.share(admin, v, to: a).status == .created) }
        return World(admin: admin, a1: a1, a2: a2, v: v)
    }

    func entries(_ admin: Party, _ agents: [Party], level: String = "READ") -> [PermissionEntry] {
        [PermissionEntry(granteeType: "USER", granteeId: admin.id, level: "ADMIN")]
            + agents.map { PermissionEntry(granteeType: "AGENT", granteeId: $0.id, level: level) }
    }

    /// A rotation batch from the model; each part can be spoiled.
    func batch(_ signer: Party, _ v: VaultModel, newDek: DataEncryptionKey, to recipients: [Party],
               dropItem: Bool = false, dropField: Bool = false, replayEnvelope: Bool = false,
               summaryDekVersion: Int? = nil, wrapDekVersion: Int? = nil) throws -> DekRotationRequest {
        var items: [DekRotationItem] = []
        var entries: [VaultSummaryCheckpoint.Item] = []
        for (n, entry) in v.summary.items.enumerated() {
            let old = try #require(v.details[entry.id])
            var detail = old
            detail.version += 1
            var values: [FieldValueInput] = []
            detail.fields = try old.fields.map { f in
                let text = try #require(v.envelopes[f.id])
                let plain = try FieldEnvelope(string: text).open(key: v.dek, context: EnvelopeContext(vaultId: v.id, itemId: entry.id, fieldId: f.id, dekVersion: v.dek.version))
                let env = replayEnvelope ? try FieldEnvelope(string: text)
                    : try FieldEnvelope.seal(plain, key: newDek, context: EnvelopeContext(vaultId: v.id, itemId: entry.id, fieldId: f.id, dekVersion: newDek.version))
                values.append(FieldValueInput(id: f.id, value: env.string))
                var g = f
                g.envelopeHash = env.sha256Hex
                return g
            }
            if dropField && n == 0 { values.removeLast() }
            var e = entry
            e.detailHash = detail.hash
            entries.append(e)
            if !(dropItem && n == 0) {
                items.append(DekRotationItem(itemId: entry.id, detailCheckpoint: try signed(detail, signer.key), fields: values))
            }
        }
        var summary = v.summary
        summary.version += 1
        summary.currentDekVersion = summaryDekVersion ?? newDek.version
        summary.items = entries
        let wraps = try recipients.map { p -> WrappedKeyInput in
            let wrapped = try p.key.publicKey.wrap(newDek)
            let version = wrapDekVersion ?? newDek.version
            let st = WrappedKeyStatement(vaultId: v.id, dekVersion: version, recipientKeyId: p.key.publicKey.keyId, wrappedKey: wrapped)
            return WrappedKeyInput(principalId: p.id, recipientKeyId: p.key.publicKey.keyId, dekVersion: version,
                                   wrappedKey: wrapped.base64EncodedString(), statement: try signed(st, signer.key))
        }
        return DekRotationRequest(summaryCheckpoint: try signed(summary, signer.key), items: items, wrappedKeys: wraps)
    }

    struct Snapshot: Equatable {
        var dekVersion: Int
        var summaryVersion: Int
        var wraps: [String]
        var envelopes: [String]
        var logSize: Int64
    }

    func snapshot(_ h: Harness, _ v: VaultModel) async throws -> Snapshot {
        try await h.store.read { tx in
            let vault = try #require(try await tx.vault(v.id))
            return Snapshot(dekVersion: vault.currentDekVersion, summaryVersion: vault.summaryVersion,
                            wraps: try await tx.wrappedKeys(vaultId: v.id).map(\.id).sorted(),
                            envelopes: try await tx.fields(vaultId: v.id).map(\.envelope).sorted(), logSize: try await tx.logSize())
        }
    }

    @Test("revoking a grant drops the wraps at once; the rotation re-encrypts everything under DEK v2", arguments: ["memory", "sqlite"])
    func revokeAndRotate(storeKind: String) async throws {
        let store: any LatchStore = storeKind == "memory" ? MemoryStore() : try await SQLiteLatchStore.open(path: try tempDir() + "/latch.sqlite")
        try await withHarness(store: store) { h in
            let w = try await world(h)
            // set-permissions without a1: its wraps go in the same transaction
            #expect(try await h.grant(w.admin, vault: w.v.id, entries(w.admin, [w.a2])).status == .ok)
            let a1Wraps = try await h.store.read { tx in try await tx.wrappedKeys(principalId: w.a1.id) }
            #expect(a1Wraps.isEmpty)
            #expect(try await h.call(.get, LatchRoutes.wrappedKey(w.v.id), key: w.a1.apiKey).status == .notFound)

            let before = try await snapshot(h, w.v)
            let newDek = DataEncryptionKey.generate(version: 2)
            let r = try await h.call(.post, LatchRoutes.dekRotation(w.v.id), key: w.admin.apiKey,
                                     body: try batch(w.admin, w.v, newDek: newDek, to: [w.admin, w.a2]))
            #expect(r.status == .ok, "\(String(decoding: r.data, as: UTF8.self))")
            let out = try r.decode(DekRotationResponse.self)
            #expect(out.currentDekVersion == 2 && out.vault.currentDekVersion == 2 && out.vault.summaryVersion == before.summaryVersion + 1)
            #expect(out.rewrappedPrincipalIds == [w.admin.id, w.a2.id].sorted() && out.pendingPrincipalIds.isEmpty)

            // the store: only v2 wraps (admin, a2), every envelope new and opening under DEK v2,
            // one log leaf per checkpoint (two details and the summary)
            let after = try await snapshot(h, w.v)
            #expect(after.dekVersion == 2 && after.logSize == before.logSize + 3)
            let (wraps, fields, items) = try await h.store.read { tx in
                (try await tx.wrappedKeys(vaultId: w.v.id), try await tx.fields(vaultId: w.v.id), try await tx.items(vaultId: w.v.id))
            }
            #expect(Set(wraps.map(\.principalId)) == [w.admin.id, w.a2.id] && wraps.allSatisfy { $0.dekVersion == 2 })
            #expect(fields.count == 3 && Set(fields.map(\.envelope)).isDisjoint(with: before.envelopes))
            for f in fields {
                let plain = try FieldEnvelope(string: f.envelope).open(key: newDek, context: EnvelopeContext(vaultId: w.v.id, itemId: f.itemId, fieldId: f.id, dekVersion: 2))
                #expect(!plain.isEmpty)
            }
            for i in items {
                let leaf = try await h.store.read { tx in try await tx.logLeaf(i.detailLogIndex ?? -1) }
                #expect(leaf == LogLeaf.checkpoint(.itemDetail, tenantId: i.tenantId, subjectId: i.id, envelope: i.detailCheckpoint))
            }
            // a2 opens the new DEK; a1 is refused and the refusal is audited
            let wk = try await h.call(.get, LatchRoutes.wrappedKey(w.v.id), key: w.a2.apiKey).decode(WrappedKeysResponse.self)
            let mine = try #require(wk.wrappedKeys.first)
            #expect(wk.currentDekVersion == 2 && mine.dekVersion == 2)
            let opened = try w.a2.key.unwrap(try #require(Data(base64Encoded: mine.wrappedKey)), version: 2)
            let f0 = try #require(fields.first)
            _ = try FieldEnvelope(string: f0.envelope).open(key: opened, context: EnvelopeContext(vaultId: w.v.id, itemId: f0.itemId, fieldId: f0.id, dekVersion: 2))
            #expect(try await h.call(.get, LatchRoutes.environmentFields(w.v.id), key: w.a1.apiKey).status == .notFound)
            let events = try await h.store.auditEvents(AuditFilter(principalId: w.a1.id))
            #expect(events.contains { $0.action == "field.read_environment" && $0.outcome == "not_found" })
            let admin = try await h.store.auditEvents(AuditFilter(action: "vault.dek_rotate"))
            #expect(admin.last?.outcome == "success" && admin.last?.detail?.contains("dekVersion=2") == true)
        }
        if let s = store as? SQLiteLatchStore { await s.close() }
    }

    @Test("refusals leave everything as it was")
    func refusals() async throws {
        try await withHarness { h in
            var w = try await world(h)
            #expect(try await h.grant(w.admin, vault: w.v.id, entries(w.admin, [w.a2])).status == .ok)
            let v2 = DataEncryptionKey.generate(version: 2)
            let before = try await snapshot(h, w.v)
            func post(_ body: DekRotationRequest, as p: Party? = nil) async throws -> HTTPResult {
                try await h.call(.post, LatchRoutes.dekRotation(w.v.id), key: (p ?? w.admin).apiKey, body: body)
            }
            let cases: [(String, DekRotationRequest, HTTPResponse.Status, String)] = [
                ("an item left out", try batch(w.admin, w.v, newDek: v2, to: [w.admin, w.a2], dropItem: true), .conflict, "rotation_batch_incomplete"),
                ("a field without its new envelope", try batch(w.admin, w.v, newDek: v2, to: [w.admin, w.a2], dropField: true), .conflict, "rotation_batch_incomplete"),
                ("the stored envelopes replayed", try batch(w.admin, w.v, newDek: v2, to: [w.admin, w.a2], replayEnvelope: true), .badRequest, "checkpoint_mismatch"),
                ("summary skips a DEK version", try batch(w.admin, w.v, newDek: v2, to: [w.admin, w.a2], summaryDekVersion: 3), .badRequest, "checkpoint_mismatch"),
                ("summary keeps the DEK version", try batch(w.admin, w.v, newDek: v2, to: [w.admin, w.a2], summaryDekVersion: 1), .badRequest, "checkpoint_mismatch"),
                ("wraps of the old DEK version", try batch(w.admin, w.v, newDek: v2, to: [w.admin, w.a2], wrapDekVersion: 1), .conflict, "stale_version"),
                ("a wrap to a revoked principal", try batch(w.admin, w.v, newDek: v2, to: [w.admin, w.a2, w.a1]), .forbidden, "forbidden"),
                ("a member with a key left without a wrap", try batch(w.admin, w.v, newDek: v2, to: [w.admin]), .conflict, "rotation_batch_incomplete"),
            ]
            for (name, body, status, code) in cases {
                let r = try await post(body)
                #expect(r.status == status && r.code == code, "\(name): \(r.status) \(String(decoding: r.data, as: UTF8.self))")
                #expect(try await snapshot(h, w.v) == before, "\(name) changed the store")
            }

            // a writer without the current DEK
            let writer = try await h.createAgent(w.admin, name: "writer", key: Keys.pool[4], permissions: ["machine.vault.read", "machine.vault.write"])
            #expect(try await h.grant(w.admin, vault: w.v.id, entries(w.admin, [w.a2]) + [PermissionEntry(granteeType: "AGENT", granteeId: writer.id, level: "WRITE")]).status == .ok)
            let noDek = try await post(try batch(writer, w.v, newDek: v2, to: [w.admin, w.a2, writer]), as: writer)
            #expect(noDek.status == .forbidden && noDek.code == "forbidden", "\(String(decoding: noDek.data, as: UTF8.self))")
            #expect(try await h.grant(w.admin, vault: w.v.id, entries(w.admin, [w.a2])).status == .ok)
            // a READ member (holding the DEK) cannot rotate
            let reader = try await post(try batch(w.a2, w.v, newDek: v2, to: [w.admin, w.a2]), as: w.a2)
            #expect(reader.status == .forbidden, "\(String(decoding: reader.data, as: UTF8.self))")

            // stale: someone writes between building and posting the batch
            let stale = try batch(w.admin, w.v, newDek: v2, to: [w.admin, w.a2])
            #expect(try await h.putItem(w.admin, &w.v, name: "late", fields: [("v", "late-value", true)]).status == .created)
            let r = try await post(stale)
            #expect(r.status == .conflict && (r.code == "stale_version" || r.code == "rotation_batch_incomplete"), "\(String(decoding: r.data, as: UTF8.self))")
            let msg = (try? r.decode(WireError.self))?.error.message ?? ""
            #expect(msg.contains("follow") || msg.contains("meanwhile"), "\(msg)")

            // and a fresh batch then goes through
            let ok = try await post(try batch(w.admin, w.v, newDek: v2, to: [w.admin, w.a2]))
            #expect(ok.status == .ok, "\(String(decoding: ok.data, as: UTF8.self))")
            // the same batch again is a replay
            #expect(try await post(try batch(w.admin, w.v, newDek: v2, to: [w.admin, w.a2])).status == .conflict)
        }
    }

    @Test("a rotation whose new writer set leaves out its own signer is refused: its checkpoints would be refused")
    func rotationKeepsItsSignerAWriter() async throws {
        try await withHarness { h in
            let w = try await world(h)
            let v1 = VaultWritersStatement.genesis(vaultId: w.v.id, creatorId: w.admin.id)
            #expect(try await h.call(.post, LatchRoutes.vaultWriters(w.v.id), key: w.admin.apiKey,
                                     body: UpdateWritersRequest(statement: try signed(v1, w.admin.key))).status == .ok)
            let v2 = DataEncryptionKey.generate(version: 2)
            let before = try await snapshot(h, w.v)
            func rotate(writers: VaultWritersStatement) async throws -> HTTPResult {
                var body = try batch(w.admin, w.v, newDek: v2, to: [w.admin, w.a1, w.a2])
                body.writersStatement = try signed(writers, w.admin.key)
                return try await h.call(.post, LatchRoutes.dekRotation(w.v.id), key: w.admin.apiKey, body: body)
            }
            let handOver = try await rotate(writers: v1.next { $0 = [.init(principalId: w.a2.id, accessLevel: .admin)] })
            #expect(handOver.status == .forbidden && String(decoding: handOver.data, as: UTF8.self).contains("signed writer set v2"),
                    "\(String(decoding: handOver.data, as: UTF8.self))")
            #expect(try await snapshot(h, w.v) == before, "the refused rotation changed the store")
            let kept = try await rotate(writers: v1.setting(w.a2.id, to: .admin))
            #expect(kept.status == .ok, "\(String(decoding: kept.data, as: UTF8.self))")
        }
    }

    @Test("removing an agent archives it, revokes its keys and drops its wraps")
    func removeAgent() async throws {
        try await withHarness { h in
            let w = try await world(h)
            let r = try await h.call(.delete, LatchRoutes.agent(w.a1.id), key: w.admin.apiKey)
            #expect(r.status == .ok, "\(String(decoding: r.data, as: UTF8.self))")
            #expect(try r.decode(AgentRemovalResponse.self).vaultIds == [w.v.id])
            let wraps = try await h.store.read { tx in try await tx.wrappedKeys(principalId: w.a1.id) }
            #expect(wraps.isEmpty)
            let me = try await h.call(.get, LatchRoutes.me, key: w.a1.apiKey)
            #expect(me.status == .unauthorized)
            // a non-admin cannot remove agents
            #expect(try await h.call(.delete, LatchRoutes.agent(w.admin.id), key: w.a2.apiKey).status == .forbidden)
        }
    }
}
