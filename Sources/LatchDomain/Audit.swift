import Crypto
import Foundation
import LatchCrypto

/// Small hashing helpers (lowercase hex SHA-256, constant-time comparison).
public enum Hashing {
    public static func sha256Hex(_ data: some DataProtocol) -> String { hex(SHA256.hash(data: data)) }
    public static func sha256Hex(_ s: String) -> String {
        var s = s
        return s.withUTF8 { hex(SHA256.hash(data: UnsafeRawBufferPointer($0))) }
    }

    /// A digest as lowercase hex, written straight into the string's storage.
    private static func hex(_ digest: SHA256.Digest) -> String {
        String(unsafeUninitializedCapacity: SHA256.byteCount * 2) { out in
            let digits: StaticString = "0123456789abcdef"
            var i = 0
            for b in digest {
                out[i] = digits.utf8Start[Int(b >> 4)]; out[i + 1] = digits.utf8Start[Int(b & 0x0f)]
                i += 2
            }
            return i
        }
    }
    /// Compares two byte strings in time that depends only on their lengths.
    public static func constantTimeEqual(_ a: some Collection<UInt8>, _ b: some Collection<UInt8>) -> Bool {
        guard a.count == b.count else { return false }
        var diff: UInt8 = 0
        for (x, y) in zip(a, b) { diff |= x ^ y }
        return diff == 0
    }
}

/// The audit hash chain.
///
/// `hash(e) = lowercase hex SHA-256( UTF-8(e.prevHash) || canonicalJSON(payload(e)) )` where the
/// payload is the event without `hash`, with `time` as integer milliseconds since 1970 (`timeMs`),
/// absent optionals omitted; the first event's `prevHash` is 64 zeros.
public enum AuditChain {
    public static let genesis = String(repeating: "0", count: 64)

    struct Payload: Encodable {
        var seq: Int64
        var tenantId: String?
        var timeMs: Int64
        var action: String
        var outcome: String
        var principalId: String?
        var accessKey: String?
        var assetType: String?
        var assetId: String?
        var source: String?
        var detail: String?
        var prevHash: String
    }

    public static func millis(_ d: Date) -> Int64 { Int64((d.timeIntervalSince1970 * 1000).rounded(.down)) }

    /// The instant `ms` milliseconds after 1970 as a `Date` whose `millis` is `ms` again (the
    /// nearest one, moved by a unit in the last place where the division rounded the other way),
    /// so an event rebuilt from its stored milliseconds is the event that was hashed.
    public static func date(millis ms: Int64) -> Date {
        var d = Date(timeIntervalSince1970: Double(ms) / 1000)
        for _ in 0..<4 {
            let m = millis(d)
            if m == ms { break }
            let t = d.timeIntervalSinceReferenceDate
            d = Date(timeIntervalSinceReferenceDate: m < ms ? t.nextUp : t.nextDown)
        }
        return d
    }

    public static func hash(of e: AuditEvent) throws -> String {
        if let bytes = canonicalInput(e) { return Hashing.sha256Hex(bytes) }
        return try genericHash(of: e)
    }

    /// `UTF-8(prevHash) || canonicalJSON(payload)` written directly, members in RFC 8785 order
    /// (the hot path: every audited request hashes one event). Nil when a number is beyond
    /// ±2^53, where the generic path's double formatting decides; a test holds the two equal.
    static func canonicalInput(_ e: AuditEvent) -> [UInt8]? {
        let limit: Int64 = 1 << 53
        guard e.seq.magnitude <= limit.magnitude, millis(e.time).magnitude <= limit.magnitude else { return nil }
        return canonicalBytes(e, prefix: e.prevHash, prevHash: e.prevHash, seq: String(e.seq)).bytes
    }

    /// `prefix || canonicalJSON(payload)` with the given `prevHash` and `seq` text; `prevEnd` is
    /// the offset where the prevHash value's text ends (before its closing quote), `seqEnd`
    /// where the seq number's text ends. The one place the payload's members are written.
    static func canonicalBytes(_ e: AuditEvent, prefix: String, prevHash: String, seq: String) -> (bytes: [UInt8], prevEnd: Int, seqEnd: Int) {
        var o = JSONObjectBytes(prefix: prefix, capacity: 512)
        // Sorted by UTF-16 code units: accessKey < action < assetId < assetType < detail <
        // outcome < prevHash < principalId < seq < source < tenantId < timeMs.
        o.string("accessKey", e.accessKey)
        o.string("action", e.action)
        o.string("assetId", e.assetId)
        o.string("assetType", e.assetType)
        o.string("detail", e.detail)
        o.string("outcome", e.outcome)
        o.string("prevHash", prevHash)
        let prevEnd = o.count - 1
        o.string("principalId", e.principalId)
        o.raw("seq", seq)
        let seqEnd = o.count
        o.string("source", e.source)
        o.string("tenantId", e.tenantId)
        o.raw("timeMs", String(millis(e.time)))
        return (o.finish(), prevEnd, seqEnd)
    }

