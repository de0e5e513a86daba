import Foundation
import HTTPTypes
import Hummingbird
import LatchCrypto
import LatchDomain
import LatchWire
import Logging

/// How the server runs. `latch serve` fills it from flags and environment; tests build one directly.
public struct ServerConfiguration: Sendable {
    public var host: String
    public var port: Int
    /// Requests per minute per API key; 0 turns the limit off.
    public var rateLimitPerMinute: Int
    /// How many requests a key may send at once above its steady rate.
    public var rateLimitBurst: Int
    /// Failed authentications per minute per source address before it gets 429.
    public var failedAuthPerMinute: Int
    /// Largest request body accepted, in bytes.
    public var maxBodySize: Int

    public static let defaultRateLimit = 600
    public static let defaultBurst = 120
    public static let defaultFailedAuthPerMinute = 30
    public static let defaultMaxBodySize = 1 << 20

    public init(host: String = "127.0.0.1", port: Int = 8484, rateLimitPerMinute: Int = ServerConfiguration.defaultRateLimit,
                rateLimitBurst: Int = ServerConfiguration.defaultBurst,
                failedAuthPerMinute: Int = ServerConfiguration.defaultFailedAuthPerMinute,
                maxBodySize: Int = ServerConfiguration.defaultMaxBodySize) {
        self.host = host; self.port = port; self.rateLimitPerMinute = rateLimitPerMinute; self.rateLimitBurst = rateLimitBurst
        self.failedAuthPerMinute = failedAuthPerMinute; self.maxBodySize = maxBodySize
    }
}

/// Token buckets keyed by a string (an access key or a source address). A lock, not an actor:
/// every authenticated request passes here twice, and an actor's queue would add a hop (and
/// under load a thread wake-up) for a few arithmetic steps.
final class RateLimiter: @unchecked Sendable {
    struct Bucket { var tokens: Double; var last: Date }
    let perMinute: Int
    let burst: Int
    private let lock = NSLock()
    private var buckets: [String: Bucket] = [:]
    private var sweeps = 0

    init(perMinute: Int, burst: Int) { self.perMinute = perMinute; self.burst = max(1, burst) }

    var enabled: Bool { perMinute > 0 }

    private func refill(_ key: String, _ now: Date) -> Bucket {
        let rate = Double(perMinute) / 60
        var b = buckets[key] ?? Bucket(tokens: Double(burst), last: now)
        b.tokens = min(Double(burst), b.tokens + max(0, now.timeIntervalSince(b.last)) * rate)
        b.last = now
        return b
    }

    private func wait(_ b: Bucket) -> Int { max(1, Int(((1 - b.tokens) / (Double(perMinute) / 60)).rounded(.up))) }

    /// Takes one token; returns nil when allowed, else the seconds until one is available.
    func take(_ key: String, now: Date) -> Int? {
        guard enabled else { return nil }
        return lock.withLock {
            sweep(now)
            var b = refill(key, now)
            if b.tokens >= 1 { b.tokens -= 1; buckets[key] = b; return nil }
            buckets[key] = b
            return wait(b)
        }
    }

    /// Returns the wait when the bucket is empty, without taking.
    func check(_ key: String, now: Date) -> Int? {
        guard enabled else { return nil }
        return lock.withLock {
            // A key never charged has a full bucket: nothing to record.
            guard buckets[key] != nil else { return nil }
            let b = refill(key, now)
            buckets[key] = b
            return b.tokens >= 1 ? nil : wait(b)
        }
    }

    /// Drops full buckets now and then so memory stays bounded by active keys.
    private func sweep(_ now: Date) {
        sweeps += 1
        guard sweeps % 10_000 == 0 else { return }
        let rate = Double(perMinute) / 60
        buckets = buckets.filter { $0.value.tokens + now.timeIntervalSince($0.value.last) * rate < Double(burst) }
    }
}

