import Foundation
import Testing
import LatchClient
import LatchCrypto
import LatchDomain
import LatchStoreSQLite

// The malicious-server suite (issue 5, docs/threat-model.md "What a compromised server cannot
// do"). A real `latch serve` runs on its SQLite file; between requests the test plays the
// hostile server by editing that file directly (SQLite WAL lets a second connection write while
// the server runs), then runs the real `latch` CLI as an agent and checks that it refuses the
// forged data with a verification error and prints no secret value.
//
// One server and one operator are shared; each attack gets its own vault and its own agent
// (READ on that vault only, so a refused vault never disturbs another scenario), and every
// attack is undone after it is checked so the operator's own syncs keep verifying.

/// Every row the server stores for one vault: the vault, its items, fields, wrapped keys and
/// grants.
struct VaultRows: Sendable {
    var vault: StoreRow
    var items: [StoreRow]
    var fields: [StoreRow]
    var wraps: [StoreRow]
    var grants: [StoreRow]
}

/// One vault under attack, read by its own agent profile.
struct Victim: Sendable {
    var vaultId: String
    var profile: String
    var agentId: String
    var agentKey: PrincipalPrivateKey
    /// Every value ever written to the vault (so every one can be checked absent from output).
    var values: [String]
}

/// One line of the final table.
struct AttackOutcome: Sendable {
    var attack: String
    var detected: Bool
    var error: String

    /// A row whose error is the first `latch: error:` line of `stderr`, shortened for the table.
    init(attack: String, detected: Bool, stderr: String) {
        let line = stderr.split(separator: "\n").first(where: { $0.hasPrefix("latch: error:") }).map(String.init) ?? stderr
        self.init(attack: attack, detected: detected, error: String(line.dropFirst("latch: error: ".count).prefix(150)))
    }

    init(attack: String, detected: Bool, error: String) {
        self.attack = attack; self.detected = detected; self.error = error
    }

    /// The `attack | detected | error` table a hostile-server suite prints.
    static func table(_ rows: [AttackOutcome], since start: ContinuousClock.Instant) -> String {
        let width = max(6, rows.map(\.attack.count).max() ?? 0)
        var report = "\nattack" + String(repeating: " ", count: width - 6) + " | detected | error\n"
        for row in rows {
            report += row.attack.padding(toLength: width, withPad: " ", startingAt: 0)
                + " | " + (row.detected ? "yes     " : "no      ") + " | " + row.error + "\n"
        }
        return report + "(\(rows.count) attacks in \(ContinuousClock.now - start))\n"
    }
}

/// The shared `latch serve`, its operator, and the hostile edits of its store.
final class HostileHarness: @unchecked Sendable {
    let server: TestServer
    let env: [String: String]
    var storePath: String { server.dir + "/data/latch.sqlite" }
    var home: String { server.dir + "/home" }

    init() async throws {
        server = try TestServer()
        env = ["PATH": "/usr/bin:/bin", "LATCH_HOME": server.dir + "/home", "HOME": server.dir]
        let r = try await LatchProcess.run(["init", "--server", server.url, "--token", server.token, "--name", "operator"], env: env)
        guard r.code == 0 else { throw Failure(description: "latch init failed: \(r.err)") }
    }

    struct Failure: Error, CustomStringConvertible { var description: String }

    func latch(_ args: [String], stdin: String? = nil) async throws -> LatchProcess.Result {
        try await LatchProcess.run(args, env: env, stdin: stdin)
    }

    /// Runs `latch` and throws unless it succeeds (setup steps, not assertions under test).
    @discardableResult
    func must(_ args: String..., stdin: String? = nil) async throws -> String {
        let r = try await latch(args, stdin: stdin)
        guard r.code == 0 else { throw Failure(description: "latch \(args.first ?? "") failed (\(r.code)): \(r.err)") }
        return r.out
    }

