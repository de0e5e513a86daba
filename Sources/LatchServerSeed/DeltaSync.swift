// `latch-server-seed delta-sync LATCH_BIN [--small N] [--large N] [--vault-items N] [--runs R]`:
// the delta-sync goal of the server load benchmark (issue 3). For each tenant size it seeds a
// fresh SQLite store directly through the domain (bootstrap through LatchService, then vaults of
// `--vault-items` items, one field each, with their change-log rows: fast, and no checkpoint is
// verified on this path), starts the real `latch serve` on it, and times R delta syncs
// (`GET /sync?cursor=…&logFrom=…`, what a verifying client sends) each after one change. The
// change is written to the same SQLite file by this process while the server runs (the item, one
// field and the vault, with their three change rows: what an edit records); the timed request
// goes through the real HTTP server. Prints both medians and their ratio (goal <= 2x).
import Foundation
import LatchBenchSupport
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import LatchCrypto
import LatchDomain
import LatchStoreSQLite
import LatchWire

enum DeltaSyncBench {
    struct Outcome { var items: Int; var vaults: Int; var seedSeconds: Double; var samples: [Double]; var rssMB: Double; var dbMB: Double }

    static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
    static func median(_ xs: [Double]) -> Double {
        let s = xs.sorted()
        return s.isEmpty ? .nan : (s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2)
    }
    static func f(_ x: Double, _ d: Int = 2) -> String { String(format: "%.\(d)f", x) }

    static func main(_ arguments: [String]) async {
        var args = arguments[...]
        guard let bin = args.popFirst() else { fail("usage: latch-server-seed delta-sync LATCH_BIN [--small 1000] [--large 100000] [--vault-items 1000] [--runs 20]") }
        var small = 1000, large = 100_000, perVault = 1000, runs = 20
        while let a = args.popFirst() {
            guard let v = args.popFirst().flatMap(Int.init), v > 0 else { fail("\(a) needs a positive integer") }
            switch a {
            case "--small": small = v
            case "--large": large = v
            case "--vault-items": perVault = v
            case "--runs": runs = v
            default: fail("unknown option \(a)")
            }
        }
        do {
            let a = try await measure(bin: bin, items: small, perVault: perVault, runs: runs)
            let b = try await measure(bin: bin, items: large, perVault: perVault, runs: runs)
            func line(_ o: Outcome) -> String {
                "tenant of \(o.items) items (\(o.vaults) vaults): delta sync median \(f(median(o.samples))) ms, "
                    + "min \(f(o.samples.min() ?? .nan)) ms, max \(f(o.samples.max() ?? .nan)) ms over \(o.samples.count) runs; "
                    + "seeded in \(f(o.seedSeconds, 1)) s, database \(f(o.dbMB, 1)) MB, server peak RSS \(f(o.rssMB, 1)) MB"
            }
            print(line(a))
            print(line(b))
            let ratio = median(b.samples) / median(a.samples)
            print("delta sync \(large)/\(small) items ratio: \(f(ratio))x   (goal <= 2x: \(ratio <= 2 ? "met" : "NOT MET"))")
        } catch {
            fail("\(error)")
        }
    }

