import Foundation
import LatchDomain
import Logging
import NIOCore
import NIOPosix
import PostgresNIO

/// One pooled PostgreSQL connection, lent to one transaction at a time.
final class PooledConnection: @unchecked Sendable {
    let connection: PostgresConnection
    /// Set when a statement on it failed other than with a plain server error (the connection
    /// was lost, the server ended the session, a statement outlived its deadline): it is closed
    /// when it comes back instead of being lent again.
    let broken = Once()
    /// When it last went back to the pool's idle list (read and written under the pool's lock).
    var idleSince = ContinuousClock.now
    private let lock = NSLock()
    private var closed = false
    private var onClose: (@Sendable () -> Void)?

    init(_ connection: PostgresConnection) {
        self.connection = connection
        connection.closeFuture.whenComplete { [weak self] _ in
            guard let self else { return }
            let f = self.lock.withLock { () -> (@Sendable () -> Void)? in
                self.closed = true
                defer { self.onClose = nil }
                return self.onClose
            }
            f?()
        }
    }

    /// Closes the connection. This object, and with it the driver's connection (which must not
    /// be freed while open), is kept until the close has completed.
    func close() { connection.close().whenComplete { _ in _ = self } }

    /// Runs `f` when the connection closes, in place of any earlier one (nil: nothing); false
    /// when it is closed already (and `f` was not kept).
    func whenClosed(_ f: (@Sendable () -> Void)?) -> Bool {
        lock.withLock {
            if closed { return false }
            onClose = f
            return true
        }
    }
}

/// The store's connections: at most `size`, made when needed, lent to one transaction at a
/// time.
///
/// A lease that finds an idle connection takes it without suspending; one that finds none
/// and the pool full waits its turn (first come, first served) for at most `acquireTimeout`
/// (a `Deadlines` entry), then fails with `.unavailable`. A connection that was closed or is
/// `broken` (the database went away or ended the session, a statement outlived its deadline)
/// is dropped when it comes back or is found idle, and the next lease connects afresh: the pool recovers by itself when the
/// database returns, and while it is gone a lease fails as soon as the connection attempt does.
/// A connection left idle for `idleTimeout` is closed (checked every half of it), so a burst
/// does not hold its connections, and their server processes, for good.
final class ConnectionPool: @unchecked Sendable {
    /// What a waiting lease is given: a connection, or the right to make one.
    private enum Grant { case connection(PooledConnection), slot }

    let size: Int
    let acquireTimeout: Duration
    let idleTimeout: Duration
    private let configuration: PostgresConnection.Configuration
    private let logger: Logger
    private let lock = NSLock()
    private var idle: [PooledConnection] = []
    /// Connections made or being made, lent or idle.
    private var open = 0
    private var nextID = 0
    private var waiters: [(id: UInt64, k: CheckedContinuation<Grant, any Error>)] = []
    /// The `Deadlines` entry of each waiting lease.
    private var deadlines: [UInt64: UInt64] = [:]
    private var nextWaiter: UInt64 = 0
    private var closed = false
    private var reaper: Task<Void, Never>?

