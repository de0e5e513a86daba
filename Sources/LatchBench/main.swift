// latch-bench: per-operation timings of the transparency log and the crypto core, beside
// `openssl speed` on the same machine in the same run. Build and run in release mode:
//
//     swift run -c release latch-bench [--leaves N] [--seconds S] [--no-openssl]
//     .build/release/latch-bench sync --help      (sync with vs without the log checks: SyncBench.swift)
//     .build/release/latch-bench load --help      (seeder and write load for scripts/bench-replicas.sh: LoadBench.swift)
//
// Nothing secret is printed: keys and DEKs stay inside this process.
import Foundation
import LatchCrypto
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import LatchLog

// MARK: Options

if CommandLine.arguments.dropFirst().first == "sync" {     // latch-bench sync: see SyncBench.swift
    await SyncBench.main(Array(CommandLine.arguments.dropFirst(2)))
    exit(0)
}
if CommandLine.arguments.dropFirst().first == "load" {     // latch-bench load: see LoadBench.swift (scripts/bench-replicas.sh)
    await LoadBench.main(Array(CommandLine.arguments.dropFirst(2)))
    exit(0)
}

var leafCount = 1_000_000
var cryptoSeconds = 2.0
var runOpenSSL = true
do {
    var args = CommandLine.arguments.dropFirst()
    while let a = args.popFirst() {
        switch a {
        case "--leaves": leafCount = args.popFirst().flatMap(Int.init) ?? leafCount
        case "--seconds": cryptoSeconds = args.popFirst().flatMap(Double.init) ?? cryptoSeconds
        case "--no-openssl": runOpenSSL = false
        case "-h", "--help":
            print("usage: latch-bench [--leaves N (default 1000000)] [--seconds S per crypto operation (default 2)] [--no-openssl]")
            exit(0)
        default:
            FileHandle.standardError.write(Data("latch-bench: unknown argument \(a) (try --help)\n".utf8))
            exit(2)
        }
    }
}

// MARK: Timing

/// Wall-clock time and this thread's CPU time. `openssl speed` divides by user CPU time (unless
/// given -elapsed), so the comparison with openssl uses CPU time; on a shared, busy machine the
/// wall-clock figures are inflated by time spent waiting for a core.
struct Row {
    var name: String
    var iterations: Int
    var seconds: Double          // wall clock
    var cpuSeconds: Double       // thread CPU time (user + system)
    var perOp: Double { seconds / Double(max(iterations, 1)) }
    var cpuPerOp: Double { cpuSeconds / Double(max(iterations, 1)) }
}

func threadCPUTime() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

var rows: [Row] = []
var sink: UInt64 = 0     // results feed into this so the optimiser cannot drop the work

func seconds(_ d: Duration) -> Double {
    Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
}

/// Times `iterations` runs of `body`.
@discardableResult
@MainActor func timeFixed(_ name: String, iterations: Int, _ body: (Int) throws -> Void) rethrows -> Row {
    let clock = ContinuousClock()
    let cpu0 = threadCPUTime()
    let start = clock.now
    for i in 0..<iterations { try body(i) }
    let row = Row(name: name, iterations: iterations, seconds: seconds(clock.now - start), cpuSeconds: threadCPUTime() - cpu0)
    rows.append(row)
    return row
}

/// Runs `body` repeatedly for about `budget` seconds (at least 3 times).
@discardableResult
@MainActor func timeBudget(_ name: String, budget: Double, _ body: () throws -> Void) rethrows -> Row {
    let clock = ContinuousClock()
    let cpu0 = threadCPUTime()
    let start = clock.now
    var n = 0
    var elapsed = 0.0
    repeat {
        try body()
        n += 1
        elapsed = seconds(clock.now - start)
    } while elapsed < budget || n < 3
    let row = Row(name: name, iterations: n, seconds: elapsed, cpuSeconds: threadCPUTime() - cpu0)
    rows.append(row)
    return row
}

func format(_ s: Double) -> String {
    switch s {
    case ..<1e-6: return String(format: "%.1f ns", s * 1e9)
    case ..<1e-3: return String(format: "%.2f µs", s * 1e6)
    case ..<1: return String(format: "%.3f ms", s * 1e3)
    default: return String(format: "%.3f s", s)
    }
}

func pad(_ s: String, _ n: Int, right: Bool = false) -> String {
    let c = s.count
    if c >= n { return s }
    return right ? String(repeating: " ", count: n - c) + s : s + String(repeating: " ", count: n - c)
}

func fold(_ h: MerkleHash) -> UInt64 { h.withUnsafeBytes { $0.load(as: UInt64.self) } }

