import Foundation

/// RFC 8785 JSON Canonicalization Scheme (JCS). Every signed payload in Latchkey is the
/// canonical form of its JSON: no whitespace, object members sorted by the UTF-16 code units
/// of their names, numbers in ECMAScript `Number.prototype.toString` form, strings with the
/// minimal escaping of RFC 8785 section 3.2.2.2.
public enum CanonicalJSON {
    /// Encodes `value` with `JSONEncoder`, then canonicalises the result.
    public static func encode<T: Encodable>(_ value: T) throws -> Data {
        let raw: Data
        do {
            raw = try JSONEncoder().encode(value)
        } catch {
            throw LatchCryptoError.canonicalJSON("the value could not be encoded as JSON: \(error)")
        }
        return try canonicalize(raw)
    }

    /// Parses UTF-8 JSON text (RFC 8259, with I-JSON's limits: unique member names, finite
    /// numbers, no lone surrogates) and returns its canonical form.
    public static func canonicalize(_ json: Data) throws -> Data {
        Data(serialize(try parse(json)))
    }

    static func parse(_ json: Data) throws -> JSONValue {
        var parser = JSONParser(bytes: [UInt8](json))
        return try parser.parseDocument()
    }

    static func serialize(_ value: JSONValue) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        write(value, into: &out)
        return out
    }

    private static func write(_ value: JSONValue, into out: inout [UInt8]) {
        switch value {
        case .null: out += Array("null".utf8)
        case .bool(let b): out += Array((b ? "true" : "false").utf8)
        case .number(let d): out += Array(ECMAScriptNumber.format(d).utf8)
        case .string(let s): writeString(s, into: &out)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (i, item) in items.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                write(item, into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            let keys = members.keys.sorted { $0.utf16.lexicographicallyPrecedes($1.utf16) }
            for (i, key) in keys.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                writeString(key, into: &out)
                out.append(UInt8(ascii: ":"))
                write(members[key] ?? .null, into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// Appends `s` as an RFC 8785 JSON string (for callers that write a fixed-shape canonical
    /// document directly instead of encoding, parsing and re-serialising it).
    public static func appendString(_ s: String, to out: inout [UInt8]) { writeString(s, into: &out) }

    private static func writeString(_ s: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        var s = s
        s.withUTF8 { bytes in
            // Runs without anything to escape are copied whole; everything else is verbatim UTF-8.
            var run = 0
            for (i, b) in bytes.enumerated() where b == 0x22 || b == 0x5c || b < 0x20 {
                out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[run..<i]))
                out.append(0x5c)
                switch b {
                case 0x22, 0x5c: out.append(b)                 // \" \\
                case 0x08: out.append(UInt8(ascii: "b"))
                case 0x0c: out.append(UInt8(ascii: "f"))
                case 0x0a: out.append(UInt8(ascii: "n"))
                case 0x0d: out.append(UInt8(ascii: "r"))
                case 0x09: out.append(UInt8(ascii: "t"))
                default: out.append(contentsOf: [UInt8(ascii: "u"), 0x30, 0x30, hexDigits[Int(b >> 4)], hexDigits[Int(b & 0xf)]])
                }
                run = i + 1
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[run...]))
        }
        out.append(UInt8(ascii: "\""))
    }
}

/// ECMAScript Number::toString(10) for finite doubles (ECMA-262, section 6.1.6.1.20), built on
/// Swift's shortest round-tripping decimal representation.
enum ECMAScriptNumber {
    static func format(_ value: Double) -> String {
        guard value.isFinite else { return "null" }   // unreachable: JSONValue numbers are finite
        if value == 0 { return "0" }                    // also -0
        if value < 0 { return "-" + format(-value) }
        // Integers (every number Latchkey's statements hold): the digits alone, which is what the
        // general path below gives for them, without its generic string building.
        if value < 9_007_199_254_740_992, value.rounded(.towardZero) == value { return String(Int64(value)) }
        // Swift's description is the shortest digit string that round-trips, either as
        // "ddd.ddd" or as "d.ddde±x". Extract digits `s` and exponent `n` with value = 0.s × 10^n.
        let text = value.description
        var mantissa = Substring(text)
        var exponent = 0
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            mantissa = text[..<e]
            exponent = Int(text[text.index(after: e)...]) ?? 0
        }
        var intPart = mantissa
        var fracPart: Substring = ""
        if let dot = mantissa.firstIndex(of: ".") {
            intPart = mantissa[..<dot]
            fracPart = mantissa[mantissa.index(after: dot)...]
        }
        var digits = Array(intPart + fracPart)
        var n = intPart.count + exponent
        while digits.first == "0" { digits.removeFirst(); n -= 1 }
        while digits.last == "0" { digits.removeLast() }
        let k = digits.count
        let s = String(digits)
        if k <= n && n <= 21 {
            return s + String(repeating: "0", count: n - k)
        }
        if 0 < n && n <= 21 {
            return String(digits[0..<n]) + "." + String(digits[n...])
        }
        if -6 < n && n <= 0 {
            return "0." + String(repeating: "0", count: -n) + s
        }
        let e = n - 1
        let expText = e < 0 ? "-\(-e)" : "+\(e)"
        if k == 1 { return s + "e" + expText }
        return String(digits[0]) + "." + String(digits[1...]) + "e" + expText
    }
}

/// A strict RFC 8259 parser producing `JSONValue`.
struct JSONParser {
    private let bytes: [UInt8]
    private var i = 0
    private var depth = 0
    private static let maxDepth = 128

    init(bytes: [UInt8]) { self.bytes = bytes }

    private func fail(_ why: String) -> LatchCryptoError {
        .canonicalJSON("\(why) at byte \(i)")
    }

