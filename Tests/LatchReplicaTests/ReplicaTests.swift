import Foundation
import LatchClient
import LatchCrypto
import LatchDomain
import LatchStorePostgres
import LatchWire
import Testing

/// Real `latch serve` processes on PostgreSQL (issue 7).
@Suite(.enabled(if: Env.databaseURL != nil, Env.skipReason), .serialized)
struct ReplicaTests {
    /// Two replicas on one database: writes through one are read (and verified) through the
    /// other; concurrent writes of the same version through both end with exactly one winner
    /// and a 409 for the other; the audit chain verifies afterwards.
    @Test func twoReplicasShareOneDatabase() async throws {
        let base = try #require(Env.databaseURL)
        let schema = Env.freshSchema()
        let url = Env.url(base, ["schema": schema])
        let a = try ServeProcess(databaseURL: url)
        // Replicas share the transparency log key (a makes it in its data dir on first start).
        let b = try ServeProcess(databaseURL: url, logKeyFile: a.dataDir.appendingPathComponent("log-key").path)
        defer { a.stop(); b.stop() }
        try await a.start()
        let op = try await Operator().bootstrap(a)
        try await b.start()  // after bootstrap: b finds the database bootstrapped and prints no token
        #expect(b.bootstrapToken == nil)
        // A replica with a log key of its own would sign a different log: it refuses to start.
        let stranger = try ServeProcess(databaseURL: url)
        defer { stranger.stop() }
        await #expect(throws: TestFailure.self) { try await stranger.start() }
        #expect(stranger.output.get.contains("log_key_mismatch"), "\(stranger.output.get)")

        let vaultId = UUID().uuidString.lowercased()
        let created = try await op.createVault(a, id: vaultId, name: "shared")
        #expect(created.status == 201, "create: \(String(decoding: created.body, as: UTF8.self))")
        let (readB, cpB) = try await op.readVault(b, id: vaultId)
        #expect(readB.status == 200)
        #expect(cpB?.name == "shared" && cpB?.version == 1, "a write through replica A is read and verified through B")

        // Race: for each version, replica A and replica B each try to move the vault to it.
        var version = 1
        for round in 0..<6 {
            let next = version + 1
            async let ra = op.updateVault(a, id: vaultId, version: next, name: "A-\(next)")
            async let rb = op.updateVault(b, id: vaultId, version: next, name: "B-\(next)")
            let (x, y) = try await (ra, rb)
            let statuses = [x.status, y.status].sorted()
            #expect(statuses == [200, 409], "round \(round): statuses \(statuses) (\(x.code ?? "-"), \(y.code ?? "-"))")
            let loser = x.status == 409 ? x : y
            #expect(["stale_version", "write_conflict"].contains(loser.code ?? ""), "the loser sees a conflict code, got \(loser.code ?? "none")")
            let winnerName = x.status == 200 ? "A-\(next)" : "B-\(next)"
            for server in [a, b] {
                let (_, cp) = try await op.readVault(server, id: vaultId)
                #expect(cp?.version == next && cp?.name == winnerName, "both replicas serve the winner of v\(next)")
            }
            version = next
        }

        // The audit chain (written by both replicas) verifies, and records every race.
        var config = try PostgresStoreConfiguration(url: url)
        config.poolSize = 2
        config.relaxTimeoutsForSharedTestThreads()
        let store = try await PostgresLatchStore.open(config)
        let count = try await verifyAuditChain(store)
        let updates = try await store.read { tx in try await tx.auditEvents(AuditFilter(action: "vault.update")) }
        #expect(updates.filter { $0.outcome == "success" }.count == 6)
        #expect(updates.filter { $0.outcome != "success" }.count == 6)
        #expect(count >= 14)
        let changes = try await store.read { tx in try await tx.changes(tenantId: updates.first?.tenantId ?? "", afterSeq: 0, limit: 1000) }
        #expect(changes.map(\.seq) == changes.map(\.seq).sorted() && !changes.isEmpty)
        await store.close()
    }