/// The request context: the authenticated caller, once the auth middleware has run.
public struct LatchRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var auth: AuthContext?
    /// The peer's IP address ("unknown" when the channel has none, as in router tests).
    public let sourceAddress: String

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        sourceAddress = source.channel.remoteAddress.map { $0.ipAddress ?? "\($0)" } ?? "unknown"
        auth = nil
    }
}

/// An error that already knows its HTTP answer.
struct APIError: Error {
    var status: HTTPResponse.Status
    var code: String
    var message: String
    var headers: HTTPFields = [:]
}

extension DomainError {
    var status: HTTPResponse.Status {
        switch kind {
        case .invalid: .badRequest
        case .unauthenticated: .unauthorized
        case .forbidden: .forbidden
        case .notFound: .notFound
        case .conflict: .conflict
        case .rateLimited: .tooManyRequests
        case .tooLarge: .contentTooLarge
        case .unavailable: .serviceUnavailable
        }
    }
}

let wireEncoder = LatchJSON.encoder()

func jsonResponse<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) throws -> Response {
    jsonResponse(data: try wireEncoder.encode(value), status: status, headers: headers)
}

/// A response of JSON already encoded.
func jsonResponse(data: Data, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
    jsonResponse(body: ByteBuffer(bytes: data), status: status, headers: headers)
}

/// A response of JSON already encoded into a buffer (shared, not copied, by every response that
/// sends it).
func jsonResponse(body: ByteBuffer, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
    var h = headers
    h[.contentType] = "application/json; charset=utf-8"
    return Response(status: status, headers: h, body: .init(byteBuffer: body))
}

func errorResponse(_ status: HTTPResponse.Status, _ code: String, _ message: String, headers: HTTPFields = [:]) -> Response {
    let data = (try? wireEncoder.encode(WireError(code: code, message: message))) ?? Data("{\"error\":{\"code\":\"internal_error\",\"message\":\"\"}}".utf8)
    var h = headers
    h[.contentType] = "application/json; charset=utf-8"
    return Response(status: status, headers: h, body: .init(byteBuffer: ByteBuffer(bytes: data)))
}

/// Turns every error into `{"error":{"code","message"}}` with a 4xx for client mistakes.
struct ErrorMiddleware: RouterMiddleware {
    typealias Context = LatchRequestContext
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let e as APIError {
            return errorResponse(e.status, e.code, e.message, headers: e.headers)
        } catch let e as DomainError {
            return errorResponse(e.status, e.code, e.message)
        } catch let e as StoreError {
            logger.error("store failure", metadata: ["error": "\(e.description)"])
            if e.kind == .conflict {
                return errorResponse(.conflict, "write_conflict", "a concurrent write to the same data won; read the current state and retry")
            }
            let status: HTTPResponse.Status = e.kind == .unavailable ? .serviceUnavailable : .internalServerError
            return errorResponse(status, e.kind == .unavailable ? "store_unavailable" : WireErrorCode.internalError,
                                 "the server's store failed; try again later")
        } catch let e as HTTPResponseError {
            switch e.status {
            case .notFound: return errorResponse(.notFound, WireErrorCode.notFound, "no route \(request.method.rawValue) \(request.uri.path)")
            case .contentTooLarge: return errorResponse(.contentTooLarge, WireErrorCode.bodyTooLarge, "the request body is too large")
            case .methodNotAllowed: return errorResponse(.methodNotAllowed, "method_not_allowed", "method \(request.method.rawValue) is not allowed here")
            default:
                return errorResponse(e.status, e.status.code >= 500 ? WireErrorCode.internalError : WireErrorCode.invalidRequest,
                                     e.status.reasonPhrase)
            }
        } catch {
            logger.error("unexpected error", metadata: ["error": "\(String(describing: type(of: error)))"])
            return errorResponse(.internalServerError, WireErrorCode.internalError, "the server failed unexpectedly")
        }
    }
}

/// Reads the API key, applies the failed-auth and per-key limits, and authenticates.
struct AuthMiddleware: RouterMiddleware {
    typealias Context = LatchRequestContext
    let service: LatchService
    let keyLimiter: RateLimiter
    let failLimiter: RateLimiter

