import Foundation

/// An I-JSON value (RFC 7493) as RFC 8785 sees it: numbers are IEEE-754 doubles, object
/// member names are unique, strings are valid Unicode. Internal to the crypto core.
enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    case number(Double)          // always finite
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    static func integer(_ value: Int) -> JSONValue { .number(Double(value)) }

    // MARK: typed access for statement decoding

    func objectMembers(_ what: String) throws -> [String: JSONValue] {
        guard case .object(let m) = self else { throw LatchCryptoError.statement("\(what) must be a JSON object") }
        return m
    }
}

/// Reads members out of a JSON object and insists that every member is consumed.
struct JSONObjectReader {
    private var members: [String: JSONValue]
    private let what: String

    init(_ value: JSONValue, what: String) throws {
        self.members = try value.objectMembers(what)
        self.what = what
    }

    private mutating func take(_ key: String) throws -> JSONValue {
        guard let v = members.removeValue(forKey: key) else {
            throw LatchCryptoError.statement("\(what): missing field '\(key)'")
        }
        return v
    }

    mutating func string(_ key: String) throws -> String {
        guard case .string(let s) = try take(key) else { throw LatchCryptoError.statement("\(what): '\(key)' must be a string") }
        return s
    }

    mutating func optionalString(_ key: String) throws -> String? {
        switch try take(key) {
        case .null: return nil
        case .string(let s): return s
        default: throw LatchCryptoError.statement("\(what): '\(key)' must be a string or null")
        }
    }

    mutating func int(_ key: String) throws -> Int {
        guard case .number(let d) = try take(key), d.rounded() == d, abs(d) <= 9_007_199_254_740_991 else {
            throw LatchCryptoError.statement("\(what): '\(key)' must be an integer within ±(2^53-1)")
        }
        return Int(d)
    }

    mutating func bool(_ key: String) throws -> Bool {
        guard case .bool(let b) = try take(key) else { throw LatchCryptoError.statement("\(what): '\(key)' must be true or false") }
        return b
    }

    mutating func stringArray(_ key: String) throws -> [String] {
        guard case .array(let a) = try take(key) else { throw LatchCryptoError.statement("\(what): '\(key)' must be an array") }
        return try a.map {
            guard case .string(let s) = $0 else { throw LatchCryptoError.statement("\(what): '\(key)' must hold strings") }
            return s
        }
    }

    mutating func array(_ key: String) throws -> [JSONValue] {
        guard case .array(let a) = try take(key) else { throw LatchCryptoError.statement("\(what): '\(key)' must be an array") }
        return a
    }

    /// Checks `type` and that nothing is left over.
    mutating func expectType(_ type: String) throws {
        let found = try string("type")
        guard found == type else {
            throw LatchCryptoError.statement("\(what): statement type is '\(found)', expected '\(type)'")
        }
    }

    func finish() throws {
        if let extra = members.keys.sorted().first {
            throw LatchCryptoError.statement("\(what): unknown field '\(extra)'")
        }
    }
}

/// Lets statement types be Codable through their JSON tree, so the signed bytes and the
/// wire form come from one definition.
extension JSONValue: Codable {
    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null; return }
        if let b = try? c.decode(Bool.self) { self = .bool(b); return }
        if let i = try? c.decode(Int.self) { self = .integer(i); return }
        if let d = try? c.decode(Double.self) {
            guard d.isFinite else {
                throw DecodingError.dataCorruptedError(in: c, debugDescription: "non-finite number")
            }
            self = .number(d); return
        }
        if let s = try? c.decode(String.self) { self = .string(s); return }
        if let a = try? c.decode([JSONValue].self) { self = .array(a); return }
        if let o = try? c.decode([String: JSONValue].self) { self = .object(o); return }
        throw DecodingError.dataCorruptedError(in: c, debugDescription: "not a JSON value")
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .number(let d):
            if d.rounded() == d, abs(d) <= 9_007_199_254_740_991 { try c.encode(Int(d)) } else { try c.encode(d) }
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }
}