    /// The hash through `CanonicalJSON.encode` of the payload struct (the definition).
    static func genericHash(of e: AuditEvent) throws -> String {
        let p = Payload(seq: e.seq, tenantId: e.tenantId, timeMs: millis(e.time), action: e.action, outcome: e.outcome,
                        principalId: e.principalId, accessKey: e.accessKey, assetType: e.assetType, assetId: e.assetId,
                        source: e.source, detail: e.detail, prevHash: e.prevHash)
        var data = Data(e.prevHash.utf8)
        data.append(try CanonicalJSON.encode(p))
        return Hashing.sha256Hex(data)
    }

    public struct Failure: Error, Equatable, Sendable, CustomStringConvertible {
        public var seq: Int64
        public var reason: String
        public var description: String { "audit: chain broken at event \(seq): \(reason)" }
    }

    /// Checks a complete, ascending run of events starting at seq 1: sequence without gaps,
    /// each `prevHash` equal to the previous `hash`, each `hash` recomputed. Returns the count.
    @discardableResult
    public static func verify(_ events: [AuditEvent]) throws -> Int {
        var prev = genesis
        var expectedSeq: Int64 = 1
        for e in events {
            guard e.seq == expectedSeq else {
                throw Failure(seq: e.seq, reason: "expected sequence \(expectedSeq): an event was removed or reordered")
            }
            guard e.prevHash == prev else { throw Failure(seq: e.seq, reason: "prevHash does not match the previous event's hash") }
            guard try hash(of: e) == e.hash else { throw Failure(seq: e.seq, reason: "hash does not match the event's contents: it was edited") }
            prev = e.hash
            expectedSeq += 1
        }
        return events.count
    }
}

/// Reads every audit event of the store and verifies the chain.
public func verifyAuditChain(_ store: any LatchStore) async throws -> Int {
    try await store.flushReadAudit()
    let events = try await store.read { tx in
        var all: [AuditEvent] = []
        var after: Int64 = 0
        while true {
            let page = try await tx.auditEvents(AuditFilter(afterSeq: after, limit: 10_000))
            all += page
            guard let last = page.last, page.count == 10_000 else { break }
            after = last.seq
        }
        return all
    }
    return try AuditChain.verify(events)
}

/// The parts of an event's hash input that do not depend on its place in the chain, for a
/// store that chains a batch in the database (the PostgreSQL store's audit group commit), so
/// the database orders the appends and the chain is what `AuditChain` defines, with no second
/// copy of the format:
///
///     hashInput = prevHash ‖ hashHead ‖ prevHash ‖ hashMiddle ‖ decimal(seq) ‖ hashTail
///     hash      = lowercase hex SHA-256(hashInput)
///
/// (UTF-8 bytes; `prevHash` is 64 lowercase hex digits, which JSON writes as they are). Valid
/// for `seq` up to 2^53, like `AuditChain`'s direct path. (Such rows are stored as columns only,
/// with no JSON document: `AuditEvent.fromColumns`.)
public struct AuditChainTemplate: Sendable, Equatable {
    public var hashHead: [UInt8], hashMiddle: [UInt8], hashTail: [UInt8]

    /// nil when the draft's time is beyond ±2^53 ms (where `AuditChain`'s generic path decides).
    public init?(_ d: AuditDraft) {
        let e = d.event(seq: 0, prevHash: "", hash: "")
        let limit: Int64 = 1 << 53
        guard AuditChain.millis(e.time).magnitude <= limit.magnitude else { return nil }
        let h = AuditChain.canonicalBytes(e, prefix: "", prevHash: "", seq: "")
        hashHead = Array(h.bytes[..<h.prevEnd])
        hashMiddle = Array(h.bytes[h.prevEnd..<h.seqEnd])
        hashTail = Array(h.bytes[h.seqEnd...])
    }

