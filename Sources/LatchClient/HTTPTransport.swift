import Foundation
import LatchCrypto
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
#if canImport(CLatchOpenSSL)
import CLatchOpenSSL
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

/// `http://` and, on Linux, `https://` over the process's own keep-alive sockets
/// (`SocketHTTPTransport`); `https://` on Apple platforms through URLSession.
public struct DefaultHTTPTransport: HTTPTransport {
    public let timeout: Double
    /// PEM file of the certificate authorities to trust for https instead of the system's
    /// (nil: the system's, or `SSL_CERT_FILE` / `SSL_CERT_DIR` when set).
    public let caFile: String?
    /// See `SocketHTTPTransport.blocksCallingThread`.
    public let blocksCallingThread: Bool
    public init(timeout: Double = 30, caFile: String? = nil, blocksCallingThread: Bool = false) {
        self.timeout = timeout
        self.caFile = caFile
        self.blocksCallingThread = blocksCallingThread
    }

    public func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        switch request.url.scheme?.lowercased() {
        case "http": return try await SocketHTTPTransport(timeout: timeout, blocksCallingThread: blocksCallingThread).send(request)
        case "https":
            #if canImport(Darwin)
            return try await URLSessionTransport(timeout: timeout).send(request)
            #else
            return try await SocketHTTPTransport(timeout: timeout, caFile: caFile, blocksCallingThread: blocksCallingThread).send(request)
            #endif
        default:
            throw LatchError(.configuration, "unsupported URL scheme in \(request.url.absoluteString)",
                             hint: "give the server's base URL as http://HOST:PORT or https://HOST")
        }
    }
}

#if canImport(Darwin)
/// https on Apple platforms: URLSession (the system's TLS and trust settings).
struct URLSessionTransport: HTTPTransport {
    let timeout: Double
    func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        var r = URLRequest(url: request.url, timeoutInterval: timeout)
        r.httpMethod = request.method.uppercased()
        for (name, value) in request.headers { r.setValue(value, forHTTPHeaderField: name) }
        r.httpBody = request.body
        let (data, response) = try await URLSession.shared.data(for: r)
        guard let http = response as? HTTPURLResponse else { throw HTTPConnectionError("not an HTTP answer") }
        var headers: [String: String] = [:]
        for (name, value) in http.allHeaderFields { headers[String(describing: name).lowercased()] = String(describing: value) }
        return HTTPResponse(status: http.statusCode, headers: headers, body: data)
    }
}
#endif

/// HTTP/1.1 over POSIX sockets, with the connections kept alive for the whole process and
/// reused by scheme, host and port; on Linux also `https://`, with TLS (1.2 or later) from
/// the system OpenSSL: the certificate chain checked against the system's trust roots (or
/// `caFile`), the host name (or IP address) checked against the certificate, SNI sent. A CLI
/// process makes one to three requests to one server; a socket and a hand-written request
/// cost microseconds, where an HTTP stack's set-up costs milliseconds. The blocking calls run
/// on a thread of their own, never on the caller's, unless `blocksCallingThread`.
public struct SocketHTTPTransport: HTTPTransport {
    public let timeout: Double
    public let caFile: String?
    /// True: the exchange blocks the calling thread (a thread of Swift's shared pool) for up to
    /// `timeout` instead of starting a thread of its own. Only for a process that does nothing
    /// else meanwhile, such as one `latch get`, where the thread's start is a measurable part
    /// of the run; a long-lived process (an SDK runtime, the MCP server) keeps the default.
    public let blocksCallingThread: Bool
    public init(timeout: Double = 30, caFile: String? = nil, blocksCallingThread: Bool = false) {
        self.timeout = timeout
        self.caFile = caFile
        self.blocksCallingThread = blocksCallingThread
    }

    public func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        let timeout = self.timeout, caFile = self.caFile
        if blocksCallingThread { return try HTTP1Connection.exchange(request, timeout: timeout, caFile: caFile) }
        return try await withCheckedThrowingContinuation { continuation in
            // A thread of its own: a blocked exchange (up to the timeout) never holds a thread
            // of Dispatch's or Swift's shared pools.
            Thread.detachNewThread {
                continuation.resume(with: Result { try HTTP1Connection.exchange(request, timeout: timeout, caFile: caFile) })
            }
        }
    }
}

/// A failure below HTTP (name resolution, connect, send, receive, a malformed answer).
struct HTTPConnectionError: Error, CustomStringConvertible {
    let description: String
    /// What to do about it, when that is not "check the URL and the server".
    var hint: String?
    init(_ what: String, errno code: Int32? = nil, hint: String? = nil) {
        description = code.map { "\(what): \(String(cString: strerror($0)))" } ?? what
        self.hint = hint
    }
}

