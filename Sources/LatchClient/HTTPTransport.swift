import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One HTTP request as the client sends it. The client's own type, so that the SDK does not
/// need FoundationNetworking (on Linux `URLRequest` lives there, and loading it loads libcurl
/// and its whole dependency tree into every `latch` process).
public struct HTTPRequest: Sendable {
    public var method: String
    public var url: URL
    /// Header fields; names are matched case-insensitively.
    public var headers: [String: String]
    public var body: Data?

    public init(method: String, url: URL, headers: [String: String] = [:], body: Data? = nil) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
    }
}

public struct HTTPResponse: Sendable {
    public var status: Int
    /// Header fields with lower-cased names (the last value wins for a repeated name).
    public var headers: [String: String]
    public var body: Data

    public init(status: Int, headers: [String: String] = [:], body: Data = Data()) {
        self.status = status
        self.headers = Dictionary(headers.map { ($0.key.lowercased(), $0.value) }, uniquingKeysWith: { _, last in last })
        self.body = body
    }

    public func header(_ name: String) -> String? { headers[name.lowercased()] }
}

/// Sends one HTTP request. The real one is `DefaultHTTPTransport`; tests may pass another.
public protocol HTTPTransport: Sendable {
    func send(_ request: HTTPRequest) async throws -> HTTPResponse
}

/// `http://` over the process's own keep-alive sockets (`PlainHTTPTransport`), `https://`
/// through AsyncHTTPClient (TLS with the system's trust roots, certificate and host name
/// checked).
public struct DefaultHTTPTransport: HTTPTransport {
    public let timeout: Double
    public init(timeout: Double = 30) { self.timeout = timeout }

    public func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        switch request.url.scheme?.lowercased() {
        case "http": return try await PlainHTTPTransport(timeout: timeout).send(request)
        case "https": return try await TLSHTTPTransport(timeout: timeout).send(request)
        default:
            throw LatchError(.configuration, "unsupported URL scheme in \(request.url.absoluteString)",
                             hint: "give the server's base URL as http://HOST:PORT or https://HOST")
        }
    }
}

/// HTTPS through AsyncHTTPClient's process-wide client (never shut down).
struct TLSHTTPTransport: HTTPTransport {
    let timeout: Double
    /// Answers larger than this are refused (a full sync of a large tenant stays far below).
    static let maxBody = 1 << 30

    func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        var r = HTTPClientRequest(url: request.url.absoluteString)
        r.method = HTTPMethod(rawValue: request.method.uppercased())
        for (name, value) in request.headers { r.headers.replaceOrAdd(name: name, value: value) }
        if let body = request.body { r.body = .bytes(ByteBuffer(bytes: body)) }
        let response = try await HTTPClient.shared.execute(r, timeout: .milliseconds(Int64(timeout * 1000)))
        let buffer = try await response.body.collect(upTo: Self.maxBody)
        var headers: [String: String] = [:]
        for (name, value) in response.headers { headers[name.lowercased()] = value }
        return HTTPResponse(status: Int(response.status.code), headers: headers, body: Data(buffer.readableBytesView))
    }
}

/// Plain HTTP/1.1 over POSIX sockets, with the connections kept alive for the whole process
/// and reused by host and port. A CLI process makes two or three requests to one server; a
/// socket and a hand-written request cost microseconds, where an HTTP stack's set-up costs
/// milliseconds. The blocking calls run on a thread of their own, never on the caller's.
public struct PlainHTTPTransport: HTTPTransport {
    public let timeout: Double
    public init(timeout: Double = 30) { self.timeout = timeout }

    public func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        let timeout = self.timeout
        return try await withCheckedThrowingContinuation { continuation in
            // A thread of its own: a blocked exchange (up to the timeout) never holds a thread
            // of Dispatch's or Swift's shared pools.
            Thread.detachNewThread {
                continuation.resume(with: Result { try HTTP1Connection.exchange(request, timeout: timeout) })
            }
        }
    }
}

