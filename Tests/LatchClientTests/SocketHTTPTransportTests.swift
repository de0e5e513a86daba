import Foundation
import Testing
@testable import LatchClient
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A loopback TCP server that answers each request with the next scripted raw answer and
/// records what it received: the wire-level peer for `SocketHTTPTransport`.
final class ScriptedHTTPServer: @unchecked Sendable {
    struct Answer {
        var bytes: String
        /// Close the connection after writing the answer (without saying so in a header).
        var closeAfter = false
        /// Never answer (to test the client's timeout).
        var silent = false
    }
    let port: Int
    private let listener: Int32
    private let lock = NSLock()
    private var answers: [Answer]
    private var _requests: [String] = []
    private var _connections = 0
    private var accepted: [Int32] = []

    var requests: [String] { lock.withLock { _requests } }
    var connections: Int { lock.withLock { _connections } }

    init(_ answers: [Answer]) throws {
        self.answers = answers
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard bound == 0, listen(fd, 8) == 0 else { throw HTTPConnectionError("test server bind/listen", errno: errno) }
        var size = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &size) } }
        listener = fd
        port = Int(UInt16(bigEndian: addr.sin_port))
        Thread.detachNewThread { [self] in acceptLoop() }
    }

    /// Stops listening and ends every accepted connection (as a server that exits would), so
    /// no kept-alive connection outlives the test.
    func stop() {
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
        lock.withLock { for fd in accepted { shutdown(fd, Int32(SHUT_RDWR)) } }
    }

    private func acceptLoop() {
        while true {
            let fd = accept(listener, nil, nil)
            if fd < 0 { return }
            lock.withLock { _connections += 1; accepted.append(fd) }
            Thread.detachNewThread { [self] in serve(fd) }
        }
    }

    private func serve(_ fd: Int32) {
        defer { lock.withLock { accepted.removeAll { $0 == fd }; close(fd) } }
        var pending: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            // One request: the head, then Content-Length bytes of body.
            var request: [UInt8]?
            while request == nil {
                if let end = pending.indices.dropLast(3).first(where: { pending[$0] == 13 && pending[$0 + 1] == 10 && pending[$0 + 2] == 13 && pending[$0 + 3] == 10 }) {
                    let head = String(decoding: pending[..<end], as: UTF8.self)
                    let length = head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                        .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
                    if pending.count >= end + 4 + length {
                        request = Array(pending[..<(end + 4 + length)])
                        pending.removeFirst(end + 4 + length)
                        break
                    }
                }
                let n = recv(fd, &chunk, chunk.count, 0)
                if n <= 0 { return }
                pending += chunk[..<n]
            }
            let answer: Answer? = lock.withLock {
                _requests.append(String(decoding: request!, as: UTF8.self))
                return answers.isEmpty ? nil : answers.removeFirst()
            }
            guard let answer else { return }
            if answer.silent { sleep(5); return }
            let bytes = Array(answer.bytes.utf8)
            _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
            if answer.closeAfter { return }
        }
    }
}

@Suite struct SocketHTTPTransportTests {
    func url(_ server: ScriptedHTTPServer, _ path: String) -> URL { URL(string: "http://127.0.0.1:\(server.port)\(path)")! }

    /// GET `path` from `server` (through `transport`, or a new one with a 5 s timeout).
    func get(_ server: ScriptedHTTPServer, _ path: String, headers: [String: String] = [:],
             transport: SocketHTTPTransport = SocketHTTPTransport(timeout: 5)) async throws -> HTTPResponse {
        try await transport.send(HTTPRequest(method: "GET", url: url(server, path), headers: headers))
    }

