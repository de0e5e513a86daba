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
        let lines = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
            .map { $0.trimmingCharacters(in: .whitespaces.union(CharacterSet(charactersIn: "\r"))) }
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
        if body.contains(where: { $0.contains(":") }) {
            throw LatchCryptoError.pem("PEM headers (for example an encrypted key's Proc-Type) are not supported; decrypt the key first")
        }
        let b64 = body.joined()
        guard !b64.isEmpty, let der = Data(base64Encoded: b64) else {
            throw LatchCryptoError.pem("the body of the '\(label)' block is not valid base64")
        }
        self.label = label
        self.der = der
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
