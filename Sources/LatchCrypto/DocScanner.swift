import Foundation

// A cursor over the UTF-8 of one JSON document, for readers that decode a known shape directly
// instead of through JSONDecoder's generic machinery (whose first use of each type, in a short
// process such as `latch get`, costs a scan of every protocol conformance record in the binary).
// Every reader built on it gives up (nil) on anything it does not fully understand, and its
// caller then decodes with JSONDecoder, so the result, or the error, is the same: the server's
// stored documents (LatchDomain's DocJSON), the client's wire answers (LatchWire) and files.

package struct DocScanner {
    package let p: UnsafeBufferPointer<UInt8>
    package var i = 0

    package init(_ p: UnsafeBufferPointer<UInt8>) { self.p = p }

    package mutating func skipSpace() {
        while i < p.count {
            let c = p[i]
            guard c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 else { return }
            i += 1
        }
    }

    /// Consumes `c` (after white space) when it is next.
    package mutating func take(_ c: UInt8) -> Bool {
        skipSpace()
        guard i < p.count, p[i] == c else { return false }
        i += 1
        return true
    }

    package var atEnd: Bool { mutating get { skipSpace(); return i == p.count } }

    /// Reads each member of an object: `member` is called with the key and must consume the
    /// value (returning false to give up). False when the document is not such an object.
    package mutating func object(_ member: (inout DocScanner, String) -> Bool) -> Bool {
        guard take(0x7B) else { return false }   // {
        if take(0x7D) { return true }             // }
        while true {
            guard let key = string(), take(0x3A), member(&self, key) else { return false }   // :
            if take(0x2C) { continue }   // ,
            return take(0x7D)
        }
    }

    /// A JSON string, unescaped; nil (give up) when its bytes are not valid UTF-8, which
    /// JSONDecoder refuses rather than repairs.
    package mutating func string() -> String? {
        skipSpace()
        guard i < p.count, p[i] == 0x22 else { return nil }
        i += 1
        let start = i
        var ascii = true
        while i < p.count {
            let c = p[i]
            if c == 0x22 {
                guard let s = Self.text(UnsafeBufferPointer(rebasing: p[start..<i]), ascii: ascii) else { return nil }
                i += 1
                return s
            }
            if c == 0x5C { break }
            if c < 0x20 { return nil }
            if c >= 0x80 { ascii = false }
            i += 1
        }
        // With escapes.
        var out: [UInt8] = []
        out.reserveCapacity(p.count - start)
        out.append(contentsOf: UnsafeBufferPointer(rebasing: p[start..<i]))
        while i < p.count {
            let c = p[i]
            if c == 0x22 { i += 1; return out.withUnsafeBufferPointer { Self.text($0, ascii: !$0.contains { $0 >= 0x80 }) } }
            if c < 0x20 { return nil }
            if c != 0x5C {
                // The run up to the next quote, backslash or control byte, copied whole.
                var j = i + 1
                while j < p.count, p[j] != 0x22, p[j] != 0x5C, p[j] >= 0x20 { j += 1 }
                out.append(contentsOf: UnsafeBufferPointer(rebasing: p[i..<j]))
                i = j
                continue
            }
            i += 1
            guard i < p.count else { return nil }
            let e = p[i]
            i += 1
            switch e {
            case 0x22, 0x5C, 0x2F: out.append(e)   // " \ /
            case 0x62: out.append(0x08)   // b
            case 0x66: out.append(0x0C)   // f
            case 0x6E: out.append(0x0A)   // n
            case 0x72: out.append(0x0D)   // r
            case 0x74: out.append(0x09)   // t
            case 0x75:                     // u
                guard var u = hex4() else { return nil }
                if u >= 0xD800 && u < 0xDC00 {
                    guard i + 1 < p.count, p[i] == 0x5C, p[i + 1] == 0x75 else { return nil }
                    i += 2
                    guard let low = hex4(), low >= 0xDC00 && low < 0xE000 else { return nil }
                    u = 0x10000 + ((u - 0xD800) << 10) + (low - 0xDC00)
                } else if u >= 0xDC00 && u < 0xE000 {
                    return nil
                }
                guard let scalar = Unicode.Scalar(u) else { return nil }
                out.append(contentsOf: UTF8.encode(scalar)!)
            default: return nil
            }
        }
        return nil
    }

    private mutating func hex4() -> UInt32? {
        guard i + 4 <= p.count else { return nil }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = p[i]
            let d: UInt8
            switch c {
            case 0x30...0x39: d = c - 0x30
            case 0x41...0x46: d = c - 0x41 + 10
            case 0x61...0x66: d = c - 0x61 + 10
            default: return nil
            }
            v = v << 4 | UInt32(d)
            i += 1
        }
        return v
    }

    /// A JSON number's text (validated against the JSON grammar).
    private mutating func numberToken() -> UnsafeBufferPointer<UInt8>? {
        skipSpace()
        let start = i
        func digit(_ k: Int) -> Bool { k < p.count && p[k] >= 0x30 && p[k] <= 0x39 }
        if i < p.count, p[i] == 0x2D { i += 1 }   // -
        guard digit(i) else { return nil }
        if p[i] == 0x30 { i += 1 } else { while digit(i) { i += 1 } }
        if i < p.count, p[i] == 0x2E {   // .
            i += 1
            guard digit(i) else { return nil }
            while digit(i) { i += 1 }
        }
        if i < p.count, p[i] == 0x65 || p[i] == 0x45 {   // e E
            i += 1
            if i < p.count, p[i] == 0x2B || p[i] == 0x2D { i += 1 }
            guard digit(i) else { return nil }
            while digit(i) { i += 1 }
        }
        return UnsafeBufferPointer(rebasing: p[start..<i])
    }

    /// A JSON integer (no fraction, no exponent) that fits `Int64`.
    package mutating func int64() -> Int64? {
        guard let t = numberToken() else { return nil }
        var k = 0
        let negative = t[0] == 0x2D
        if negative { k = 1 }
        var v: Int64 = 0
        while k < t.count {
            let c = t[k]
            guard c >= 0x30 && c <= 0x39 else { return nil }   // a fraction or an exponent
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (s, o2) = negative ? m.subtractingReportingOverflow(Int64(c - 0x30)) : m.addingReportingOverflow(Int64(c - 0x30))
            guard !o1, !o2 else { return nil }
            v = s
            k += 1
        }
        return v
    }

    package mutating func int() -> Int? { int64().flatMap { Int(exactly: $0) } }

    /// A JSON number as Double (correctly rounded, as JSONDecoder reads it).
    package mutating func double() -> Double? {
        guard let t = numberToken() else { return nil }
        return Double(String(decoding: t, as: UTF8.self)).flatMap { $0.isFinite ? $0 : nil }
    }


    package mutating func bool() -> Bool? {
        skipSpace()
        if literal("true") { return true }
        if literal("false") { return false }
        return nil
    }

    /// Consumes `null` when it is next.
    package mutating func null() -> Bool { skipSpace(); return literal("null") }

    private mutating func literal(_ s: StaticString) -> Bool {
        let n = s.utf8CodeUnitCount
        guard i + n <= p.count else { return false }
        let b = s.utf8Start
        for k in 0..<n where p[i + k] != b[k] { return false }
        i += n
        return true
    }

    /// UTF-8 bytes as a String, nil when they are not valid UTF-8. ASCII (most of what these
    /// readers see: ids, base64, names) takes `String(decoding:)`; the validating initializer
    /// is generic over the encoding and was looking up metadata on every call.
    static func text(_ bytes: UnsafeBufferPointer<UInt8>, ascii: Bool) -> String? {
        ascii ? String(decoding: bytes, as: UTF8.self) : String(validating: bytes, as: UTF8.self)
    }

    package mutating func optionalString() -> String?? { null() ? .some(nil) : string().map { .some($0) } }
    package mutating func optionalInt64() -> Int64?? { null() ? .some(nil) : int64().map { .some($0) } }

    package mutating func stringArray() -> [String]? { array { $0.string() } }

    /// `null` (as nil) or what `value` reads.
    package mutating func optional<T>(_ value: (inout DocScanner) -> T?) -> T?? { null() ? .some(nil) : value(&self).map { .some($0) } }

    /// Skips any JSON value (members the reader does not want).
    package mutating func skipValue(depth: Int = 0) -> Bool {
        guard depth < 64 else { return false }
        skipSpace()
        guard i < p.count else { return false }
        switch p[i] {
        case 0x22: return string() != nil
        case 0x7B:
            return object { s, _ in s.skipValue(depth: depth + 1) }
        case 0x5B:
            i += 1
            if take(0x5D) { return true }
            while true {
                guard skipValue(depth: depth + 1) else { return false }
                if take(0x2C) { continue }
                return take(0x5D)
            }
        case 0x74, 0x66: return bool() != nil
        case 0x6E: return null()
        default: return numberToken() != nil
        }
    }

    /// Reads a whole document: `read` gets the members; nil unless the document is one object
    /// and nothing follows it.
    package static func read(_ data: Data, _ member: (inout DocScanner, String) -> Bool) -> Bool {
        data.withUnsafeBytes { raw in
            var s = DocScanner(raw.bindMemory(to: UInt8.self))
            return s.object(member) && s.atEnd
        }
    }

    package static func read(_ doc: String, _ member: (inout DocScanner, String) -> Bool) -> Bool {
        var doc = doc
        return doc.withUTF8 { b in
            var s = DocScanner(b)
            return s.object(member) && s.atEnd
        }
    }
}

extension DocScanner {
    /// A JSON array whose every element `element` reads; nil gives up.
    package mutating func array<T>(_ element: (inout DocScanner) -> T?) -> [T]? {
        guard take(0x5B) else { return nil }   // [
        var out: [T] = []
        if take(0x5D) { return out }            // ]
        while true {
            guard let e = element(&self) else { return nil }
            out.append(e)
            if take(0x2C) { continue }
            return take(0x5D) ? out : nil
        }
    }
}

/// A member seen twice makes the reader give up (JSONDecoder's choice then stands). Inlinable
/// so that each reader gets it specialized: unspecialized, every call looked up `T`'s metadata.
@inlinable
package func once<T>(_ slot: inout T?, _ v: T?) -> Bool {
    guard slot == nil, let v else { return false }
    slot = v
    return true
}

