import Hummingbird
import HummingbirdCore
import LatchEventLoop
import Logging
import NIOCore

/// Where a request runs.
///
/// Each HTTP/1.1 connection's task runs on its channel's event loop (`LoopBoundHTTP1Channel`),
/// so a cheap read needs no switch to another thread and back. With the PostgreSQL store, the
/// statements also run on a connection of that same loop. Every route that does more than a
/// bounded amount of work is registered behind `OffLoopMiddleware`, which moves the rest of the
/// request to Swift's global executor. That covers syncs, lists, searches, proofs, audit queries
/// and every write. A sync of a large tenant then cannot stall the other connections of the loop.
///
/// The routes left on the loop read one object whose size does not grow with the tenant or the
/// vault: `/healthz`, `me`, `tenant-context`, an item and a field.
/// What stays on the loop blocks that loop while it runs (docs/benchmarks.md, issue 7).
struct LoopBoundHTTP1Channel: ServerChildChannel {
    let http1: HTTP1Channel

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<HTTP1Channel.Value> {
        http1.setup(channel: channel, logger: logger)
    }

    func handle(value: HTTP1Channel.Value, logger: Logger) async {
        await withTaskExecutorPreference(EventLoopTaskExecutor(value.channel.eventLoop)) {
            await http1.handle(value: value, logger: logger)
        }
    }
}

extension HTTPServerBuilder {
    /// HTTP/1.1 with each connection's task on its event loop (`LoopBoundHTTP1Channel`).
    static var loopBoundHTTP1: HTTPServerBuilder {
        HTTPServerBuilder { responder in LoopBoundHTTP1Channel(http1: HTTP1Channel(responder: responder)) }
    }
}

/// Runs the rest of the request (inner middleware and the handler) on Swift's global executor,
/// off the connection's event loop.
struct OffLoopMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        try await withTaskExecutorPreference(globalConcurrentExecutor) { try await next(request, context) }
    }
}
