import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
#if canImport(Glibc)
import Glibc
#endif
import LatchClient
import LatchCrypto
import LatchStorePostgres
import LatchWire
import Testing

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

final class Locked<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: T
    init(_ v: T) { value = v }
    func with<R>(_ body: (inout T) -> R) -> R { lock.withLock { body(&value) } }
    var get: T { lock.withLock { value } }
}

extension PostgresStoreConfiguration {
    /// CPU-bound tests share this process's few threads, so a transaction here can be delayed
    /// for seconds without anything being wrong; production timeouts would fail spuriously.
    mutating func relaxTimeoutsForSharedTestThreads() {
        lockTimeout = .seconds(120); acquireTimeout = .seconds(60); queryTimeout = .seconds(120)
    }
}

enum Env {
    static func value(_ name: String) -> String? { ProcessInfo.processInfo.environment[name].flatMap { $0.isEmpty ? nil : $0 } }
    static var databaseURL: String? { value("LATCH_TEST_DATABASE_URL") }
    static let skipReason: Comment = "LATCH_TEST_DATABASE_URL is not set: the replica tests need PostgreSQL (postgres://user@127.0.0.1:PORT/db); .ci/run starts one and sets it"

    /// The database URL with extra query items.
    static func url(_ base: String, _ extra: [String: String]) -> String {
        var s = base
        for (k, v) in extra.sorted(by: { $0.key < $1.key }) { s += (s.contains("?") ? "&" : "?") + "\(k)=\(v)" }
        return s
    }

    static func freshSchema() -> String { "latch_e2e_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "") }
}

/// The `latch` executable built next to the test bundle (or `LATCH_TEST_BINARY`).
enum LatchBinary {
    static func url() throws -> URL {
        if let p = Env.value("LATCH_TEST_BINARY") { return URL(fileURLWithPath: p) }
        var candidates: [URL] = []
        if let a0 = CommandLine.arguments.first { candidates.append(URL(fileURLWithPath: a0).deletingLastPathComponent().appendingPathComponent("latch")) }
        candidates.append(Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("latch"))
        candidates.append(Bundle.main.bundleURL.appendingPathComponent("latch"))
        for c in candidates where FileManager.default.isExecutableFile(atPath: c.path) { return c }
        throw TestFailure("the latch executable was not found next to the test bundle (\(candidates.map(\.path))); run `swift build` first or set LATCH_TEST_BINARY")
    }
}

/// One `latch serve` process.
final class ServeProcess: @unchecked Sendable {
    let process = Process()
    let output = Locked("")
    let dataDir: URL
    private(set) var port = 0
    var base: String { "http://127.0.0.1:\(port)" }

