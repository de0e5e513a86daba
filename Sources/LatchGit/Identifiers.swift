import Foundation

/// Lexical rules for the names that become paths under `.agent-vault/`.
///
/// Agent and group names are one path component; secret paths are `group/name` with optional
/// nesting (`apps/prod/token`). A path with no slash lives in the group `default`, as in
/// agent-vault. Nothing here touches the file system.
public enum VaultIdentifier {
    /// Throws `GitVaultError.invalidIdentifier` unless `name` is a usable agent name.
    public static func validateAgent(_ name: String) throws {
        try validateComponent(kind: "agent name", name)
    }

    /// Throws `GitVaultError.invalidIdentifier` unless `name` is a usable group name.
    public static func validateGroup(_ name: String) throws {
        try validateComponent(kind: "group name", name)
    }

    /// Throws unless `path` is a usable secret path: non-empty components separated by `/`,
    /// none of them `.` or `..`, no backslash, no control character, no drive prefix (`C:`).
    public static func validateSecretPath(_ path: String) throws {
        guard !path.isEmpty, !path.contains("\\"), !hasControl(path), !hasDrivePrefix(path) else {
            throw GitVaultError.invalidIdentifier(kind: "secret path", value: path)
        }
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        for part in parts where part.isEmpty || part == "." || part == ".." {
            throw GitVaultError.invalidIdentifier(kind: "secret path", value: path)
        }
    }

    /// The group a secret belongs to when `--group` is not given: its first path component,
    /// or `default` for a path without a slash.
    public static func defaultGroup(forSecretPath path: String) -> String {
        if let slash = path.firstIndex(of: "/") { return String(path[..<slash]) }
        return "default"
    }

    /// The file path of a secret below `secrets/`, without extension: `group/name` stays as is,
    /// a path without a slash goes under `default/`.
    public static func storagePath(forSecretPath path: String) -> String {
        // ASCII paths (the usual ones) by bytes: Foundation's substring search showed in the
        // profile of a grant. Other text as before.
        let utf8 = path.utf8
        let hasSlash = utf8.allSatisfy { $0 < 0x80 } ? utf8.contains(UInt8(ascii: "/")) : path.contains("/")
        return hasSlash ? path : "default/" + path
    }

    static func validateComponent(kind: String, _ value: String) throws {
        guard !value.isEmpty, value != ".", value != "..", !value.contains("/"), !value.contains("\\"),
              !hasControl(value), !hasDrivePrefix(value)
        else { throw GitVaultError.invalidIdentifier(kind: kind, value: value) }
    }

    static func hasControl(_ value: String) -> Bool {
        value.unicodeScalars.contains { scalar in
            scalar.value < 0x20 || (scalar.value >= 0x7F && scalar.value <= 0x9F)
        }
    }

    static func hasDrivePrefix(_ value: String) -> Bool {
        let bytes = Array(value.utf8.prefix(2))
        guard bytes.count == 2 else { return false }
        let first = bytes[0]
        return ((first >= 0x41 && first <= 0x5A) || (first >= 0x61 && first <= 0x7A)) && bytes[1] == 0x3A
    }
}
