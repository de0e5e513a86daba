import Hummingbird

/// The server's router. Routes are registered exactly as on Hummingbird's `Router` (this is a
/// `RouterMethods`, so `get`, `post`, `group` and `add(middleware:)` work unchanged), but a
/// request's path is matched by its UTF-8 bytes: split once on `/`, each literal component
/// compared byte for byte, captures taken as slices of the path.
///
/// Why not Hummingbird's trie: it splits the path `Character` by `Character`, which runs
/// grapheme breaking over every byte. The machine API's paths carry one or two UUIDs (about
/// 110 bytes for a field read), so resolving one cost about 2.6 µs, 5% of a whole field read
/// answered from the read cache (`docs/benchmarks.md`, issue 3).
///
/// Matching follows the trie's rules for the patterns this server registers: empty components
/// are ignored; among the patterns with as many components as the path, a literal beats a
/// capture at the first position where two patterns differ; the first pattern that matches
/// decides, and a method it has no responder for is a 404 (as with the trie, which settles the
/// path before the method). Only literal and `:name` components are supported: registering a
/// wildcard is a programming error.
public final class PathRouter<Context: RequestContext>: RouterMethods, HTTPResponderBuilder {
    /// One path pattern and its responders by method.
    struct Route {
        let pattern: RoutePattern
        var responders: [HTTPRequest.Method: any HTTPResponder<Context>]
    }

    private var routes: [Route] = []
    /// The middleware added so far, outermost first; each route gets what was added before it.
    private var middlewares: [any MiddlewareProtocol<Request, Response, Context>] = []

    public init(context: Context.Type) {}

    @discardableResult
    public func on<Responder: HTTPResponder>(_ path: RouterPath, method: HTTPRequest.Method,
                                             responder: Responder) -> Self where Responder.Context == Context {
        let pattern = RoutePattern(path)
        let wrapped = wrap(responder)
        if let other = routes.first(where: { $0.pattern != pattern && $0.pattern.literals == pattern.literals }) {
            preconditionFailure("PathRouter: \(path) matches the same paths as \(other.pattern.description) under other parameter names")
        }
        if let i = routes.firstIndex(where: { $0.pattern == pattern }) {
            precondition(routes[i].responders[method] == nil, "PathRouter: \(method) \(path) registered twice")
            routes[i].responders[method] = wrapped
        } else {
            routes.append(Route(pattern: pattern, responders: [method: wrapped]))
        }
        return self
    }

    @discardableResult
    public func add(middleware: any MiddlewareProtocol<Request, Response, Context>) -> Self {
        middlewares.append(middleware)
        return self
    }

    /// `responder` inside the middleware added so far.
    private func wrap(_ responder: any HTTPResponder<Context>) -> any HTTPResponder<Context> {
        middlewares.reversed().reduce(responder) { Through(middleware: $1, next: $0) }
    }

    /// A responder behind one middleware.
    struct Through: HTTPResponder {
        let middleware: any MiddlewareProtocol<Request, Response, Context>
        let next: any HTTPResponder<Context>
        func respond(to request: Request, context: Context) async throws -> Response {
            try await middleware.handle(request, context: context) { try await next.respond(to: $0, context: $1) }
        }
    }

    public func buildResponder() -> PathResponder<Context> {
        // Insertion sort: stable, so literals that cannot both match keep registration order.
        var sorted: [Route] = []
        for r in routes {
            let at = sorted.firstIndex { $0.pattern.components.count == r.pattern.components.count && r.pattern.precedes($0.pattern) }
            sorted.insert(r, at: at ?? sorted.endIndex)
        }
        return PathResponder(table: RouteTable(sorted.map(\.pattern)), responders: sorted.map(\.responders), notFound: wrap(NotFound()))
    }

    /// What a path no route matches gets (through the router's middleware, as on `Router`).
    struct NotFound: HTTPResponder {
        func respond(to request: Request, context: Context) throws -> Response { throw HTTPError(.notFound) }
    }
}

