import ArgumentParser
import Foundation
import Hummingbird
import LatchClient
import LatchDomain
import LatchLog
import LatchServer
import LatchStorePostgres
import LatchStoreSQLite
import Logging

/// `latch serve`: opens the SQLite store in the data directory and runs the machine API.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the Latchkey server (machine API) on the embedded SQLite store.",
        discussion: """
            Environment: LATCH_DATA_DIR, LATCH_HOST, LATCH_PORT, LATCH_RATE_LIMIT, LATCH_LOG_LEVEL (default info), \
            LATCH_LOG_KEY_FILE (default <data-dir>/log-key), LATCH_HOME (default ~/.latch). \
            On first start with an empty store a one-time bootstrap token is printed and written to \
            <data-dir>/bootstrap-token (mode 0600).
            """)

    @Option(name: .long, help: "Data directory (default $LATCH_HOME/server).") var dataDir: String?
    @Option(name: .long, help: "Address to listen on (default 127.0.0.1).") var host: String?
    @Option(name: .long, help: "Port to listen on (default 8484; 0 picks a free port).") var port: Int?
    @Option(name: .long, help: "Requests per minute per API key, 0 = off (default \(ServerConfiguration.defaultRateLimit), burst \(ServerConfiguration.defaultBurst)).")
    var rateLimit: Int?
    @Option(name: .long, help: "Largest request body in bytes (default 1 MiB).") var maxBodySize: Int?
    @Option(name: .long, help: "Use PostgreSQL instead of SQLite: postgres://user:password@host:5432/db[?sslmode=disable|prefer|require|verify-full&pool_size=N&schema=NAME] (also LATCH_DATABASE_URL). Several replicas may share one database.")
    var databaseURL: String?

    /// Writes a line to standard output unbuffered (so scripts reading a pipe see it at once).
    func say(_ line: String) { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }

    func run() async throws {
        let env = ProcessInfo.processInfo.environment
        let home = env["LATCH_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? (NSHomeDirectory() + "/.latch")
        let dir = dataDir ?? env["LATCH_DATA_DIR"].flatMap { $0.isEmpty ? nil : $0 } ?? (home + "/server")
        /// The option's value, else the environment variable's, else `def`; from 0 to `limit`.
        func int(_ flag: Int?, _ option: String, _ name: String, _ def: Int, upTo limit: Int = .max) throws -> Int {
            let value: Int, source: String
            if let flag {
                (value, source) = (flag, "--\(option)")
            } else if let s = env[name], !s.isEmpty {
                guard let v = Int(s) else { throw ValidationError("\(name) must be a whole number from 0 to \(limit), not '\(s)'") }
                (value, source) = (v, name)
            } else {
                return def
            }
            guard (0...limit).contains(value) else { throw ValidationError("\(source) must be from 0 to \(limit), not \(value)") }
            return value
        }
        let config = ServerConfiguration(
            host: host ?? env["LATCH_HOST"].flatMap { $0.isEmpty ? nil : $0 } ?? "127.0.0.1",
            port: try int(port, "port", "LATCH_PORT", 8484, upTo: 65535),
            rateLimitPerMinute: try int(rateLimit, "rate-limit", "LATCH_RATE_LIMIT", ServerConfiguration.defaultRateLimit),
            maxBodySize: try int(maxBodySize, "max-body-size", "LATCH_MAX_BODY_SIZE", ServerConfiguration.defaultMaxBodySize))

        var logger = Logger(label: "latch.serve", factory: ServerLogHandler.init)
        if let name = env["LATCH_LOG_LEVEL"].flatMap({ $0.isEmpty ? nil : $0 }) {
            guard let level = Logger.Level(rawValue: name.lowercased()) else {
                throw ValidationError("LATCH_LOG_LEVEL must be one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")), not '\(name)'")
            }
            logger.logLevel = level
        } else {
            logger.logLevel = .info
        }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        chmod(dir, 0o700)
        let store: any LatchStore
        let storeName: String
        let closeStore: @Sendable () async -> Void
        if let url = databaseURL ?? env["LATCH_DATABASE_URL"].flatMap({ $0.isEmpty ? nil : $0 }) {
            let pgConfig = try PostgresStoreConfiguration(url: url)
            var pgLogger = logger
            pgLogger[metadataKey: "store"] = "postgres"
            let pg = try await PostgresLatchStore.open(pgConfig, logger: pgLogger)
            store = pg; storeName = pgConfig.redactedDescription + " (pool \(pgConfig.poolSize))"
            closeStore = { await pg.close() }
        } else {
            let sqlite = try await SQLiteLatchStore.open(path: dir + "/latch.sqlite")
            store = sqlite; storeName = dir
            closeStore = { await sqlite.close() }
        }
        let service = LatchService(store: store)
        let logSigner = try loadOrMakeLogKey(path: env["LATCH_LOG_KEY_FILE"].flatMap { $0.isEmpty ? nil : $0 } ?? dir + "/log-key")
        try await service.registerLogKey(logSigner.verifier)
        let tokenPath = dir + "/bootstrap-token"
        if let token = try await service.prepareBootstrap() {
            // Created 0600 from the start (not chmod-ed after the write), like the log key.
            do {
                try SecureFile.write(Data((token + "\n").utf8), to: tokenPath)
                say("latch serve: not bootstrapped yet. One-time bootstrap token (also in \(tokenPath)):\n\(token)")
            } catch {
                say("latch serve: not bootstrapped yet. One-time bootstrap token (not saved: \(error); use this one):\n\(token)")
            }
        } else if FileManager.default.fileExists(atPath: tokenPath) {
            try? FileManager.default.removeItem(atPath: tokenPath)
        }
        let say = self.say
        let app = buildApplication(configuration: config, store: store, logger: logger, logSigner: logSigner, onServerRunning: { port in
            say("latch serve: listening on http://\(config.host):\(port) (data \(storeName))")
        })
        let watchdog = ShutdownWatchdog(limit: 15)
        try await app.runService()
        await closeStore()
        withExtendedLifetime(watchdog) {}
    }
}