// MARK: Machine

func cpuModel() -> String {
    guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return "unknown" }
    for line in info.split(separator: "\n") where line.hasPrefix("model name") {
        return line.split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "unknown"
    }
    return "unknown"
}

#if DEBUG
let buildMode = "debug (numbers are meaningless: use `swift run -c release latch-bench`)"
#else
let buildMode = "release"
#endif
print("latch-bench — \(ISO8601DateFormatter().string(from: Date()))")
func loadAverage() -> String {
    (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))
        .map { $0.split(separator: " ").prefix(3).joined(separator: " ") } ?? "unknown"
}
print("machine: \(ProcessInfo.processInfo.activeProcessorCount) cores, \(cpuModel()); build: \(buildMode)")
print("load average at start: \(loadAverage())")
print("")

// MARK: Transparency log

var store = InMemoryHashStore()
store.reserveCapacity(leaves: leafCount)
var leaf = [UInt8](repeating: 0x5a, count: 64)    // a 64-byte leaf whose first 8 bytes count up
let appendRow = timeFixed("Merkle append (leaf hash + subtree hashes)", iterations: leafCount) { i in
    withUnsafeBytes(of: UInt64(i).littleEndian) { for j in 0..<8 { leaf[j] = $0[j] } }
    store.append(leaf: leaf)
}
let size = store.size
var acc = MerkleHash.emptyRoot
timeFixed("  of which: one node hash SHA-256(0x01‖l‖r)", iterations: 1_000_000) { _ in acc = MerkleHash.node(acc, acc) }
timeFixed("  of which: one leaf hash of 64 bytes", iterations: 1_000_000) { _ in acc = MerkleHash.leaf(leaf) }
sink &+= fold(acc)
print("Merkle tree: \(size) leaves, \(store.hashes.count) stored hashes")

// The same appends through the storage protocol (what a SQL store does: read, combine, write).
var viaProtocol = InMemoryHashStore()
viaProtocol.reserveCapacity(leaves: min(leafCount, 200_000))
let protocolCount = min(leafCount, 200_000)
try timeFixed("Merkle append via HashReader + [StoredHash] (batch of 1)", iterations: protocolCount) { i in
    try viaProtocol.append(leafHashes: [MerkleHash.leaf(withUnsafeBytes(of: UInt64(i)) { Data($0) })])
}

let root = try store.root()
try timeFixed("Merkle root at \(size)", iterations: 10_000) { _ in sink &+= fold(try store.root()) }

var rng = SystemRandomNumberGenerator()
let probes = 20_000
let indexes = (0..<probes).map { _ in Int64.random(in: 0..<size, using: &rng) }
var proofs: [[MerkleHash]] = []
proofs.reserveCapacity(probes)
try timeFixed("inclusion proof generation at \(size)", iterations: probes) { i in
    proofs.append(try store.inclusionProof(index: indexes[i]))
}
let leafHashes = try indexes.map { try store.leafHash(at: $0) }
try timeFixed("inclusion proof verification at \(size)", iterations: probes) { i in
    try MerkleProof.verifyInclusion(index: UInt64(indexes[i]), size: UInt64(size), leafHash: leafHashes[i], proof: proofs[i], root: root)
}

let olds = (0..<probes).map { _ in Int64.random(in: 1..<size, using: &rng) }
var cproofs: [[MerkleHash]] = []
cproofs.reserveCapacity(probes)
try timeFixed("consistency proof generation to \(size)", iterations: probes) { i in
    cproofs.append(try store.consistencyProof(from: olds[i]))
}
let oldRoots = try olds.map { try store.root(size: $0) }
try timeFixed("consistency proof verification to \(size)", iterations: probes) { i in
    try MerkleProof.verifyConsistency(size1: UInt64(olds[i]), size2: UInt64(size), proof: cproofs[i], root1: oldRoots[i], root2: root)
}
print("average proof length: inclusion \(proofs.map(\.count).reduce(0, +) / probes), consistency \(cproofs.map(\.count).reduce(0, +) / probes) hashes")

// MARK: Crypto core

print("generating an RSA-3072 principal key…")
let keyStart = ContinuousClock().now
let principal = try PrincipalPrivateKey.generate(bits: 3072)
print("  key generation took \(format(seconds(ContinuousClock().now - keyStart))) (one-off, not compared)")
let publicKey = principal.publicKey
let dek = DataEncryptionKey.generate(version: 1)
let wrapped = try publicKey.wrap(dek)
let message = Data(repeating: 0x42, count: 256)
let signature = try principal.sign(message)
let context = EnvelopeContext(vaultId: "6f1c3b1e-0000-4000-8000-000000000001", itemId: "6f1c3b1e-0000-4000-8000-000000000002",
                              fieldId: "6f1c3b1e-0000-4000-8000-000000000003", dekVersion: 1)