    init(databaseURL: String, logKeyFile: String? = nil) throws {
        dataDir = FileManager.default.temporaryDirectory.appendingPathComponent("latch-serve-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dataDir, withIntermediateDirectories: true)
        process.executableURL = try LatchBinary.url()
        process.arguments = ["serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", dataDir.path,
                             "--database-url", databaseURL, "--rate-limit", "0"]
        var env = ProcessInfo.processInfo.environment
        env["LATCH_HOME"] = dataDir.path
        env["LATCH_DATABASE_URL"] = nil
        env["LATCH_LOG_KEY_FILE"] = logKeyFile
        process.environment = env
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        let out = output
        pipe.fileHandleForReading.readabilityHandler = { h in
            let d = h.availableData
            if !d.isEmpty { out.with { $0 += String(decoding: d, as: UTF8.self) } }
        }
    }

    func start() async throws {
        try process.run()
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            let text = output.get
            if let r = text.range(of: #"listening on http://127\.0\.0\.1:(\d+)"#, options: .regularExpression) {
                let digits = text[r].split(separator: ":").last.map(String.init) ?? ""
                if let p = Int(digits) { port = p; return }
            }
            if !process.isRunning { throw TestFailure("latch serve exited (\(process.terminationStatus)): \(text)") }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestFailure("latch serve did not report its port within 60 s: \(output.get)")
    }

    var bootstrapToken: String? {
        (try? String(contentsOf: dataDir.appendingPathComponent("bootstrap-token"), encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// SIGTERM, then up to 25 s for a graceful exit; a server still running then is killed and
    /// the test fails (a shutdown that hangs would otherwise hang the whole test run).
    func stop() {
        defer { try? FileManager.default.removeItem(at: dataDir) }
        guard process.isRunning else { return }
        process.terminate()
        let deadline = Date().addingTimeInterval(25)
        while process.isRunning && Date() < deadline { usleep(50_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            Issue.record("latch serve did not exit within 25 s of SIGTERM; killed. Its output:\n\(output.get)")
        }
    }
}

struct HTTPResult {
    var status: Int
    var body: Data
    var code: String? {
        ((try? JSONSerialization.jsonObject(with: body)) as? [String: Any]).flatMap { $0["error"] as? [String: Any] }?["code"] as? String
    }
    func decode<T: Decodable>(_ t: T.Type) throws -> T {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .custom { dec in
            let s = try dec.singleValueContainer().decode(String.self)
            let f = ISO8601DateFormatter()
            f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            if let date = f.date(from: s) ?? ISO8601DateFormatter().date(from: s) { return date }
            throw TestFailure("bad date \(s)")
        }
        return try d.decode(t, from: body)
    }
}

enum HTTP {
    static let session: URLSession = {
        let c = URLSessionConfiguration.ephemeral
        c.timeoutIntervalForRequest = 60
        c.httpMaximumConnectionsPerHost = 16
        return URLSession(configuration: c)
    }()

    static func call(_ method: String, _ url: String, apiKey: String? = nil, json: (any Encodable)? = nil) async throws -> HTTPResult {
        guard let u = URL(string: url) else { throw TestFailure("bad URL \(url)") }
        var r = URLRequest(url: u)
        r.httpMethod = method
        if let apiKey { r.setValue(apiKey, forHTTPHeaderField: "X-API-Key") }
        if let json {
            r.setValue("application/json", forHTTPHeaderField: "Content-Type")
            r.httpBody = try JSONEncoder().encode(json)
        }
        let (data, resp) = try await session.data(for: r)
        return HTTPResult(status: (resp as? HTTPURLResponse)?.statusCode ?? 0, body: data)
    }
}

/// An operator: a key pair, an API key, and the signed envelopes its writes carry.
struct Operator: Sendable {
    let key: PrincipalPrivateKey
    var apiKey = ""

    init() throws { key = try PrincipalPrivateKey.generate(bits: 2048) }

    func bootstrap(_ server: ServeProcess) async throws -> Operator {
        guard let token = server.bootstrapToken else { throw TestFailure("no bootstrap token in \(server.dataDir.path)") }
        let r = try await HTTP.call("POST", server.base + "/api/v1/bootstrap",
                                    json: BootstrapRequest(token: token, publicKey: key.publicKey.pem, organisationName: "Org",
                                                           tenantName: "Tenant", userName: "op"))
        guard r.status == 201 else { throw TestFailure("bootstrap answered \(r.status): \(String(decoding: r.body, as: UTF8.self))") }
        var me = self
        me.apiKey = try r.decode(BootstrapResponse.self).apiKey
        return me
    }

    func envelope<S: SignedStatement>(_ s: S) throws -> String {
        String(decoding: try JSONEncoder().encode(SignedEnvelope.sign(s, with: key)), as: UTF8.self)
    }

    func summary(_ vaultId: String, version: Int, name: String) throws -> String {
        try envelope(VaultSummaryCheckpoint(vaultId: vaultId, version: version, name: name, dataClassification: "INTERNAL",
                                            currentDekVersion: 1, items: []))
    }

    func createVault(_ server: ServeProcess, id: String, name: String) async throws -> HTTPResult {
        let dek = DataEncryptionKey.generate(version: 1)
        let wrapped = try key.publicKey.wrap(dek)
        let st = WrappedKeyStatement(vaultId: id, dekVersion: 1, recipientKeyId: key.publicKey.keyId, wrappedKey: wrapped)
        let req = CreateVaultRequest(id: id, summaryCheckpoint: try summary(id, version: 1, name: name),
                                     wrappedKey: WrappedKeyInput(recipientKeyId: key.publicKey.keyId, dekVersion: 1,
                                                                 wrappedKey: wrapped.base64EncodedString(), statement: try envelope(st)))
        return try await HTTP.call("POST", server.base + "/api/v1/machine/vault", apiKey: apiKey, json: req)
    }

    func updateVault(_ server: ServeProcess, id: String, version: Int, name: String) async throws -> HTTPResult {
        try await HTTP.call("PATCH", server.base + "/api/v1/machine/vault/\(id)/update", apiKey: apiKey,
                            json: UpdateVaultRequest(summaryCheckpoint: try summary(id, version: version, name: name)))
    }

    /// Reads the vault and verifies its summary checkpoint against this operator's key.
    func readVault(_ server: ServeProcess, id: String) async throws -> (HTTPResult, VaultSummaryCheckpoint?) {
        let r = try await HTTP.call("GET", server.base + "/api/v1/machine/vault/\(id)", apiKey: apiKey)
        guard r.status == 200 else { return (r, nil) }
        let v = try r.decode(VaultResponse.self)
        let env = try JSONDecoder().decode(SignedEnvelope<VaultSummaryCheckpoint>.self, from: Data(v.summaryCheckpoint.utf8))
        try env.verify(with: key.publicKey)
        guard env.checkpoint.version == v.vault.summaryVersion, env.checkpoint.name == v.vault.name else {
            throw TestFailure("vault metadata \(v.vault.name) v\(v.vault.summaryVersion) does not match its signed checkpoint")
        }
        return (r, env.checkpoint)
    }
}

/// A free loopback TCP port (bound once, then released).
func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestFailure("socket() failed") }
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = 0
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let ok = withUnsafeMutablePointer(to: &addr) { p in
        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
    }
    guard ok else { throw TestFailure("bind() failed") }
    return Int(UInt16(bigEndian: addr.sin_port))
}

/// A private PostgreSQL cluster this test may stop and start (`LATCH_TEST_PG_BIN`, run as
/// `LATCH_TEST_PG_USER` when set; `.ci/run` sets both).
final class PrivateCluster: @unchecked Sendable {
    let bin: String
    let user: String?
    let dir: URL
    let port: Int
    var url: String { "postgres://latch@127.0.0.1:\(port)/postgres?sslmode=disable" }

    init() throws {
        guard let bin = Env.value("LATCH_TEST_PG_BIN") else {
            throw TestFailure("LATCH_TEST_PG_BIN is not set: the outage test runs its own PostgreSQL cluster from that directory (initdb, pg_ctl); .ci/run sets it")
        }
        self.bin = bin
        user = Env.value("LATCH_TEST_PG_USER")
        dir = URL(fileURLWithPath: "/tmp/latch-pgo-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        if let user { try FileManager.default.setAttributes([.ownerAccountName: user], ofItemAtPath: dir.path) }
        port = try freePort()
        try run("initdb", ["-D", dir.path + "/data", "-U", "latch", "--auth=trust", "-E", "UTF8", "--no-locale"])
    }

    /// Runs a PostgreSQL tool and waits for it. posix_spawn, not Foundation's Process: Process
    /// notices a child's exit through an inherited descriptor, which the server that
    /// `pg_ctl start` leaves running would hold open forever; for the same reason the child
    /// inherits no descriptor but its standard ones.
    @discardableResult
    func run(_ tool: String, _ args: [String]) throws -> String {
        let argv: [String] = user.map { ["/usr/sbin/runuser", "-u", $0, "--", bin + "/" + tool] + args } ?? ([bin + "/" + tool] + args)
        let log = dir.path + "/\(tool)-\(UUID().uuidString.prefix(6)).out"
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // Nothing else of this process (its HTTP connections to latch serve, above all) may
        // live on in the PostgreSQL server that `pg_ctl start` leaves running.
        let fds = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []).compactMap { Int32($0) }
        for fd in fds where fd > 2 && fcntl(fd, F_GETFD) != -1 { posix_spawn_file_actions_addclose(&actions, fd) }
        var cargs = argv.map { strdup($0) }
        cargs.append(nil)
        defer { for a in cargs { free(a) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, argv[0], &actions, nil, cargs, environ)
        guard rc == 0 else { throw TestFailure("cannot start \(argv[0]): errno \(rc)") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        let out = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        guard status == 0 else { throw TestFailure("\(tool) \(args) failed (status \(status)): \(out)") }
        return out
    }

    func start() throws {
        try run("pg_ctl", ["-D", dir.path + "/data", "-l", dir.path + "/server.log", "-w", "-o",
                           "-p \(port) -k \(dir.path) -c listen_addresses=127.0.0.1", "start"])
    }

    func stop() throws { try run("pg_ctl", ["-D", dir.path + "/data", "-m", "fast", "-w", "stop"]) }

    func destroy() {
        _ = try? run("pg_ctl", ["-D", dir.path + "/data", "-m", "immediate", "stop"])
        try? FileManager.default.removeItem(at: dir)
    }
}

/// The real `latch` CLI as a client: runs `latch args…` with `env` (and `stdin`), waiting on a
/// thread of its own so a test blocked on the child holds none of the few shared async threads.
enum LatchCLI {
    struct Result { var code: Int32; var out: String; var err: String }

    static func run(_ args: [String], env: [String: String], stdin: String? = nil) async throws -> Result {
        try await withCheckedThrowingContinuation { k in
            Thread { k.resume(with: Swift.Result { try runBlocking(args, env: env, stdin: stdin) }) }.start()
        }
    }

    static func runBlocking(_ args: [String], env: [String: String], stdin: String?) throws -> Result {
        // Output goes to files, not pipes: nothing can block on a full pipe.
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("latch-cli-\(UUID().uuidString)")
        let outURL = base.appendingPathExtension("out"), errURL = base.appendingPathExtension("err")
        FileManager.default.createFile(atPath: outURL.path, contents: nil)
        FileManager.default.createFile(atPath: errURL.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: outURL); try? FileManager.default.removeItem(at: errURL) }
        let p = Process()
        p.executableURL = try LatchBinary.url()
        p.arguments = args
        p.environment = env
        let input = Pipe()
        p.standardInput = input
        p.standardOutput = try FileHandle(forWritingTo: outURL)
        p.standardError = try FileHandle(forWritingTo: errURL)
        try p.run()
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        try input.fileHandleForWriting.close()
        p.waitUntilExit()
        return Result(code: p.terminationStatus, out: (try? String(contentsOf: outURL, encoding: .utf8)) ?? "",
                      err: (try? String(contentsOf: errURL, encoding: .utf8)) ?? "")
    }
}

/// The SDK's real transport, noting each `/vault/sync` request's query and whether the answer
/// was a full snapshot or a delta (and how many items it carried).
final class SyncRecordingTransport: HTTPTransport, @unchecked Sendable {
    struct Sync { var query: String; var full: Bool; var items: Int; var vaults: Int }
    private let inner = DefaultHTTPTransport()
    let syncs = Locked<[Sync]>([])

    func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        let response = try await inner.send(request)
        let url = request.url
        if url.path == LatchRoutes.sync, response.status == 200,
           let body = (try? JSONSerialization.jsonObject(with: response.body)) as? [String: Any] {
            let s = Sync(query: url.query ?? "", full: body["full"] as? Bool ?? true,
                         items: (body["items"] as? [Any])?.count ?? -1, vaults: (body["vaults"] as? [Any])?.count ?? -1)
            syncs.with { $0.append(s) }
        }
        return response
    }
}
