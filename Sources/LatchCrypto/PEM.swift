import Foundation

/// RFC 7468 PEM armour (internal): exactly one block, known labels only.
struct PEMBlock {
    var label: String
    var der: Data

    init(label: String, der: Data) {
        self.label = label
        self.der = der
    }

    /// Parses the single PEM block in `text`. Text before `-----BEGIN` and after `-----END`
    /// is ignored (openssl writes none; some tools add comments). Encrypted PEM is refused.
    init(parsing text: String) throws {
        let lines = Self.trimmedLines(text)
        guard let begin = lines.firstIndex(where: { $0.hasPrefix("-----BEGIN ") && $0.hasSuffix("-----") }) else {
            throw LatchCryptoError.pem("no '-----BEGIN …-----' line; expected a PEM key")
        }
        let label = String(lines[begin].dropFirst("-----BEGIN ".count).dropLast(5))
        guard let end = lines[(begin + 1)...].firstIndex(of: "-----END \(label)-----") else {
            throw LatchCryptoError.pem("no matching '-----END \(label)-----' line")
        }
        if lines[(end + 1)...].contains(where: { $0.hasPrefix("-----BEGIN ") }) {
            throw LatchCryptoError.pem("more than one PEM block; give exactly one key")
        }
        let body = lines[(begin + 1)..<end]
        if body.contains(where: { $0.utf8.contains(UInt8(ascii: ":")) }) {
            throw LatchCryptoError.pem("PEM headers (for example an encrypted key's Proc-Type) are not supported; decrypt the key first")
        }
        var b64 = ""
        for line in body { b64 += line }
        guard !b64.isEmpty, let der = Data(base64Encoded: b64) else {
            throw LatchCryptoError.pem("the body of the '\(label)' block is not valid base64")
        }
        self.label = label
        self.der = der
    }

    /// The lines of `text` (split at LF), each without the white space RFC 7468 allows around
    /// it (space, tab, CR, vertical tab, form feed).
    static func trimmedLines(_ text: String) -> [String] {
        text.utf8.split(separator: 10, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self).trimmedASCII }
    }

    /// PEM text with 64-character lines and a final newline (the form openssl writes).
    var text: String {
        let b64 = Array(der.base64EncodedString())
        var out = "-----BEGIN \(label)-----\n"
        var i = 0
        while i < b64.count {
            out += String(b64[i..<min(i + 64, b64.count)]) + "\n"
            i += 64
        }
        return out + "-----END \(label)-----\n"
    }
}

extension StringProtocol {
    /// Without leading and trailing ASCII white space (space, tab, LF, vertical tab, form feed,
    /// CR): what key files and protocol text are padded with. Done on UTF-8 bytes: Foundation's
    /// CharacterSet trimming costs about a million instructions on its first use in a process,
    /// more than parsing an RSA key.
    package var trimmedASCII: String {
        let bytes = Array(utf8)
        func isSpace(_ b: UInt8) -> Bool { b == 32 || (9...13).contains(b) }
        var a = 0, b = bytes.count
        while a < b, isSpace(bytes[a]) { a += 1 }
        while b > a, isSpace(bytes[b - 1]) { b -= 1 }
        return String(decoding: bytes[a..<b], as: UTF8.self)
    }
}