let plaintext = Data(repeating: 0x61, count: 1024)
let envelope = try FieldEnvelope.seal(plaintext, key: dek, context: context)

let unwrapRow = try timeBudget("RSA-3072 OAEP unwrap (private key)", budget: cryptoSeconds) {
    sink &+= UInt64(try principal.unwrap(wrapped, version: 1).version)
}
let signRow = try timeBudget("RSA-3072 PSS sign", budget: cryptoSeconds) {
    sink &+= UInt64(try principal.sign(message).count)
}
let verifyRow = timeBudget("RSA-3072 PSS verify", budget: cryptoSeconds) {
    guard publicKey.isValidSignature(signature, for: message) else { fatalError("own signature failed to verify") }
    sink &+= 1
}
let wrapRow = try timeBudget("RSA-3072 OAEP wrap (public key)", budget: cryptoSeconds) {
    sink &+= UInt64(try publicKey.wrap(dek).count)
}
let sealRow = try timeBudget("envelope seal, 1 KiB (AES-256-GCM + JSON)", budget: cryptoSeconds) {
    sink &+= UInt64(try FieldEnvelope.seal(plaintext, key: dek, context: context).string.utf8.count)
}
let openRow = try timeBudget("envelope open, 1 KiB (JSON + AES-256-GCM)", budget: cryptoSeconds) {
    sink &+= UInt64(try envelope.open(key: dek, context: context).count)
}

// MARK: openssl speed

struct OpenSSLFigures {
    var version = ""
    var rsaSign: Double?       // seconds per private-key operation (sign)
    var rsaVerify: Double?     // seconds per public-key operation (verify)
    var rsaEncrypt: Double?    // OpenSSL >= 3.2 also reports encrypt/decrypt
    var rsaDecrypt: Double?
    var gcm1KiB: Double?       // seconds per 1024-byte AES-256-GCM block
    var error: String?
}

func run(_ arguments: [String]) -> String? {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = arguments
    let out = Pipe()
    p.standardOutput = out
    p.standardError = FileHandle.nullDevice
    do { try p.run() } catch { return nil }
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else { return nil }
    return String(decoding: data, as: UTF8.self)
}

/// Parses the table `openssl speed rsa3072` prints: a header naming the columns
/// ("sign verify [encrypt decrypt] sign/s …") and a row "rsa 3072 bits 0.001s 0.00005s …".
func parseRSA(_ text: String, into f: inout OpenSSLFigures) {
    var columns: [String] = []
    for line in text.split(separator: "\n") {
        let tokens = line.split(separator: " ").map(String.init)
        if tokens.first == "sign" || (tokens.contains("sign") && tokens.contains("verify") && !line.hasPrefix("rsa")) {
            columns = tokens.filter { !$0.contains("/") }
        } else if tokens.count > 3, tokens[0] == "rsa", tokens[1] == "3072" || tokens[1] == "3072bits" {
            let times = tokens.filter { $0.hasSuffix("s") && Double($0.dropLast()) != nil }.compactMap { Double($0.dropLast()) }
            for (name, value) in zip(columns, times) {
                switch name {
                case "sign": f.rsaSign = value
                case "verify": f.rsaVerify = value
                case "encrypt": f.rsaEncrypt = value
                case "decrypt": f.rsaDecrypt = value
                default: break
                }
            }
        }
    }
}

/// Parses `openssl speed -evp aes-256-gcm`: a header of block sizes and a row of
/// thousands of bytes per second ("AES-256-GCM 1234.5k …"). Returns the 1024-byte figure.
func parseGCM(_ text: String, into f: inout OpenSSLFigures) {
    var sizes: [Int] = []
    for line in text.split(separator: "\n") {
        let tokens = line.split(separator: " ").map(String.init)
        if tokens.first == "type" {
            sizes = tokens.compactMap { Int($0) }
        } else if let first = tokens.first, first.uppercased().hasPrefix("AES-256-GCM") {
            let rates = tokens.dropFirst().compactMap { $0.hasSuffix("k") ? Double($0.dropLast()) : nil }
            if let i = sizes.firstIndex(of: 1024), i < rates.count, rates[i] > 0 {
                f.gcm1KiB = 1024.0 / (rates[i] * 1000.0)
            }
        }
    }
}