    @Test func keepsTheConnectionAliveAndReadsContentLength() async throws {
        let server = try ScriptedHTTPServer([
            .init(bytes: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Thing: a\r\n\r\nhello"),
            .init(bytes: "HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\n{}"),
        ])
        defer { server.stop() }
        let t = SocketHTTPTransport(timeout: 5)
        let first = try await get(server, "/a/b%20c?x=1&y=%2F", headers: ["X-API-Key": "k.s"], transport: t)
        #expect(first.status == 200)
        #expect(String(decoding: first.body, as: UTF8.self) == "hello")
        #expect(first.header("x-thing") == "a")
        let second = try await get(server, "/next", transport: t)
        #expect(second.status == 404 && second.body == Data("{}".utf8))
        #expect(server.connections == 1, "the second request should reuse the kept-alive connection")
        let head = try #require(server.requests.first)
        #expect(head.hasPrefix("GET /a/b%20c?x=1&y=%2F HTTP/1.1\r\n"))
        #expect(head.contains("\r\nHost: 127.0.0.1:\(server.port)\r\n"))
        #expect(head.contains("\r\nX-API-Key: k.s\r\n"))
    }

    /// The mode the CLI uses (the exchange on the calling thread) keeps connections alive and
    /// keeps its deadline like the default.
    @Test func blockingTheCallingThreadGivesTheSameAnswers() async throws {
        let server = try ScriptedHTTPServer([
            .init(bytes: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"),
            .init(bytes: "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
        ])
        defer { server.stop() }
        let t = SocketHTTPTransport(timeout: 5, blocksCallingThread: true)
        let first = try await get(server, "/a", transport: t)
        let second = try await get(server, "/b", transport: t)
        #expect(first.status == 200 && String(decoding: first.body, as: UTF8.self) == "hello")
        #expect(second.status == 201 && String(decoding: second.body, as: UTF8.self) == "abc")
        #expect(server.connections == 1, "the second request should reuse the kept-alive connection")

        let silent = try ScriptedHTTPServer([.init(bytes: "", silent: true)])
        defer { silent.stop() }
        let timedOut = await #expect(throws: HTTPConnectionError.self) {
            _ = try await get(silent, "/slow", transport: SocketHTTPTransport(timeout: 0.3, blocksCallingThread: true))
        }
        #expect(timedOut?.description == "receive: timed out")
    }

    @Test func decodesAChunkedAnswerWithTrailers() async throws {
        let server = try ScriptedHTTPServer([
            .init(bytes: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n6;ext=1\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\nX-Trailer: t\r\n\r\n"),
            .init(bytes: "HTTP/1.1 204 No Content\r\n\r\n"),
        ])
        defer { server.stop() }
        let t = SocketHTTPTransport(timeout: 5)
        let r = try await get(server, "/c", transport: t)
        #expect(String(decoding: r.body, as: UTF8.self) == "Wikipedia in \r\n\r\nchunks.")
        let empty = try await get(server, "/d", transport: t)
        #expect(empty.status == 204 && empty.body.isEmpty)
        #expect(server.connections == 1)
    }

    @Test func sendsTheBodyWithItsLength() async throws {
        let server = try ScriptedHTTPServer([.init(bytes: "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")])
        defer { server.stop() }
        let body = Data(#"{"name":"prod","ü":1}"#.utf8)
        let r = try await SocketHTTPTransport(timeout: 5).send(HTTPRequest(method: "post", url: url(server, "/v"), headers: ["Content-Type": "application/json"], body: body))
        #expect(r.status == 201)
        let request = try #require(server.requests.first)
        #expect(request.hasPrefix("POST /v HTTP/1.1\r\n"))
        #expect(request.contains("\r\nContent-Length: \(body.count)\r\n"))
        #expect(request.hasSuffix("\r\n\r\n" + String(decoding: body, as: UTF8.self)))
    }

    @Test func aConnectionTheServerClosedIsReplacedForTheNextRequest() async throws {
        let server = try ScriptedHTTPServer([
            .init(bytes: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1", closeAfter: true),
            .init(bytes: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n2"),
        ])
        defer { server.stop() }
        let t = SocketHTTPTransport(timeout: 5)
        _ = try await get(server, "/1", transport: t)
        try await Task.sleep(nanoseconds: 50_000_000)   // let the close arrive
        let second = try await get(server, "/2", transport: t)
        #expect(second.body == Data("2".utf8))
        #expect(server.connections == 2)
    }

    @Test func anAnswerWithoutLengthEndsAtClose() async throws {
        let server = try ScriptedHTTPServer([.init(bytes: "HTTP/1.0 200 OK\r\n\r\nuntil the end", closeAfter: true)])
        defer { server.stop() }
        let r = try await get(server, "/")
        #expect(String(decoding: r.body, as: UTF8.self) == "until the end")
    }

    @Test func failuresSayWhatHappened() async throws {
        // Nothing listens: the client reports it as the server being unreachable.
        // The port stays bound (without listening) for the whole test, so no other test's
        // server can take it meanwhile.
        let reserved = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(reserved) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var size = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(reserved, $0, size) == 0 && getsockname(reserved, $0, &size) == 0 }
        }
        #expect(bound)
        let port = Int(UInt16(bigEndian: addr.sin_port))
        let client = LatchHTTPClient(baseURL: URL(string: "http://127.0.0.1:\(port)")!, apiKey: "a.b", transport: SocketHTTPTransport(timeout: 5))
        let refused = await #expect(throws: LatchError.self) { try await client.send(method: "GET", path: "/healthz") }
        #expect(refused?.kind == .unavailable)
        #expect(refused?.description.contains("connect: Connection refused") == true)

        let silent = try ScriptedHTTPServer([.init(bytes: "", silent: true)])
        defer { silent.stop() }
        let started = Date()
        let timedOut = await #expect(throws: HTTPConnectionError.self) {
            _ = try await get(silent, "/slow", transport: SocketHTTPTransport(timeout: 0.3))
        }
        #expect(timedOut?.description == "receive: timed out")
        // Not a timing test: the message above shows the deadline ended the wait; this bound only
        // rules out a hang, loosely enough for a machine whose test threads are all busy.
        #expect(Date().timeIntervalSince(started) < 30)

        let garbage = try ScriptedHTTPServer([.init(bytes: "SSH-2.0-OpenSSH\r\n\r\n", closeAfter: true)])
        defer { garbage.stop() }
        let notHTTP = await #expect(throws: HTTPConnectionError.self) {
            _ = try await get(garbage, "/")
        }
        #expect(notHTTP?.description.hasPrefix("not an HTTP/1.x answer") == true)
    }
}

