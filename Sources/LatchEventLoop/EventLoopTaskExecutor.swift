import NIOCore

/// A `TaskExecutor` that runs jobs on one NIO event loop's thread.
///
/// A task that prefers it (`withTaskExecutorPreference`, `Task(executorPreference:)`) runs every
/// step on that thread. The server runs a connection's cheap requests this way, and the
/// PostgreSQL store runs its statements on the thread of their connection's loop. When both are
/// the same loop, a read goes from socket to database and back with no thread switch.
///
/// Code that runs under this preference blocks the loop while it runs. Every other channel of
/// the loop waits for it, so only short, bounded work may run here.
public final class EventLoopTaskExecutor: TaskExecutor, @unchecked Sendable {
    public let eventLoop: any EventLoop

    public init(_ eventLoop: any EventLoop) { self.eventLoop = eventLoop }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
