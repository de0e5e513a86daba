/// Streaming replacement of secret values in a byte stream (used by `latch run`).
///
/// Feed chunks as they arrive; the masker emits everything it can decide and holds back
/// only a tail that could still be the start of a secret (at most the longest secret's length
/// minus one byte), so a value split across two reads is still caught. Where secrets overlap
/// at one position, the longest one that matches wins. Values shorter than `minimumLength`
/// are not masked (masking "1" would garble every output).
public struct SecretMasker: Sendable {
    public static let replacement: [UInt8] = Array("<concealed by latch>".utf8)
    public static let defaultMinimumLength = 4

    private let byFirstByte: [UInt8: [[UInt8]]]   // longest first
    private let replacement: [UInt8]
    private var pending: [UInt8] = []
    public let skipped: [String]

    public init<S: Sequence>(secrets: S, replacement: [UInt8] = SecretMasker.replacement,
                             minimumLength: Int = SecretMasker.defaultMinimumLength) where S.Element == String {
        var table: [UInt8: [[UInt8]]] = [:]
        var seen = Set<[UInt8]>()
        var skipped: [String] = []
        for s in secrets {
            let bytes = Array(s.utf8)
            if bytes.isEmpty { continue }
            if bytes.count < minimumLength { skipped.append(s); continue }
            if !seen.insert(bytes).inserted { continue }
            table[bytes[0], default: []].append(bytes)
        }
        for key in table.keys { table[key]?.sort { $0.count > $1.count } }
        self.byFirstByte = table
        self.replacement = replacement
        self.skipped = skipped
    }

    public var isEmpty: Bool { byFirstByte.isEmpty }

    /// Add a chunk; returns the bytes that can be written now.
    public mutating func feed(_ chunk: some Sequence<UInt8>) -> [UInt8] {
        pending.append(contentsOf: chunk)
        return process(final: false)
    }

    /// End of stream: returns what was held back, masked.
    public mutating func finish() -> [UInt8] {
        process(final: true)
    }

    private mutating func process(final: Bool) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(pending.count)
        var i = 0
        let n = pending.count
        scan: while i < n {
            guard let candidates = byFirstByte[pending[i]] else {
                out.append(pending[i]); i += 1; continue
            }
            var matched: Int? = nil
            for secret in candidates {   // longest first
                let available = n - i
                if secret.count > available {
                    // could this longer secret still complete with more input?
                    if !final && pending[i..<n].elementsEqual(secret[0..<available]) { break scan }
                    continue
                }
                if pending[i..<(i + secret.count)].elementsEqual(secret) { matched = secret.count; break }
            }
            if let len = matched {
                out.append(contentsOf: replacement); i += len
            } else {
                out.append(pending[i]); i += 1
            }
        }
        pending.removeFirst(i)
        return out
    }
}
