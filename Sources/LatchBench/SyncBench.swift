// `latch-bench sync`: what the transparency-log checks add to a client sync (issue 5), each
// figure beside the same sync without them, measured in the same run against a real
// `latch serve` on a temporary SQLite store. See docs/benchmarks.md.
//
//     swift build -c release --product latch && swift build -c release --product latch-bench
//     .build/release/latch-bench sync [--items 1000] [--runs 5] [--deltas 20] [--leaves 1000000]
//
// "Unverified" is the same client with `unsafeSkipTransparencyLogForBenchmark` set (an SPI flag
// only this benchmark imports): every vault check (signatures, wraps, envelopes) still runs,
// only the log's tree head, consistency and inclusion checks are skipped.
import Foundation
import LatchBenchSupport
@_spi(Benchmark) import LatchClient
import LatchCrypto
import LatchLog
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

enum SyncBench {
    struct Failure: Error, CustomStringConvertible { var description: String }

    static func main(_ arguments: [String]) async {
        do { try await run(arguments) } catch {
            FileHandle.standardError.write(Data("latch-bench sync: \(error)\n".utf8))
            exit(1)
        }
    }

    static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
    static func ms(_ since: UInt64) -> Double { Double(now() &- since) / 1e6 }
    static func median(_ xs: [Double]) -> Double {
        let s = xs.sorted()
        return s.isEmpty ? .nan : (s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2)
    }
    static func col(_ s: String, _ n: Int, right: Bool = false) -> String {
        s.count >= n ? s : (right ? String(repeating: " ", count: n - s.count) + s : s + String(repeating: " ", count: n - s.count))
    }
    static func f(_ x: Double, _ digits: Int = 2) -> String { String(format: "%.\(digits)f", x) }

    /// The `latch` executable: `--latch PATH`, `LATCH_BIN`, or next to this one.
    static func latchBinary(_ explicit: String?) throws -> String {
        if let p = explicit ?? ProcessInfo.processInfo.environment["LATCH_BIN"] { return p }
        let here = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        let candidate = here.appendingPathComponent("latch").path
        guard FileManager.default.isExecutableFile(atPath: candidate) else {
            throw Failure(description: "no latch executable next to \(here.path); build it (swift build -c release --product latch) or pass --latch PATH")
        }
        return candidate
    }