    /// A random value that cannot occur in any output by chance.
    static func secret() -> String { "hv-" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "") }

    /// A new vault `name` holding `secrets` (item, field, value), and a new agent with READ on
    /// it, configured as profile `bot-<name>`.
    func victim(_ name: String, _ secrets: [(item: String, field: String, value: String)]) async throws -> Victim {
        let vaultId = try await must("vault", "create", name).trimmingCharacters(in: .whitespacesAndNewlines)
        for s in secrets { try await must("secret", "set", name, s.item, "--field", s.field, stdin: s.value) }
        let configPath = server.dir + "/bot-\(name).json"
        let agentId = try await must("agent", "create", "bot-\(name)", "--vault", name, "--out", configPath)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        try await must("configure", "agent", "--config", configPath, "--profile", "bot-\(name)")
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: configPath))) as? [String: String] ?? [:]
        let key = try PrincipalPrivateKey(pem: config["privateKey"] ?? "")
        return Victim(vaultId: vaultId, profile: "bot-\(name)", agentId: agentId, agentKey: key, values: secrets.map(\.value))
    }

    // MARK: the hostile store

    /// One write transaction on the live store, through a second connection.
    func edit<T: Sendable>(_ body: @Sendable (any StoreTransaction) async throws -> T) async throws -> T {
        let store = try await SQLiteLatchStore.open(path: storePath, readers: 1)
        do {
            let r = try await store.write(body)
            await store.close()
            return r
        } catch {
            await store.close()
            throw error
        }
    }

    func snapshot(_ vaultId: String) async throws -> VaultRows {
        try await edit { tx in
            guard let vault = try await tx.get(.vaults, id: vaultId) else { throw Failure(description: "no vault row \(vaultId)") }
            return VaultRows(vault: vault, items: try await tx.find(.items, .parentId, vaultId),
                             fields: try await tx.find(.fields, .lookup, vaultId), wraps: try await tx.find(.wrappedKeys, .parentId, vaultId),
                             grants: try await tx.find(.grants, .parentId, vaultId))
        }
    }

    /// Puts the vault's rows back exactly as in `rows` (removing rows added since).
    func restore(_ rows: VaultRows) async throws {
        try await edit { tx in
            let id = rows.vault.id
            for (table, column) in [(StoreTable.items, StoreColumn.parentId), (.fields, .lookup), (.wrappedKeys, .parentId), (.grants, .parentId)] {
                for row in try await tx.find(table, column, id) { try await tx.delete(table, id: row.id) }
            }
            try await tx.put(.vaults, rows.vault)
            for row in rows.items { try await tx.put(.items, row) }
            for row in rows.fields { try await tx.put(.fields, row) }
            for row in rows.wraps { try await tx.put(.wrappedKeys, row) }
            for row in rows.grants { try await tx.put(.grants, row) }
        }
    }

    // MARK: one attack

    /// Checks that `read` gives `expected` to the victim's agent, stages the attack, checks that
    /// both `latch get read` and `latch env` now fail with a verification error containing
    /// `expect` and show no value of the vault, undoes the attack and checks the read works again.
    /// `knownIssue` marks an attack the current client is known not to detect (the detection
    /// expectations then run under `withKnownIssue`).
    func attack(_ title: String, _ v: Victim, read: String, expected: String, expect: String, knownIssue: String? = nil,
                stage: @Sendable (any StoreTransaction) async throws -> Void) async throws -> AttackOutcome {
        let before = try await latch(["get", read, "--profile", v.profile])
        #expect(before.code == 0 && before.out == expected, "\(title): the read before the attack must succeed: \(before.err)")
        let honest = try await snapshot(v.vaultId)
        try await edit(stage)
        let results = [try await latch(["get", read, "--profile", v.profile]),
                       try await latch(["env", "--format", "json", "--profile", v.profile])]
        try await restore(honest)

        let detected = results.allSatisfy { r in
            r.code != 0 && r.err.contains(expect) && !v.values.contains { r.out.contains($0) || r.err.contains($0) }
        }
        func expectDetected() {
            for r in results {
                let leaked = v.values.contains { r.out.contains($0) || r.err.contains($0) }
                #expect(r.code == 65, "\(title): expected exit 65 (verification failed), got \(r.code): \(r.err)")
                #expect(r.err.contains(expect), "\(title): expected \"\(expect)\" in: \(r.err)")
                #expect(!leaked, "\(title): a secret value was printed")
            }
        }
        if let knownIssue { withKnownIssue(Comment(rawValue: knownIssue)) { expectDetected() } } else { expectDetected() }
        // (not after a forgery that was accepted: it may have moved the agent's seen versions
        // past the honest state, which then looks like a rollback to that agent)
        if knownIssue == nil {
            let after = try await latch(["get", read, "--profile", v.profile])
            #expect(after.code == 0 && after.out == expected, "\(title): the read after undoing the attack must succeed: \(after.err)")
        }

        // the table shows the message without the "latch: error: " prefix and the generic hint
        let line = results[0].err.split(separator: "\n").first.map(String.init) ?? ""
        let message = line.replacingOccurrences(of: "latch: error: ", with: "").components(separatedBy: " — ").first ?? line
        // an accepted attack is described by which of the vault's values it printed, never the value
        let printed = v.values.firstIndex { results[0].out == $0 }.map { "value #\($0 + 1) of \(v.values.count) written" } ?? "no known value"
        let shown = results[0].code == 0 ? "accepted, printed \(printed) (oldest first)" : message
        return AttackOutcome(attack: title, detected: detected, error: "exit \(results[0].code): \(shown)")
    }
}

