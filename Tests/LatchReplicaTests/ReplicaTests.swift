import Foundation
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
