import Foundation
import Testing
import LatchClient
import LatchCrypto
import LatchDomain
import LatchLog
import LatchStoreSQLite

// Transparency-log verification in the client (issue 5), end to end: a real `latch serve`,
// the real `latch` CLI. The happy path pins the log key at `latch init` / `latch configure
// agent`, reads, and prints `latch verify`'s report; the hostile cases edit the server's store
// (or restart it with another log key) and check that the CLI refuses with the error that
// names what failed, printing the same `attack | detected | error` table as HostileServerTests.

/// The store's row id of a log leaf or stored hash (fixed-width decimal, as LatchDomain writes it).
private func logRowId(_ i: Int64) -> String {
    let s = String(i)
    return String(repeating: "0", count: max(0, 19 - s.count)) + s
}

/// The log rows a fork replaces: every stored hash written from leaf `from` on, the leaves, the size.
private struct LogTail: Sendable {
    var size: Int64
    var leaves: [StoreRow]
    var hashes: [StoreRow]
}

private func logSize(_ tx: any StoreTransaction) async throws -> Int64 { Int64(try await tx.setting("log_size") ?? "0") ?? 0 }

/// Reads the log rows from leaf `from` to the end.
private func readTail(_ tx: any StoreTransaction, from: Int64) async throws -> LogTail {
    let size = try await logSize(tx)
    var leaves: [StoreRow] = [], hashes: [StoreRow] = []
    for i in from..<size { if let r = try await tx.get(.logLeaves, id: logRowId(i)) { leaves.append(r) } }
    for i in MerkleTree.storedHashIndex(level: 0, index: from)..<MerkleTree.storedHashCount(size: size) {
        if let r = try await tx.get(.logHashes, id: logRowId(i)) { hashes.append(r) }
    }
    return LogTail(size: size, leaves: leaves, hashes: hashes)
}

/// Cuts the log back to `from` leaves (the rows a later append would write are removed).
private func truncate(_ tx: any StoreTransaction, to from: Int64) async throws {
    let size = try await logSize(tx)
    for i in from..<size { try await tx.delete(.logLeaves, id: logRowId(i)) }
    for i in MerkleTree.storedHashIndex(level: 0, index: from)..<MerkleTree.storedHashCount(size: size) {
        try await tx.delete(.logHashes, id: logRowId(i))
    }
    try await tx.setSetting("log_size", String(from))
}

/// Puts a tail read by `readTail` back.
private func restoreTail(_ tx: any StoreTransaction, _ tail: LogTail, from: Int64) async throws {
    try await truncate(tx, to: from)
    for r in tail.leaves { try await tx.put(.logLeaves, r) }
    for r in tail.hashes { try await tx.put(.logHashes, r) }
    try await tx.setSetting("log_size", String(tail.size))
}

/// A leaf no honest server wrote.
private func forgedLeaf() -> LogLeaf {
    .publicKey(tenantId: "forged", principalId: "forged-\(UUID().uuidString.lowercased())", keyId: String(repeating: "0", count: 64))
}