    /// The hash input of the event at `seq` after `prevHash` (the reference for the database's).
    public func hashInput(seq: Int64, prevHash: String) -> [UInt8] {
        Array(prevHash.utf8) + hashHead + Array(prevHash.utf8) + hashMiddle + Array(String(seq).utf8) + hashTail
    }
}

/// An audit event before it joins the chain (no sequence number or hashes yet).
public struct AuditDraft: Sendable {
    public var time: Date
    public var tenantId: String?
    public var action: String
    public var outcome: String
    public var principalId: String?
    public var accessKey: String?
    public var assetType: String?
    public var assetId: String?
    public var source: String?
    public var detail: String?
    public init(time: Date, tenantId: String?, action: String, outcome: String, principalId: String?, accessKey: String?,
                assetType: String? = nil, assetId: String? = nil, source: String? = nil, detail: String? = nil) {
        self.time = time; self.tenantId = tenantId; self.action = action; self.outcome = outcome; self.principalId = principalId
        self.accessKey = accessKey; self.assetType = assetType; self.assetId = assetId; self.source = source; self.detail = detail
    }

    /// The chained event that follows `last` (nil: the first event).
    public func chained(after last: (seq: Int64, hash: String)?) throws -> AuditEvent {
        var e = event(seq: (last?.seq ?? 0) + 1, prevHash: last?.hash ?? AuditChain.genesis, hash: "")
        e.hash = try AuditChain.hash(of: e)
        return e
    }

    /// The event this draft becomes at `seq` after `prevHash`, with `hash` as given (its time
    /// cut to whole milliseconds, as the chain records it).
    public func event(seq: Int64, prevHash: String, hash: String) -> AuditEvent {
        AuditEvent(seq: seq, tenantId: tenantId, time: AuditChain.date(millis: AuditChain.millis(time)), action: action,
                   outcome: outcome, principalId: principalId, accessKey: accessKey, assetType: assetType, assetId: assetId,
                   source: source, detail: detail, prevHash: prevHash, hash: hash)
    }
}

/// A read's audit event as one line of a store's read-audit journal (`ReadAuditJournal`): the
/// draft's members and the journal's own number `j`, a JSON object on one line (strings escaped
/// as the chain's canonical JSON escapes them, so a line never holds a raw newline):
///
///     {"j":7,"timeMs":1764720000000,"tenantId":"…","action":"field.read","outcome":"success",…}\n
///
/// The journal is crash-recovery state, not an audit format: an entry becomes an audit event
/// only when it joins the chain, and `time` keeps whole milliseconds, as the chain does.
public enum AuditJournalLine {
    struct Line: Decodable {
        var j: Int64
        var timeMs: Int64
        var tenantId: String?
        var action: String
        var outcome: String
        var principalId: String?
        var accessKey: String?
        var assetType: String?
        var assetId: String?
        var source: String?
        var detail: String?
    }

    /// The line of entry `number` (with its closing newline).
    public static func encode(_ d: AuditDraft, number: Int64) -> [UInt8] {
        var o = JSONObjectBytes(capacity: 320)
        o.raw("j", String(number))
        o.raw("timeMs", String(AuditChain.millis(d.time)))
        o.string("tenantId", d.tenantId)
        o.string("action", d.action)
        o.string("outcome", d.outcome)
        o.string("principalId", d.principalId)
        o.string("accessKey", d.accessKey)
        o.string("assetType", d.assetType)
        o.string("assetId", d.assetId)
        o.string("source", d.source)
        o.string("detail", d.detail)
        return o.finish() + [UInt8(ascii: "\n")]
    }

    /// The entry a line holds (without its newline); nil when it is not a whole entry (a line
    /// cut short by a power loss, or edited).
    public static func decode(_ line: some Collection<UInt8>) -> (number: Int64, draft: AuditDraft)? {
        guard let l = try? JSONDecoder().decode(Line.self, from: Data(line)) else { return nil }
        return (l.j, AuditDraft(time: AuditChain.date(millis: l.timeMs), tenantId: l.tenantId, action: l.action, outcome: l.outcome,
                                principalId: l.principalId, accessKey: l.accessKey, assetType: l.assetType, assetId: l.assetId,
                                source: l.source, detail: l.detail))
    }
}

