import Foundation
import Yams

/// Writes YAML byte for byte the way agent-vault (serde_yaml 0.9 over libyaml) does: block
/// style, two-space indentation, sequences inside mappings not indented, empty sequences as
/// `[]`, unlimited line width, Unicode unescaped, no document markers, and strings that would
/// read back as another type (null, booleans, numbers) in single quotes. Yams wraps the same
/// libyaml emitter, so only the per-scalar style choice is made here.
enum AgentVaultYAML {
    static func string(_ value: String) -> Node {
        .scalar(Node.Scalar(value, .implicit, style(for: value)))
    }

    static func integer(_ value: Int) -> Node {
        .scalar(Node.Scalar(String(value), .implicit, .plain))
    }

    static func sequence(_ items: [Node]) -> Node {
        .sequence(Node.Sequence(items, .implicit, .any))
    }

    static func mapping(_ pairs: [(String, Node)]) -> Node {
        .mapping(Node.Mapping(pairs.map { (string($0.0), $0.1) }, .implicit, .any))
    }

    static func emit(_ node: Node) throws -> String {
        try Yams.serialize(node: node, indent: 2, width: -1, allowUnicode: true, lineBreak: .ln)
    }

    /// serde_yaml's choice: a literal block for multi-line text, single quotes for text that a
    /// YAML reader would take as null, a boolean or a number, otherwise libyaml's own choice
    /// (plain when allowed). The YAML 1.1 booleans (`yes`, `off`, …) are quoted too, so that
    /// PyYAML (agent-vault's Python SDK) reads them back as strings.
    static func style(for value: String) -> Node.Scalar.Style {
        if value.contains("\n") { return .literal }
        return isAmbiguous(value) ? .singleQuoted : .any
    }

    static func isAmbiguous(_ value: String) -> Bool {
        switch value {
        case "", "~", "null", "Null", "NULL",
             "true", "True", "TRUE", "false", "False", "FALSE",
             "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO",
             "on", "On", "ON", "off", "Off", "OFF",
             ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF",
             ".nan", ".NaN", ".NAN":
            return true
        default:
            return looksNumeric(value)
        }
    }

    /// Integers (decimal, `0x`, `0o`, `0b`, optional sign, `_` separators) and decimal floats.
    static func looksNumeric(_ value: String) -> Bool {
        var s = Substring(value)
        if s.first == "+" || s.first == "-" { s = s.dropFirst() }
        guard let first = s.first else { return false }
        func all(_ text: Substring, _ allowed: (Character) -> Bool) -> Bool {
            !text.isEmpty && text.allSatisfy { allowed($0) || $0 == "_" }
        }
        if s.hasPrefix("0x") { return all(s.dropFirst(2)) { $0.isHexDigit } }
        if s.hasPrefix("0o") { return all(s.dropFirst(2)) { ("0"..."7").contains($0) } }
        if s.hasPrefix("0b") { return all(s.dropFirst(2)) { $0 == "0" || $0 == "1" } }
        guard first.isASCII, first.isNumber || first == "." else { return false }
        // decimal float or integer: digits [. digits] [e[+-]digits]
        var mantissa = s
        var exponent: Substring?
        if let e = s.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            mantissa = s[..<e]
            exponent = s[s.index(after: e)...]
        }
        let parts = mantissa.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        let digitsOK = parts.allSatisfy { $0.allSatisfy { $0.isASCII && ($0.isNumber || $0 == "_") } }
        let hasDigit = mantissa.contains { $0.isASCII && $0.isNumber }
        guard digitsOK, hasDigit else { return false }
        if var exp = exponent {
            if exp.first == "+" || exp.first == "-" { exp = exp.dropFirst() }
            return !exp.isEmpty && exp.allSatisfy { $0.isASCII && $0.isNumber }
        }
        return true
    }
}

/// Reading side: a composed YAML node with typed, error-reporting accessors.
struct YAMLReader {
    let file: String

    func compose(_ text: String) throws -> Node {
        do {
            guard let node = try Yams.compose(yaml: text) else {
                throw GitVaultError.malformed(file: file, reason: "the file is empty")
            }
            return node
        } catch let error as GitVaultError {
            throw error
        } catch {
            throw GitVaultError.malformed(file: file, reason: "\(error)")
        }
    }

    func mapping(_ node: Node, _ what: String) throws -> Node.Mapping {
        guard let mapping = node.mapping else {
            throw GitVaultError.malformed(file: file, reason: "\(what) is not a mapping")
        }
        return mapping
    }

    func optional(_ mapping: Node.Mapping, _ key: String) -> Node? {
        guard let value = mapping[key] else { return nil }
        if case .scalar(let s) = value, s.style == .plain, ["~", "null", "Null", "NULL", ""].contains(s.string) {
            return nil
        }
        return value
    }

    func string(_ mapping: Node.Mapping, _ key: String) throws -> String {
        guard let node = optional(mapping, key) else {
            throw GitVaultError.malformed(file: file, reason: "missing field `\(key)`")
        }
        guard case .scalar(let scalar) = node else {
            throw GitVaultError.malformed(file: file, reason: "`\(key)` is not a string")
        }
        return scalar.string
    }

    func integer(_ mapping: Node.Mapping, _ key: String) throws -> Int {
        let text = try string(mapping, key)
        guard let value = Int(text), value >= 0 else {
            throw GitVaultError.malformed(file: file, reason: "`\(key)` is not a non-negative integer: \(text)")
        }
        return value
    }

    func strings(_ mapping: Node.Mapping, _ key: String) throws -> [String] {
        guard let node = optional(mapping, key) else { return [] }
        guard let sequence = node.sequence else {
            throw GitVaultError.malformed(file: file, reason: "`\(key)` is not a list")
        }
        return try sequence.map { item in
            guard case .scalar(let scalar) = item else {
                throw GitVaultError.malformed(file: file, reason: "`\(key)` holds a non-string item")
            }
            return scalar.string
        }
    }

    func mappings(_ mapping: Node.Mapping, _ key: String) throws -> [Node.Mapping] {
        guard let node = optional(mapping, key) else { return [] }
        guard let sequence = node.sequence else {
            throw GitVaultError.malformed(file: file, reason: "`\(key)` is not a list")
        }
        return try sequence.map { try self.mapping($0, "an item of `\(key)`") }
    }

    func timestamp(_ mapping: Node.Mapping, _ key: String) throws -> VaultTimestamp {
        let text = try string(mapping, key)
        guard let value = VaultTimestamp(rfc3339: text) else {
            throw GitVaultError.malformed(file: file, reason: "`\(key)` is not an RFC 3339 timestamp: \(text)")
        }
        return value
    }
}