@Suite(.serialized) struct LogVerificationTests {
    /// `latch init` and `latch configure agent` pin the served key; reads verify against the log;
    /// `latch verify` reports what it checked. Also measures the requests a sync costs.
    @Test func pinsVerifiesAndReports() async throws {
        let server = try TestServer()
        defer { server.stop() }
        let home = server.dir + "/home"
        let env = ["PATH": "/usr/bin:/bin", "LATCH_HOME": home, "HOME": server.dir]
        func latch(_ args: [String], stdin: String? = nil, extra: [String: String] = [:]) async throws -> LatchProcess.Result {
            try await LatchProcess.run(args, env: env.merging(extra) { $1 }, stdin: stdin)
        }
        let served = try NoteSigner(secretKeyString: try String(contentsOfFile: server.dir + "/data/log-key", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)).verifier.keyString

        let initR = try await latch(["init", "--server", server.url, "--token", server.token, "--name", "operator"])
        #expect(initR.code == 0, "\(initR.err)")
        #expect(initR.err.contains("transparency log key pinned: \(served)"), "\(initR.err)")
        let store = ProfileStore(home: home)
        let opTrust = try #require(try LogTrust.load(path: store.logTrustPath("default")))
        #expect(opTrust.logKey == served && opTrust.treeSize >= 1)
        #expect(SecureFile.mode(of: store.logTrustPath("default")) == 0o600)

        let value = "lv-" + UUID().uuidString.lowercased()
        #expect(try await latch(["vault", "create", "prod"]).code == 0)
        #expect(try await latch(["secret", "set", "prod", "stripe", "--field", "key"], stdin: value).code == 0)
        let cfg = server.dir + "/bot.json"
        #expect(try await latch(["agent", "create", "bot", "--vault", "prod", "--out", cfg]).code == 0)
        // A wrong explicit key is refused at configure time, and stays pinned (nothing else is trusted).
        let other = try NoteSigner.generate(name: "latchkey.log/other").verifier.keyString
        let wrong = try await latch(["configure", "agent", "--config", cfg, "--profile", "wrongkey", "--log-key", other])
        #expect(wrong.code == 65 && wrong.err.contains("not the key given by --log-key"), "\(wrong.err)")
        #expect(wrong.err.contains(served) && wrong.err.contains(other))
        let stillWrong = try await latch(["get", "STRIPE", "--profile", "wrongkey"])
        #expect(stillWrong.code == 65 && stillWrong.err.contains(other) && !stillWrong.out.contains(value), "\(stillWrong.err)")
        // The right explicit key (here through LATCH_LOG_KEY) is accepted.
        let conf = try await latch(["configure", "agent", "--config", cfg, "--profile", "bot"], extra: ["LATCH_LOG_KEY": served])
        #expect(conf.code == 0 && conf.err.contains("transparency log key pinned: \(served)"), "\(conf.err)")

        // Requests of one `latch get` (new process: /me, sync, directory, then the log).
        func timedGet() async throws -> (requests: Int, logMs: Double, totalMs: Double) {
            let r = try await latch(["get", "STRIPE", "--profile", "bot"], extra: ["LATCH_TIMING": "1"])
            #expect(r.code == 0 && r.out == value, "\(r.err)")
            func num(_ key: String) -> Double {
                guard let range = r.err.range(of: key + "=") else { return -1 }
                return Double(r.err[range.upperBound...].prefix { $0.isNumber || $0 == "." }) ?? -1
            }
            return (Int(num("requests")), num("log"), num("total-in-client"))
        }
        let cold = try await timedGet()     // first read: the vault's entries are proven included
        let warm = try await timedGet()     // same head: every leaf already proven, no proof request
        #expect(warm.requests < cold.requests)
        print("requests per `latch get` (1 vault, 1 item, 2 member keys): cold \(cold.requests), warm \(warm.requests); log ms cold \(cold.logMs) warm \(warm.logMs) of total \(cold.totalMs) / \(warm.totalMs)")

        // `latch verify`: the report, and its JSON.
        let v = try await latch(["verify", "--profile", "bot"])
        #expect(v.code == 0, "\(v.err)")
        for line in ["log key:      \(served) (pinned)", "tree head:    size ", "consistency:  ", "inclusion:    5 proofs verified (1 vault summaries, 1 item details, 2 public keys, 1 writer sets)", "vaults:       1 verified", "ok"] {
            #expect(v.out.contains(line), "missing \"\(line)\" in:\n\(v.out)")
        }
        print(v.out)
        let j = try await latch(["verify", "--profile", "bot", "--json"])
        #expect(j.code == 0, "\(j.err)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(j.out.utf8)) as? [String: Any])
        let log = try #require(report["log"] as? [String: Any])
        #expect(log["inclusionProofs"] as? Int == 5 && log["logKey"] as? String == served)
        // the operator's write grows the log; the agent's next read proves consistency from its last head
        #expect(try await latch(["secret", "set", "prod", "stripe", "--field", "key"], stdin: value).code == 0)
        let grown = try await latch(["verify", "--profile", "bot", "--json"])
        let grownLog = try #require((try JSONSerialization.jsonObject(with: Data(grown.out.utf8)) as? [String: Any])?["log"] as? [String: Any])
        #expect(grownLog["consistencyProofVerified"] as? Bool == true, "\(grown.out) \(grown.err)")
        // nothing secret in the trust files
        for p in [store.logTrustPath("bot"), store.logTrustPath("default")] {
            #expect(!(try String(contentsOfFile: p, encoding: .utf8)).contains(value))
        }
    }