var ossl = OpenSSLFigures()
if runOpenSSL {
    if let v = run(["openssl", "version"]) {
        ossl.version = v.trimmingCharacters(in: .whitespacesAndNewlines)
        let secs = String(Int(cryptoSeconds.rounded(.up)))
        print("running openssl speed -seconds \(secs) rsa3072 and -evp aes-256-gcm (\(ossl.version))…")
        if let out = run(["openssl", "speed", "-seconds", secs, "rsa3072"]) { parseRSA(out, into: &ossl) }
        else { ossl.error = "openssl speed rsa3072 failed" }
        if let out = run(["openssl", "speed", "-seconds", secs, "-evp", "aes-256-gcm"]) { parseGCM(out, into: &ossl) }
        else { ossl.error = "openssl speed -evp aes-256-gcm failed" }
        if ossl.rsaSign == nil || ossl.rsaVerify == nil { ossl.error = (ossl.error ?? "") + " (could not parse the RSA table)" }
    } else {
        ossl.error = "openssl not found on PATH (install the openssl package)"
    }
}

// MARK: Report

print("")
let w0 = 58, w1 = 9, w2 = 12
print(pad("operation", w0) + pad("runs", w1, right: true) + pad("wall/op", w2, right: true) + pad("cpu/op", w2, right: true)
      + pad("openssl cpu", w2, right: true) + pad("ratio", 8, right: true))
print(String(repeating: "-", count: w0 + w1 + 3 * w2 + 8))
@MainActor func reference(for row: Row) -> (Double, String)? {
    switch row.name {
    case unwrapRow.name: return (ossl.rsaDecrypt ?? ossl.rsaSign).map { ($0, ossl.rsaDecrypt != nil ? "decrypt" : "sign") }
    case signRow.name: return ossl.rsaSign.map { ($0, "sign") }
    case verifyRow.name: return ossl.rsaVerify.map { ($0, "verify") }
    case wrapRow.name: return (ossl.rsaEncrypt ?? ossl.rsaVerify).map { ($0, ossl.rsaEncrypt != nil ? "encrypt" : "verify") }
    case sealRow.name, openRow.name: return ossl.gcm1KiB.map { ($0, "gcm 1KiB") }
    default: return nil
    }
}
for row in rows {
    var line = pad(row.name, w0) + pad(String(row.iterations), w1, right: true) + pad(format(row.perOp), w2, right: true)
        + pad(format(row.cpuPerOp), w2, right: true)
    if let (ref, _) = reference(for: row) {
        line += pad(format(ref), w2, right: true) + pad(String(format: "%.2fx", row.cpuPerOp / ref), 8, right: true)
    }
    print(line)
}
print("")
print("Merkle append total: \(format(appendRow.seconds)) wall, \(format(appendRow.cpuSeconds)) CPU for \(appendRow.iterations) leaves")
print("ratio = our CPU time per op / openssl's (openssl speed measures user CPU time); load average now: \(loadAverage())")
if let e = ossl.error { print("openssl: \(e)") }
if ossl.rsaDecrypt == nil && ossl.rsaSign != nil {
    print("note: this openssl reports no RSA decrypt column, so unwrap is compared with its private-key sign and wrap with its public-key verify (one modular exponentiation each).")
}
print("note: envelope rows include JSON and base64 encoding; openssl's figure is bare AES-256-GCM on a 1 KiB block.")

// MARK: Goals

print("")
print("goals:")
@MainActor func goal(_ text: String, _ met: Bool?) {
    let verdict = met.map { $0 ? "met" : "NOT MET" } ?? "not measured (no openssl figures)"
    print("  \(pad(text, 70)) \(verdict)")
}
for row in [unwrapRow, signRow, verifyRow] {
    let ratio = reference(for: row).map { row.cpuPerOp / $0.0 }
    goal("\(row.name) within 1.2x of openssl" + (ratio.map { String(format: " (%.2fx)", $0) } ?? ""), ratio.map { $0 <= 1.2 })
}
goal("1,000,000 Merkle appends under 2 s of CPU" + (leafCount == 1_000_000 ? String(format: " (%.3f s CPU, %.3f s wall)", appendRow.cpuSeconds, appendRow.seconds) : " (run with the default --leaves)"),
     leafCount == 1_000_000 ? appendRow.cpuSeconds < 2.0 : nil)
goal("1,000,000 Merkle appends under 2 s of wall-clock time", leafCount == 1_000_000 ? appendRow.seconds < 2.0 : nil)
if sink == 42 { print("") }   // keeps `sink` alive
