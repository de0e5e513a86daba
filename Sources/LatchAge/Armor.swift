import Foundation

/// age's ASCII armor: strict PEM (RFC 7468) with the label "AGE ENCRYPTED FILE", padded
/// base64 in 64-column lines.
///
/// Decoding accepts whitespace around the block and LF or CRLF line ends, and nothing else:
/// no headers, no blank or whitespace-bearing lines, every body line but the last exactly
/// 64 columns, the last 1…64 columns, canonical base64 with its padding.
public enum AgeArmor {
    public static let beginLine = "-----BEGIN AGE ENCRYPTED FILE-----"
    public static let endLine = "-----END AGE ENCRYPTED FILE-----"
    static let columns = 64

    /// Armors a binary age file (ending with a line feed).
    public static func encode(_ file: some DataProtocol) -> Data {
        let encoded = Array(AgeBase64.encode(Array(file), padded: true).utf8)
        var out = Array(beginLine.utf8) + [0x0a]
        var index = 0
        while index < encoded.count {
            let end = min(index + columns, encoded.count)
            out += encoded[index..<end]
            out.append(0x0a)
            index = end
        }
        out += Array(endLine.utf8) + [0x0a]
        return Data(out)
    }

    /// True when the first line that is not blank starts with "-" (as the armor's
    /// "-----BEGIN" line does). A binary age file starts with "age-encryption.org/" instead,
    /// so a damaged BEGIN line is still reported as an armor error.
    public static func looksArmored(_ file: some DataProtocol) -> Bool {
        file.drop(while: isWhitespace).first == UInt8(ascii: "-")
    }

    /// Decodes an armored file to the binary age file; throws `AgeError.armor`.
    public static func decode(_ armored: some DataProtocol) throws(AgeError) -> Data {
        var bytes = Array(armored)
        while let last = bytes.last, isWhitespace(last) { bytes.removeLast() }
        let start = bytes.firstIndex(where: { !isWhitespace($0) }) ?? bytes.endIndex
        var lines = bytes[start...].split(separator: 0x0a, omittingEmptySubsequences: false).map {
            $0.last == 0x0d ? $0.dropLast() : $0
        }
        guard let first = lines.first, first.elementsEqual(beginLine.utf8) else {
            throw .armor("missing or wrong first line (expected \(beginLine))")
        }
        guard lines.count >= 2, let last = lines.last, last.elementsEqual(endLine.utf8) else {
            throw .armor("missing or wrong last line (expected \(endLine))")
        }
        lines.removeFirst()
        lines.removeLast()
        var encoded: [UInt8] = []
        for (index, line) in lines.enumerated() {
            let isLast = index == lines.count - 1
            if isLast {
                guard !line.isEmpty, line.count <= columns else { throw .armor("bad length of the last base64 line") }
            } else {
                guard line.count == columns else { throw .armor("base64 line \(index + 1) is not 64 columns") }
            }
            encoded += line
        }
        if encoded.isEmpty { return Data() }
        guard let binary = AgeBase64.decodePadded(encoded) else {
            throw .armor("body is not canonical padded base64")
        }
        return Data(binary)
    }

    private static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09 || byte == 0x0a || byte == 0x0d
    }
}
