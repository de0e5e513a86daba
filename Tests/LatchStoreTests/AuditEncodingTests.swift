import Foundation
@testable import LatchDomain
import Testing

/// The audit chain's hot-path encodings (written directly, not through Codable) agree with
/// their definitions: the hash with `CanonicalJSON.encode` of the payload, the stored document
/// with what `JSONDecoder` reads back.
@Suite struct AuditEncodingTests {
    static let awkward = ["plain", "quote \" and \\ backslash", "slash / tab \t nl \n cr \r bell \u{07} nul \u{00} del \u{7f}",
                          "unicode é ü 中文 🙂 \u{2028}", "", "{\"json\":[1,2]}"]

    static func events() -> [AuditEvent] {
        var out: [AuditEvent] = []
        for (i, s) in awkward.enumerated() {
            let some = i % 2 == 0
            out.append(AuditEvent(seq: Int64(i + 1), tenantId: some ? s : nil, time: Date(timeIntervalSince1970: 1_764_000_000.123 + Double(i)),
                                  action: "field.read" + s, outcome: s.isEmpty ? "success" : s, principalId: some ? nil : s,
                                  accessKey: "lk_" + s, assetType: some ? "FIELD" : nil, assetId: s, source: some ? "127.0.0.1" : nil,
                                  detail: some ? nil : s, prevHash: AuditChain.genesis, hash: String(repeating: "a", count: 64)))
        }
        // Before 1970 (negative milliseconds) and an event with every optional absent.
        out.append(AuditEvent(seq: 7, tenantId: nil, time: Date(timeIntervalSince1970: -12.5), action: "a", outcome: "o", principalId: nil,
                              accessKey: nil, assetType: nil, assetId: nil, source: nil, detail: nil, prevHash: "p", hash: "h"))
        return out
    }

    @Test("the direct canonical hash input equals CanonicalJSON.encode of the payload")
    func hashMatchesDefinition() throws {
        for e in Self.events() {
            #expect(AuditChain.canonicalInput(e) != nil)
            #expect(try AuditChain.hash(of: e) == AuditChain.genericHash(of: e))
        }
        // Beyond 2^53 the generic path decides (double formatting).
        var big = Self.events()[0]
        big.seq = (1 << 53) + 1
        #expect(AuditChain.canonicalInput(big) == nil)
        #expect(try AuditChain.hash(of: big) == AuditChain.genericHash(of: big))
        // A changed member changes the hash.
        var edited = Self.events()[0]
        edited.detail = "x"
        #expect(try AuditChain.hash(of: edited) != AuditChain.hash(of: Self.events()[0]))
    }

    @Test("an event's chain template joined with its seq and prevHash gives its hash input")
    func templateMatchesDefinition() throws {
        for (i, e) in Self.events().enumerated() {
            let draft = AuditDraft(time: e.time, tenantId: e.tenantId, action: e.action, outcome: e.outcome, principalId: e.principalId,
                                   accessKey: e.accessKey, assetType: e.assetType, assetId: e.assetId, source: e.source, detail: e.detail)
            let t = try #require(AuditChainTemplate(draft))
            for (seq, prev) in [(Int64(1), AuditChain.genesis), (Int64(i + 10_000_000), Hashing.sha256Hex("p\(i)")), (Int64(1) << 53, Hashing.sha256Hex("x"))] {
                var chained = draft.event(seq: seq, prevHash: prev, hash: "")
                #expect(t.hashInput(seq: seq, prevHash: prev) == AuditChain.canonicalInput(chained))
                chained.hash = try AuditChain.hash(of: chained)
                #expect(Hashing.sha256Hex(t.hashInput(seq: seq, prevHash: prev)) == chained.hash)
            }
        }
        // Beyond ±2^53 ms the generic path decides: no template.
        #expect(AuditChainTemplate(AuditDraft(time: Date(timeIntervalSince1970: 1e13), tenantId: nil, action: "a", outcome: "o",
                                              principalId: nil, accessKey: nil)) == nil)
    }

    @Test("the stored document decodes to an equal event")
    func documentRoundTrips() throws {
        for e in Self.events() {
            let back = try JSONDecoder().decode(AuditEvent.self, from: Data(e.documentJSON.utf8))
            #expect(back == e)
            #expect(back == (try JSONDecoder().decode(AuditEvent.self, from: JSONEncoder().encode(e))))
        }
    }
}
