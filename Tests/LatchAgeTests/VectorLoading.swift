import CZlib
import Crypto
import Foundation
import Testing

/// Locates the copied vector folders in the test bundle; fails loudly when they are missing.
enum VectorFiles {
    static func directory(_ name: String) throws -> URL {
        guard let root = Bundle.module.url(forResource: "Vectors", withExtension: nil) else {
            throw VectorError("Vectors/ resource folder missing from the LatchAgeTests bundle")
        }
        let url = root.appendingPathComponent(name)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw VectorError("Vectors/\(name) missing from the LatchAgeTests bundle")
        }
        return url
    }

    static func data(_ relativePath: String) throws -> Data {
        let url = try directory(".").appendingPathComponent(relativePath)
        guard let data = FileManager.default.contents(atPath: url.path), !data.isEmpty else {
            throw VectorError("vector file Vectors/\(relativePath) missing or empty")
        }
        return data
    }
}

struct VectorError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

func hex(_ bytes: some Sequence<UInt8>) -> String {
    bytes.map { String(format: "%02x", $0) }.joined()
}

func unhex(_ text: String) throws -> [UInt8] {
    let chars = Array(text.utf8)
    guard chars.count % 2 == 0 else { throw VectorError("odd-length hex") }
    var out: [UInt8] = []
    out.reserveCapacity(chars.count / 2)
    var index = 0
    while index < chars.count {
        guard let byte = UInt8(String(decoding: chars[index..<(index + 2)], as: UTF8.self), radix: 16) else {
            throw VectorError("bad hex \(text.prefix(16))…")
        }
        out.append(byte)
        index += 2
    }
    return out
}

func sha256Hex(_ bytes: some DataProtocol) -> String { hex(SHA256.hash(data: bytes)) }

/// zlib (RFC 1950) inflate through the system zlib, growing the buffer until it fits.
func zlibInflate(_ input: [UInt8]) throws -> [UInt8] {
    var capacity = max(1 << 16, input.count * 8)
    while capacity <= 1 << 28 {
        var output = [UInt8](repeating: 0, count: capacity)
        var outputLength = uLongf(capacity)
        let status = output.withUnsafeMutableBufferPointer { out in
            input.withUnsafeBufferPointer { inp in
                uncompress(out.baseAddress, &outputLength, inp.baseAddress, uLong(inp.count))
            }
        }
        switch status {
        case Z_OK: return Array(output.prefix(Int(outputLength)))
        case Z_BUF_ERROR: capacity *= 4
        default: throw VectorError("zlib uncompress failed with status \(status)")
        }
    }
    throw VectorError("inflated data larger than 256 MiB")
}
