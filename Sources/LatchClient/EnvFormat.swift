import Foundation

/// Rendering of a name → value map for `latch env`. Names are always `[A-Z0-9_]` (see
/// `EnvNames`); values may hold any character and are quoted so each format reads them back
/// byte for byte.
public enum EnvFormat: String, Sendable, CaseIterable {
    /// `NAME='value'` when the value has no `'`, `\n` or `\r` (single quotes: no escapes, no
    /// expansion in dotenv parsers); otherwise `NAME="…"` with `\\`, `\"`, `\n`, `\r`, `\t`
    /// escaped.
    case dotenv
    /// One JSON object, keys sorted.
    case json
    /// POSIX shell: `export NAME='value'`, each `'` written as `'\''`.
    case shell

    public func render(_ env: [String: String]) -> String {
        let names = env.keys.sorted()
        switch self {
        case .json:
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            let data = (try? encoder.encode(env)) ?? Data("{}".utf8)
            return String(decoding: data, as: UTF8.self) + "\n"
        case .shell:
            return names.map { "export \($0)=\(Self.shellQuote(env[$0] ?? ""))\n" }.joined()
        case .dotenv:
            return names.map { "\($0)=\(Self.dotenvQuote(env[$0] ?? ""))\n" }.joined()
        }
    }

    public static func shellQuote(_ value: String) -> String {
        "'" + value.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    public static func dotenvQuote(_ value: String) -> String {
        if !value.contains("'") && !value.contains("\n") && !value.contains("\r") {
            return "'" + value + "'"
        }
        var out = "\""
        for c in value.unicodeScalars {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default: out.unicodeScalars.append(c)
            }
        }
        return out + "\""
    }
}
