import Foundation

/// Results of read use cases, each kept with the store version it is valid for: the store's
/// `commitVersion()`, or its data version as the audit group commit reports it
/// (`AuditBatchResult`); `LatchService.answerRead` says when an entry is put and served.
///
/// An entry is served only while that version is unchanged: nothing was committed since, by
/// this process or another, so a read transaction now would return the same. A write of any
/// kind (data, grants, keys, and for the commit version the audit chain itself) changes the
/// version, so every entry then goes stale at once. Entries are keyed by the API key and the
/// use case's arguments; the caller still checks the key's permissions and audits every read,
/// hit or not. It holds what the store holds (envelopes, checkpoints), never a plaintext.
final class ReadCache: @unchecked Sendable {
    private struct Entry {
        var version: UInt64
        var value: any Sendable
    }

    /// Entries kept at most; when full, the stale ones are dropped, then all if none is stale.
    let capacity: Int
    private let lock = NSLock()
    private var entries: [String: Entry] = [:]

    init(capacity: Int = 1024) { self.capacity = max(1, capacity) }

    /// The value stored under `key` for `version`, if any.
    func value<T>(_ key: String, version: UInt64, as type: T.Type) -> T? {
        entry(key, as: type).flatMap { $0.version == version ? $0.value : nil }
    }

    /// The value stored under `key` and the version it was stored for, if any.
    func entry<T>(_ key: String, as _: T.Type) -> (version: UInt64, value: T)? {
        lock.withLock {
            guard let e = entries[key], let v = e.value as? T else { return nil }
            return (e.version, v)
        }
    }

    func put(_ key: String, version: UInt64, _ value: any Sendable) {
        lock.withLock {
            if entries[key] == nil, entries.count >= capacity {
                entries = entries.filter { $0.value.version == version }
                if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            }
            entries[key] = Entry(version: version, value: value)
        }
    }

    var count: Int { lock.withLock { entries.count } }
}

/// Where a shell keeps its own encoding of a reusable read's result (the server: the response
/// body), made once: the memo travels with the result into `ReadCache`, so a repeat answered
/// from memory is not encoded again. The result a memo belongs to never changes, so neither does
/// its encoding; a result read afresh comes with a fresh memo.
public final class EncodingMemo: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: (any Sendable)?

    public init() {}

    /// The encoding kept, or `make`'s, kept for next time.
    public func value<T: Sendable>(_ make: () throws -> T) rethrows -> T {
        if let v = lock.withLock({ stored }) as? T { return v }
        let v = try make()
        lock.withLock { stored = v }
        return v
    }
}