/// `PathRouter`'s responder: the patterns' table and, in the same order, each one's responders.
public struct PathResponder<Context: RequestContext>: HTTPResponder {
    let table: RouteTable
    let responders: [[HTTPRequest.Method: any HTTPResponder<Context>]]
    let notFound: any HTTPResponder<Context>

    public func respond(to request: Request, context: Context) async throws -> Response {
        do {
            guard let (i, parameters) = table.resolve(request.uri.path), let responder = responders[i][request.method] else {
                return try await notFound.respond(to: request, context: context)
            }
            var context = context
            context.coreContext.parameters = parameters
            context.coreContext.endpointPath.value = table.patterns[i].description
            return try await responder.respond(to: request, context: context)
        } catch let error as any HTTPResponseError {
            // What middleware left unanswered, answered as `Router` does.
            return try error.response(from: request, context: context)
        }
    }
}

/// A route's path pattern.
struct RoutePattern: Equatable {
    enum Component: Equatable {
        case literal([UInt8])
        case capture(Substring)
    }
    let components: [Component]
    let description: String

    init(_ path: RouterPath) {
        components = path.components.map { e in
            let text = e.description
            if e == text { return .literal(Array(text.utf8)) }
            guard text.hasPrefix("{"), text.hasSuffix("}"), text.count > 2 else {
                preconditionFailure("PathRouter: unsupported route component \(text) in \(path)")
            }
            return .capture(Substring(text.dropFirst().dropLast()))
        }
        description = path.description
    }

    /// The literal components, nil where a capture is: two patterns with equal `literals`
    /// match the same paths.
    var literals: [[UInt8]?] {
        components.map { if case .literal(let bytes) = $0 { bytes } else { nil } }
    }

    /// True when `self` is tried before `other`: at the first position where they differ in
    /// kind, a literal comes first.
    func precedes(_ other: RoutePattern) -> Bool {
        for (a, b) in zip(components, other.components) {
            switch (a, b) {
            case (.literal, .capture): return true
            case (.capture, .literal): return false
            default: continue
            }
        }
        return false
    }
}

/// The patterns in the order they are tried (kept apart from the generic responder, so that
/// matching runs as specialised code, without generic metadata looked up per request).
struct RouteTable: Sendable {
    let patterns: [RoutePattern]
    /// Indexes into `patterns` by number of components.
    let byCount: [[Int]]

    init(_ patterns: [RoutePattern]) {
        self.patterns = patterns
        var byCount: [[Int]] = []
        for (i, p) in patterns.enumerated() {
            while byCount.count <= p.components.count { byCount.append([]) }
            byCount[p.components.count].append(i)
        }
        self.byCount = byCount
    }

    /// The path's non-empty components, as ranges of its UTF-8 view.
    static func components(of path: String) -> [Range<String.Index>] {
        var out: [Range<String.Index>] = []
        out.reserveCapacity(8)
        let utf8 = path.utf8
        var start: String.Index? = nil
        var i = utf8.startIndex
        while i < utf8.endIndex {
            if utf8[i] == UInt8(ascii: "/") {
                if let s = start { out.append(s..<i); start = nil }
            } else if start == nil {
                start = i
            }
            utf8.formIndex(after: &i)
        }
        if let s = start { out.append(s..<utf8.endIndex) }
        return out
    }

    /// The index of the first pattern that matches `path`, with the captured parameters.
    func resolve(_ path: String) -> (Int, Parameters)? {
        let parts = Self.components(of: path)
        guard parts.count < byCount.count else { return nil }
        candidates: for i in byCount[parts.count] {
            let components = patterns[i].components
            for k in parts.indices {
                if case .literal(let bytes) = components[k], !path.utf8[parts[k]].elementsEqual(bytes) { continue candidates }
            }
            var parameters = Parameters()
            for k in parts.indices {
                if case .capture(let name) = components[k] { parameters[name] = path[parts[k]] }
            }
            return (i, parameters)
        }
        return nil
    }
}
