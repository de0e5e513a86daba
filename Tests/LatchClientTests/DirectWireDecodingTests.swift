import Foundation
@testable import LatchClient
import LatchLog
import LatchWire
import Testing

/// The direct readers of the sync answer and what it carries (LatchWire/DirectDecoding.swift)
/// give exactly what `LatchJSON.decoder()` gives, and give up (leaving JSONDecoder to answer,
/// error included) on anything else.
@Suite struct DirectWireDecodingTests {
    static let strings = [
        "", "plain", "with \"quotes\" and \\backslashes\\", "slash/es and </script>", "ünïcödé ✓ 🔐 𝄞",
        "controls \u{1}\u{8}\u{C}\n\r\t\u{1F}", "{\"checkpoint\":\"{\\\"a\\\":1}\",\"signature\":\"x/y+z==\"}",
    ]
    static let dates = [Date(timeIntervalSince1970: 0), Date(timeIntervalSince1970: 1_764_633_600), Date(timeIntervalSince1970: 4_102_444_799)]

    static func answer(_ n: Int) -> SyncResponse {
        let s = strings[n % strings.count], d = dates[n % dates.count]
        let vault = VaultInfo(id: "v\(n)", name: s, dataClassification: "CONFIDENTIAL", projectId: n % 2 == 0 ? nil : s,
                              currentDekVersion: n, summaryVersion: n + 1, archived: n % 3 == 0, createdAt: d, updatedAt: d,
                              summaryLogIndex: n % 2 == 0 ? Int64(n) * 1_000_000_007 : nil)
        let item = ItemInfo(id: "i\(n)", vaultId: "v\(n)", name: s, type: "LOGIN", websites: n % 2 == 0 ? [] : [s, "https://a.example"],
                            groupId: n % 2 == 0 ? s : nil, detailVersion: n, detailHash: "h" + s, createdAt: d, updatedAt: d,
                            detailLogIndex: n % 3 == 0 ? nil : Int64(n))
        let field = FieldInfo(id: "f\(n)", itemId: "i\(n)", name: s, type: "PASSWORD", order: [0, -1, Int.max, Int.min][n % 4],
                              isEnvironmentVariable: n % 2 == 1, value: s + "envelope")
        let wrap = WrappedKeyInfo(vaultId: "v\(n)", principalId: "p", recipientKeyId: "k", dekVersion: n, wrappedKey: "AAAA",
                                  statement: s, signerPrincipalId: "p", createdAt: d)
        let member = MemberKey(principalId: "p", principalType: "AGENT", name: s, level: "READ", keyId: "k", publicKey: s,
                               logIndex: n % 2 == 0 ? nil : 7, rotations: n % 2 == 0 ? nil : [KeyRotationLink(previousPublicKey: s, statement: s)])
        let directory = PublicKeysResponse(vaultId: "v\(n)", publicKeys: [member],
                                           writers: n % 2 == 0 ? nil : [WritersLinkInfo(statement: s, signerId: "p", signerPublicKey: s, signerKeyLogIndex: n % 3 == 0 ? nil : 3)],
                                           writersLogIndex: n % 2 == 0 ? nil : 9)
        let log = SyncLogProofs(head: LogCheckpointResponse(treeSize: Int64(n), rootHash: "r", checkpoint: s, logKey: "latchkey.log+abc+AAA"),
                                consistencyFrom: 0, consistency: n % 2 == 0 ? [] : ["a", "b"],
                                inclusion: LogInclusionBatchResponse(treeSize: Int64(n), proofs: [(leafIndex: 3, path: ["x", "y"]), (leafIndex: 4, path: ["y"])]))
        let me = MeResponse(principal: PrincipalInfo(id: "p", type: "AGENT", name: s, role: "TENANT_MEMBER", tenantId: "t",
                                                     activeKeyId: n % 2 == 0 ? nil : "k", createdAt: d),
                            accessKey: "lk_x", scope: "AGENT", permissions: ["machine.vault.read", s],
                            publicKey: n % 2 == 0 ? nil : PublicKeyInfo(keyId: "k", publicKey: s, principalId: "p", status: "ACTIVE", createdAt: d, logIndex: 1),
                            expiresAt: n % 3 == 1 ? d : nil)
        return SyncResponse(cursor: "djE6" + s, full: n % 2 == 0, hasMore: n % 3 == 0, vaults: [VaultResponse(vault: vault, summaryCheckpoint: s)],
                            items: [SyncItem(item: item, archived: n % 2 == 1, detailCheckpoint: s)], fields: [SyncField(vaultId: "v\(n)", field: field)],
                            deletedFieldIds: n % 2 == 0 ? [] : [s], wrappedKeys: [wrap], removedVaultIds: n % 2 == 0 ? [s] : [],
                            log: n % 2 == 0 ? nil : log, directories: n % 3 == 0 ? nil : [directory], me: n % 4 == 0 ? nil : me)
    }

