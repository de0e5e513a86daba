import Foundation
import Testing
@testable import LatchCrypto

@Suite("RFC 8785 canonical JSON")
struct CanonicalJSONTests {
    /// RFC 8785 Appendix B: IEEE-754 bit patterns and their serialisation.
    static let appendixB: [(String, String)] = [
        ("0000000000000000", "0"),
        ("8000000000000000", "0"),
        ("0000000000000001", "5e-324"),
        ("8000000000000001", "-5e-324"),
        ("7fefffffffffffff", "1.7976931348623157e+308"),
        ("ffefffffffffffff", "-1.7976931348623157e+308"),
        ("4340000000000000", "9007199254740992"),
        ("c340000000000000", "-9007199254740992"),
        ("4430000000000000", "295147905179352830000"),
        ("44b52d02c7e14af5", "9.999999999999997e+22"),
        ("44b52d02c7e14af6", "1e+23"),
        ("44b52d02c7e14af7", "1.0000000000000001e+23"),
        ("444b1ae4d6e2ef4e", "999999999999999700000"),
        ("444b1ae4d6e2ef4f", "999999999999999900000"),
        ("444b1ae4d6e2ef50", "1e+21"),
        ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
        ("3eb0c6f7a0b5ed8d", "0.000001"),
        ("41b3de4355555553", "333333333.3333332"),
        ("41b3de4355555554", "333333333.33333325"),
        ("41b3de4355555555", "333333333.3333333"),
        ("41b3de4355555556", "333333333.3333334"),
        ("41b3de4355555557", "333333333.33333343"),
        ("becbf647612f3696", "-0.0000033333333333333333"),
        ("43143ff3c1cb0959", "1424953923781206.2"),
    ]

    @Test("Appendix B number table")
    func numbers() throws {
        var tally = VectorTally(name: "RFC 8785 appendix B numbers")
        for (bits, expected) in Self.appendixB {
            guard let pattern = UInt64(bits, radix: 16) else { throw VectorError("bad bit pattern") }
            let value = Double(bitPattern: pattern)
            let direct = ECMAScriptNumber.format(value)
            // Also through the parser: the shortest round-trip text of the value parses back to it.
            let viaParser = try CanonicalJSON.canonicalize(Data("[\(value)]".utf8))
            tally.record(direct == expected && viaParser == Data("[\(expected)]".utf8), "\(bits) -> \(direct)")
        }
        tally.finish(expectedTotal: 24)
        // The NaN and Infinity rows of the table must be refused.
        for bad in ["NaN", "Infinity", "1e400", "-1e400"] {
            #expect(throws: LatchCryptoError.self) { try CanonicalJSON.canonicalize(Data("[\(bad)]".utf8)) }
        }
    }

    @Test("Section 3.2.2 sample: literals, numbers, string escaping")
    func sample322() throws {
        let input = #"""
        {
          "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
          "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
          "literals": [null, true, false]
        }
        """#
        let expected = #"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#
        let out = try CanonicalJSON.canonicalize(Data(input.utf8))
        #expect(String(decoding: out, as: UTF8.self) == expected)
        // The RFC also gives the UTF-8 bytes; spot-check the euro sign and the end.
        #expect(out.starts(with: Array(#"{"literals":"#.utf8)))
        #expect(Array(out).suffix(3) == [0x2f, 0x22, 0x7d])
        #expect(out.firstRange(of: Data([0xe2, 0x82, 0xac])) != nil)
    }

    @Test("Section 3.2.3 sample: member sorting by UTF-16 code units")
    func sorting() throws {
        let input = #"""
        {
          "\u20ac": "Euro Sign",
          "\r": "Carriage Return",
          "\ufb33": "Hebrew Letter Dalet With Dagesh",
          "1": "One",
          "\ud83d\ude00": "Emoji: Grinning Face",
          "\u0080": "Control",
          "\u00f6": "Latin Small Letter O With Diaeresis"
        }
        """#
        let expected = "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":\"Control\","
            + "\"\u{f6}\":\"Latin Small Letter O With Diaeresis\",\"\u{20ac}\":\"Euro Sign\","
            + "\"\u{1f600}\":\"Emoji: Grinning Face\",\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}"
        let out = try CanonicalJSON.canonicalize(Data(input.utf8))
        #expect(String(decoding: out, as: UTF8.self) == expected)
    }

    @Test("Idempotent, nested, and Encodable values")
    func encodable() throws {
        struct Sample: Encodable { var b = 2; var a = ["z": 1.5, "y": 100.0]; var c: String? = nil; var s = "\u{7f}\u{2028}" }
        let out = try CanonicalJSON.encode(Sample())
        #expect(String(decoding: out, as: UTF8.self) == "{\"a\":{\"y\":100,\"z\":1.5},\"b\":2,\"s\":\"\u{7f}\u{2028}\"}")
        #expect(try CanonicalJSON.canonicalize(out) == out)
    }

    @Test("Invalid JSON is a typed canonicalJSON error")
    func rejects() {
        let bad = [
            "", "{", "[1,]", "{\"a\":1,\"a\":2}", "{\"a\":1,\"\\u0061\":2}", "\"\\ud800\"", "\"\\udc00x\"",
            "01", "1.", "-", "+1", "[1] x", "'a'", "\"a\u{01}\"", "{\"a\" 1}", "tru", "[\"\\x\"]",
            String(repeating: "[", count: 200) + String(repeating: "]", count: 200),
        ]
        for text in bad {
            #expect(throws: LatchCryptoError.self, "\(text.prefix(20))") { try CanonicalJSON.canonicalize(Data(text.utf8)) }
        }
        #expect(throws: LatchCryptoError.self) { try CanonicalJSON.canonicalize(Data([0x22, 0xff, 0x22])) }
        do {
            _ = try CanonicalJSON.canonicalize(Data("{\"a\":1,\"a\":2}".utf8))
        } catch let e as LatchCryptoError {
            guard case .canonicalJSON = e else { Issue.record("wrong layer: \(e)"); return }
        } catch { Issue.record("untyped error \(error)") }
    }
}
