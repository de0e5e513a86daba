import Foundation
import Testing
@testable import LatchClient

/// The https path of `SocketHTTPTransport` against a real TLS peer: `openssl s_server -WWW`
/// (which serves files from its directory as HTTP/1.0 answers, body until close) with a
/// certificate for `localhost` issued by a throwaway CA. Needs the `openssl` tool (installed
/// by .ci/run); fails, never skips, without it.
final class TLSPeer: @unchecked Sendable {
    let dir: String
    let port: Int
    private let process = Process()

    init() async throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("latch-tls-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        try Self.openssl(["req", "-x509"] + ec + ["-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=latch-test-ca"], in: dir)
        try Self.openssl(["req"] + ec + ["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"], in: dir)
        try "subjectAltName=DNS:localhost\n".write(toFile: dir + "/san", atomically: true, encoding: .utf8)
        try Self.openssl(["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                          "-out", "server.pem", "-days", "2", "-extfile", "san"], in: dir)
        try "hello over tls\n".write(toFile: dir + "/hello.txt", atomically: true, encoding: .utf8)

        let log = dir + "/server.log"
        FileManager.default.createFile(atPath: log, contents: nil)
        process.executableURL = try Self.tool()
        process.arguments = ["s_server", "-accept", "127.0.0.1:0", "-cert", "server.pem", "-key", "server.key", "-WWW"]
        process.currentDirectoryURL = URL(fileURLWithPath: dir)
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardError = process.standardOutput
        process.standardInput = Pipe()
        try process.run()
        var found: Int?
        for _ in 0..<100 where found == nil {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            if let line = text.split(separator: "\n").first(where: { $0.hasPrefix("ACCEPT ") }), let p = line.split(separator: ":").last {
                found = Int(p)
            } else {
                try await Task.sleep(nanoseconds: 50_000_000)   // (not usleep: other tests share this thread pool)
            }
        }
        guard let found else {
            process.terminate()
            throw TransportTestError("openssl s_server did not start: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        }
        port = found
    }

    func stop() {
        kill(process.processIdentifier, SIGKILL)   // (a child of the test process may inherit a mask that blocks SIGTERM)
        process.waitUntilExit()
        try? FileManager.default.removeItem(atPath: dir)
    }

    var caFile: String { dir + "/ca.pem" }

    static func tool() throws -> URL {
        for d in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let url = URL(fileURLWithPath: String(d)).appendingPathComponent("openssl")
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        throw TransportTestError("the `openssl` tool is required for the https tests but was not found on PATH (apt-get install openssl)")
    }

    static func openssl(_ arguments: [String], in dir: String) throws {
        let p = Process()
        p.executableURL = try tool()
        p.arguments = arguments
        p.currentDirectoryURL = URL(fileURLWithPath: dir)
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw TransportTestError("openssl \(arguments.prefix(2).joined(separator: " ")) failed") }
    }
}

struct TransportTestError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

@Suite(.serialized) struct TLSTransportTests {
    @Test("https to a certificate the given CA issued for the host: the answer arrives, body until close")
    func trustedCertificate() async throws {
        let peer = try await TLSPeer()
        defer { peer.stop() }
        let transport = DefaultHTTPTransport(timeout: 5, caFile: peer.caFile)
        for _ in 0..<2 {   // a second time on a new connection: the server closed the first
            let r = try await transport.send(HTTPRequest(method: "GET", url: URL(string: "https://localhost:\(peer.port)/hello.txt")!))
            #expect(r.status == 200)
            #expect(String(decoding: r.body, as: UTF8.self) == "hello over tls\n")
        }
    }

    @Test("https is refused, saying why, when the certificate's issuer is not trusted or it names another host")
    func refusals() async throws {
        let peer = try await TLSPeer()
        defer { peer.stop() }
        // The system's trust roots do not include the throwaway CA.
        await #expect { try await DefaultHTTPTransport(timeout: 5).send(HTTPRequest(method: "GET", url: URL(string: "https://localhost:\(peer.port)/hello.txt")!)) }
            throws: { "\($0)".contains("certificate for localhost is not trusted") }
        // Trusted issuer, but the certificate names localhost, not the address asked for.
        await #expect { try await DefaultHTTPTransport(timeout: 5, caFile: peer.caFile).send(HTTPRequest(method: "GET", url: URL(string: "https://127.0.0.1:\(peer.port)/hello.txt")!)) }
            throws: { "\($0)".contains("certificate for 127.0.0.1 is not trusted") && "\($0)".contains("mismatch") }
        // Through the client: one line that names the server and the reason.
        let client = LatchHTTPClient(baseURL: URL(string: "https://localhost:\(peer.port)")!, apiKey: "a.b", transport: DefaultHTTPTransport(timeout: 5))
        await #expect { _ = try await client.send(method: "GET", path: "/hello.txt", body: nil) }
            throws: { e in
                guard let e = e as? LatchError else { return false }
                return e.kind == .unavailable && e.message.contains("https://localhost:\(peer.port)") && e.message.contains("not trusted")
                    && e.hint?.contains("SSL_CERT_FILE") == true
            }
        // A CA file that does not exist is a clear error too.
        await #expect { try await DefaultHTTPTransport(timeout: 5, caFile: peer.dir + "/missing.pem").send(HTTPRequest(method: "GET", url: URL(string: "https://localhost:\(peer.port)/hello.txt")!)) }
            throws: { "\($0)".contains("cannot load the trusted certificates from") }
    }
}