// MARK: store edits

/// The fields of one item (by item name) in a vault.
func hostileFields(_ tx: any StoreTransaction, vault: String, item: String) async throws -> [LatchDomain.Field] {
    guard let i = try await tx.items(vaultId: vault).first(where: { $0.name == item }) else {
        throw HostileHarness.Failure(description: "no item \(item) in vault \(vault)")
    }
    return try await tx.fields(itemId: i.id)
}

/// Re-signs the vault's current summary checkpoint with `key` and stores it.
/// The server raises `agentId`'s grant on the vault to WRITE and re-signs the summary with the
/// agent's key, as if that READ member had written it.
func raiseToWriteAndResign(_ tx: any StoreTransaction, vault vaultId: String, agent agentId: String, key: PrincipalPrivateKey) async throws {
    guard var g = try await tx.grants(assetId: vaultId).first(where: { $0.granteeId == agentId }) else {
        throw HostileHarness.Failure(description: "no grant for the agent")
    }
    g.level = .write
    try await tx.putGrant(g)
    try await resignSummary(tx, vault: vaultId, with: key)
}

func resignSummary(_ tx: any StoreTransaction, vault id: String, with key: PrincipalPrivateKey) async throws {
    guard var v = try await tx.vault(id) else { throw HostileHarness.Failure(description: "no vault \(id)") }
    let signed = try JSONDecoder().decode(SignedEnvelope<VaultSummaryCheckpoint>.self, from: Data(v.summaryCheckpoint.utf8))
    let forged = try SignedEnvelope.sign(signed.checkpoint, with: key)
    v.summaryCheckpoint = String(decoding: try forged.canonicalJSON(), as: UTF8.self)
    try await tx.putVault(v)
}

/// Replaces the agent's wrapped DEK with one the server made: a fresh DEK wrapped to the
/// agent's public key, its statement signed by `signer`; with `claimOperator`, the envelope
/// names the honest wrap's signer (the operator) instead, a forged attribution.
func forgeWrap(_ tx: any StoreTransaction, vault id: String, agent: Victim, signer: PrincipalPrivateKey, claimOperator: Bool) async throws {
    guard var w = try await tx.wrappedKeys(vaultId: id).first(where: { $0.principalId == agent.agentId }) else {
        throw HostileHarness.Failure(description: "no wrapped key for the agent in vault \(id)")
    }
    let honest = try JSONDecoder().decode(SignedEnvelope<WrappedKeyStatement>.self, from: Data(w.statement.utf8))
    let fake = DataEncryptionKey.generate(version: w.dekVersion)
    let wrap = try VaultWriter.wrap(fake, vaultId: id, to: agent.agentKey.publicKey, signer: signer)
    let statement = claimOperator
        ? SignedEnvelope(checkpoint: wrap.statement.checkpoint, signerKeyId: honest.signerKeyId, signature: wrap.statement.signature)
        : wrap.statement
    w.wrappedKey = wrap.wrappedKey.base64EncodedString()
    w.statement = String(decoding: try statement.canonicalJSON(), as: UTF8.self)
    try await tx.putWrappedKey(w)
}

/// Adds a member the server made up: a copy of `model`'s principal row under a new id, with
/// `key` as its active public key and WRITE on the vault. Returns the new principal id.
func addGhostMember(_ tx: any StoreTransaction, vault id: String, model: String, key: PrincipalPublicKey) async throws -> String {
    guard var p = try await tx.principal(model), var k = try await tx.activePublicKey(principalId: model),
          var g = try await tx.grants(assetId: id).first(where: { $0.granteeId == model }) else {
        throw HostileHarness.Failure(description: "no principal, key or grant to copy")
    }
    p.id = "ghost-" + UUID().uuidString.lowercased()
    p.name = "ghost"
    k.principalId = p.id; k.keyId = key.keyId; k.pem = key.pem
    g.granteeId = p.id; g.level = .write
    try await tx.putPrincipal(p)
    try await tx.putPublicKey(k)
    try await tx.putGrant(g)
    return p.id
}