    static let apiKeyHeader = HTTPField.Name("X-API-Key")!

    static func apiKey(_ request: Request) -> String? {
        if let k = request.headers[apiKeyHeader], !k.isEmpty { return k.trimmedASCII }
        if let a = request.headers[.authorization] {
            let parts = a.split(separator: " ", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "apikey" { return String(parts[1]).trimmedASCII }
        }
        return nil
    }

    static func limited(_ retry: Int, _ what: String) -> APIError {
        APIError(status: .tooManyRequests, code: WireErrorCode.rateLimitExceeded,
                 message: "\(what); retry after \(retry) seconds", headers: [.retryAfter: "\(retry)"])
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let source = context.sourceAddress
        let now = service.clock.now()
        if let retry = failLimiter.check(source, now: now) {
            throw Self.limited(retry, "too many failed authentications from this address")
        }
        guard let raw = Self.apiKey(request) else {
            _ = failLimiter.take(source, now: now)
            throw APIError(status: .unauthorized, code: WireErrorCode.unauthenticated,
                           message: "send your API key as X-API-Key: {accessKey}.{secret} or Authorization: ApiKey {accessKey}.{secret}")
        }
        let auth: AuthContext
        do { auth = try await service.authenticate(apiKey: raw, source: source) } catch let e as DomainError {
            _ = failLimiter.take(source, now: now)
            throw e
        }
        if let retry = keyLimiter.take(auth.apiKey.accessKey, now: now) {
            throw Self.limited(retry, "this API key is over its rate limit")
        }
        var ctx = context
        ctx.auth = auth
        return try await next(request, ctx)
    }
}

extension LatchRequestContext {
    func caller() throws -> AuthContext {
        guard let a = auth else { throw APIError(status: .unauthorized, code: WireErrorCode.unauthenticated, message: "not authenticated") }
        return a
    }
    func param(_ name: String) throws -> String {
        guard let v = parameters.get(name) else { throw APIError(status: .badRequest, code: WireErrorCode.invalidId, message: "missing \(name)") }
        return v
    }
}

/// Reads and decodes a JSON body within the configured size limit, naming what is wrong.
func decodeBody<T: Decodable>(_ t: T.Type, _ request: Request, limit: Int) async throws -> T {
    let buffer: ByteBuffer
    do { buffer = try await request.body.collect(upTo: limit) } catch {
        throw APIError(status: .contentTooLarge, code: WireErrorCode.bodyTooLarge, message: "the request body exceeds \(limit) bytes")
    }
    let data = Data(buffer.readableBytesView)
    do { return try LatchJSON.decoder().decode(t, from: data) } catch let e as DecodingError {
        func path(_ c: [any CodingKey]) -> String { c.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".") }
        switch e {
        case .dataCorrupted(let c) where c.codingPath.isEmpty:
            throw APIError(status: .badRequest, code: WireErrorCode.malformedJSON, message: "the body is not valid JSON")
        case .dataCorrupted(let c):
            throw APIError(status: .badRequest, code: WireErrorCode.invalidRequest, message: "\(path(c.codingPath)): \(c.debugDescription)")
        case .keyNotFound(let k, let c):
            throw APIError(status: .badRequest, code: WireErrorCode.invalidRequest, message: "missing field \(path(c.codingPath + [k]))")
        case .typeMismatch(let ty, let c):
            throw APIError(status: .badRequest, code: WireErrorCode.invalidRequest, message: "field \(path(c.codingPath)) must be \(ty)")
        case .valueNotFound(let ty, let c):
            throw APIError(status: .badRequest, code: WireErrorCode.invalidRequest, message: "field \(path(c.codingPath)) must be a \(ty), not null")
        @unknown default:
            throw APIError(status: .badRequest, code: WireErrorCode.invalidRequest, message: "the body does not match the expected shape")
        }
    } catch {
        throw APIError(status: .badRequest, code: WireErrorCode.malformedJSON, message: "the body is not valid JSON")
    }
}
