import Foundation
import Testing
import LatchWire

/// `LatchJSON.utcDate` reads the one form the wire's dates take without Foundation's calendar;
/// it must agree with Foundation's ISO 8601 parser on that form, and leave every other form to it.
@Suite struct WireDateTests {
    let foundation = Date.ISO8601FormatStyle()

    @Test func agreesWithFoundationFrom1583To9999() throws {
        var rng = SystemRandomNumberGenerator()
        // 1583-01-01 to 9999-12-31, plus a dense run around today.
        let wide = (-12_212_553_600 as Int64)...(253_402_300_799 as Int64)
        let near = (1_700_000_000 as Int64)...(1_900_000_000 as Int64)
        for i in 0..<20_000 {
            let seconds = Int64.random(in: i % 2 == 0 ? wide : near, using: &rng)
            let date = Date(timeIntervalSince1970: TimeInterval(seconds))
            let text = foundation.format(date)
            #expect(LatchJSON.utcDate(text) == date, "\(text)")
            #expect(try foundation.parse(text) == date, "\(text)")
        }
    }

    @Test func calendarEdges() throws {
        let cases: [(String, Int64)] = [
            ("1970-01-01T00:00:00Z", 0),
            ("1969-12-31T23:59:59Z", -1),
            ("2000-02-29T12:00:00Z", 951_825_600),
            ("2024-02-29T23:59:59Z", 1_709_251_199),
            ("2100-03-01T00:00:00Z", 4_107_542_400),
            ("1583-01-01T00:00:00Z", -12_212_553_600),
            ("9999-12-31T23:59:59Z", 253_402_300_799),
        ]
        for (text, seconds) in cases {
            #expect(LatchJSON.utcDate(text) == Date(timeIntervalSince1970: TimeInterval(seconds)), "\(text)")
            #expect(try foundation.parse(text) == Date(timeIntervalSince1970: TimeInterval(seconds)), "\(text)")
        }
    }

    @Test func otherFormsAreLeftToFoundation() {
        for text in ["1900-02-29T00:00:00Z", "2023-02-29T00:00:00Z", "2024-04-31T00:00:00Z", "2024-13-01T00:00:00Z",
                     "2024-00-10T00:00:00Z", "2024-01-00T00:00:00Z", "2024-01-01T24:00:00Z", "2024-01-01T00:60:00Z",
                     "2024-01-01T00:00:60Z", "2024-01-01T00:00:00.5Z", "2024-01-01T00:00:00+01:00", "2024-01-01 00:00:00Z",
                     " 2024-01-01T00:00:00Z", "2024-01-01T00:00:00z", "2024-1-01T00:00:00Z", "0000-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "1582-10-15T00:00:00Z",
                     "20x4-01-01T00:00:00Z", ""] {
            #expect(LatchJSON.utcDate(text) == nil, "\(text)")
        }
    }

    @Test func decoderReadsWhatFoundationReads() throws {
        struct Stamp: Codable, Equatable { var at: Date }
        let reference = JSONDecoder()
        reference.dateDecodingStrategy = .iso8601
        for text in ["2026-12-02T11:39:20Z", "2024-01-01T00:00:00+01:00", "2024-01-01T05:30:00-02:30"] {
            let json = Data("{\"at\":\"\(text)\"}".utf8)
            #expect(try LatchJSON.decoder().decode(Stamp.self, from: json) == reference.decode(Stamp.self, from: json), "\(text)")
        }
        for text in ["2023-02-29T00:00:00Z", "yesterday", "2024-01-01"] {
            let json = Data("{\"at\":\"\(text)\"}".utf8)
            let ours = try? LatchJSON.decoder().decode(Stamp.self, from: json)
            let theirs = try? reference.decode(Stamp.self, from: json)
            #expect(ours == theirs, "\(text)")
        }
        // What the wire's encoder writes comes back as it was (to the second).
        let now = Stamp(at: Date(timeIntervalSince1970: 1_764_675_560))
        #expect(try LatchJSON.decoder().decode(Stamp.self, from: LatchJSON.encoder().encode(now)) == now)
    }
}
