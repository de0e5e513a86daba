import Foundation
import LatchWire
import Testing

/// The server's direct writer of the sync answer (LatchWire/DirectEncoding.swift) writes what
/// `LatchJSON.encoder()` writes.
@Suite struct DirectWireEncodingTests {
    @Test func syncAnswerAsJSONEncoder() throws {
        for n in 0..<14 {
            let answer = DirectWireDecodingTests.answer(n)
            let viaEncoder = try LatchJSON.encoder().encode(answer)
            let direct = answer.jsonData()
            #expect(String(decoding: direct, as: UTF8.self) == String(decoding: viaEncoder, as: UTF8.self), "answer \(n)")
            let back = try LatchJSON.decoder().decode(SyncResponse.self, from: direct)
            #expect(try LatchJSON.encoder().encode(back) == viaEncoder)
        }
    }

    @Test func datesAsISO8601Encoder() throws {
        struct D: Encodable { var d: Date }
        var dates = [Date(timeIntervalSince1970: 0), Date(timeIntervalSince1970: -0.5), Date(timeIntervalSince1970: 951_782_400),   // 2000-02-29
                     Date(timeIntervalSince1970: 4_107_542_399.999), Date(timeIntervalSince1970: -12_212_553_600),   // 1583-01-01
                     Date(timeIntervalSince1970: 253_402_300_799.75), Date()]
        var g = SystemRandomNumberGenerator()
        for _ in 0..<500 { dates.append(Date(timeIntervalSince1970: Double.random(in: -12_000_000_000...250_000_000_000, using: &g))) }
        for d in dates {
            let viaEncoder = String(decoding: try LatchJSON.encoder().encode(D(d: d)), as: UTF8.self)
            #expect(viaEncoder == "{\"d\":\"" + LatchJSON.utcString(d) + "\"}", "\(d.timeIntervalSince1970)")
        }
    }
}