    func encoded<T: Encodable>(_ v: T) throws -> String { String(decoding: try LatchJSON.encoder().encode(v), as: UTF8.self) }

    @Test func directEqualsJSONDecoder() throws {
        for n in 0..<14 {
            let data = try LatchJSON.encoder().encode(Self.answer(n))
            let direct = try #require(SyncResponse.readDirect(data), "answer \(n) fell back")
            #expect(try encoded(direct) == encoded(try LatchJSON.decoder().decode(SyncResponse.self, from: data)))
        }
    }

    @Test func nullsAndUnknownMembersAndWhiteSpaceAsJSONDecoder() throws {
        var text = try encoded(Self.answer(1))
        text = text.replacingOccurrences(of: #""log":{"#, with: #""future":{"a":[1,2.5e3,null,true]}, "log" : {"#)
        text = text.replacingOccurrences(of: #""projectId":"#, with: #""projectId":null,"x":"#)   // the value moves to an unknown member
        let data = Data(text.utf8)
        let direct = try #require(SyncResponse.readDirect(data), "fell back: \(text.prefix(300))")
        #expect(direct.vaults[0].vault.projectId == nil)
        #expect(try encoded(direct) == encoded(try LatchJSON.decoder().decode(SyncResponse.self, from: data)))
    }

    @Test func givesUpWhereJSONDecoderDecides() throws {
        let text = try encoded(Self.answer(2))
        let cases = [
            // a member twice
            text.replacingOccurrences(of: #""cursor":"#, with: #""cursor":"a","cursor":"#),
            // a date with a fraction (JSONDecoder's ISO 8601 parser reads it)
            text.replacingOccurrences(of: "T23:59:59Z", with: "T23:59:59.250Z"),
            // a fraction where an integer is wanted, a missing required member, a wrong type
            text.replacingOccurrences(of: #""dekVersion":2"#, with: #""dekVersion":2.5"#),
            text.replacingOccurrences(of: #""hasMore":false,"#, with: ""),
            text.replacingOccurrences(of: #""full":true"#, with: #""full":"yes""#),
            text + " x",
        ]
        // Bytes that are not UTF-8 inside a string: JSONDecoder refuses them, so the reader gives up.
        var bad = Data(text.utf8)
        let at = try #require(bad.firstRange(of: Data("djE6".utf8))).upperBound
        bad.insert(0xFF, at: at)
        #expect(SyncResponse.readDirect(bad) == nil)
        #expect(throws: (any Error).self) { _ = try SyncResponse.decodeDirect(bad) }
        for c in cases {
            let data = Data(c.utf8)
            #expect(SyncResponse.readDirect(data) == nil, "\(c.prefix(200))")
            let viaDecoder = Result { try encoded(try LatchJSON.decoder().decode(SyncResponse.self, from: data)) }
            let viaDirect = Result { try encoded(try SyncResponse.decodeDirect(data)) }
            switch (viaDecoder, viaDirect) {
            case (.success(let a), .success(let b)): #expect(a == b)
            case (.failure(let a), .failure(let b)): #expect("\(a)" == "\(b)")
            default: Issue.record("direct and JSONDecoder disagree on \(c.prefix(200))")
            }
        }
    }

    /// The profile's own files (profile.json, log.json, seen.json) read directly give what
    /// JSONDecoder gives; a member twice makes the reader give up.
    @Test func profileFilesAsJSONDecoder() throws {
        for (n, s) in Self.strings.enumerated() {
            let profile = Profile(name: "p\(n)", baseUrl: "http://127.0.0.1:8484/" + s, accessKey: "lk_" + s, keyId: n % 2 == 0 ? nil : s,
                                  principalType: "AGENT", principalId: s, tenantId: n % 3 == 0 ? nil : "t", orgId: "o", logKeyId: nil)
            let p = try JSONEncoder().encode(profile)
            #expect(Profile.readDirect(p) == profile)
            #expect(try JSONDecoder().decode(Profile.self, from: p) == profile)

            let leaves = Dictionary(uniqueKeysWithValues: (0..<n).map { (Int64($0) * 1_000_003, MerkleHash.leaf(Data([UInt8($0)]))) })
            let trust = LogTrust(logKey: "latchkey.log+abc+" + s, treeSize: Int64(n) << 40, rootHash: s, checkpoint: n % 2 == 0 ? nil : s, verified: leaves)
            let t = try trust.fileData()
            #expect(LogTrust.readDirect(t) == trust)
            #expect(try JSONDecoder().decode(LogTrust.self, from: t) == trust)

            var seen = SeenState()
            seen.vaults = ["v" + s: SeenState.Vault(summaryVersion: n, items: n % 2 == 0 ? [:] : ["i": 2, s: 3])]
            if n % 2 == 1 { seen.memberKeys = ["p": s] }
            if n % 3 == 1 { seen.writers = [s: SeenState.PinnedWriters(version: n, hash: "h")] }
            let v = try JSONEncoder().encode(seen)
            #expect(SeenState.readDirect(v) == seen)
            #expect(try JSONDecoder().decode(SeenState.self, from: v) == seen)
        }
        #expect(Profile.readDirect(Data(#"{"name":"a","name":"b","baseUrl":"u","accessKey":"k"}"#.utf8)) == nil)
        #expect(LogTrust.readDirect(Data(#"{"version":1,"logKey":"k","treeSize":1,"rootHash":"r","verified":{"1":"00","01":"00"}}"#.utf8)) == nil)
        #expect(SeenState.readDirect(Data(#"{"version":1,"vaults":{"v":{"summaryVersion":1,"items":{"i":1,"i":2}}}}"#.utf8)) == nil)
        #expect(SeenState.readDirect(Data(#"{"vaults":{}}"#.utf8)) == nil)   // JSONDecoder wants `version` too
    }

    /// Mutated answers (bytes flipped, inserted, dropped; structural characters swapped): whenever
    /// the direct reader accepts one, JSONDecoder accepts it too, with the same value. A hostile
    /// server gains nothing from the reader that JSONDecoder would have refused.
    @Test func mutatedAnswersNeverDisagree() throws {
        var rng = SplitMix(seed: 0x1a7c_4e11)
        let specials: [UInt8] = Array("{}[]\",:0123456789.-eE tnfu\\".utf8) + [0x00, 0x1F, 0x7F, 0xC3, 0xFF]
        var accepted = 0, refused = 0
        for round in 0..<3000 {
            var bytes = [UInt8](try LatchJSON.encoder().encode(Self.answer(round % 14)))
            for _ in 0..<(1 + Int(rng.next() % 3)) {
                let at = Int(rng.next() % UInt64(bytes.count))
                switch rng.next() % 4 {
                case 0: bytes[at] = specials[Int(rng.next() % UInt64(specials.count))]
                case 1: bytes.insert(specials[Int(rng.next() % UInt64(specials.count))], at: at)
                case 2: bytes.remove(at: at)
                default: bytes[at] ^= UInt8(truncatingIfNeeded: rng.next() | 1)
                }
            }
            let data = Data(bytes)
            guard let direct = SyncResponse.readDirect(data) else { refused += 1; continue }
            accepted += 1
            let viaDecoder = try #require(try? LatchJSON.decoder().decode(SyncResponse.self, from: data),
                                          "the direct reader accepted what JSONDecoder refuses: \(String(decoding: bytes, as: UTF8.self).prefix(400))")
            #expect(try encoded(direct) == encoded(viaDecoder))
        }
        // Both outcomes must occur, or the mutations test nothing.
        #expect(accepted > 50 && refused > 50, "accepted \(accepted), refused \(refused)")
    }
}

/// A small deterministic generator, so a failing mutation can be replayed.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