    /// A hostile server's log attacks, each refused by the CLI with the error naming it.
    @Test func hostileLogIsRefused() async throws {
        let start = ContinuousClock.now
        let h = try await HostileHarness()
        var restarted: TestServer? = nil
        defer { h.server.stop(); restarted?.stop() }
        var table: [AttackOutcome] = []
        func secret() -> String { HostileHarness.secret() }

        // 1. An item's detail checkpoint served without its log index.
        do {
            let pass = secret()
            let v = try await h.victim("noindex", [("db", "password", pass)])
            table.append(try await h.attack("item checkpoint without a log index", v, read: "DB", expected: pass,
                                            expect: "has no transparency log index") { tx in
                guard var item = try await tx.items(vaultId: v.vaultId).first else { throw HostileHarness.Failure(description: "no item") }
                item.detailLogIndex = nil
                try await tx.putItem(item)
            })
        }

        // 2. An item's detail checkpoint whose index points at another leaf (the vault's summary):
        //    the leaf rebuilt from the served checkpoint is not in the log there.
        do {
            let pass = secret()
            let v = try await h.victim("otherleaf", [("db", "password", pass)])
            table.append(try await h.attack("item checkpoint not in the log (index of another leaf)", v, read: "DB", expected: pass,
                                            expect: "is not in the transparency log") { tx in
                guard var item = try await tx.items(vaultId: v.vaultId).first, let vault = try await tx.vault(v.vaultId) else {
                    throw HostileHarness.Failure(description: "rows missing")
                }
                item.detailLogIndex = vault.summaryLogIndex
                try await tx.putItem(item)
            })
        }

        // The log attacks below need the agent to have verified a tree head first.
        func logAttack(_ title: String, _ v: Victim, expected: String, expect: String,
                       stage: @escaping @Sendable (any StoreTransaction) async throws -> Void,
                       undo: @escaping @Sendable (any StoreTransaction) async throws -> Void) async throws -> AttackOutcome {
            let before = try await h.latch(["get", "DB", "--profile", v.profile])
            #expect(before.code == 0 && before.out == expected, "\(title): the read before the attack must succeed: \(before.err)")
            try await h.edit(stage)
            let results = [try await h.latch(["get", "DB", "--profile", v.profile]), try await h.latch(["verify", "--profile", v.profile])]
            try await h.edit(undo)
            for r in results {
                #expect(r.code == 65, "\(title): expected exit 65, got \(r.code): \(r.err)")
                #expect(r.err.contains(expect), "\(title): expected \"\(expect)\" in: \(r.err)")
                #expect(!r.out.contains(expected) && !r.err.contains(expected), "\(title): a secret value was printed")
            }
            let after = try await h.latch(["get", "DB", "--profile", v.profile])
            #expect(after.code == 0 && after.out == expected, "\(title): the read after undoing the attack must succeed: \(after.err)")
            let detected = results.allSatisfy { $0.code == 65 && $0.err.contains(expect) }
            return AttackOutcome(attack: title, detected: detected, stderr: results[0].err)
        }

        // 3. A member the server made up (its key, WRITE on the vault) appears in the signer
        //    directory: its key record claims the operator's log index, where another leaf is.
        //    Refused before the member signs anything, so no wrap is ever made to its key.
        do {
            let pass = secret()
            let v = try await h.victim("ghostkey", [("db", "password", pass)])
            let outsider = try PrincipalPrivateKey.generate(bits: 2048)
            let vaultId = v.vaultId
            let operatorId = try await h.edit { tx in try await tx.vault(vaultId)?.createdBy ?? "" }
            let ghost = GhostBox()
            table.append(try await logAttack("server-added member key in the signer directory", v, expected: pass,
                                             expect: "signer directory key",
                                             stage: { tx in
                                                 ghost.id = try await addGhostMember(tx, vault: vaultId, model: operatorId, key: outsider.publicKey)
                                             },
                                             undo: { tx in
                                                 guard let id = ghost.id else { return }
                                                 for g in try await tx.grants(assetId: vaultId) where g.granteeId == id { try await tx.deleteGrant(g.id) }
                                                 try await tx.delete(.publicKeys, id: outsider.publicKey.keyId)
                                                 try await tx.delete(.principals, id: id)
                                             }))
        }

        // 3b/3c. Key rotation without continuity (issue 5): the server swaps the operator's key
        //     for one of its own (no rotation statement signed by the operator's key) and
        //     re-signs the summary, the item details and the agent's wrap statement (same
        //     wrapped bytes) with it; in 3c it also appends the key and the re-signed
        //     checkpoints to the log, so only the agent's pinned member key catches it.
        for logged in [false, true] {
            let pass = secret()
            let v = try await h.victim(logged ? "swaplogged" : "swapkey", [("db", "password", pass)])
            let outsider = try PrincipalPrivateKey.generate(bits: 2048)
            let (vaultId, agentId) = (v.vaultId, v.agentId)
            let operatorId = try await h.edit { tx in try await tx.vault(vaultId)?.createdBy ?? "" }
            let honestKey = try #require(try await h.edit { tx in try await tx.activePublicKey(principalId: operatorId) })
            let honestRows = try await h.snapshot(vaultId)
            let stage: @Sendable (any StoreTransaction) async throws -> Void = { tx in
                var fake = honestKey
                fake.keyId = outsider.publicKey.keyId
                fake.pem = outsider.publicKey.pem
                if logged { fake.logIndex = try await tx.appendLogLeaf(.publicKey(fake)) }
                var retired = honestKey
                retired.status = .retired
                try await tx.putPublicKey(retired)
                try await tx.putPublicKey(fake)
                func resign<S: SignedStatement>(_ text: String, _ t: S.Type) throws -> String {
                    let env = try JSONDecoder().decode(SignedEnvelope<S>.self, from: Data(text.utf8))
                    return String(decoding: try SignedEnvelope.sign(env.checkpoint, with: outsider).canonicalJSON(), as: UTF8.self)
                }
                guard var vault = try await tx.vault(vaultId) else { throw HostileHarness.Failure(description: "no vault") }
                vault.summaryCheckpoint = try resign(vault.summaryCheckpoint, VaultSummaryCheckpoint.self)
                if logged {
                    vault.summaryLogIndex = try await tx.appendLogLeaf(.checkpoint(.vaultSummary, tenantId: vault.tenantId, subjectId: vaultId,
                                                                                  envelope: vault.summaryCheckpoint))
                }
                try await tx.putVault(vault)
                for var item in try await tx.items(vaultId: vaultId) {
                    item.detailCheckpoint = try resign(item.detailCheckpoint, ItemDetailCheckpoint.self)
                    if logged {
                        item.detailLogIndex = try await tx.appendLogLeaf(.checkpoint(.itemDetail, tenantId: item.tenantId, subjectId: item.id,
                                                                                    envelope: item.detailCheckpoint))
                    }
                    try await tx.putItem(item)
                }
                for var w in try await tx.wrappedKeys(vaultId: vaultId) where w.principalId == agentId {
                    w.statement = try resign(w.statement, WrappedKeyStatement.self)
                    try await tx.putWrappedKey(w)
                }
            }
            let undo: @Sendable (any StoreTransaction) async throws -> Void = { tx in
                try await tx.delete(.publicKeys, id: outsider.publicKey.keyId)
                try await tx.putPublicKey(honestKey)
                try await tx.put(.vaults, honestRows.vault)
                for row in honestRows.items { try await tx.put(.items, row) }
                for row in honestRows.wraps { try await tx.put(.wrappedKeys, row) }
            }
            table.append(try await logAttack(logged ? "key swapped without a rotation statement (logged by the server)"
                                                    : "key swapped without a rotation statement (unlogged)", v, expected: pass,
                                             expect: "without a rotation statement signed by", stage: stage,
                                             undo: { tx in try await undo(tx) }))
        }

        // 3d. Key substitution at share time: the operator shares a second vault to an agent
        //     whose key it has seen; the server serves (and logs) a key of its own for the
        //     agent. The operator's client must not wrap the vault key to it.
        do {
            let pass = secret()
            let v = try await h.victim("subst", [("db", "password", pass)])
            _ = try await h.must("vault", "create", "subst-second")
            _ = try await h.must("verify")   // the operator syncs: the agent's key is pinned
            let outsider = try PrincipalPrivateKey.generate(bits: 2048)
            let agentId = v.agentId
            let honestKey = try #require(try await h.edit { tx in try await tx.activePublicKey(principalId: agentId) })
            try await h.edit { tx in
                var fake = honestKey
                fake.keyId = outsider.publicKey.keyId
                fake.pem = outsider.publicKey.pem
                fake.logIndex = try await tx.appendLogLeaf(.publicKey(fake))
                var retired = honestKey
                retired.status = .retired
                try await tx.putPublicKey(retired)
                try await tx.putPublicKey(fake)
            }
            let share = try await h.latch(["share", "subst-second", "--agent", "bot-subst"])
            let wrapsToOutsider = try await h.edit { tx in
                try await tx.wrappedKeys(principalId: agentId).filter { $0.recipientKeyId == outsider.publicKey.keyId }.count
            }
            try await h.edit { tx in
                try await tx.delete(.publicKeys, id: outsider.publicKey.keyId)
                try await tx.putPublicKey(honestKey)
            }
            let expect = "without a rotation statement signed by"
            #expect(share.code == 65 && share.err.contains(expect), "key substitution at share: \(share.code) \(share.err)")
            #expect(wrapsToOutsider == 0, "the vault key was wrapped to the server's key")
            table.append(AttackOutcome(attack: "member key substituted (and logged) when the operator shares to it",
                                       detected: share.code == 65 && share.err.contains(expect) && wrapsToOutsider == 0, stderr: share.err))
        }

        // 4. Rollback: the log is cut back by one leaf after the agent verified the full tree.
        do {
            let pass = secret()
            let v = try await h.victim("logroll", [("db", "password", pass)])
            _ = try await h.latch(["get", "DB", "--profile", v.profile])
            let size = try await h.edit { tx in try await logSize(tx) }
            let tail = try await h.edit { tx in try await readTail(tx, from: size - 1) }
            table.append(try await logAttack("log rolled back by one leaf", v, expected: pass, expect: "transparency log rolled back",
                                             stage: { tx in try await tx.setSetting("log_size", String(size - 1)) },
                                             undo: { tx in try await restoreTail(tx, tail, from: size - 1) }))
        }

        // 5. Fork at the same size: the last leaf replaced by another.
        do {
            let pass = secret()
            let v = try await h.victim("logfork", [("db", "password", pass)])
            _ = try await h.latch(["get", "DB", "--profile", v.profile])
            let size = try await h.edit { tx in try await logSize(tx) }
            let tail = try await h.edit { tx in try await readTail(tx, from: size - 1) }
            table.append(try await logAttack("log forked (last leaf replaced, same size)", v, expected: pass, expect: "transparency log forked",
                                             stage: { tx in
                                                 try await truncate(tx, to: size - 1)
                                                 _ = try await tx.appendLogLeaf(forgedLeaf())
                                             },
                                             undo: { tx in try await restoreTail(tx, tail, from: size - 1) }))
            // 6. ... and then extended: the client needs a consistency proof, which cannot exist.
            table.append(try await logAttack("log forked and extended (consistency proof)", v, expected: pass, expect: "consistency proof failed",
                                             stage: { tx in
                                                 try await truncate(tx, to: size - 1)
                                                 _ = try await tx.appendLogLeaf(forgedLeaf())
                                                 _ = try await tx.appendLogLeaf(forgedLeaf())
                                             },
                                             undo: { tx in try await restoreTail(tx, tail, from: size - 1) }))
        }

        // Formerly a known gap: a server that appends its forgery to the log. Here the READ-only
        // agent's grant is raised to WRITE and its key re-signs the summary, which the server
        // logs like an accepted write. The log checks pass; the vault's signed writer set, which
        // only an ADMIN's key can change, still does not list the agent.
        do {
            let pass = secret()
            let v = try await h.victim("logged", [("db", "password", pass)])
            let (vaultId, agentId, agentKey) = (v.vaultId, v.agentId, v.agentKey)
            table.append(try await h.attack("forged summary the server also logged (READ member raised to WRITE)", v, read: "DB", expected: pass,
                                            expect: "does not list as a writer") { tx in
                try await raiseToWriteAndResign(tx, vault: vaultId, agent: agentId, key: agentKey)
                guard var vault = try await tx.vault(vaultId) else { throw HostileHarness.Failure(description: "no vault") }
                vault.summaryLogIndex = try await tx.appendLogLeaf(.checkpoint(.vaultSummary, tenantId: vault.tenantId, subjectId: vaultId,
                                                                               envelope: vault.summaryCheckpoint))
                try await tx.putVault(vault)
            })
        }

        // 6b. Split view: two clients shown two histories of the same size. Client A (agent
        //     "gossip") verified the honest log; the server then forks its last leaf and shows
        //     the fork to client B (agent "gossip2", seeing the log for the first time, so it
        //     pins the fork: trust on first use). Neither can tell alone; B checking A's signed
        //     tree head as a witness (`latch verify --witness`) can.
        do {
            let pa = secret(), pb = secret()
            let a = try await h.victim("gossip", [("db", "password", pa)])
            let b = try await h.victim("gossip2", [("db", "password", pb)])
            _ = try await h.must("vault", "create", "gossip-filler")   // the leaf to fork belongs to neither agent
            let first = try await h.latch(["verify", "--profile", a.profile, "--print-head"])
            #expect(first.code == 0 && first.out.contains("latchkey.log"), "\(first.err)")
            let headFile = h.server.dir + "/gossip-head.txt"
            try Data(first.out.utf8).write(to: URL(fileURLWithPath: headFile))
            let trustB = ProfileStore(home: h.env["LATCH_HOME"] ?? "").logTrustPath(b.profile)
            try FileManager.default.removeItem(atPath: trustB)   // B: a new machine, never saw this log
            let size = try await h.edit { tx in try await logSize(tx) }
            let tail = try await h.edit { tx in try await readTail(tx, from: size - 1) }
            try await h.edit { tx in
                try await truncate(tx, to: size - 1)
                _ = try await tx.appendLogLeaf(forgedLeaf())
            }
            let alone = try await h.latch(["verify", "--profile", b.profile])
            let gossip = try await h.latch(["verify", "--profile", b.profile, "--witness", headFile])
            try await h.edit { tx in try await restoreTail(tx, tail, from: size - 1) }
            #expect(alone.code == 0, "B alone cannot see the fork (trust on first use): \(alone.err)")
            let expect = "transparency log split view"
            #expect(gossip.code == 65 && gossip.err.contains(expect), "split view: \(gossip.code) \(gossip.err)")
            #expect(!gossip.out.contains(pb) && !gossip.err.contains(pb))
            // and with the honest log back, the same witness agrees
            let agreed = try await h.latch(["verify", "--profile", a.profile, "--witness", headFile])
            #expect(agreed.code == 0 && agreed.out.contains("witness:"), "\(agreed.err)")
            table.append(AttackOutcome(attack: "two clients shown two log histories (checked with --witness)",
                                       detected: gossip.code == 65 && gossip.err.contains(expect), stderr: gossip.err))
        }

        // 7. The server restarted with another log key (the store's recorded key edited to match):
        //    every profile that pinned the old key refuses, naming both keys.
        do {
            let pass = secret()
            let v = try await h.victim("newkey", [("db", "password", pass)])
            let first = try await h.latch(["get", "DB", "--profile", v.profile])
            #expect(first.code == 0 && first.out == pass, "\(first.err)")
            let old = try NoteSigner(secretKeyString: try String(contentsOfFile: h.server.dir + "/data/log-key", encoding: .utf8)
                .trimmingCharacters(in: .whitespacesAndNewlines)).verifier.keyString
            h.server.stop()
            let signer = try NoteSigner.generate(name: "latchkey.log/attacker")
            let keyFile = h.server.dir + "/attacker-log-key"
            try Data((signer.secretKeyString + "\n").utf8).write(to: URL(fileURLWithPath: keyFile))
            let new = signer.verifier.keyString
            try await h.edit { tx in try await tx.setSetting("log_verifier_key", new) }
            let server = try TestServer(reusing: h.server.dir, environment: ["LATCH_LOG_KEY_FILE": keyFile])
            restarted = server
            let env = h.env.merging(["LATCH_BASE_URL": server.url]) { $1 }
            let results = [try await LatchProcess.run(["get", "DB", "--profile", v.profile], env: env),
                           try await LatchProcess.run(["verify", "--profile", v.profile], env: env),
                           try await LatchProcess.run(["vault", "items", "newkey"], env: env)]   // the operator too
            let expect = "transparency log key changed"
            for r in results {
                #expect(r.code == 65 && r.err.contains(expect) && r.err.contains(old) && r.err.contains(new), "log key swap: \(r.err)")
                #expect(!r.out.contains(pass) && !r.err.contains(pass))
            }
            table.append(AttackOutcome(attack: "log key swapped (server restarted with another key)",
                                       detected: results.allSatisfy { $0.code == 65 && $0.err.contains(expect) }, stderr: results[0].err))
        }

        print(AttackOutcome.table(table, since: start))
        #expect(table.count == 12)
        for row in table where !row.detected { Issue.record("not detected: \(row.attack)") }
    }
}
