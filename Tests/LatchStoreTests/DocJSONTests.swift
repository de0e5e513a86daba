import Foundation
@testable import LatchDomain
import Testing

/// The direct reader of field, item and vault documents (DocJSON.swift) gives exactly what
/// JSONDecoder gives, and gives up (leaving JSONDecoder to answer) on anything else.
@Suite struct DocJSONTests {
    static let strings = [
        "", "plain", "with \"quotes\" and \\backslashes\\", "slash/es and </script>", "ünïcödé ✓ 🔐 𝄞",
        "controls \u{1}\u{8}\u{C}\n\r\t\u{1F}", "{\"checkpoint\":\"{\\\"a\\\":1}\",\"signature\":\"x/y+z==\"}",
        String(repeating: "long ", count: 500),
    ]
    static let dates = [
        Date(timeIntervalSinceReferenceDate: 0), Date(timeIntervalSinceReferenceDate: 786_412_345.123_456_7),
        Date(timeIntervalSinceReferenceDate: -12.5), Date(timeIntervalSince1970: 1_764_633_600.001), Date(),
        Date(timeIntervalSinceReferenceDate: 1e-7), Date(timeIntervalSinceReferenceDate: 123_456_789_012.25),
    ]

    func fields() -> [Field] {
        var out: [Field] = []
        for (n, s) in Self.strings.enumerated() {
            out.append(Field(id: "f\(n)", itemId: s, vaultId: "v", tenantId: "t\(s)", name: s, type: "password",
                             order: [0, -1, Int.max, Int.min, 42][n % 5], isEnvironmentVariable: n % 2 == 0,
                             envelope: s + "envelope", updatedAt: Self.dates[n % Self.dates.count]))
        }
        return out
    }

    func items() -> [Item] {
        var out: [Item] = []
        for (n, s) in Self.strings.enumerated() {
            var i = Item(id: "i\(n)", vaultId: "v", tenantId: "t", name: s, type: "login", websites: n % 3 == 0 ? [] : [s, "https://a.example/x"],
                         groupId: n % 2 == 0 ? nil : s, detailVersion: n, detailHash: "h\(s)", detailCheckpoint: s,
                         createdAt: Self.dates[n % Self.dates.count], updatedAt: Self.dates[(n + 3) % Self.dates.count], archived: n % 4 == 1)
            i.detailLogIndex = n % 3 == 0 ? nil : Int64(n) * 1_000_000_007
            out.append(i)
        }
        return out
    }

    func vaults() -> [Vault] {
        Self.strings.enumerated().map { n, s in
            var v = Vault(id: "v\(n)", tenantId: s, projectId: n % 2 == 0 ? nil : s, name: s, dataClassification: "secret",
                          currentDekVersion: n, summaryVersion: n + 1, summaryCheckpoint: s, createdBy: "p",
                          createdAt: Self.dates[n % Self.dates.count], updatedAt: Self.dates[0], archived: n % 3 == 0)
            v.writers = n % 2 == 0 ? nil : [WritersLink(statement: s, signerId: "p", signerKeyId: "k"), WritersLink(statement: "{}", signerId: "q", signerKeyId: "k2")]
            v.writersLogIndex = n % 2 == 0 ? nil : 7
            return v
        }
    }

    /// The document text as the stores write it.
    func doc<T: Encodable>(_ v: T) throws -> String { String(decoding: try JSONEncoder().encode(v), as: UTF8.self) }