    /// An API key issued through one replica works through the other; revoked through the first,
    /// it stops there at once and on the other within its 5 s authentication cache: the key's
    /// state lives in the database, not in either process.
    @Test func apiKeyRevokedThroughOneReplicaStopsOnTheOther() async throws {
        let base = try #require(Env.databaseURL)
        let url = Env.url(base, ["schema": Env.freshSchema()])
        let a = try ServeProcess(databaseURL: url)
        let b = try ServeProcess(databaseURL: url, logKeyFile: a.dataDir.appendingPathComponent("log-key").path)
        defer { a.stop(); b.stop() }
        try await a.start()
        let op = try await Operator().bootstrap(a)
        try await b.start()
        let issued = try await HTTP.call("POST", a.base + LatchRoutes.apiKeys, apiKey: op.apiKey,
                                         json: CreateAPIKeyRequest(permissions: ["machine.vault.read"]))
        #expect(issued.status == 201, "\(String(decoding: issued.body, as: UTF8.self))")
        let key = try #require(try issued.decode(APIKeyInfo.self).apiKey)
        let access = String(key.split(separator: ".")[0])
        #expect(try await HTTP.call("GET", b.base + LatchRoutes.me, apiKey: key).status == 200)   // B now caches it
        let listed = try await HTTP.call("GET", b.base + LatchRoutes.apiKeys, apiKey: op.apiKey).decode(APIKeyListResponse.self)
        #expect(listed.apiKeys.contains { $0.accessKey == access })
        let revoked = try await HTTP.call("DELETE", a.base + LatchRoutes.apiKey(access), apiKey: op.apiKey)
        #expect(revoked.status == 200)
        let at = Date()
        #expect(try await HTTP.call("GET", a.base + LatchRoutes.me, apiKey: key).status == 401)
        var refusedOnB: TimeInterval?
        while Date().timeIntervalSince(at) < 10 {
            if try await HTTP.call("GET", b.base + LatchRoutes.me, apiKey: key).status == 401 { refusedOnB = Date().timeIntervalSince(at); break }
            try await Task.sleep(for: .milliseconds(200))
        }
        let after = try #require(refusedOnB, "replica B still accepted the revoked key 10 s later")
        #expect(after <= 6, "replica B refused the revoked key only after \(after) s (its cache keeps a key 5 s)")
        #expect(try await HTTP.call("GET", b.base + LatchRoutes.me, apiKey: op.apiKey).status == 200)
    }

    /// The same with real clients. The operator's `latch` CLI writes through replica A; an
    /// agent's CLI reads through replica B, and an SDK client (full transparency-log checks, the
    /// default) delta-syncs through B and sees A's writes. Both replicas serve one log: each
    /// side's `latch verify --print-head` checks as a witness on the other side's client.
    /// Operator SDK clients on A and on B that race to move the vault to the same version end
    /// with one winner and a `LatchError(.conflict)` (409) for the other; afterwards every
    /// client's `latch verify` passes and the audit chain verifies.
    @Test func clientsWriteThroughOneReplicaAndReadThroughTheOther() async throws {
        let url = Env.url(try #require(Env.databaseURL), ["schema": Env.freshSchema()])
        let a = try ServeProcess(databaseURL: url)
        let b = try ServeProcess(databaseURL: url, logKeyFile: a.dataDir.appendingPathComponent("log-key").path)
        defer { a.stop(); b.stop() }
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("latch-clients-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        // Two client machines: the operator's (talks to A) and the agent's (talks to B).
        let homeA = root.appendingPathComponent("client-a").path, homeB = root.appendingPathComponent("client-b").path
        @discardableResult
        func must(_ home: String, _ args: String..., stdin: String? = nil) async throws -> LatchCLI.Result {
            let r = try await LatchCLI.run(args, env: ["PATH": "/usr/bin:/bin", "LATCH_HOME": home, "HOME": root.path], stdin: stdin)
            guard r.code == 0 else { throw TestFailure("latch \(args.joined(separator: " ")) exited \(r.code): \(r.err)") }
            return r
        }
        func logKey(_ verifyJSON: LatchCLI.Result) -> String? {
            ((try? JSONSerialization.jsonObject(with: Data(verifyJSON.out.utf8))) as? [String: Any]).flatMap { $0["log"] as? [String: Any] }?["logKey"] as? String
        }
        func secret() -> String { "rv-" + UUID().uuidString.lowercased() }

        try await a.start()
        try await must(homeA, "init", "--server", a.base, "--token", try #require(a.bootstrapToken), "--name", "op")
        try await b.start()
        #expect(b.bootstrapToken == nil, "B finds the database bootstrapped")
        try await must(homeA, "vault", "create", "prod")
        let v1 = secret()
        try await must(homeA, "secret", "set", "prod", "db", "--field", "password", stdin: v1)
        let agentFile = root.appendingPathComponent("bot.json")
        try await must(homeA, "agent", "create", "bot", "--vault", "prod", "--out", agentFile.path)
        // The agent lives on replica B: its runtime config names B, not A.
        var runtime = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: agentFile)) as? [String: Any])
        runtime["baseUrl"] = b.base
        let agentOnB = root.appendingPathComponent("bot-on-b.json")
        try JSONSerialization.data(withJSONObject: runtime).write(to: agentOnB)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: agentOnB.path)
        try await must(homeB, "configure", "agent", "--config", agentOnB.path, "--profile", "bot")
        let got = try await must(homeB, "get", "DB", "--profile", "bot")
        let readFirst = got.out == v1
        #expect(readFirst, "a secret written through A is read (and verified) by a client of B")

