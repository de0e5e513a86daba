import Foundation

/// A fast path for `.meta` files in their canonical shape, which is what every write produces
/// for ordinary names. A grant or revoke reads and writes one `.meta` per secret, and going
/// through libyaml (Yams: composing, regex tag resolution, emitting) cost more than the age
/// re-encryption itself. The fast path only handles text and values whose YAML is unambiguous:
/// every string starts with an ASCII letter and holds only `A-Z a-z 0-9 . _ / -`, is not one of
/// the words a YAML reader takes for a boolean or null, and timestamps are RFC 3339. Anything
/// else (quoting, other field orders, comments, odd spacing) goes through Yams as before, so
/// the bytes written and the values read are the same either way.
extension SecretMetadata {
    static func isPlainSafe(_ value: String) -> Bool {
        guard let first = value.utf8.first, (first | 0x20) >= 0x61 && (first | 0x20) <= 0x7A else { return false }
        for byte in value.utf8 {
            switch byte {
            case 0x30...0x39, 0x41...0x5A, 0x61...0x7A, 0x2E, 0x5F, 0x2F, 0x2D: continue
            default: return false
            }
        }
        return !AgentVaultYAML.isAmbiguous(value)
    }

    /// The canonical text when every string is plain-safe, else nil.
    func fastYAML() -> String? {
        guard Self.isPlainSafe(name), Self.isPlainSafe(group), authorizedAgents.allSatisfy(Self.isPlainSafe) else {
            return nil
        }
        var text = "name: \(name)\ngroup: \(group)\ncreated: \(created.description)\nrotated: \(rotated.description)\n"
        if let expires { text += "expires: \(expires.description)\n" }
        if authorizedAgents.isEmpty {
            text += "authorized_agents: []\n"
        } else {
            text += "authorized_agents:\n"
            for agent in authorizedAgents { text += "- \(agent)\n" }
        }
        return text
    }

    /// Parses text in exactly the canonical shape `fastYAML` writes; nil for anything else.
    static func fastParse(_ text: String) -> SecretMetadata? {
        guard text.hasSuffix("\n") else { return nil }
        var lines = text.utf8.split(separator: 0x0A, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        guard lines.removeLast().isEmpty, lines.count >= 5 else { return nil }
        func value(_ index: Int, _ key: String) -> String? {
            let line = lines[index]
            guard line.hasPrefix(key + ": ") else { return nil }
            return String(line.dropFirst(key.count + 2))
        }
        guard let name = value(0, "name"), isPlainSafe(name),
              let group = value(1, "group"), isPlainSafe(group),
              let created = value(2, "created").flatMap(VaultTimestamp.init(rfc3339:)),
              let rotated = value(3, "rotated").flatMap(VaultTimestamp.init(rfc3339:))
        else { return nil }
        var next = 4
        var expires: VaultTimestamp?
        if let text = value(next, "expires") {
            guard let parsed = VaultTimestamp(rfc3339: text) else { return nil }
            expires = parsed
            next += 1
        }
        guard next < lines.count else { return nil }
        var agents: [String] = []
        if lines[next] == "authorized_agents: []" {
            guard next == lines.count - 1 else { return nil }
        } else {
            guard lines[next] == "authorized_agents:", next + 1 < lines.count else { return nil }
            for line in lines[(next + 1)...] {
                guard line.hasPrefix("- ") else { return nil }
                let agent = String(line.dropFirst(2))
                guard isPlainSafe(agent) else { return nil }
                agents.append(agent)
            }
        }
        return SecretMetadata(name: name, group: group, created: created, rotated: rotated, expires: expires,
                              authorizedAgents: agents)
    }
}