/// A failure below HTTP (name resolution, connect, send, receive, a malformed answer).
struct HTTPConnectionError: Error, CustomStringConvertible {
    let description: String
    init(_ what: String, errno code: Int32? = nil) {
        description = code.map { "\(what): \(String(cString: strerror($0)))" } ?? what
    }
}

/// One HTTP/1.1 connection and the process-wide pool of idle ones.
final class HTTP1Connection {
    let fd: Int32
    let key: String
    private var buffer: [UInt8] = []

    private init(fd: Int32, key: String) {
        self.fd = fd
        self.key = key
    }
    deinit { close(fd) }

    nonisolated(unsafe) private static var idle: [String: [HTTP1Connection]] = [:]
    private static let idleLock = NSLock()

    /// Sends `request` and reads the whole answer. An idle connection the server has closed
    /// is noticed before use; a GET on a reused connection that fails before any byte of the
    /// answer is sent once more on a new connection.
    static func exchange(_ request: HTTPRequest, timeout: Double) throws -> HTTPResponse {
        guard let host = request.url.host, !host.isEmpty else {
            throw HTTPConnectionError("no host in \(request.url.absoluteString)")
        }
        let port = request.url.port ?? 80
        let key = "\(host):\(port)"
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(timeout * 1e9)
        let head = requestHead(request, host: host, port: port)
        var reused = takeIdle(key)
        while true {
            let connection = try reused ?? connect(host: host, port: port, key: key, deadline: deadline)
            do {
                let (response, keepAlive) = try connection.roundTrip(head: head, body: request.body, method: request.method, deadline: deadline)
                if keepAlive { putIdle(connection) }
                return response
            } catch let e as RoundTripError {
                guard reused != nil, !e.receivedAnswer, ["GET", "HEAD"].contains(request.method.uppercased()) else { throw e.underlying }
                reused = nil   // a stale kept-alive connection: once more on a new one
            }
        }
    }

    static func requestHead(_ request: HTTPRequest, host: String, port: Int) -> [UInt8] {
        let components = URLComponents(url: request.url, resolvingAgainstBaseURL: false)
        var target = components?.percentEncodedPath ?? "/"
        if target.isEmpty { target = "/" }
        if let q = components?.percentEncodedQuery { target += "?" + q }
        let hostField = host.contains(":") ? "[\(host)]" : host
        var head = "\(request.method.uppercased()) \(target) HTTP/1.1\r\nHost: \(hostField)\(port == 80 ? "" : ":\(port)")\r\n"
        for (name, value) in request.headers where !["host", "content-length", "connection"].contains(name.lowercased()) {
            head += "\(name): \(value)\r\n"
        }
        if let body = request.body { head += "Content-Length: \(body.count)\r\n" }
        else if ["POST", "PUT", "PATCH"].contains(request.method.uppercased()) { head += "Content-Length: 0\r\n" }
        head += "\r\n"
        return Array(head.utf8)
    }

    private static func takeIdle(_ key: String) -> HTTP1Connection? {
        while let c = idleLock.withLock({ idle[key]?.popLast() }) {
            if c.isReusable() { return c }
        }
        return nil
    }

    private static func putIdle(_ c: HTTP1Connection) {
        idleLock.withLock { idle[c.key, default: []].append(c) }
    }