        // An SDK client of B syncs, then A's writes reach it as a delta sync through B.
        let transport = SyncRecordingTransport()
        let reader = try await Latch.create(profile: "bot", environment: ["LATCH_HOME": homeB], transport: transport)
        #expect(reader.configuration.baseURL.absoluteString.hasPrefix(b.base))
        let readerSaw1 = reader.env["DB"] == v1
        #expect(readerSaw1)
        let before = try #require(reader.lastLogReport)
        let vaultId = try #require(reader.verifiedVaults.first { $0.name == "prod" }?.id)
        // B reuses repeated field and item reads; a write through A ends that at once.
        let agentKey = "\(runtime["accessKey"] as? String ?? "").\(runtime["accessSecret"] as? String ?? "")"
        func get(_ server: ServeProcess, _ path: String) async throws -> HTTPResult {
            let r = try await HTTP.call("GET", server.base + path, apiKey: agentKey)
            #expect(r.status == 200, "GET \(path): \(r.status) \(r.code ?? "")")
            return r
        }
        let items = try await get(b, LatchRoutes.vaultItems(vaultId)).decode(VaultItemsResponse.self)
        let itemPath = LatchRoutes.vaultItem(vaultId, try #require(items.items.first { $0.name == "db" }?.id))
        let fieldId = try #require(try await get(b, itemPath).decode(ItemDetailResponse.self).fields.first?.id)
        let fieldPath = LatchRoutes.field(vaultId, fieldId)
        let fieldBefore = try await get(b, fieldPath).body, itemBefore = try await get(b, itemPath).body
        for _ in 0..<3 {
            #expect(try await get(b, fieldPath).body == fieldBefore)
            #expect(try await get(b, itemPath).body == itemBefore)
        }
        let v2 = secret(), v3 = secret()
        try await must(homeA, "secret", "set", "prod", "db", "--field", "password", stdin: v2)
        for path in [fieldPath, itemPath] {
            let (onB, onA) = (try await get(b, path).body, try await get(a, path).body)
            #expect(onB == onA, "B answers \(path) as A does after A's write")
        }
        let (fieldAfter, itemAfter) = (try await get(b, fieldPath).body, try await get(b, itemPath).body)
        #expect(fieldAfter != fieldBefore && itemAfter != itemBefore, "B answered a read it had reused from before A's write")
        try await must(homeA, "secret", "set", "prod", "api", "--field", "key", stdin: v3)
        try await reader.refresh()
        let readerSaw23 = reader.env["DB"] == v2 && reader.env["API"] == v3
        #expect(readerSaw23, "the SDK client of B sees both writes made through A")
        let syncs = transport.syncs.get
        #expect(syncs.count == 2 && syncs.first?.full == true, "\(syncs)")
        if let delta = syncs.last {
            #expect(delta.query.contains("cursor=") && !delta.full, "the second sync is a delta from B's cursor: \(delta)")
            #expect(delta.items == 2, "the delta carries the two items written through A: \(delta)")
        }
        let after = try #require(reader.lastLogReport)
        #expect(after.treeSize > before.treeSize && after.previousTreeSize == before.treeSize && after.consistencyProofVerified,
                "the log grown by A's writes is proven consistent through B: \(before.treeSize) -> \(after.treeSize)")

        // One log: both clients pinned one key, and each side's tree head checks on the other side.
        let keyA = logKey(try await must(homeA, "verify", "--json"))
        let keyB = logKey(try await must(homeB, "verify", "--profile", "bot", "--json"))
        #expect(keyA != nil && keyA == keyB, "clients of A and B pinned one log key: \(keyA ?? "-") / \(keyB ?? "-")")
        func witness(from home: String, _ fromArgs: [String], on other: String, _ otherArgs: [String]) async throws {
            let head = try await LatchCLI.run(["verify", "--print-head"] + fromArgs,
                                              env: ["PATH": "/usr/bin:/bin", "LATCH_HOME": home, "HOME": root.path])
            #expect(head.code == 0 && head.out.contains("latchkey.log"), "\(head.err)")
            let file = root.appendingPathComponent("head-\(UUID().uuidString).txt")
            try Data(head.out.utf8).write(to: file)
            let checked = try await LatchCLI.run(["verify", "--witness", file.path] + otherArgs,
                                                 env: ["PATH": "/usr/bin:/bin", "LATCH_HOME": other, "HOME": root.path])
            #expect(checked.code == 0 && checked.out.contains("witness:      tree head of size"), "\(checked.out) \(checked.err)")
        }
        try await witness(from: homeA, [], on: homeB, ["--profile", "bot"])
        try await witness(from: homeB, ["--profile", "bot"], on: homeA, [])