extension StoreTransaction {
    /// Appends one event to the chain inside this transaction.
    @discardableResult
    public func appendAudit(
        time: Date, tenantId: String?, action: String, outcome: String, principalId: String?, accessKey: String?,
        assetType: String? = nil, assetId: String? = nil, source: String? = nil, detail: String? = nil
    ) async throws -> AuditEvent {
        try await appendAudit([AuditDraft(time: time, tenantId: tenantId, action: action, outcome: outcome, principalId: principalId,
                                          accessKey: accessKey, assetType: assetType, assetId: assetId, source: source,
                                          detail: detail)])[0]
    }

    /// Appends several events to the chain, in order, inside this transaction: the chain's tail
    /// is read once and the rows go to the store in one batch (a group commit's audit rows).
    @discardableResult
    public func appendAudit(_ drafts: [AuditDraft]) async throws -> [AuditEvent] {
        guard !drafts.isEmpty else { return [] }
        var last = try await lastAuditLink()
        var events: [AuditEvent] = []
        events.reserveCapacity(drafts.count)
        for d in drafts {
            let e = try d.chained(after: last)
            events.append(e)
            last = (e.seq, e.hash)
        }
        try await appendAuditEvents(events)
        return events
    }
}

extension AuditEvent {
    /// An event stored as columns only (an empty document: SQLite rows since its migration 3):
    /// its time from the chain's milliseconds, its `prevHash` the previous row's `hash` (genesis
    /// for the first; empty when that row is missing, which verification reports).
    public static func fromColumns(seq: Int64, tenantId: String?, timeMs: Int64, action: String, outcome: String,
                                   principalId: String?, accessKey: String?, assetType: String?, assetId: String?,
                                   source: String?, detail: String?, hash: String, previousRowHash: String?) -> AuditEvent {
        AuditEvent(seq: seq, tenantId: tenantId, time: AuditChain.date(millis: timeMs), action: action, outcome: outcome,
                   principalId: principalId, accessKey: accessKey, assetType: assetType, assetId: assetId, source: source,
                   detail: detail, prevHash: seq == 1 ? AuditChain.genesis : previousRowHash ?? "", hash: hash)
    }

    /// The event's stored JSON document, written directly (the PostgreSQL store keeps one with
    /// each audit row a write transaction appends; group-committed rows are columns only): the
    /// members `JSONEncoder` would write (absent optionals left out, `time` as seconds since
    /// 2001 as `Date`'s default coding does), so `JSONDecoder` reads back an equal event.
    public var documentJSON: String {
        var o = JSONObjectBytes(capacity: 640)
        o.raw("seq", String(seq))
        o.string("tenantId", tenantId)
        o.raw("time", time.timeIntervalSinceReferenceDate.description)
        o.string("action", action)
        o.string("outcome", outcome)
        o.string("principalId", principalId)
        o.string("accessKey", accessKey)
        o.string("assetType", assetType)
        o.string("assetId", assetId)
        o.string("source", source)
        o.string("detail", detail)
        o.string("prevHash", prevHash)
        o.string("hash", hash)
        return String(decoding: o.finish(), as: UTF8.self)
    }
}

/// A JSON object written member by member, in the order given, into bytes: for the audit
/// event's fixed-shape documents (strings escaped as RFC 8785 does; absent optionals left out).
struct JSONObjectBytes {
    private var out: [UInt8] = []
    private var first = true
    /// Bytes written so far.
    var count: Int { out.count }

    init(prefix: String = "", capacity: Int) {
        out.reserveCapacity(capacity)
        out += prefix.utf8
        out.append(UInt8(ascii: "{"))
    }

    private mutating func key(_ k: StaticString) {
        if !first { out.append(UInt8(ascii: ",")) }
        first = false
        out.append(UInt8(ascii: "\""))
        out.append(contentsOf: UnsafeBufferPointer(start: k.utf8Start, count: k.utf8CodeUnitCount))
        out.append(contentsOf: [UInt8(ascii: "\""), UInt8(ascii: ":")])
    }

    /// A string member; nothing when `v` is nil.
    mutating func string(_ k: StaticString, _ v: String?) {
        guard let v else { return }
        key(k)
        CanonicalJSON.appendString(v, to: &out)
    }

    /// A member whose value is already JSON text (a number).
    mutating func raw(_ k: StaticString, _ json: String) {
        key(k)
        out += json.utf8
    }

    mutating func finish() -> [UInt8] {
        out.append(UInt8(ascii: "}"))
        return out
    }
}