    @Test("fields, items and vault access views read directly equal JSONDecoder's")
    func sameAsJSONDecoder() throws {
        for f in fields() {
            let d = try doc(f)
            let direct = try #require(Field.directDecode(d), "field \(f.id) fell back")
            #expect(direct == f)
            #expect(direct == (try JSONDecoder().decode(Field.self, from: Data(d.utf8))))
        }
        for i in items() {
            let d = try doc(i)
            let direct = try #require(Item.directDecode(d), "item \(i.id) fell back")
            #expect(direct == i)
            #expect(direct == (try JSONDecoder().decode(Item.self, from: Data(d.utf8))))
        }
        for v in vaults() {
            let d = try doc(v)
            let direct = try #require(VaultAccessView.directDecode(d), "vault \(v.id) fell back")
            let decoded = try JSONDecoder().decode(VaultAccessView.self, from: Data(d.utf8))
            #expect(direct.id == decoded.id && direct.tenantId == decoded.tenantId && direct.projectId == decoded.projectId
                    && direct.archived == decoded.archived)
            #expect(direct.id == v.id && direct.tenantId == v.tenantId && direct.projectId == v.projectId && direct.archived == v.archived)
        }
    }

    /// `value`'s document read directly equals `value` and JSONDecoder's reading of it.
    func expectDirect<T: DirectDocDecodable & Codable & Equatable>(_ value: T) throws {
        let d = try doc(value)
        let direct = try #require(T.directDecode(d), "\(T.self) fell back: \(d.prefix(200))")
        #expect(direct == value)
        #expect(direct == (try JSONDecoder().decode(T.self, from: Data(d.utf8))))
    }

    @Test("vaults, keys, wraps, grants, memberships and principals read directly equal JSONDecoder's")
    func syncDocumentsSameAsJSONDecoder() throws {
        for v in vaults() { try expectDirect(v) }
        for (n, s) in Self.strings.enumerated() {
            let date = Self.dates[n % Self.dates.count]
            try expectDirect(PublicKeyRecord(keyId: "k\(n)", principalId: s, tenantId: "t", pem: s + "\n-----END-----\n",
                                             status: n % 2 == 0 ? .active : .retired, createdAt: date,
                                             retiredAt: n % 2 == 0 ? nil : Self.dates[0], logIndex: n % 3 == 0 ? nil : Int64(n) << 40,
                                             rotationStatement: n % 3 == 1 ? s : nil))
            try expectDirect(WrappedKey(vaultId: "v", tenantId: s, principalId: "p\(n)", recipientKeyId: "k", dekVersion: n,
                                        wrappedKey: "d3JhcHBlZA==", statement: s, signerPrincipalId: "q", createdAt: date))
            try expectDirect(PermissionGrant(tenantId: "t", assetType: AssetType.allCases[n % 3], assetId: s,
                                             granteeType: GranteeType.allCases[n % 4], granteeId: "g\(n)",
                                             level: AccessLevel.allCases[n % 3], createdAt: date))
            try expectDirect(GroupMembership(groupId: s, principalId: "p\(n)", tenantId: "t"))
            try expectDirect(Principal(id: "p\(n)", tenantId: "t", type: PrincipalType.allCases[n % 2], name: s,
                                       role: TenantRole.allCases[n % 3], createdAt: date, createdBy: n % 2 == 0 ? nil : s,
                                       archived: n % 4 == 1))
        }
        // Missing optionals read as nil, as JSONDecoder reads them.
        let bare = #"{"id":"v","tenantId":"t","name":"n","dataClassification":"c","currentDekVersion":1,"summaryVersion":2,"summaryCheckpoint":"{}","createdBy":"p","createdAt":1,"updatedAt":2,"archived":false}"#
        let direct = try #require(Vault.directDecode(bare))
        #expect(direct == (try JSONDecoder().decode(Vault.self, from: Data(bare.utf8))))
        #expect(direct.writers == nil && direct.summaryLogIndex == nil && direct.projectId == nil)
        // An enum value it does not know, or a writer link missing a member, is left to JSONDecoder.
        #expect(PermissionGrant.directDecode(#"{"tenantId":"t","assetType":"GALAXY","assetId":"a","granteeType":"USER","granteeId":"g","level":"READ","createdAt":0}"#) == nil)
        #expect(Vault.directDecode(bare.replacingOccurrences(of: #""archived":false"#, with: #""archived":false,"writers":[{"statement":"s","signerId":"p"}]"#)) == nil)
    }

    @Test("hand-written variants: white space, escapes, null and missing optionals, member order")
    func variants() throws {
        let docs = [
            #"{"id":"i","vaultId":"v","tenantId":"t","name":"n","type":"x","websites":[],"detailVersion":1,"detailHash":"h","detailCheckpoint":"c","createdAt":1.5,"updatedAt":2,"archived":false}"#,
            #" { "archived" : true , "updatedAt" : -2.5e3 , "createdAt" : 1E2 , "detailCheckpoint" : "\u00e9\ud83d\udd10\/" , "detailHash":"h","detailVersion":0,"websites":[ "a" , "b" ],"type":"x","name":"\"","tenantId":"t","vaultId":"v","id":"i","groupId":null,"detailLogIndex":null,"extra":{"a":[1,{"b":null}],"c":"d"} } "#,
            #"{"id":"i","vaultId":"v","tenantId":"t","name":"n","type":"x","websites":["w"],"groupId":"g","detailVersion":-3,"detailHash":"h","detailCheckpoint":"c","detailLogIndex":9007199254740993,"createdAt":0.1,"updatedAt":0.30000000000000004,"archived":false}"#,
        ]
        for d in docs {
            let direct = try #require(Item.directDecode(d), "fell back: \(d)")
            #expect(direct == (try JSONDecoder().decode(Item.self, from: Data(d.utf8))))
        }
    }

    @Test("anything the direct reader does not fully understand falls back to JSONDecoder")
    func fallsBack() async throws {
        let ok = #"{"id":"f","itemId":"i","vaultId":"v","tenantId":"t","name":"n","type":"x","order":1,"isEnvironmentVariable":false,"envelope":"e","updatedAt":1}"#
        #expect(Field.directDecode(ok) != nil)
        let bad = [
            ok.replacingOccurrences(of: #""order":1"#, with: #""order":1.0"#),          // a fraction for an Int
            ok.replacingOccurrences(of: #""order":1"#, with: #""order":1e2"#),          // an exponent for an Int
            ok.replacingOccurrences(of: #""order":1"#, with: #""order":99999999999999999999"#),   // too big
            ok.replacingOccurrences(of: #""name":"n""#, with: #""name":"n","name":"m""#),         // a duplicate member
            ok.replacingOccurrences(of: #""name":"n""#, with: #""name":"\ud800""#),                // an unpaired surrogate
            ok.replacingOccurrences(of: #""name":"n""#, with: #""name":"\x""#),                    // a bad escape
            ok.replacingOccurrences(of: #""name":"n""#, with: #""name":null"#),                    // null for a String
            ok.replacingOccurrences(of: #","envelope":"e""#, with: ""),                            // a member missing
            ok.replacingOccurrences(of: #""order":1"#, with: #""order":01"#),                      // not JSON
            ok + " x",                                                                             // trailing text
            String(ok.dropLast()),                                                                 // truncated
            "[" + ok + "]",
        ]
        for d in bad {
            #expect(Field.directDecode(d) == nil, "accepted: \(d)")
        }
        // Through the store the result is then JSONDecoder's: the same value or the same error.
        let store = MemoryStore()
        for (n, d) in ([ok] + bad).enumerated() {
            let row = StoreRow(id: "f\(n)", tenantId: "t", parentId: "i", lookup: nil, doc: d)
            let viaStore = await outcome { try await store.read { tx in try tx.decode(Field.self, row) } }
            let viaDecoder = Result { try JSONDecoder().decode(Field.self, from: Data(d.utf8)) }
            switch (viaStore, viaDecoder) {
            case (.success(let a), .success(let b)): #expect(a == b)
            case (.failure(let e), .failure(let f)): #expect("\(e)".contains("\(f)"), "\(e) vs \(f)")
            default: Issue.record("store and JSONDecoder disagree on \(d): \(viaStore) vs \(viaDecoder)")
            }
        }
    }
}

private func outcome<T>(_ body: () async throws -> T) async -> Result<T, Error> {
    do { return .success(try await body()) } catch { return .failure(error) }
}