/// The id of the member a stage made up, so the test can remove it afterwards.
final class GhostBox: @unchecked Sendable {
    private let lock = NSLock()
    private var _id: String?
    var id: String? {
        get { lock.withLock { _id } }
        set { lock.withLock { _id = newValue } }
    }
}

@Suite(.serialized) struct HostileServerTests {
    @Test("a vault name the server moves onto another vault steers no write: names come from the signed summaries")
    func swappedVaultNamesSteerNothing() async throws {
        let h = try await HostileHarness()
        defer { h.server.stop() }
        let prod = try await h.must("vault", "create", "prod").trimmingCharacters(in: .whitespacesAndNewlines)
        let other = try await h.must("vault", "create", "other").trimmingCharacters(in: .whitespacesAndNewlines)
        // The server swaps the two names in its own rows; the signed summaries keep theirs.
        try await h.edit { tx in
            guard var p = try await tx.vault(prod), var o = try await tx.vault(other) else {
                throw HostileHarness.Failure(description: "vault rows missing")
            }
            (p.name, o.name) = (o.name, p.name)
            try await tx.putVault(p)
            try await tx.putVault(o)
        }
        let listed = try JSONSerialization.jsonObject(with: Data(try await h.must("vault", "list", "--json").utf8)) as? [String: Any]
        let rows = listed?["vaults"] as? [[String: Any]] ?? []
        let names = Dictionary(uniqueKeysWithValues: rows.compactMap { r in (r["id"] as? String).map { ($0, r["name"] as? String ?? "") } })
        #expect(names == [prod: "prod", other: "other"], "vault list shows the signed names: \(rows)")
        #expect(rows.allSatisfy { $0["verified"] as? Bool == true })
        // A write to "prod" goes to the vault signed as prod (whose row the server renamed, so it
        // refuses the new summary as a rename: nothing is written anywhere), never to the other.
        let write = try await h.latch(["secret", "set", "prod", "db", "--field", "password"], stdin: HostileHarness.secret())
        #expect(write.code == 0 || write.err.contains("vault/\(prod)/items"), "\(write.err)")
        let inOther = try await h.edit { tx in try await tx.items(vaultId: other).map(\.name) }
        #expect(inOther.isEmpty, "the secret went to the vault the server named prod")
    }

