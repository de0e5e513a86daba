// The age v1 header as text: parsing and writing, with no cryptography.
//
//     header   = "age-encryption.org/v1" LF 1*stanza "---" SP 43base64char LF
//     stanza   = "->" 1*(SP argument) LF *(64base64char LF) *63base64char LF
//     argument = 1*VCHAR
//
// Base64 here is canonical and unpadded. The MAC covers the header from its first byte up to
// and including the "---" of the last line.

/// One recipient stanza: its type (first argument), the remaining arguments and the body.
struct AgeStanza: Sendable, Equatable {
    var type: String
    var arguments: [String]
    var body: [UInt8]
}

/// A parsed header, with the exact bytes its MAC covers.
struct AgeHeader: Sendable {
    var stanzas: [AgeStanza]
    var mac: [UInt8]
    /// Header bytes from the version line through the "---" of the MAC line.
    var macInput: ArraySlice<UInt8>
}

enum AgeFormat {
    static let versionLine = "age-encryption.org/v1"
    static let versionPrefix = "age-encryption.org/"
    static let bodyColumns = 64
    static let macLength = 32

    private static let lf = UInt8(ascii: "\n")
    private static let space = UInt8(ascii: " ")

    // MARK: Parsing

    /// Parses the header at the start of `file`; returns it and the offset where the payload starts.
    static func parseHeader(_ file: [UInt8]) throws(AgeError) -> (header: AgeHeader, payloadOffset: Int) {
        var position = 0

        func nextLine() throws(AgeError) -> ArraySlice<UInt8> {
            guard position < file.count else { throw .header("unexpected end of header") }
            guard let end = file[position...].firstIndex(of: lf) else {
                throw .header("header line without a line feed")
            }
            let line = file[position..<end]
            position = end + 1
            return line
        }

        let first = try nextLine()
        guard first.elementsEqual(versionLine.utf8) else {
            if first.last == UInt8(ascii: "\r") {
                throw .header("header lines must end with LF, not CRLF")
            }
            if first.starts(with: versionPrefix.utf8) {
                throw .header("unsupported version line (only age-encryption.org/v1 is supported)")
            }
            throw .header("not an age file: the first line is not the age version line")
        }

        var stanzas: [AgeStanza] = []
        while true {
            let lineStart = position
            let line = try nextLine()
            if line.starts(with: "---".utf8) {
                let rest = line.dropFirst(3)
                guard rest.first == space else { throw .header("MAC line must be \"--- \" and the MAC") }
                let encoded = rest.dropFirst()
                guard encoded.count == 43, let mac = AgeBase64.decodeUnpadded(encoded), mac.count == macLength
                else { throw .header("MAC is not canonical unpadded base64 of 32 bytes") }
                guard !stanzas.isEmpty else { throw .header("header has no recipient stanza") }
                let header = AgeHeader(stanzas: stanzas, mac: mac, macInput: file[0..<(lineStart + 3)])
                return (header, position)
            }
            guard line.starts(with: "-> ".utf8) else {
                throw .header("expected a stanza (\"-> \") or the MAC line (\"--- \")")
            }
            let arguments = line.dropFirst(3).split(separator: space, omittingEmptySubsequences: false)
            guard let typeBytes = arguments.first else { throw .header("stanza without arguments") }
            for argument in arguments {
                guard !argument.isEmpty else { throw .header("empty stanza argument") }
                guard argument.allSatisfy({ $0 >= 0x21 && $0 <= 0x7e }) else {
                    throw .header("stanza argument with a character outside VCHAR")
                }
            }
            var encodedBody: [UInt8] = []
            while true {
                let bodyLine = try nextLine()
                guard bodyLine.count <= bodyColumns else { throw .header("stanza body line longer than 64 columns") }
                guard bodyLine.allSatisfy(AgeBase64.isAlphabet) else {
                    throw .header("stanza body is not unpadded base64")
                }
                encodedBody.append(contentsOf: bodyLine)
                if bodyLine.count < bodyColumns { break }
            }
            guard let body = AgeBase64.decodeUnpadded(encodedBody) else {
                throw .header("stanza body is not canonical base64")
            }
            stanzas.append(
                AgeStanza(
                    type: String(decoding: typeBytes, as: UTF8.self),
                    arguments: arguments.dropFirst().map { String(decoding: $0, as: UTF8.self) },
                    body: body))
        }
    }

    // MARK: Writing

    /// The header through "---" (the bytes the MAC covers).
    static func headerWithoutMAC(_ stanzas: [AgeStanza]) -> [UInt8] {
        var out = Array(versionLine.utf8)
        out.append(lf)
        for stanza in stanzas {
            out.append(contentsOf: "->".utf8)
            for argument in [stanza.type] + stanza.arguments {
                out.append(space)
                out.append(contentsOf: argument.utf8)
            }
            out.append(lf)
            let encoded = Array(AgeBase64.encode(stanza.body, padded: false).utf8)
            var index = 0
            // Full 64-column lines, then always a final shorter line (possibly empty).
            while encoded.count - index >= bodyColumns {
                out.append(contentsOf: encoded[index..<(index + bodyColumns)])
                out.append(lf)
                index += bodyColumns
            }
            out.append(contentsOf: encoded[index...])
            out.append(lf)
        }
        out.append(contentsOf: "---".utf8)
        return out
    }

    /// The MAC line's tail: a space, the base64 MAC and a line feed.
    static func macLineTail(_ mac: [UInt8]) -> [UInt8] {
        [space] + Array(AgeBase64.encode(mac, padded: false).utf8) + [lf]
    }
}