    init(configuration: PostgresConnection.Configuration, size: Int, acquireTimeout: Duration,
         idleTimeout: Duration = .seconds(60), logger: Logger) {
        self.configuration = configuration; self.size = max(1, size); self.acquireTimeout = acquireTimeout
        self.idleTimeout = idleTimeout; self.logger = logger
        let every = max(idleTimeout / 2, .milliseconds(100))
        reaper = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: every)
                guard let self else { return }
                self.closeIdle()
            }
        }
    }

    deinit {
        // A store dropped without `close()` (a server that failed to start): its idle
        // connections are closed, each kept alive until it is.
        reaper?.cancel()
        for c in idle { c.close() }
    }

    /// Closes the connections idle for `idleTimeout` or longer.
    func closeIdle() {
        let stale = lock.withLock { () -> [PooledConnection] in
            let cutoff = ContinuousClock.now - idleTimeout
            let stale = idle.filter { $0.idleSince <= cutoff }
            guard !stale.isEmpty else { return [] }
            idle.removeAll { $0.idleSince <= cutoff }
            open -= stale.count
            return stale
        }
        for c in stale { c.close() }
    }

    /// Connections made or being made, lent or idle.
    var connectionCount: Int { lock.withLock { open } }

    private var closedError: StoreError { StoreError(.unavailable, "the PostgreSQL store is closed") }

    /// A connection for one transaction; give it back with `release`.
    func lease() async throws -> PooledConnection {
        let start = ContinuousClock.now
        let now: Grant? = try lock.withLock {
            if closed { throw closedError }
            return takeLocked()
        }
        switch now {
        case .connection(let c): return c
        case .slot: return try await connect(within: acquireTimeout)
        case nil: break
        }
        let grant = try await wait()
        switch grant {
        case .connection(let c): return c
        // A slot freed by a failed attempt: this lease has waited already, and connects in
        // what is left of its `acquireTimeout` (at least 0.1 s), not in a whole one more.
        case .slot: return try await connect(within: max(acquireTimeout - (ContinuousClock.now - start), .milliseconds(100)))
        }
    }

    /// An idle connection, or a slot when the pool has room; nil when the caller must wait.
    private func takeLocked() -> Grant? {
        while let c = idle.popLast() {
            if !c.connection.isClosed { return .connection(c) }
            open -= 1
        }
        if open < size {
            open += 1
            return .slot
        }
        return nil
    }

    private func wait() async throws -> Grant {
        let timeout = acquireTimeout, size = self.size
        return try await withCheckedThrowingContinuation { (k: CheckedContinuation<Grant, any Error>) in
            let outcome: Result<Grant, StoreError>? = lock.withLock {
                if closed { return .failure(closedError) }
                if let g = takeLocked() { return .success(g) }
                nextWaiter &+= 1
                let id = nextWaiter
                waiters.append((id, k))
                let deadline = Deadlines.shared.add(after: timeout) { [weak self] in
                    guard let self else { return }
                    let gaveUp = self.lock.withLock { () -> Bool in
                        self.deadlines[id] = nil
                        guard let i = self.waiters.firstIndex(where: { $0.id == id }) else { return false }
                        self.waiters.remove(at: i)
                        return true
                    }
                    if gaveUp {
                        k.resume(throwing: StoreError(.unavailable, "no PostgreSQL connection within \(timeout) (database down or pool of \(size) busy)"))
                    }
                }
                deadlines[id] = deadline
                return nil
            }
            if let outcome { k.resume(with: outcome.mapError { $0 as any Error }) }
        }
    }

    /// Makes a connection in a slot this caller holds, giving up after `timeout`; the slot is
    /// given back when it fails.
    private func connect(within timeout: Duration) async throws -> PooledConnection {
        let id = lock.withLock { () -> Int in nextID += 1; return nextID }
        var configuration = self.configuration
        configuration.options.connectTimeout = TimeAmount(timeout)
        do {
            let c = try await PostgresConnection.connect(on: MultiThreadedEventLoopGroup.singleton.any(),
                                                         configuration: configuration, id: id, logger: logger).get()
            return PooledConnection(c)
        } catch {
            giveBack(nil)
            throw StoreError(.unavailable, "PostgreSQL is unreachable: \(error)")
        }
    }

    /// Returns a lent connection. One that is closed or `broken` is closed and its slot freed.
    func release(_ c: PooledConnection) {
        if !c.broken.isSet && !c.connection.isClosed {
            giveBack(c)
        } else {
            c.close()
            giveBack(nil)
        }
    }

    /// Hands `c` (or, for nil, its freed slot) to the first waiting lease, else keeps it.
    private func giveBack(_ c: PooledConnection?) {
        let (waiter, deadline, toClose): (CheckedContinuation<Grant, any Error>?, UInt64?, PooledConnection?) = lock.withLock {
            if closed {
                open -= 1
                return (nil, nil, c)
            }
            guard !waiters.isEmpty else {
                if let c {
                    c.idleSince = .now
                    idle.append(c)
                } else {
                    open -= 1
                }
                return (nil, nil, nil)
            }
            let w = waiters.removeFirst()
            return (w.k, deadlines.removeValue(forKey: w.id), nil)
        }
        if let deadline { Deadlines.shared.remove(deadline) }
        waiter?.resume(returning: c.map { .connection($0) } ?? .slot)
        toClose?.close()
    }

    /// Refuses further leases, fails the waiting ones and closes the idle connections,
    /// waiting at most `limit` for them; lent ones are closed when they come back.
    func close(limit: Duration = .seconds(5)) async {
        reaper?.cancel()
        let (idle, waiters, deadlines) = lock.withLock { () -> ([PooledConnection], [CheckedContinuation<Grant, any Error>], [UInt64]) in
            closed = true
            let taken = (self.idle, self.waiters.map(\.k), Array(self.deadlines.values))
            open -= self.idle.count
            self.idle = []; self.waiters = []; self.deadlines = [:]
            return taken
        }
        for d in deadlines { Deadlines.shared.remove(d) }
        for k in waiters { k.resume(throwing: closedError) }
        let closing: [EventLoopFuture<Void>] = idle.map { $0.connection.close() }
        guard !closing.isEmpty else { return }
        let once = Once()
        let logger = self.logger
        await withCheckedContinuation { (k: CheckedContinuation<Void, Never>) in
            @Sendable func finish(_ timedOut: Bool) {
                guard once.first() else { return }
                if timedOut { logger.warning("PostgreSQL connections still closing after \(limit); not waiting for them") }
                k.resume()
            }
            EventLoopFuture<Void>.whenAllComplete(closing, on: closing[0].eventLoop).whenComplete { _ in _ = idle; finish(false) }
            _ = Deadlines.shared.add(after: limit) { finish(true) }
        }
    }
}

extension TimeAmount {
    /// `d` to the nanosecond.
    init(_ d: Duration) {
        let c = d.components
        self = .nanoseconds(c.seconds * 1_000_000_000 + c.attoseconds / 1_000_000_000)
    }
}