        // Race: operator clients on A and on B both move the vault from the version they read.
        let opA = try await Latch.create(environment: ["LATCH_HOME": homeA])
        let opB = try await Latch.create(baseURL: b.base, environment: ["LATCH_HOME": homeA])
        let rounds = 4
        var wins = ["A": 0, "B": 0]
        for round in 0..<rounds {
            try await opA.refresh()
            try await opB.refresh()
            let va = try #require(opA.verifiedVaults.first { $0.id == vaultId })
            let vb = try #require(opB.verifiedVaults.first { $0.id == vaultId })
            #expect(va.summaryVersion == vb.summaryVersion, "round \(round): both replicas serve one version")
            let next = va.summaryVersion + 1
            async let fromA = Self.rename(opA, va.summary, to: "A-\(next)")
            async let fromB = Self.rename(opB, vb.summary, to: "B-\(next)")
            let (ea, eb) = await (fromA, fromB)
            #expect((ea == nil) != (eb == nil), "round \(round): exactly one winner (A: \(ea.map { "\($0)" } ?? "ok"), B: \(eb.map { "\($0)" } ?? "ok"))")
            for e in [ea, eb].compactMap({ $0 }) {
                let conflict = e as? LatchError
                #expect(conflict?.kind == .conflict && conflict?.status == 409
                        && ["stale_version", "write_conflict"].contains(conflict?.serverCode ?? ""),
                        "round \(round): the loser's client sees a conflict, got \(e)")
            }
            let winner = ea == nil ? "A" : "B"
            wins[winner, default: 0] += 1
            try await reader.refresh()
            let seen = reader.verifiedVaults.first { $0.id == vaultId }
            #expect(seen?.summaryVersion == next && seen?.name == "\(winner)-\(next)",
                    "round \(round): the client of B verifies the winner of v\(next) (\(seen?.name ?? "none"))")
        }
        print("replica race: \(rounds) rounds, wins through A \(wins["A"] ?? 0), through B \(wins["B"] ?? 0)")
        let stillReads = reader.env["DB"] == v2 && reader.env["API"] == v3
        #expect(stillReads)

        // Afterwards: every client verifies the log, the heads still agree, the audit chain verifies.
        try await must(homeA, "verify")
        try await must(homeB, "verify", "--profile", "bot")
        try await witness(from: homeB, ["--profile", "bot"], on: homeA, [])
        var config = try PostgresStoreConfiguration(url: url)
        config.poolSize = 1
        config.relaxTimeoutsForSharedTestThreads()
        let store = try await PostgresLatchStore.open(config)
        let audited = try await verifyAuditChain(store)
        let updates = try await store.read { tx in try await tx.auditEvents(AuditFilter(action: "vault.update")) }
        await store.close()
        #expect(updates.filter { $0.outcome == "success" }.count == rounds)
        #expect(updates.filter { $0.outcome != "success" }.count == rounds, "every lost race is audited")
        #expect(audited > 2 * rounds)
    }

    /// Signs `summary` moved to its next version under `name` and sends it through `client`;
    /// nil when the server accepted it, else the error the client saw.
    static func rename(_ client: Latch, _ summary: VaultSummaryCheckpoint, to name: String) async -> (any Error)? {
        do {
            var s = summary
            s.version += 1
            s.name = name
            let text = String(decoding: try JSONEncoder().encode(SignedEnvelope.sign(s, with: client.privateKey)), as: UTF8.self)
            _ = try await client.http.postJSON(VaultResponse.self, LatchRoutes.updateVault(s.vaultId),
                                               body: UpdateVaultRequest(summaryCheckpoint: text), method: "PATCH")
            return nil
        } catch { return error }
    }

    /// PostgreSQL stops under load and starts again: requests fail with 503 while it is down,
    /// nothing acknowledged is lost, and service resumes without restarting `latch serve`.
    @Test func databaseOutageUnderLoad() async throws {
        func trace(_ s: String) { FileHandle.standardError.write(Data("outage: \(s)\n".utf8)) }
        let cluster = try PrivateCluster()
        defer { cluster.destroy() }
        trace("initdb done")
        try cluster.start()
        trace("cluster started")
        let url = Env.url(cluster.url, ["connect_timeout": "2", "pool_size": "4"])
        let server = try ServeProcess(databaseURL: url)
        defer { server.stop() }
        try await server.start()
        trace("server started")
        let op = try await Operator().bootstrap(server)
        let vaultId = UUID().uuidString.lowercased()
        #expect(try await op.createVault(server, id: vaultId, name: "v1").status == 201)
        trace("vault created")

        struct Tally { var acked: [Int] = []; var unavailable = 0; var other: [String] = []; var readsOK = 0; var reads503 = 0 }
        let tally = Locked(Tally())
        let stop = Locked(false)
        // One writer moving the vault version by version; on an unknown outcome (503) it
        // re-reads the current version before going on.
        let writer = Task {
            var version = 1
            while !stop.get {
                let r = try await op.updateVault(server, id: vaultId, version: version + 1, name: "v\(version + 1)")
                switch r.status {
                case 200: version += 1; tally.with { $0.acked.append(version) }
                case 503:
                    tally.with { $0.unavailable += 1; if r.code != "store_unavailable" { $0.other.append("503 \(r.code ?? "-")") } }
                    try await Task.sleep(for: .milliseconds(100))
                case 409:
                    let (cur, cp) = try await op.readVault(server, id: vaultId)
                    if cur.status == 200, let cp { version = cp.version }
                default: tally.with { $0.other.append("\(r.status) \(r.code ?? "-")") }
                }
            }
        }
        let reader = Task {
            while !stop.get {
                let r = try await HTTP.call("GET", server.base + "/api/v1/machine/vault/\(vaultId)", apiKey: op.apiKey)
                tally.with { if r.status == 200 { $0.readsOK += 1 } else if r.status == 503 { $0.reads503 += 1 } }
                if r.status != 200 { try await Task.sleep(for: .milliseconds(100)) }
            }
        }
        try await Task.sleep(for: .seconds(2))
        let ackedBefore = tally.get.acked.count
        trace("stopping PostgreSQL after \(ackedBefore) writes")
        try cluster.stop()
        trace("stopped")
        try await Task.sleep(for: .seconds(6))
        let duringOutage = tally.get
        trace("starting PostgreSQL again: \(duringOutage.unavailable) + \(duringOutage.reads503) answers were 503")
        try cluster.start()
        // Service resumes by itself: wait for new acknowledged writes.
        let resumedBy = ContinuousClock.now + .seconds(60)
        var resumed = false
        while ContinuousClock.now < resumedBy {
            if tally.get.acked.count > duringOutage.acked.count + 2 { resumed = true; break }
            try await Task.sleep(for: .milliseconds(200))
        }
        stop.with { $0 = true }
        _ = await writer.result
        _ = await reader.result
        let t = tally.get
        #expect(ackedBefore > 0, "writes succeeded before the outage")
        #expect(t.unavailable + t.reads503 > 0, "requests failed with 503 while PostgreSQL was down")
        // A write caught mid-transaction when PostgreSQL stopped is answered at once, not left
        // waiting on its closed connection until the statement deadline (15 s).
        #expect(duringOutage.unavailable > 0, "writes were answered 503 during the outage (\(duringOutage.acked.count - ackedBefore) acknowledged)")
        #expect(t.other.isEmpty, "unexpected answers: \(t.other.prefix(5))")
        #expect(resumed, "writes resumed after PostgreSQL came back, without restarting latch serve; its output:\n\(server.output.get)")
        // Nothing acknowledged is lost: the vault is at (or, after an unknown outcome, one past)
        // the last acknowledged version, and every acknowledged update is in the audit chain.
        let (final, cp) = try await op.readVault(server, id: vaultId)
        #expect(final.status == 200)
        let lastAcked = t.acked.last ?? 1
        #expect((cp?.version ?? 0) >= lastAcked)
        var config = try PostgresStoreConfiguration(url: cluster.url)
        config.poolSize = 1
        config.relaxTimeoutsForSharedTestThreads()
        let store = try await PostgresLatchStore.open(config)
        #expect(try await verifyAuditChain(store) > t.acked.count)
        let ok = try await store.read { tx in try await tx.auditEvents(AuditFilter(action: "vault.update", outcome: "success", limit: 100_000)) }
        #expect(ok.count >= t.acked.count)
        await store.close()
    }
}