    static func measure(bin: String, items: Int, perVault: Int, runs: Int) async throws -> Outcome {
        let dir = NSTemporaryDirectory() + "latch-delta-\(UUID().uuidString.lowercased())"
        let data = dir + "/data"
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let dbPath = data + "/latch.sqlite"

        // Seed, then close the store before the server opens it.
        let t0 = now()
        let seeded = try await seed(path: dbPath, items: items, perVault: perVault)
        let seedSeconds = Double(now() - t0) / 1e9

        let started = try BenchServer(binary: bin, dir: dir)
        let (server, base) = (started.process, started.url)
        defer { server.terminate(); server.waitUntilExit() }
        let store = try await SQLiteLatchStore.open(path: dbPath, readers: 1)
        var samples: [Double] = []
        do {
            var cursor = LatchService.encodeCursor(try await store.read { try await $0.lastChangeSeq(tenantId: seeded.tenantId) })
            var logFrom: Int64 = 0
            for run in 0..<(runs + 2) {   // the first two are warm-up
                let k = (run * 7919) % seeded.items.count
                try await change(store, seeded, index: k, run: run)
                let t = now()
                let c = cursor.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? cursor
                let r = try await get(base + LatchRoutes.sync + "?cursor=\(c)&logFrom=\(logFrom)", key: seeded.apiKey)
                let ms = Double(now() - t) / 1e6
                guard !r.full, r.items.map(\.item.id) == [seeded.items[k].id], r.fields.count == 1, r.vaults.count == 1 else {
                    throw Failure("delta sync after one change answered full=\(r.full), \(r.items.count) items, \(r.fields.count) fields, \(r.vaults.count) vaults")
                }
                cursor = r.cursor
                logFrom = r.log?.head.treeSize ?? logFrom
                if run >= 2 { samples.append(ms) }
            }
        } catch {
            await store.close()
            throw error
        }
        await store.close()
        let rss = (try? String(contentsOfFile: "/proc/\(server.processIdentifier)/status", encoding: .utf8))?
            .split(separator: "\n").first { $0.hasPrefix("VmHWM:") }
            .flatMap { Double($0.split(separator: " ").dropFirst().first ?? "") }.map { $0 / 1024 } ?? .nan
        let db = ((try? FileManager.default.attributesOfItem(atPath: dbPath)[.size] as? NSNumber)?.doubleValue ?? .nan) / 1e6
        return Outcome(items: items, vaults: seeded.vaultIds.count, seedSeconds: seedSeconds, samples: samples, rssMB: rss, dbMB: db)
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ d: String) { description = d }
    }

    struct Seeded: Sendable { var apiKey: String; var tenantId: String; var userId: String; var vaultIds: [String]; var items: [Item]; var fieldIds: [String] }

    /// Bootstraps through the domain (a real API key) and writes `items` items in vaults of
    /// `perVault`, each with one field, plus the change rows an item creation records.
    static func seed(path: String, items n: Int, perVault: Int) async throws -> Seeded {
        let store = try await SQLiteLatchStore.open(path: path, readers: 1)
        do {
            let service = LatchService(store: store)
            guard let token = try await service.prepareBootstrap() else { throw Failure("the fresh store is already bootstrapped") }
            let key = try PrincipalPrivateKey.generate(bits: 2048)
            let boot = try await service.bootstrap(token: token, publicKeyPEM: key.publicKey.pem, organisationName: "bench",
                                                   tenantName: "bench", userName: "bench", source: nil)
            let tenant = boot.tenant.id, user = boot.user.id
            var vaultIds: [String] = [], all: [Item] = [], fieldIds: [String] = []
            all.reserveCapacity(n); fieldIds.reserveCapacity(n)
            let date = Date()
            var made = 0
            while made < n {
                let count = min(perVault, n - made)
                let vaultId = UUID().uuidString.lowercased()
                let ids = (0..<count).map { _ in (UUID().uuidString.lowercased(), UUID().uuidString.lowercased()) }
                // A summary-sized placeholder: a real summary lists every item of the vault.
                let summary = "{\"placeholder\":\"" + ids.map(\.0).joined(separator: ",") + "\"}"
                let vault = Vault(id: vaultId, tenantId: tenant, projectId: nil, name: "vault\(vaultIds.count)", dataClassification: "INTERNAL",
                                  currentDekVersion: 1, summaryVersion: count + 1, summaryCheckpoint: summary, createdBy: user,
                                  createdAt: date, updatedAt: date, archived: false)
                let batch: [(Item, Field)] = ids.enumerated().map { j, id in
                    let item = Item(id: id.0, vaultId: vaultId, tenantId: tenant, name: "item\(made + j)", type: "API_KEY", websites: [],
                                    groupId: nil, detailVersion: 1, detailHash: String(repeating: "0", count: 64),
                                    detailCheckpoint: String(repeating: "d", count: 700), createdAt: date, updatedAt: date, archived: false)
                    let field = Field(id: id.1, itemId: id.0, vaultId: vaultId, tenantId: tenant, name: "value", type: "SECRET", order: 0,
                                      isEnvironmentVariable: true, envelope: String(repeating: "e", count: 120), updatedAt: date)
                    return (item, field)
                }
                try await store.write { tx in
                    _ = try await tx.insertVault(vault)
                    _ = try await tx.appendChange(tenantId: tenant, kind: .vault, entityId: vaultId, vaultId: vaultId)
                    for (item, field) in batch {
                        _ = try await tx.insertItem(item)
                        _ = try await tx.insertField(field)
                        _ = try await tx.appendChange(tenantId: tenant, kind: .field, entityId: field.id, vaultId: vaultId)
                        _ = try await tx.appendChange(tenantId: tenant, kind: .item, entityId: item.id, vaultId: vaultId)
                    }
                }
                vaultIds.append(vaultId)
                all += batch.map(\.0); fieldIds += batch.map(\.1.id)
                made += count
            }
            await store.close()
            return Seeded(apiKey: boot.apiKey.apiKey, tenantId: tenant, userId: user, vaultIds: vaultIds, items: all, fieldIds: fieldIds)
        } catch {
            await store.close()
            throw error
        }
    }

    /// One edit: a new field value, the item's next detail version and the vault's next summary,
    /// with the change rows an item update records.
    static func change(_ store: SQLiteLatchStore, _ s: Seeded, index k: Int, run: Int) async throws {
        let itemId = s.items[k].id, fieldId = s.fieldIds[k]
        try await store.write { tx in
            guard var item = try await tx.item(itemId), var field = try await tx.field(fieldId), var vault = try await tx.vault(item.vaultId) else {
                throw Failure("seeded rows are missing")
            }
            let date = Date()
            field.envelope = "changed-\(run)-" + String(repeating: "e", count: 110); field.updatedAt = date
            item.detailVersion += 1; item.updatedAt = date
            vault.summaryVersion += 1; vault.updatedAt = date
            try await tx.putField(field)
            try await tx.putItem(item)
            try await tx.putVault(vault)
            _ = try await tx.appendChange(tenantId: s.tenantId, kind: .field, entityId: field.id, vaultId: vault.id)
            _ = try await tx.appendChange(tenantId: s.tenantId, kind: .item, entityId: item.id, vaultId: vault.id)
            _ = try await tx.appendChange(tenantId: s.tenantId, kind: .vault, entityId: vault.id, vaultId: vault.id)
        }
    }

    static func get(_ url: String, key: String) async throws -> SyncResponse {
        guard let u = URL(string: url) else { throw Failure("bad URL \(url)") }
        var req = URLRequest(url: u)
        req.setValue(key, forHTTPHeaderField: "X-API-Key")
        let (data, resp) = try await URLSession.shared.data(for: req)
        guard let http = resp as? HTTPURLResponse, http.statusCode == 200 else {
            throw Failure("GET \(u.path) failed: \(String(decoding: data.prefix(500), as: UTF8.self))")
        }
        return try LatchJSON.decoder().decode(SyncResponse.self, from: data)
    }

    /// Starts `latch serve` on a free port; returns the process and its base URL.
}