    static func run(_ arguments: [String]) async throws {
        var items = 1000, runs = 5, deltas = 20, leaves = 1_000_000
        var explicitBinary: String? = nil
        var args = arguments[...]
        while let a = args.popFirst() {
            switch a {
            case "--items": items = args.popFirst().flatMap(Int.init) ?? items
            case "--runs": runs = args.popFirst().flatMap(Int.init) ?? runs
            case "--deltas": deltas = args.popFirst().flatMap(Int.init) ?? deltas
            case "--leaves": leaves = args.popFirst().flatMap(Int.init) ?? leaves
            case "--latch": explicitBinary = args.popFirst()
            case "-h", "--help":
                print("usage: latch-bench sync [--items N (1000)] [--runs R (5)] [--deltas D (20)] [--leaves L (1000000)] [--latch PATH]")
                return
            default: throw Failure(description: "unknown argument \(a) (try --help)")
            }
        }
        #if DEBUG
        print("build: debug (numbers are meaningless: use -c release)")
        #endif
        let binary = try latchBinary(explicitBinary)
        let dir = NSTemporaryDirectory() + "latch-bench-sync-\(UUID().uuidString.lowercased())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let started = try BenchServer(binary: binary, dir: dir)
        let (server, url, token) = (started.process, started.url, try started.bootstrapToken())
        defer {
            server.terminate()
            server.waitUntilExit()
            try? FileManager.default.removeItem(atPath: dir)
        }
        print("latch-bench sync — \(ISO8601DateFormatter().string(from: Date()))")
        print("server: \(binary) serve on \(url), SQLite in \(dir)/data (WAL, synchronous=FULL)")

        // Operator: bootstrap, one vault, `items` items.
        let opHome = dir + "/operator"
        _ = try await Latch.bootstrap(server: url, token: token, profile: "bench", home: opHome, organisation: "bench",
                                      tenant: "bench", user: "operator")
        let op = try await Latch.create(profile: "bench", environment: ["LATCH_HOME": opHome], sync: true)
        _ = try await op.createVault(name: "bench")
        let seedStart = now()
        _ = try await op.unsafeBulkCreateItemsForBenchmark(vault: "bench", count: items)
        print("seeded 1 vault with \(items) items in \(f(ms(seedStart) / 1000, 1)) s")

        // Readers: the operator's key and API key, each with a fresh LATCH_HOME (a first sync:
        // no pinned head, no proven leaves).
        let apiKey = op.configuration.apiKey, pem = op.configuration.privateKeyPEM
        func reader(verified: Bool) async throws -> Latch {
            let r = try await Latch.create(apiKey: apiKey, privateKeyPEM: pem, baseURL: url,
                                           environment: ["LATCH_HOME": dir + "/reader-\(UUID().uuidString.lowercased())"], sync: false)
            r.unsafeSkipTransparencyLogForBenchmark = !verified
            return r
        }
        struct Sample { var ms: Double; var requests: Int; var log: LogReport?; var phases: [String: Double] = [:] }
        func timedRefresh(_ r: Latch) async throws -> Sample {
            let before = r.timings.counts["requests"] ?? 0
            let phases0 = r.timings.milliseconds
            let t = now()
            try await r.refresh()
            let elapsed = ms(t)
            try r.flushLogTrust()   // the trust file is written behind the sync: "log.write", not in `elapsed`
            let phases = r.timings.milliseconds.map { ($0.key, $0.value - (phases0[$0.key] ?? 0)) }
            return Sample(ms: elapsed, requests: (r.timings.counts["requests"] ?? 0) - before, log: r.lastLogReport,
                          phases: Dictionary(uniqueKeysWithValues: phases))
        }

        // (a) Full first sync.
        var fullV: [Sample] = [], fullU: [Sample] = []
        _ = try await timedRefresh(try await reader(verified: true))      // warm-up (server caches, code paths)
        _ = try await timedRefresh(try await reader(verified: false))
        for i in 0..<runs {
            for verified in (i % 2 == 0 ? [true, false] : [false, true]) {
                let r = try await reader(verified: verified)
                let s = try await timedRefresh(r)
                guard r.env.count == items else { throw Failure(description: "a full sync exported \(r.env.count) secrets, expected \(items)") }
                if verified { fullV.append(s) } else { fullU.append(s) }
            }
        }

        // (b) Delta sync after one change (one item rewritten by the operator).
        let rv = try await reader(verified: true), ru = try await reader(verified: false)
        _ = try await timedRefresh(rv); _ = try await timedRefresh(ru)
        var deltaV: [Sample] = [], deltaU: [Sample] = []
        for i in 0..<(deltas + 1) {
            _ = try await op.setSecret(vault: "bench", item: "item\(i % items)", field: "value", value: "changed-\(i)-\(UUID().uuidString)")
            var pair: [Bool: Sample] = [:]
            for verified in (i % 2 == 0 ? [true, false] : [false, true]) {
                pair[verified] = try await timedRefresh(verified ? rv : ru)
            }
            if i == 0 { continue }   // warm-up
            deltaV.append(pair[true]!); deltaU.append(pair[false]!)
        }

        // (c) The log's maths alone at `leaves` leaves: the consistency proof and the inclusion
        // proofs one sync verifies, over an in-memory hash store (no I/O).
        var store = InMemoryHashStore()
        store.reserveCapacity(leaves: leaves)
        var leaf = [UInt8](repeating: 0x5a, count: 64)
        for i in 0..<leaves {
            withUnsafeBytes(of: UInt64(i).littleEndian) { for j in 0..<8 { leaf[j] = $0[j] } }
            store.append(leaf: leaf)
        }
        let size = store.size
        let root = try store.root()
        let head = try Checkpoint(origin: "bench.latchkey/log", size: UInt64(size), root: root)
        /// Verifies `k` inclusion proofs of leaves at the end of the tree (where a sync's new
        /// leaves are) and one consistency proof from `size - k`; returns ms per check.
        func logMaths(inclusions k: Int) throws -> Double {
            let indexes = (0..<k).map { size - 1 - Int64($0) * max(1, Int64(leaves / max(k, 1)) / 2) }
            let proofs = try MerkleTree.inclusionProofs(indexes: indexes, size: size, reader: store)
            let hashes = try indexes.map { try store.leafHash(at: $0) }
            let old = size - Int64(k)
            let oldHead = try Checkpoint(origin: head.origin, size: UInt64(old), root: try store.root(size: old))
            let consistency = try store.consistencyProof(from: old)
            var reps = 0
            let t = now()
            repeat {
                try head.verifyConsistency(from: oldHead, proof: consistency)
                for (j, p) in proofs.enumerated() { try head.verifyInclusion(leafHash: hashes[j], index: UInt64(indexes[j]), proof: p) }
                reps += 1
            } while ms(t) < 200 || reps < 3
            return ms(t) / Double(reps)
        }
        let fullEntries = fullV.first?.log.map { $0.inclusionProofs + $0.inclusionCached } ?? (items + 3)
        let deltaEntries = max(1, deltaV.first?.log?.inclusionProofs ?? 2)
        let mathsFull = try logMaths(inclusions: fullEntries)
        let mathsDelta = try logMaths(inclusions: deltaEntries)

        // Report.
        let fv = median(fullV.map(\.ms)), fu = median(fullU.map(\.ms))
        let dv = median(deltaV.map(\.ms)), du = median(deltaU.map(\.ms))
        print("")
        print("1 vault, \(items) items; medians of \(runs) full syncs and \(deltas) delta syncs each way, interleaved")
        print(col("sync", 34) + col("verified", 12, right: true) + col("unverified", 12, right: true) + col("ratio", 8, right: true)
              + col("added", 11, right: true) + col("requests v/u", 15, right: true) + "   goal")
        func line(_ name: String, _ v: Double, _ u: Double, _ rv: Int, _ ru: Int, _ goal: String, _ met: Bool) {
            print(col(name, 34) + col(f(v) + " ms", 12, right: true) + col(f(u) + " ms", 12, right: true)
                  + col(f(v / u) + "x", 8, right: true) + col(f(v - u, 3) + " ms", 11, right: true)
                  + col("\(rv)/\(ru)", 15, right: true) + "   \(goal): \(met ? "met" : "NOT MET")")
        }
        line("full first sync", fv, fu, fullV.last?.requests ?? 0, fullU.last?.requests ?? 0, "<= 1.20x", fv / fu <= 1.2)
        // The delta goal is read from the client's own timer around all its log work (building
        // the entries, the head, proofs, the trust-state update): the difference of two medians
        // of ~100 ms syncs cannot resolve a millisecond on a shared machine.
        let deltaLog = median(deltaV.map { ($0.phases["log"] ?? 0) + ($0.phases["log.entries"] ?? 0) })
        line("delta sync after one change", dv, du, deltaV.last?.requests ?? 0, deltaU.last?.requests ?? 0,
             "log work \(f(deltaLog, 3)) ms <= 1 ms", deltaLog <= 1.0)
        let sortedU = deltaU.map(\.ms).sorted()
        let iqr = sortedU.isEmpty ? 0 : sortedU[sortedU.count * 3 / 4] - sortedU[sortedU.count / 4]
        print("delta log work = the client's timed log phases (log + log.entries), median; the unverified delta samples' interquartile range is \(f(iqr, 1)) ms")
        if let r = fullV.last?.log {
            print("full sync log work: \(r.inclusionProofs) inclusion proofs (\(r.vaultSummaries) summaries, \(r.itemDetails) details, \(r.publicKeys) keys) at tree size \(r.treeSize)")
        }
        if let r = deltaV.last?.log {
            print("delta sync log work: \(r.inclusionProofs) inclusion proofs, \(r.inclusionCached) already proven, consistency proof \(r.consistencyProofVerified ? "verified" : "not needed")")
        }
        print("")
        print("log maths alone at \(size) leaves (in-memory store, proofs verified against a checkpoint):")
        print("  1 consistency + \(fullEntries) inclusion proofs: \(f(mathsFull, 3)) ms = \(f(100 * mathsFull / fu, 2))% of the unverified full sync (ratio \(f((fu + mathsFull) / fu, 3))x)")
        print("  1 consistency + \(deltaEntries) inclusion proofs: \(f(mathsDelta, 3)) ms = \(f(100 * mathsDelta / du, 2))% of the unverified delta sync (ratio \(f((du + mathsDelta) / du, 3))x)")
        func phases(_ xs: [Sample]) -> String {
            let keys = Set(xs.flatMap(\.phases.keys)).sorted()
            return keys.map { k in "\(k) \(f(median(xs.map { $0.phases[k] ?? 0 })))" }.joined(separator: ", ")
        }
        print("client phases, median ms (http = waiting for the server; log = all log work, its requests included;")
        print("  log.entries = building the log entries of the vaults a sync touched;")
        print("  log.write = writing the trust file, done behind the sync and not part of its time):")
        print("  full verified:    \(phases(fullV))")
        print("  full unverified:  \(phases(fullU))")
        print("  delta verified:   \(phases(deltaV))")
        print("  delta unverified: \(phases(deltaU))")
        print("all samples (ms): full v \(fullV.map { f($0.ms, 1) }), u \(fullU.map { f($0.ms, 1) })")
        print("                  delta v \(deltaV.map { f($0.ms, 2) }), u \(deltaU.map { f($0.ms, 2) })")
    }
}
