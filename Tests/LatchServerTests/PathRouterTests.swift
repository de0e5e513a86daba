import Foundation
import Hummingbird
import HummingbirdTesting
import LatchDomain
import LatchServer
import Logging
import Testing

/// Records the routes `addRoutes` registers, without their handlers.
final class RouteRecorder: RouterMethods, @unchecked Sendable {
    typealias Context = LatchRequestContext
    var routes: [(path: RouterPath, method: HTTPRequest.Method)] = []
    func on<Responder: HTTPResponder>(_ path: RouterPath, method: HTTPRequest.Method, responder: Responder) -> Self
    where Responder.Context == Context {
        routes.append((path, method))
        return self
    }
    func add(middleware: any MiddlewareProtocol<Request, Response, Context>) -> Self { self }
}

/// Answers with what was matched: the pattern and the parameters, sorted.
struct Echo: HTTPResponder {
    typealias Context = BasicRequestContext
    let pattern: String
    func respond(to request: Request, context: Context) async throws -> Response {
        let parameters = context.parameters.map { "\($0.key)=\($0.value)" }.sorted().joined(separator: ",")
        return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "\(request.method) \(pattern) \(parameters)")))
    }
}

@Suite("The server's router")
struct PathRouterTests {
    /// Status and body of each request, through `responder`.
    func answers(_ responder: some HTTPResponder<BasicRequestContext>, _ requests: [(HTTPRequest.Method, String)]) async throws -> [String] {
        try await Application(responder: responder).test(.router) { client in
            var out: [String] = []
            for (method, path) in requests {
                out.append(try await client.execute(uri: path, method: method) { "\($0.status.code) \(String(buffer: $0.body))" })
            }
            return out
        }
    }

    @Test("matches every path the server's routes can see exactly as Hummingbird's trie does")
    func parityWithTrie() async throws {
        let recorder = RouteRecorder()
        addRoutes(to: recorder, configuration: ServerConfiguration(), service: LatchService(store: MemoryStore()),
                  logger: Logger(label: "test"))
        #expect(recorder.routes.count > 50)
        let trie = Router(context: BasicRequestContext.self)
        let ours = PathRouter(context: BasicRequestContext.self)
        for (path, method) in recorder.routes {
            trie.on(path, method: method, responder: Echo(pattern: path.description))
            ours.on(path, method: method, responder: Echo(pattern: path.description))
        }
        // Every pattern with its captures filled by an id and by each literal the table uses
        // (where precedence decides), then with a component more, one fewer, and extra slashes.
        let literals = Set(recorder.routes.flatMap { $0.path.components.map(\.description) }.filter { !$0.hasPrefix("{") })
        let fills = ["0b7c6a2e-52cd-4d5e-9f1a-4c3d2b1a0e9f", "ünïcode", "a%2Fb"] + literals.sorted()
        var paths: Set<String> = ["/", "", "/nothing", "//healthz//"]
        for (path, _) in recorder.routes {
            for fill in fills {
                let parts = path.components.map { $0.description.hasPrefix("{") ? fill : $0.description }
                let p = "/" + parts.joined(separator: "/")
                paths.formUnion([p, p + "/extra", "/" + parts.dropLast().joined(separator: "/")])
                if fill == fills[0] { paths.formUnion([p + "/", "//" + parts.joined(separator: "//")]) }
            }
        }
        let methods: [HTTPRequest.Method] = [.get, .post, .patch, .delete, .put, .head]
        let requests = paths.sorted().flatMap { p in methods.map { ($0, p) } }
        let expected = try await answers(trie.buildResponder(), requests)
        let got = try await answers(ours.buildResponder(), requests)
        #expect(got.filter { $0.hasPrefix("200") }.count > 1000)   // the probe reaches the routes
        let differences = zip(requests, zip(expected, got)).filter { $1.0 != $1.1 }
        let shown = differences.prefix(5).map { "\($0.0.0) \($0.0.1): trie \($0.1.0), PathRouter \($0.1.1)" }
        #expect(differences.count == 0, "first differences: \(shown)")
    }

    @Test("a literal beats a capture whatever the order of registration; middleware wraps only later routes")
    func precedenceAndMiddleware() async throws {
        struct Tag: RouterMiddleware {
            typealias Context = BasicRequestContext
            let name: String
            func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
                var r: Response
                do { r = try await next(request, context) } catch let e as HTTPError { r = Response(status: e.status) }
                r.headers[.init("X-Tag")!] = (r.headers[.init("X-Tag")!].map { $0 + "," } ?? "") + name
                return r
            }
        }
        let router = PathRouter(context: BasicRequestContext.self)
        router.get("v/:id", use: { _, c in "capture \(c.parameters.get("id") ?? "")" })
        router.add(middleware: Tag(name: "outer"))
        router.get("v/sync", use: { _, _ in "literal" })
        router.group("g").add(middleware: Tag(name: "inner")).get(":a/:b", use: { _, c in
            "\(c.parameters.get("a") ?? "")+\(c.parameters.get("b") ?? "")"
        })
        try await Application(responder: router.buildResponder()).test(.router) { client in
            try await client.execute(uri: "/v/sync", method: .get) { r in
                #expect(String(buffer: r.body) == "literal")
                #expect(r.headers[.init("X-Tag")!] == "outer")
            }
            try await client.execute(uri: "/v/7", method: .get) { r in
                #expect(String(buffer: r.body) == "capture 7")
                #expect(r.headers[.init("X-Tag")!] == nil)
            }
            try await client.execute(uri: "/g/x/y", method: .get) { r in
                #expect(String(buffer: r.body) == "x+y")
                #expect(r.headers[.init("X-Tag")!] == "inner,outer")
            }
            // Not found goes through the router's own middleware.
            try await client.execute(uri: "/g/x", method: .get) { r in
                #expect(r.status == .notFound)
                #expect(r.headers[.init("X-Tag")!] == "outer")
            }
        }
    }
}