    /// False when the server closed the connection (or sent bytes nobody asked for).
    private func isReusable() -> Bool {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&pfd, 1, 0) == 0
    }

    static func connect(host: String, port: Int, key: String, deadline: UInt64) throws -> HTTP1Connection {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc)
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
        hints.ai_socktype = SOCK_STREAM
        #endif
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &list)
        guard rc == 0, let first = list else {
            throw HTTPConnectionError("cannot resolve \(host): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(list) }
        var lastError = HTTPConnectionError("no address for \(host)")
        var next: UnsafeMutablePointer<addrinfo>? = first
        while let ai = next {
            next = ai.pointee.ai_next
            let fd = socket(ai.pointee.ai_family, ai.pointee.ai_socktype, ai.pointee.ai_protocol)
            if fd < 0 { lastError = HTTPConnectionError("socket", errno: errno); continue }
            let c = HTTP1Connection(fd: fd, key: key)   // closes fd on failure
            do {
                try c.connect(to: ai.pointee.ai_addr, length: ai.pointee.ai_addrlen, deadline: deadline)
                var one: Int32 = 1
                _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
                return c
            } catch let e as HTTPConnectionError {
                lastError = e
            }
        }
        throw lastError
    }

    /// A non-blocking connect bounded by the deadline; the socket stays non-blocking and every
    /// later read and write waits in `poll` with what is left of the deadline.
    private func connect(to address: UnsafeMutablePointer<sockaddr>, length: socklen_t, deadline: UInt64) throws {
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        #if canImport(Darwin)
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, socklen_t(MemoryLayout<Int32>.size))
        #endif
        #if canImport(Glibc)
        let rc = Glibc.connect(fd, address, length)
        #else
        let rc = Darwin.connect(fd, address, length)
        #endif
        if rc == 0 { return }
        guard errno == EINPROGRESS else { throw HTTPConnectionError("connect", errno: errno) }
        try wait(for: Int16(POLLOUT), deadline: deadline, what: "connect")
        var error: Int32 = 0
        var size = socklen_t(MemoryLayout<Int32>.size)
        _ = getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size)
        if error != 0 { throw HTTPConnectionError("connect", errno: error) }
    }

    private func wait(for events: Int16, deadline: UInt64, what: String) throws {
        while true {
            let now = DispatchTime.now().uptimeNanoseconds
            guard now < deadline else { throw HTTPConnectionError("\(what): timed out") }
            var pfd = pollfd(fd: fd, events: events, revents: 0)
            let ms = Int32(min(UInt64(Int32.max), (deadline - now + 999_999) / 1_000_000))
            let n = poll(&pfd, 1, ms)
            if n > 0 { return }
            if n < 0 && errno != EINTR { throw HTTPConnectionError(what, errno: errno) }
        }
    }

    struct RoundTripError: Error {
        var underlying: any Error
        var receivedAnswer: Bool
    }

    /// Writes the request and reads one answer. Returns whether the connection may be reused.
    func roundTrip(head: [UInt8], body: Data?, method: String, deadline: UInt64) throws -> (HTTPResponse, Bool) {
        var received = false
        do {
            try write(head, deadline: deadline)
            if let body, !body.isEmpty { try write(Array(body), deadline: deadline) }
            buffer.removeAll(keepingCapacity: true)
            let headEnd = try readUntilHeadEnd(deadline: deadline, received: &received)
            let (status, headers, version11) = try Self.parseHead(buffer[..<headEnd])
            buffer.removeFirst(headEnd + 4)
            let connectionField = headers["connection"]?.lowercased() ?? ""
            var keepAlive = version11 ? !connectionField.contains("close") : connectionField.contains("keep-alive")
            let body: [UInt8]
            if method.uppercased() == "HEAD" || status == 204 || status == 304 || (100..<200).contains(status) {
                body = []
            } else if headers["transfer-encoding"]?.lowercased().contains("chunked") == true {
                body = try readChunked(deadline: deadline)
            } else if let lengthText = headers["content-length"] {
                guard let length = Int(lengthText.trimmingCharacters(in: .whitespaces)), length >= 0,
                      length <= TLSHTTPTransport.maxBody else {
                    throw HTTPConnectionError("invalid Content-Length \(lengthText)")
                }
                try fill(to: length, deadline: deadline)
                body = Array(buffer[..<length])
                buffer.removeFirst(length)
            } else {
                while try readMore(deadline: deadline) {}
                body = buffer
                buffer.removeAll()
                keepAlive = false
            }
            if !buffer.isEmpty { keepAlive = false }   // bytes beyond the answer: do not reuse
            return (HTTPResponse(status: status, headers: headers, body: Data(body)), keepAlive)
        } catch {
            throw RoundTripError(underlying: error, receivedAnswer: received)
        }
    }

    private func write(_ bytes: [UInt8], deadline: UInt64) throws {
        var offset = 0
        while offset < bytes.count {
            #if canImport(Glibc)
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
            #else
            let n = bytes.withUnsafeBytes { Darwin.send(fd, $0.baseAddress! + offset, bytes.count - offset, 0) }
            #endif
            if n > 0 { offset += n; continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
                try wait(for: Int16(POLLOUT), deadline: deadline, what: "send")
                continue
            }
            throw HTTPConnectionError("send", errno: errno)
        }
    }

    /// Reads what is available into `buffer`; false at the end of the stream.
    @discardableResult
    private func readMore(deadline: UInt64) throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
            if n > 0 { buffer.append(contentsOf: chunk[..<n]); return true }
            if n == 0 { return false }
            if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR {
                try wait(for: Int16(POLLIN), deadline: deadline, what: "receive")
                continue
            }
            throw HTTPConnectionError("receive", errno: errno)
        }
    }

    private static let headTerminator: [UInt8] = [13, 10, 13, 10]

    private func readUntilHeadEnd(deadline: UInt64, received: inout Bool) throws -> Int {
        var searchFrom = 0
        while true {
            if buffer.count >= 4 {
                var i = searchFrom
                while i + 4 <= buffer.count {
                    if buffer[i] == 13 && buffer[i + 1] == 10 && buffer[i + 2] == 13 && buffer[i + 3] == 10 { return i }
                    i += 1
                }
                searchFrom = max(0, buffer.count - 3)
            }
            guard buffer.count < 1 << 20 else { throw HTTPConnectionError("answer head larger than 1 MiB") }
            guard try readMore(deadline: deadline) else {
                throw HTTPConnectionError(received ? "the server closed the connection mid-answer" : "the server closed the connection")
            }
            received = true
        }
    }

    private func fill(to count: Int, deadline: UInt64) throws {
        while buffer.count < count {
            guard try readMore(deadline: deadline) else { throw HTTPConnectionError("the server closed the connection mid-answer") }
        }
    }

    private func readLine(deadline: UInt64) throws -> String {
        while true {
            if let i = buffer.firstIndex(of: 10) {
                let line = String(decoding: buffer[..<i], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                buffer.removeFirst(i + 1)
                return line
            }
            guard try readMore(deadline: deadline) else { throw HTTPConnectionError("the server closed the connection mid-answer") }
        }
    }

    private func readChunked(deadline: UInt64) throws -> [UInt8] {
        var body: [UInt8] = []
        while true {
            let sizeLine = try readLine(deadline: deadline)
            let sizeText = sizeLine.split(separator: ";", maxSplits: 1).first.map(String.init) ?? ""
            guard let size = Int(sizeText, radix: 16), size >= 0, body.count + size <= TLSHTTPTransport.maxBody else {
                throw HTTPConnectionError("invalid chunk size \(sizeLine.prefix(20))")
            }
            if size == 0 {
                while try !readLine(deadline: deadline).isEmpty {}   // trailers
                return body
            }
            try fill(to: size + 2, deadline: deadline)
            body.append(contentsOf: buffer[..<size])
            buffer.removeFirst(size + 2)
        }
    }

    /// Status, lower-cased header fields, and whether the answer is HTTP/1.1.
    static func parseHead(_ bytes: ArraySlice<UInt8>) throws -> (Int, [String: String], Bool) {
        let text = String(decoding: bytes, as: UTF8.self)
        var lines = text.split(separator: "\r\n", omittingEmptySubsequences: false).makeIterator()
        guard let statusLine = lines.next() else { throw HTTPConnectionError("empty answer") }
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]), (100..<600).contains(status) else {
            throw HTTPConnectionError("not an HTTP/1.x answer: \(statusLine.prefix(40))")
        }
        var headers: [String: String] = [:]
        while let line = lines.next() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return (status, headers, parts[0] == "HTTP/1.1")
    }
}