/// The transparency log's Ed25519 signing key: read from `path`, or made there (mode 0600) on
/// first start. Replicas sharing a PostgreSQL database must be given the same file.
func loadOrMakeLogKey(path: String) throws -> NoteSigner {
    if FileManager.default.fileExists(atPath: path) {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ValidationError("cannot read the transparency log key \(path); check its permissions")
        }
        do { return try NoteSigner(secretKeyString: text.trimmingCharacters(in: .whitespacesAndNewlines)) } catch {
            throw ValidationError("\(path) is not a transparency log key (PRIVATE+KEY+name+id+base64): \(error)")
        }
    }
    var rng = SystemRandomNumberGenerator()
    let id = (0..<8).map { _ in String(UInt8.random(in: 0...15, using: &rng), radix: 16) }.joined()
    let signer = try NoteSigner.generate(name: "latchkey.log/\(id)")
    // 0600 from its creation: the path may be outside the 0700 data directory
    // (LATCH_LOG_KEY_FILE, shared by replicas), where a file written first and chmod-ed after
    // would be readable by others for a moment.
    do { try SecureFile.write(Data((signer.secretKeyString + "\n").utf8), to: path) } catch {
        throw ValidationError("cannot write the transparency log key to \(path): \(error); check that its directory exists and is writable")
    }
    return signer
}

/// Bounds a graceful shutdown: once SIGTERM or SIGINT arrives, the process exits (status 1,
/// saying so) if draining requests and closing the store have not finished within `limit`
/// seconds, so a request stuck on a lost database cannot keep the server from stopping.
final class ShutdownWatchdog {
    private let sources: [any DispatchSourceSignal]

    init(limit: Int) {
        sources = [SIGTERM, SIGINT].map { signal in
            let source = DispatchSource.makeSignalSource(signal: signal, queue: .global())
            source.setEventHandler {
                DispatchQueue.global().asyncAfter(deadline: .now() + .seconds(limit)) {
                    FileHandle.standardError.write(Data("latch serve: shutdown did not finish within \(limit) s (a request or a database connection is stuck); exiting\n".utf8))
                    exit(1)
                }
            }
            source.resume()
            return source
        }
    }
}