    @Test func hostileServerEditsAreRefusedByTheCLI() async throws {
        let start = ContinuousClock.now
        let h = try await HostileHarness()
        defer { h.server.stop() }
        let outsider = try PrincipalPrivateKey.generate(bits: 2048)   // a key no member holds
        var table: [AttackOutcome] = []
        func secret() -> String { HostileHarness.secret() }

        // 1. Swap: the username and password fields exchange envelopes.
        do {
            let user = secret(), pass = secret()
            let v = try await h.victim("swap", [("db", "username", user), ("db", "password", pass)])
            table.append(try await h.attack("swap two field values", v, read: "DB_PASSWORD", expected: pass,
                                            expect: "does not match the envelope hash") { tx in
                var fs = try await hostileFields(tx, vault: v.vaultId, item: "db")
                guard fs.count == 2 else { throw HostileHarness.Failure(description: "expected two fields") }
                (fs[0].envelope, fs[1].envelope) = (fs[1].envelope, fs[0].envelope)
                for f in fs { try await tx.putField(f) }
            })
        }

        // 2. Replay: the password is updated through the CLI, then the server serves the old
        //    field row again under the new signed detail.
        do {
            let old = secret(), new = secret()
            var v = try await h.victim("replay", [("db", "password", old)])
            let vaultId = v.vaultId
            let oldRow = try await h.edit { tx in try await hostileFields(tx, vault: vaultId, item: "db")[0] }
            try await h.must("secret", "set", "replay", "db", "--field", "password", stdin: new)
            v.values.append(new)
            table.append(try await h.attack("replay an older field value", v, read: "DB", expected: new,
                                            expect: "does not match the envelope hash") { tx in
                try await tx.putField(oldRow)
            })
        }

        // 3. Rename: item "api" is served under the name "db", with db's (validly signed)
        //    detail checkpoint, so its value would be read as db's.
        do {
            let db = secret(), api = secret()
            let v = try await h.victim("rename", [("db", "password", db), ("api", "token", api)])
            table.append(try await h.attack("rename an item to another item's name", v, read: "API", expected: api,
                                            expect: "detail checkpoint is for item") { tx in
                let items = try await tx.items(vaultId: v.vaultId)
                guard let source = items.first(where: { $0.name == "db" }), var target = items.first(where: { $0.name == "api" }) else {
                    throw HostileHarness.Failure(description: "items missing")
                }
                target.name = source.name
                target.detailCheckpoint = source.detailCheckpoint
                target.detailHash = source.detailHash
                target.detailVersion = source.detailVersion
                try await tx.putItem(target)
            })
        }

        // 4. Drop: item "api" and its fields disappear from the vault; reading the untouched
        //    item "db" must fail too, since the vault no longer matches its signed summary.
        do {
            let db = secret(), api = secret()
            let v = try await h.victim("drop", [("db", "password", db), ("api", "token", api)])
            table.append(try await h.attack("drop an item from the vault", v, read: "DB", expected: db,
                                            expect: "the server did not serve it") { tx in
                guard let item = try await tx.items(vaultId: v.vaultId).first(where: { $0.name == "api" }) else {
                    throw HostileHarness.Failure(description: "no item api")
                }
                for f in try await tx.fields(itemId: item.id) { try await tx.deleteField(f.id) }
                try await tx.delete(.items, id: item.id)
            })
        }

        // 5. Rollback: the agent reads, the operator updates the secret, the agent reads the
        //    new state (its profile's seen.json records the new versions), then the server
        //    restores every row of the vault as it was before the update.
        do {
            let old = secret(), new = secret()
            var v = try await h.victim("rollback", [("db", "password", old)])
            let first = try await h.latch(["get", "DB", "--profile", v.profile])
            #expect(first.code == 0 && first.out == old, "rollback: first read failed: \(first.err)")
            // A read that sees nothing new leaves seen.json alone (a rewrite is a new file: rename).
            let seenFile = ProfileStore(home: h.home).seenStatePath(v.profile)
            let fileNumber = { try FileManager.default.attributesOfItem(atPath: seenFile)[.systemFileNumber] as? UInt64 }
            let before = try fileNumber()
            let again = try await h.latch(["get", "DB", "--profile", v.profile])
            #expect(again.code == 0 && again.out == old)
            #expect(try fileNumber() == before, "a read that saw nothing new rewrote seen.json")
            let older = try await h.snapshot(v.vaultId)
            try await h.must("secret", "set", "rollback", "db", "--field", "password", stdin: new)
            v.values.append(new)
            table.append(try await h.attack("roll the vault back to an older checkpoint", v, read: "DB", expected: new,
                                            expect: "(rollback)") { tx in
                let id = older.vault.id
                for (t, column) in [(StoreTable.items, StoreColumn.parentId), (.fields, .lookup)] {
                    for row in try await tx.find(t, column, id) { try await tx.delete(t, id: row.id) }
                }
                try await tx.put(.vaults, older.vault)
                for row in older.items { try await tx.put(.items, row) }
                for row in older.fields { try await tx.put(.fields, row) }
            })
            // the versions that caught it are persisted per profile, and never a value
            let seenPath = ProfileStore(home: h.home).seenStatePath(v.profile)
            let seen = try SeenState.load(path: seenPath)
            let vaultId = v.vaultId
            let current = try await h.edit { tx in try await tx.vault(vaultId)?.summaryVersion }
            #expect(seen.vaults[v.vaultId]?.summaryVersion == current, "seen.json: \(seen)")
            let seenText = (try? String(contentsOfFile: seenPath, encoding: .utf8)) ?? ""
            #expect(!seenText.contains(old) && !seenText.contains(new))
        }

        // 6. A summary checkpoint re-signed by a key that belongs to no member.
        do {
            let pass = secret()
            let v = try await h.victim("foreign", [("db", "password", pass)])
            table.append(try await h.attack("checkpoint signed by a non-member key", v, read: "DB", expected: pass,
                                            expect: "which is not a member key") { tx in
                try await resignSummary(tx, vault: v.vaultId, with: outsider)
            })
        }

        // 7. A summary checkpoint re-signed by a member that only has READ (the agent itself:
        //    the test holds its private key from the runtime config).
        do {
            let pass = secret()
            let v = try await h.victim("reader", [("db", "password", pass)])
            table.append(try await h.attack("checkpoint signed by a READ-only member", v, read: "DB", expected: pass,
                                            expect: "does not list as a writer") { tx in
                try await resignSummary(tx, vault: v.vaultId, with: v.agentKey)
            })
        }

        // 8. The agent's wrapped DEK replaced by one the server made: a DEK of its choosing
        //    wrapped to the agent's public key, the statement signed by a non-member key ...
        do {
            let pass = secret()
            let v = try await h.victim("wrap", [("db", "password", pass)])
            table.append(try await h.attack("server-made wrapped DEK (non-member signer)", v, read: "DB", expected: pass,
                                            expect: "wrapped key v1 is signed by key") { tx in
                try await forgeWrap(tx, vault: v.vaultId, agent: v, signer: outsider, claimOperator: false)
            })
            // ... or attributed to the operator's key id, with a signature the operator never made.
            table.append(try await h.attack("server-made wrapped DEK (claims the operator signed)", v, read: "DB", expected: pass,
                                            expect: "wrapped-key statement signature is invalid") { tx in
                try await forgeWrap(tx, vault: v.vaultId, agent: v, signer: outsider, claimOperator: true)
            })
        }

        // Formerly known gaps (issue 5): the signer directory's members and levels are the
        // server's word, but a checkpoint is accepted only from a principal the vault's signed
        // writer set lists (only an ADMIN's key can change it), and only if the server also
        // logged it. LogVerificationTests has the variant where the server logs its forgery.

        // 7b. As 7, but the server also raises the READ member's grant to WRITE.
        do {
            let pass = secret()
            let v = try await h.victim("raised", [("db", "password", pass)])
            let (vaultId, agentId, agentKey) = (v.vaultId, v.agentId, v.agentKey)
            table.append(try await h.attack("7b: READ member's checkpoint, grant raised to WRITE", v, read: "DB", expected: pass,
                                            expect: "does not list as a writer") { tx in
                try await raiseToWriteAndResign(tx, vault: vaultId, agent: agentId, key: agentKey)
            })
        }

        // 6b. The server adds a member of its own (its key, WRITE on the vault) and uses it to
        //     sign a new item detail and summary version that serve the password's previous
        //     envelope: a replay the version checks cannot see.
        do {
            let old = secret(), new = secret()
            var v = try await h.victim("ghost", [("db", "password", old)])
            let (vaultId, agentId) = (v.vaultId, v.agentId)
            let before = try await h.snapshot(vaultId)
            try await h.must("secret", "set", "ghost", "db", "--field", "password", stdin: new)
            v.values.append(new)
            let ghost = GhostBox()
            table.append(try await h.attack("6b: replay signed by a member key the server added", v, read: "DB", expected: new,
                                            expect: "does not list as a writer") { tx in
                ghost.id = try await addGhostMember(tx, vault: vaultId, model: agentId, key: outsider.publicKey)
                guard var vault = try await tx.vault(vaultId), var item = try await tx.items(vaultId: vaultId).first,
                      let oldItem = before.items.first, let oldField = before.fields.first else {
                    throw HostileHarness.Failure(description: "rows missing")
                }
                let decoder = JSONDecoder()
                var summary = try decoder.decode(SignedEnvelope<VaultSummaryCheckpoint>.self, from: Data(vault.summaryCheckpoint.utf8)).checkpoint
                var detail = try decoder.decode(SignedEnvelope<ItemDetailCheckpoint>.self,
                                                from: Data(try decoder.decode(LatchDomain.Item.self, from: Data(oldItem.doc.utf8)).detailCheckpoint.utf8)).checkpoint
                detail.version = item.detailVersion + 1          // the old fields, as a newer version
                summary.version += 1
                summary.items = summary.items.map { var e = $0; if e.id == item.id { e.detailHash = detail.hash }; return e }
                item.detailCheckpoint = String(decoding: try SignedEnvelope.sign(detail, with: outsider).canonicalJSON(), as: UTF8.self)
                item.detailVersion = detail.version
                item.detailHash = detail.hash
                vault.summaryCheckpoint = String(decoding: try SignedEnvelope.sign(summary, with: outsider).canonicalJSON(), as: UTF8.self)
                vault.summaryVersion = summary.version
                try await tx.putItem(item)
                try await tx.putVault(vault)
                try await tx.put(.fields, oldField)
            })
            if let id = ghost.id {
                try await h.edit { tx in
                    try await tx.delete(.publicKeys, id: outsider.publicKey.keyId)
                    try await tx.delete(.principals, id: id)
                }
            }
        }

        print(AttackOutcome.table(table, since: start))
        #expect(table.count == 11)
        for row in table where !row.detected {
            Issue.record("not detected: \(row.attack)")
        }
    }
}