    mutating func parseDocument() throws -> JSONValue {
        if bytes.starts(with: [0xef, 0xbb, 0xbf]) { throw fail("a byte-order mark is not allowed") }
        skipWhitespace()
        let v = try parseValue()
        skipWhitespace()
        guard i == bytes.count else { throw fail("unexpected data after the JSON value") }
        return v
    }

    private mutating func skipWhitespace() {
        while i < bytes.count, [0x20, 0x09, 0x0a, 0x0d].contains(bytes[i]) { i += 1 }
    }

    private mutating func parseValue() throws -> JSONValue {
        guard i < bytes.count else { throw fail("unexpected end of input") }
        switch bytes[i] {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default: throw fail("unexpected character")
        }
    }

    private mutating func literal(_ word: String) throws {
        let w = Array(word.utf8)
        guard bytes.count - i >= w.count, Array(bytes[i..<(i + w.count)]) == w else { throw fail("invalid literal") }
        i += w.count
    }

    private mutating func enter() throws {
        depth += 1
        guard depth <= Self.maxDepth else { throw fail("nesting deeper than \(Self.maxDepth)") }
    }

    private mutating func parseObject() throws -> JSONValue {
        try enter(); defer { depth -= 1 }
        i += 1
        var members: [String: JSONValue] = [:]
        skipWhitespace()
        if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
        while true {
            skipWhitespace()
            guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw fail("expected a member name") }
            let key = try parseString()
            skipWhitespace()
            guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw fail("expected ':'") }
            i += 1
            skipWhitespace()
            let value = try parseValue()
            guard members.updateValue(value, forKey: key) == nil else { throw fail("duplicate member name \"\(key)\"") }
            skipWhitespace()
            guard i < bytes.count else { throw fail("unterminated object") }
            if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
            if bytes[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
            throw fail("expected ',' or '}'")
        }
    }

    private mutating func parseArray() throws -> JSONValue {
        try enter(); defer { depth -= 1 }
        i += 1
        var items: [JSONValue] = []
        skipWhitespace()
        if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
        while true {
            skipWhitespace()
            items.append(try parseValue())
            skipWhitespace()
            guard i < bytes.count else { throw fail("unterminated array") }
            if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
            if bytes[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
            throw fail("expected ',' or ']'")
        }
    }

    private mutating func hex4() throws -> UInt16 {
        guard bytes.count - i >= 4 else { throw fail("truncated \\u escape") }
        var v: UInt16 = 0
        for _ in 0..<4 {
            let c = bytes[i]
            let d: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = c - UInt8(ascii: "A") + 10
            default: throw fail("invalid \\u escape")
            }
            v = v << 4 | UInt16(d)
            i += 1
        }
        return v
    }

    private mutating func parseString() throws -> String {
        i += 1  // opening quote
        var out: [UInt8] = []
        while true {
            guard i < bytes.count else { throw fail("unterminated string") }
            let c = bytes[i]
            if c == UInt8(ascii: "\"") { i += 1; break }
            if c < 0x20 { throw fail("unescaped control character in string") }
            if c != UInt8(ascii: "\\") { out.append(c); i += 1; continue }
            i += 1
            guard i < bytes.count else { throw fail("unterminated escape") }
            let e = bytes[i]
            i += 1
            switch e {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5c)
            case UInt8(ascii: "/"): out.append(0x2f)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0c)
            case UInt8(ascii: "n"): out.append(0x0a)
            case UInt8(ascii: "r"): out.append(0x0d)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                let u = try hex4()
                var scalar: Unicode.Scalar?
                if (0xd800...0xdbff).contains(u) {
                    guard bytes.count - i >= 6, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") else {
                        throw fail("lone high surrogate")
                    }
                    i += 2
                    let low = try hex4()
                    guard (0xdc00...0xdfff).contains(low) else { throw fail("lone high surrogate") }
                    scalar = Unicode.Scalar(0x10000 + ((UInt32(u) - 0xd800) << 10) + (UInt32(low) - 0xdc00))
                } else if (0xdc00...0xdfff).contains(u) {
                    throw fail("lone low surrogate")
                } else {
                    scalar = Unicode.Scalar(UInt32(u))
                }
                guard let scalar else { throw fail("invalid code point") }
                out += Array(String(Character(scalar)).utf8)
            default: throw fail("invalid escape")
            }
        }
        // Validate UTF-8 strictly (no replacement characters invented).
        guard let string = String(validating: out, as: UTF8.self) else { throw fail("string is not valid UTF-8") }
        return string
    }

    private mutating func parseNumber() throws -> JSONValue {
        let start = i
        if bytes[i] == UInt8(ascii: "-") { i += 1 }
        func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }
        guard i < bytes.count, isDigit(bytes[i]) else { throw fail("invalid number") }
        if bytes[i] == UInt8(ascii: "0") {
            i += 1
        } else {
            while i < bytes.count, isDigit(bytes[i]) { i += 1 }
        }
        if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
            i += 1
            guard i < bytes.count, isDigit(bytes[i]) else { throw fail("invalid fraction") }
            while i < bytes.count, isDigit(bytes[i]) { i += 1 }
        }
        if i < bytes.count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
            i += 1
            if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
            guard i < bytes.count, isDigit(bytes[i]) else { throw fail("invalid exponent") }
            while i < bytes.count, isDigit(bytes[i]) { i += 1 }
        }
        let text = String(decoding: bytes[start..<i], as: UTF8.self)
        guard let d = Double(text), d.isFinite else { throw fail("number \(text) is outside the IEEE-754 double range") }
        return .number(d)
    }
}
