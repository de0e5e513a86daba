import Foundation
import LatchDomain
import NIOCore
import PostgresNIO

/// How to reach the PostgreSQL database and how to use it.
///
/// Built from a libpq-style URL: `postgres://user:password@host:port/database?sslmode=…`
/// (`postgresql://` is accepted too; `host` may be a Unix-socket directory given as
/// `?host=/path`). `sslmode` is one of `disable`, `prefer` (the default: TLS when the server
/// offers it, without checking its certificate, like libpq), `require` (TLS, certificate not
/// checked) and `verify-full` (TLS with the system trust roots and host-name check).
public struct PostgresStoreConfiguration: Sendable {
    public enum TLSMode: String, Sendable { case disable, prefer, require, verifyFull = "verify-full" }

    public var host: String
    public var port: Int
    /// A Unix-socket directory (libpq's `host=/dir`); when set, `host`/`port` name the socket file.
    public var socketDirectory: String?
    public var username: String
    public var password: String?
    public var database: String
    public var tls: TLSMode
    /// Connections this process keeps at most (per replica; the database's `max_connections`
    /// must cover the sum over every replica).
    public var poolSize: Int
    /// How long a transaction waits for a pooled connection before the store reports
    /// `StoreError(.unavailable)` (the server answers 503 `store_unavailable`).
    public var acquireTimeout: Duration
    /// How long a write waits for the database-wide write lock before giving up with `.unavailable`.
    public var lockTimeout: Duration
    /// How long one statement may take; past it the connection is closed and the request fails
    /// with `.unavailable` rather than waiting on a database that dropped it.
    public var queryTimeout: Duration = .seconds(15)
    /// How long a pooled connection may stay unused before it is closed (within half that again).
    public var idleTimeout: Duration = .seconds(60)
    /// A schema to keep Latchkey's tables in (created when missing; `search_path` is set to
    /// it); nil uses the database's default (`public`). Lowercase letters, digits and `_`.
    public var schema: String?

    public init(host: String, port: Int = 5432, username: String, password: String? = nil, database: String,
                tls: TLSMode = .prefer, poolSize: Int = 10, acquireTimeout: Duration = .seconds(5),
                lockTimeout: Duration = .seconds(10)) {
        self.host = host; self.port = port; self.username = username; self.password = password; self.database = database
        self.tls = tls; self.poolSize = poolSize; self.acquireTimeout = acquireTimeout; self.lockTimeout = lockTimeout
    }

    /// Parses a `postgres://` URL. Query items `sslmode`, `pool_size`, `connect_timeout` (seconds
    /// to wait for a connection: `acquireTimeout`), `schema` and `host` are understood;
    /// anything else is refused (so a typo does not silently change behaviour).
    public init(url: String) throws {
        guard let c = URLComponents(string: url), let scheme = c.scheme?.lowercased(),
              scheme == "postgres" || scheme == "postgresql" else {
            throw StoreError(.unavailable, "database URL must look like postgres://user:password@host:5432/database (got a value that does not parse)")
        }
        let user = c.percentEncodedUser.flatMap { $0.removingPercentEncoding } ?? ProcessInfo.processInfo.environment["USER"] ?? "postgres"
        let password = c.percentEncodedPassword.flatMap { $0.removingPercentEncoding }
        var db = c.path
        if db.hasPrefix("/") { db.removeFirst() }
        db = db.removingPercentEncoding ?? db
        self.init(host: c.host.flatMap { $0.isEmpty ? nil : $0 } ?? "127.0.0.1", port: c.port ?? 5432, username: user,
                  password: password, database: db.isEmpty ? user : db)
        for item in c.queryItems ?? [] {
            let v = item.value ?? ""
            switch item.name {
            case "sslmode":
                guard let m = TLSMode(rawValue: v) else {
                    throw StoreError(.unavailable, "sslmode must be disable, prefer, require or verify-full, not '\(v)'")
                }
                tls = m
            case "pool_size":
                guard let n = Int(v), n >= 1, n <= 1000 else { throw StoreError(.unavailable, "pool_size must be 1-1000, not '\(v)'") }
                poolSize = n
            case "connect_timeout":
                guard let n = Int(v), n >= 1, n <= 600 else { throw StoreError(.unavailable, "connect_timeout must be 1-600 seconds, not '\(v)'") }
                acquireTimeout = .seconds(n)
            case "schema":
                guard Self.validSchema(v) else { throw StoreError(.unavailable, "schema must match [a-z_][a-z0-9_]{0,62}, not '\(v)'") }
                schema = v
            case "host":
                guard v.hasPrefix("/") else { throw StoreError(.unavailable, "host= in the query must be a Unix-socket directory") }
                socketDirectory = v
            default:
                throw StoreError(.unavailable, "unknown database URL parameter '\(item.name)' (understood: sslmode, pool_size, connect_timeout, schema, host)")
            }
        }
    }

    static func validSchema(_ s: String) -> Bool {
        let b = Array(s.utf8)
        guard (1...63).contains(b.count), !(48...57).contains(b[0]) else { return false }
        return b.allSatisfy { (97...122).contains($0) || (48...57).contains($0) || $0 == 95 }
    }

    /// The URL with the password replaced, for logs.
    public var redactedDescription: String {
        let where_ = socketDirectory.map { "\($0)/.s.PGSQL.\(port)" } ?? "\(host):\(port)"
        return "postgres://\(username)\(password == nil ? "" : ":***")@\(where_)/\(database)"
    }

    /// How each pooled connection is made. Throws when the TLS settings cannot be set up.
    func connectionConfiguration() throws -> PostgresConnection.Configuration {
        var config: PostgresConnection.Configuration
        if let dir = socketDirectory {
            config = .init(unixSocketPath: "\(dir)/.s.PGSQL.\(port)", username: username, password: password, database: database)
        } else {
            let t: PostgresConnection.Configuration.TLS
            do {
                switch tls {
                case .disable: t = .disable
                case .prefer:
                    var c = TLSConfiguration.makeClientConfiguration()
                    c.certificateVerification = .none
                    t = .prefer(try NIOSSLContext(configuration: c))
                case .require:
                    var c = TLSConfiguration.makeClientConfiguration()
                    c.certificateVerification = .none
                    t = .require(try NIOSSLContext(configuration: c))
                case .verifyFull: t = .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
                }
            } catch {
                throw StoreError(.unavailable, "TLS for PostgreSQL (sslmode=\(tls.rawValue)) could not be set up: \(error)")
            }
            config = .init(host: host, port: port, username: username, password: password, database: database, tls: t)
        }
        // A connection attempt never outlasts the wait a transaction allows for a connection.
        config.options.connectTimeout = TimeAmount(acquireTimeout)
        let ms = lockTimeout.components.seconds * 1000 + lockTimeout.components.attoseconds / 1_000_000_000_000_000
        var params = [("lock_timeout", "\(ms)ms"), ("application_name", "latch")]
        if let schema, Self.validSchema(schema) { params.append(("search_path", schema)) }
        config.options.additionalStartupParameters = params
        return config
    }
}
