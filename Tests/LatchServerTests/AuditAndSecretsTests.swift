import Foundation
import Hummingbird
import HummingbirdTesting
import LatchCrypto
import LatchDomain
import LatchServer
import LatchStoreSQLite
import LatchWire
import Testing

@Suite("Audit chain and data at rest")
struct AuditAndSecretsTests {
    @Test("editing or removing a row of the audit table makes verification fail")
    func auditTamper() async throws {
        let path = try tempDir() + "/latch.sqlite"
        let store = try await SQLiteLatchStore.open(path: path)
        try await withHarness(store: store) { h in
            let admin = try await h.bootstrap()
            _ = try await h.createVault(admin)
            for _ in 0..<3 { _ = try await h.call(.get, LatchRoutes.me, key: admin.apiKey) }
        }
        let count = try await verifyAuditChain(store)
        #expect(count >= 5)
        let c = try await SQLiteConnection.open(path: path)   // our binding: the same SQLite library as the store
        // edit: an attacker rewrites one event's outcome, then instead its hash as well as the next
        // event's would need (each row's prevHash is the row before's hash)
        for (edit, undo) in [("UPDATE audit_events SET outcome = 'denied' WHERE seq = 2", "UPDATE audit_events SET outcome = 'success' WHERE seq = 2"),
                             ("UPDATE audit_events SET hash = '\(String(repeating: "a", count: 64))' WHERE seq = 2",
                              "UPDATE audit_events SET hash = (SELECT hash FROM audit_copy) WHERE seq = 2")] {
            try await c.execute("CREATE TABLE IF NOT EXISTS audit_copy AS SELECT hash FROM audit_events WHERE seq = 2", purpose: "keep the hash")
            try await c.execute(edit, purpose: "tamper with an audit event")
            await #expect(throws: AuditChain.Failure.self, "\(edit)") { try await verifyAuditChain(store) }
            try await c.execute(undo, purpose: "undo the tampering")
            #expect(try await verifyAuditChain(store) == count)
        }
        // removal of an event in the middle
        try await c.execute("DELETE FROM audit_events WHERE seq = 3", purpose: "remove an audit event")
        do {
            try await verifyAuditChain(store)
            Issue.record("verification passed after an event was removed")
        } catch let f as AuditChain.Failure {
            #expect(f.seq == 4)
        }
        await c.close()
        await store.close()
    }

    @Test("after an operator+agent flow no secret, API-key secret, DEK or private key is in the data dir")
    func noSecretsAtRest() async throws {
        let dir = try tempDir()
        let store = try await SQLiteLatchStore.open(path: dir + "/latch.sqlite")
        let dekBytes = Data((0..<32).map { UInt8(($0 * 37 + 11) & 0xff) })
        let plaintexts = ["sk_live_ZETA_9f8e7d6c5b4a", "postgres://app:Hunter2-PW@db:5432/prod"]
        let secrets: [String] = try await withHarness(store: store) { h in
            let admin = try await h.bootstrap()
            var (vault, created) = try await h.createVault(admin, dek: try DataEncryptionKey(unsafeRawBytes: dekBytes, version: 1))
            #expect(created.status == .created)
            let r = try await h.putItem(admin, &vault, name: "stripe", fields: [("key", plaintexts[0], true), ("db", plaintexts[1], true)])
            #expect(r.status == .created)
            let agent = try await h.createAgent(admin, name: "runner", key: Keys.pool[4])
            #expect(try await h.grant(admin, vault: vault.id, [PermissionEntry(granteeType: "AGENT", granteeId: agent.id, level: "READ")]).status == .ok)
            #expect(try await h.share(admin, vault, to: agent).status == .created)
            let env = try await h.call(.get, LatchRoutes.environmentFields(vault.id), key: agent.apiKey)
            #expect(env.status == .ok)
            return [admin.apiKey, agent.apiKey].map { String($0.split(separator: ".")[1]) }
        }
        await store.close()
        var needles: [(String, Data)] = plaintexts.map { ($0, Data($0.utf8)) }
        needles += secrets.map { ("API-key secret", Data($0.utf8)) }
        needles.append(("DEK", dekBytes))
        for k in [Keys.pool[0], Keys.pool[4]] {
            let body = k.pkcs8PEM.split(separator: "\n").filter { !$0.hasPrefix("-----") }
            needles += body.prefix(4).map { ("private key PEM line", Data($0.utf8)) }
            let der = try #require(Data(base64Encoded: body.joined()))
            needles.append(("private key DER", der.subdata(in: 40..<80)))
        }
        let files = try FileManager.default.contentsOfDirectory(atPath: dir)
        #expect(files.contains("latch.sqlite"))
        var scanned = 0
        for f in files {
            let data = try Data(contentsOf: URL(fileURLWithPath: dir + "/" + f))
            scanned += data.count
            for (what, n) in needles { #expect(data.range(of: n) == nil, "\(what) found in \(f)") }
        }
        #expect(scanned > 10_000)
    }
}
