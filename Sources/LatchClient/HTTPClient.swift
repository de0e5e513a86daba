import Foundation

/// The machine-API HTTP client: adds `X-API-Key`, decodes `{"error":{"code","message"}}` into
/// `LatchError`, and retries a 429 after its `Retry-After` (at most `maxRetries` times, each
/// wait capped at `maxRetryWait` seconds).
public struct LatchHTTPClient: Sendable {
    public let baseURL: URL
    let apiKey: String
    public var transport: any HTTPTransport
    public var maxRetries: Int = 3
    public var maxRetryWait: Double = 30
    public var sleep: @Sendable (Double) async -> Void = { seconds in
        try? await Task.sleep(nanoseconds: UInt64(max(0, seconds) * 1_000_000_000))
    }
    public var userAgent = "latch/0.1.0"
    /// Where time spent waiting for the server is added up ("http").
    public var timings: Timings?

    public init(baseURL: URL, apiKey: String, transport: any HTTPTransport = DefaultHTTPTransport()) {
        self.baseURL = baseURL
        self.apiKey = apiKey
        self.transport = transport
    }

    public static let machinePrefix = "/api/v1/machine"

    /// `path` is relative to the base URL (e.g. `/api/v1/machine/me`); it may carry a query.
    public func send(method: String, path: String, body: Data? = nil) async throws -> Data {
        guard let url = URL(string: baseURL.absoluteString + (path.hasPrefix("/") ? path : "/" + path)) else {
            throw LatchError(.usage, "invalid request path \(path)")
        }
        var request = HTTPRequest(method: method.uppercased(), url: url,
                                  headers: ["X-API-Key": apiKey, "Accept": "application/json", "User-Agent": userAgent])
        if let body {
            request.body = body
            request.headers["Content-Type"] = "application/json"
        }
        var attempt = 0
        while true {
            timings?.count("requests")
            let started = DispatchTime.now().uptimeNanoseconds
            defer { timings?.add("http", since: started) }
            let response = try await exchange(request)
            if (200..<300).contains(response.status) { return response.body }
            if response.status == 429, attempt < maxRetries {
                attempt += 1
                let header = response.header("Retry-After") ?? "1"
                let wait = min(maxRetryWait, Double(header.trimmingCharacters(in: .whitespaces)) ?? 1)
                await sleep(wait)
                continue
            }
            throw Self.error(status: response.status, body: response.body, method: request.method, path: path,
                             retryAfter: response.header("Retry-After"))
        }
    }

    /// One round trip; a transport failure becomes `.unavailable` with what to check.
    func exchange(_ request: HTTPRequest) async throws -> HTTPResponse {
        do {
            return try await transport.send(request)
        } catch let error as LatchError {
            throw error
        } catch {
            throw LatchError(.unavailable, "cannot reach the server at \(baseURL.absoluteString): \(error)",
                             hint: (error as? HTTPConnectionError)?.hint ?? "check the base URL and that `latch serve` is running")
        }
    }

    struct ErrorEnvelope: Decodable {
        struct Inner: Decodable { var code: String?; var message: String? }
        var error: Inner
    }

    /// Map an HTTP failure to a `LatchError`.
    public static func error(status: Int, body: Data, method: String, path: String, retryAfter: String? = nil) -> LatchError {
        let envelope = try? JSONDecoder().decode(ErrorEnvelope.self, from: body)
        let code = envelope?.error.code
        let serverMessage = envelope?.error.message ?? reasonPhrase(status)
        let what = "\(method) \(path.split(separator: "?").first.map(String.init) ?? path)"
        let message = "\(what) failed: \(serverMessage) (HTTP \(status)\(code.map { ", \($0)" } ?? ""))"
        switch status {
        case 401:
            return LatchError(.auth, message, hint: "check the API key (LATCH_API_KEY or the profile's api-secret)", serverCode: code, status: status)
        case 403:
            return LatchError(.forbidden, message, hint: "ask an operator to share access or grant the permission", serverCode: code, status: status)
        case 404:
            return LatchError(.notFound, message, serverCode: code, status: status)
        case 409:
            return LatchError(.conflict, message, hint: "refresh and retry", serverCode: code, status: status)
        case 429:
            return LatchError(.rateLimited, message, hint: "retry after \(retryAfter ?? "a while") seconds", serverCode: code, status: status)
        case 500...:
            return LatchError(.unavailable, message, hint: "the server failed; retry later", serverCode: code, status: status)
        default:
            return LatchError(.badRequest, message, serverCode: code, status: status)
        }
    }

    /// The standard reason phrase, for an error answer without a message of its own.
    static func reasonPhrase(_ status: Int) -> String {
        switch status {
        case 400: "bad request"
        case 401: "unauthorized"
        case 403: "forbidden"
        case 404: "not found"
        case 409: "conflict"
        case 413: "payload too large"
        case 429: "too many requests"
        case 500: "internal server error"
        case 502: "bad gateway"
        case 503: "service unavailable"
        case 504: "gateway timeout"
        default: "HTTP status \(status)"
        }
    }

    public func get<T: Decodable>(_ type: T.Type, _ path: String) async throws -> T {
        try decode(type, try await send(method: "GET", path: path), path: path)
    }

    public func post<T: Decodable>(_ type: T.Type, _ path: String, body: some Encodable, method: String = "POST") async throws -> T {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try decode(type, try await send(method: method, path: path, body: try encoder.encode(body)), path: path)
    }

    public func decode<T: Decodable>(_ type: T.Type, _ data: Data, path: String) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch {
            throw LatchError(.invalidResponse, "unexpected answer to \(path): \(Self.describe(error))",
                             hint: "the server and client versions may not match")
        }
    }

    static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, let ctx):
            return "missing \"\((ctx.codingPath + [key]).map(\.stringValue).joined(separator: "."))\""
        case DecodingError.typeMismatch(_, let ctx), DecodingError.valueNotFound(_, let ctx):
            return "wrong type at \"\(ctx.codingPath.map(\.stringValue).joined(separator: "."))\""
        case DecodingError.dataCorrupted(let ctx):
            return "invalid data at \"\(ctx.codingPath.map(\.stringValue).joined(separator: "."))\": \(ctx.debugDescription)"
        default:
            return String(describing: error)
        }
    }
}

/// Wall time per phase (key load, HTTP, verification and decryption), for `LATCH_TIMING=1`.
public final class Timings: @unchecked Sendable {
    private let lock = NSLock()
    private var phases: [String: UInt64] = [:]
    private var counters: [String: Int] = [:]
    public init() {}
    /// Adds one to counter `name` ("requests": HTTP requests sent, retries included).
    public func count(_ name: String, by n: Int = 1) {
        lock.lock(); counters[name, default: 0] += n; lock.unlock()
    }
    public var counts: [String: Int] {
        lock.lock(); defer { lock.unlock() }
        return counters
    }
    public func add(_ phase: String, since start: UInt64) {
        let d = DispatchTime.now().uptimeNanoseconds &- start
        lock.lock(); phases[phase, default: 0] &+= d; lock.unlock()
    }
    /// Milliseconds per phase.
    public var milliseconds: [String: Double] {
        lock.lock(); defer { lock.unlock() }
        return phases.mapValues { Double($0) / 1_000_000 }
    }
}