/// One HTTP/1.1 connection (over TLS when `tls` is set) and the process-wide pool of idle ones.
final class HTTP1Connection {
    let fd: Int32
    let key: String
    private var buffer: [UInt8] = []
    #if canImport(CLatchOpenSSL)
    private var tls: TLSSession?
    #endif
    /// Answers larger than this are refused (a full sync of a large tenant stays far below).
    static let maxBody = 1 << 30

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
    static func exchange(_ request: HTTPRequest, timeout: Double, caFile: String? = nil) throws -> HTTPResponse {
        guard let host = request.url.host, !host.isEmpty else {
            throw HTTPConnectionError("no host in \(request.url.absoluteString)")
        }
        let secure = request.url.scheme?.lowercased() == "https"
        let defaultPort = secure ? 443 : 80
        let port = request.url.port ?? defaultPort
        let key = "\(secure ? "https" : "http")://\(host):\(port)|\(caFile ?? "")"
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(timeout * 1e9)
        let head = requestHead(request, host: host, port: port, defaultPort: defaultPort)
        var reused = takeIdle(key)
        while true {
            let connection = try reused ?? connect(host: host, port: port, key: key, deadline: deadline)
            if reused == nil, secure { try connection.startTLS(host: host, caFile: caFile, deadline: deadline) }
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

    static func requestHead(_ request: HTTPRequest, host: String, port: Int, defaultPort: Int = 80) -> [UInt8] {
        let components = URLComponents(url: request.url, resolvingAgainstBaseURL: false)
        var target = components?.percentEncodedPath ?? "/"
        if target.isEmpty { target = "/" }
        if let q = components?.percentEncodedQuery { target += "?" + q }
        let hostField = host.utf8.contains(UInt8(ascii: ":")) ? "[\(host)]" : host
        var head = "\(request.method.uppercased()) \(target) HTTP/1.1\r\nHost: \(hostField)\(port == defaultPort ? "" : ":\(port)")\r\n"
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
        if poll(&pfd, 1, 0) == 0 { return true }
        #if canImport(CLatchOpenSSL)
        // Readable under TLS may be a record that carries no data (a session ticket).
        if let tls { return tls.idleAndOpen() }
        #endif
        return false
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

    func wait(for events: Int16, deadline: UInt64, what: String) throws {
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
                guard let length = Int(lengthText.trimmedASCII), length >= 0,
                      length <= Self.maxBody else {
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
        #if canImport(CLatchOpenSSL)
        if let tls { return try tls.write(bytes) { try self.wait(for: $0, deadline: deadline, what: "send") } }
        #endif
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
        #if canImport(CLatchOpenSSL)
        if let tls {
            let n = try tls.read(into: &chunk) { try self.wait(for: $0, deadline: deadline, what: "receive") }
            buffer.append(contentsOf: chunk[..<n])
            return n > 0
        }
        #endif
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
                let line = String(decoding: buffer[..<i], as: UTF8.self).trimmedASCII
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
            guard let size = Int(sizeText, radix: 16), size >= 0, body.count + size <= Self.maxBody else {
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
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmedASCII
        }
        return (status, headers, parts[0] == "HTTP/1.1")
    }
}

extension HTTP1Connection {
    /// The TLS handshake on this (connected, non-blocking) socket, bounded by the deadline.
    func startTLS(host: String, caFile: String?, deadline: UInt64) throws {
        #if canImport(CLatchOpenSSL)
        tls = try TLSSession(fd: fd, host: host, caFile: caFile) { try self.wait(for: $0, deadline: deadline, what: "TLS handshake") }
        #else
        throw HTTPConnectionError("https over sockets needs OpenSSL, which this build lacks", hint: "use DefaultHTTPTransport")
        #endif
    }
}

#if canImport(CLatchOpenSSL)

/// One TLS client session over a non-blocking socket (system OpenSSL). Every call that would
/// block hands the events it needs (`POLLIN`/`POLLOUT`) to `wait`, which polls the socket
/// within the caller's deadline.
final class TLSSession {
    private let ssl: OpaquePointer

    /// One context per trust setting for the whole process: TLS 1.2 or later, peer verified.
    nonisolated(unsafe) private static var contexts: [String: OpaquePointer] = [:]
    private static let contextLock = NSLock()

    static func context(caFile: String?) throws -> OpaquePointer {
        try contextLock.withLock {
            if let c = contexts[caFile ?? ""] { return c }
            var why = [CChar](repeating: 0, count: 320)
            guard latch_openssl_load(&why, why.count) == 1 else {
                throw HTTPConnectionError("https is unavailable: \(String(decoding: why.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))",
                                          hint: "install OpenSSL 3 (Debian and Ubuntu: apt-get install libssl3)")
            }
            guard let c = latch_SSL_CTX_new_tls_client() else { throw TLSSession.failure("cannot create a TLS context") }
            _ = latch_SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION)
            latch_SSL_CTX_set_verify(c, SSL_VERIFY_PEER)
            let loaded = caFile.map { latch_SSL_CTX_load_verify_locations(c, $0) } ?? latch_SSL_CTX_set_default_verify_paths(c)
            guard loaded == 1 else {
                latch_SSL_CTX_free(c)
                throw TLSSession.failure("cannot load the trusted certificates\(caFile.map { " from \($0)" } ?? "")")
            }
            contexts[caFile ?? ""] = c
            return c
        }
    }

    init(fd: Int32, host: String, caFile: String?, wait: (Int16) throws -> Void) throws {
        guard let ssl = latch_SSL_new(try Self.context(caFile: caFile)) else { throw Self.failure("cannot create a TLS session") }
        self.ssl = ssl
        let isAddress = host.utf8.contains(UInt8(ascii: ":")) || host.split(separator: ".").allSatisfy { !$0.isEmpty && $0.allSatisfy(\.isNumber) }
        if isAddress {
            guard latch_SSL_set1_ip_asc(ssl, host) == 1 else { throw Self.failure("invalid IP address \(host)") }
        } else {
            _ = latch_SSL_set_tlsext_host_name(ssl, host)
            guard latch_SSL_set1_host(ssl, host) == 1 else { throw Self.failure("invalid host name \(host)") }
        }
        _ = latch_SSL_set_fd(ssl, fd)
        while true {
            let rc = latch_SSL_connect(ssl)
            if rc == 1 { return }
            if let events = Self.wants(ssl, rc) { try wait(events); continue }
            let verify = latch_SSL_get_verify_result(ssl)
            if verify != X509_V_OK {
                var e = Self.failure("the server's certificate for \(host) is not trusted: \(String(cString: latch_X509_verify_cert_error_string(verify)))")
                e.hint = "use the host name the certificate names; for a private CA, point SSL_CERT_FILE at its PEM file"
                throw e
            }
            throw Self.failure("TLS handshake with \(host) failed")
        }
    }

    deinit { latch_SSL_free(ssl) }

    func write(_ bytes: [UInt8], wait: (Int16) throws -> Void) throws {
        var offset = 0
        while offset < bytes.count {
            let rc = bytes.withUnsafeBytes { latch_SSL_write(ssl, $0.baseAddress! + offset, Int32(bytes.count - offset)) }
            if rc > 0 { offset += Int(rc); continue }
            guard let events = Self.wants(ssl, rc) else { throw Self.failure("TLS send failed") }
            try wait(events)
        }
    }

    /// Bytes read into `chunk`; 0 at the end of the stream.
    func read(into chunk: inout [UInt8], wait: (Int16) throws -> Void) throws -> Int {
        while true {
            let rc = chunk.withUnsafeMutableBytes { latch_SSL_read(ssl, $0.baseAddress!, Int32($0.count)) }
            if rc > 0 { return Int(rc) }
            if latch_SSL_get_error(ssl, rc) == SSL_ERROR_ZERO_RETURN { return 0 }
            guard let events = Self.wants(ssl, rc) else {
                // A peer that closes without close_notify ends an until-close body the same way.
                if latch_ERR_peek_error() == 0 { latch_ERR_clear_error(); return 0 }
                throw Self.failure("TLS receive failed")
            }
            try wait(events)
        }
    }

    /// True when nothing but records without data (session tickets) came since the last answer.
    func idleAndOpen() -> Bool {
        var byte: UInt8 = 0
        let rc = latch_SSL_peek(ssl, &byte, 1)
        if rc > 0 { return false }
        let e = latch_SSL_get_error(ssl, rc)
        latch_ERR_clear_error()
        return e == SSL_ERROR_WANT_READ
    }

    /// The socket events a call that returned `rc` waits for, or nil when it failed.
    private static func wants(_ ssl: OpaquePointer, _ rc: Int32) -> Int16? {
        switch latch_SSL_get_error(ssl, rc) {
        case SSL_ERROR_WANT_READ: return Int16(POLLIN)
        case SSL_ERROR_WANT_WRITE: return Int16(POLLOUT)
        default: return nil
        }
    }

    /// An error with OpenSSL's reason, when it has one.
    static func failure(_ what: String) -> HTTPConnectionError {
        let code = latch_ERR_get_error()
        latch_ERR_clear_error()
        guard code != 0 else { return HTTPConnectionError(what) }
        var text = [UInt8](repeating: 0, count: 256)
        text.withUnsafeMutableBufferPointer { latch_ERR_error_string_n(code, UnsafeMutableRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self), $0.count) }
        return HTTPConnectionError("\(what) (\(String(decoding: text.prefix { $0 != 0 }, as: UTF8.self)))")
    }
}
#endif
