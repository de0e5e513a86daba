import Foundation

/// Small byte-encoding helpers shared by the crypto core (internal).
enum Hex {
    private static let digits = Array("0123456789abcdef".utf8)

    static func encode(_ bytes: some Sequence<UInt8>) -> String {
        var out: [UInt8] = []
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

enum Base64 {
    /// Standard RFC 4648 base64 with padding; only the canonical encoding of some bytes is
    /// accepted (re-encoding the result must give back the input exactly).
    static func decodeStrict(_ string: String) -> Data? {
        guard let data = Data(base64Encoded: string), data.base64EncodedString() == string else { return nil }
        return data
    }
}

extension Digest {
    var hexString: String { Hex.encode(Array(self)) }
}

import Crypto

enum SHA256Hex {
    static func of(_ data: some DataProtocol) -> String { SHA256.hash(data: data).hexString }
}

extension Data {
    /// The UTF-8 bytes of `text`, copied without the generic `Data(_: some Sequence)` (whose
    /// dynamic casts cost a short process a scan of every conformance record on first use).
    package init(utf8Of text: String) {
        var text = text
        self = text.withUTF8 { $0.isEmpty ? Data() : Data(bytes: $0.baseAddress!, count: $0.count) }
    }
}
