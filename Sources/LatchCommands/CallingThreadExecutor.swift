import Foundation

/// Runs an async operation to completion on the calling thread: every job of its task (and of
/// its child tasks) is run by `run`'s loop, so a short command (`latch get`) never starts the
/// global executor's thread pool, which costs a process several thread creations and a hop per
/// suspension. Work that resumes the task from elsewhere (a continuation resumed by another
/// thread) enqueues its job here, and the loop runs it. Nothing in such an operation may need
/// the main actor: the calling thread is busy in `run`.
public final class CallingThreadExecutor: TaskExecutor, @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []

    private init() {}

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    /// Runs `operation` with this thread as its task executor and returns its result.
    public static func run<T: Sendable>(_ operation: @escaping @Sendable () async -> T) -> T {
        let executor = CallingThreadExecutor()
        let result = ResultBox<T>()
        Task(executorPreference: executor) {
            executor.finish(result, with: await operation())
        }
        while true {
            executor.condition.lock()
            while executor.jobs.isEmpty && result.value == nil { executor.condition.wait() }
            if executor.jobs.isEmpty, let value = result.value {
                executor.condition.unlock()
                return value
            }
            let job = executor.jobs.removeFirst()
            executor.condition.unlock()
            job.runSynchronously(on: executor.asUnownedTaskExecutor())
        }
    }

    private func finish<T>(_ box: ResultBox<T>, with value: T) {
        condition.lock()
        box.value = value
        condition.signal()
        condition.unlock()
    }

    private final class ResultBox<T>: @unchecked Sendable { var value: T? }
}
