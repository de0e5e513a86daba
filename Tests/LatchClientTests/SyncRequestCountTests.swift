import Foundation
import Testing
@testable import LatchClient
import LatchCrypto
import LatchWire

/// Issue 5 (performance): a first sync proves every logged entry's inclusion with one batch
/// request, so its request count does not grow with the number of items.
@Suite(.serialized) struct SyncRequestCountTests {
    @Test("the direct canonical leaf bytes equal the generic canonical JSON encoding")
    func canonicalLeafBytes() throws {
        let leaves: [LogLeaf] = [
            .publicKey(tenantId: UUID().uuidString.lowercased(), principalId: UUID().uuidString.lowercased(), keyId: String(repeating: "ab", count: 32)),
            .checkpoint(.itemDetail, tenantId: "t", subjectId: "i", envelope: #"{"checkpoint":{}}"#),
            .checkpoint(.vaultSummary, tenantId: "tënant ✓", subjectId: "v", envelope: ""),
            LogLeaf(type: "x", tenantId: "quote\"d", subjectId: "back\\slash", name: "tab\tnl\n", envelopeSha256: nil),
            LogLeaf(type: "", tenantId: "", subjectId: "", name: "", envelopeSha256: ""),
        ]
        for leaf in leaves {
            #expect(try LogVerifier.canonicalLeafData(leaf) == leaf.leafData(), "\(leaf)")
        }
    }

    @Test("a first sync of 24 items makes a bounded number of requests, the same as one of 2 items")
    func firstSyncRequests() async throws {
        let server = try TestServer()
        defer { server.stop() }
        let op = try await Self.operatorClient(server)
        _ = try await op.createVault(name: "small")
        _ = try await op.createVault(name: "big")
        for n in 0..<2 { _ = try await op.setSecret(vault: "small", item: "s\(n)", value: "small-\(n)") }
        for n in 0..<24 { _ = try await op.setSecret(vault: "big", item: "b\(n)", value: "big-\(n)") }

        /// A fresh client (new LATCH_HOME: nothing pinned, nothing proven) doing its first sync.
        func firstSync() async throws -> (requests: Int, report: LogReport, secrets: Int) {
            let r = try await Latch.create(apiKey: op.configuration.apiKey, privateKeyPEM: op.configuration.privateKeyPEM,
                                           baseURL: server.url, environment: ["LATCH_HOME": server.dir + "/reader-\(UUID().uuidString)"],
                                           sync: false)
            let before = r.timings.counts["requests"] ?? 0
            try await r.refresh()
            return ((r.timings.counts["requests"] ?? 0) - before, try #require(r.lastLogReport), r.env.count)
        }
        let first = try await firstSync()
        #expect(first.secrets == 26)
        // Every entry proven afresh: 2 summaries, 26 details, the operator's key (own and in each
        // directory), and any other records the vaults are logged with.
        #expect(first.report.vaultSummaries == 2 && first.report.itemDetails == 26 && first.report.publicKeys == 1)
        #expect(first.report.inclusionProofs >= 29 && first.report.inclusionCached == 0)
        // sync (carrying the tree head, the checkpoints' proofs and both signer directories), one
        // batch for the directory keys and writer sets (was 1 request per entry: ≥ 29).
        #expect(first.requests == 2, "a first sync of 26 items in 2 vaults made \(first.requests) requests")

        // The same count with 24 more items in the small vault.
        for n in 2..<26 { _ = try await op.setSecret(vault: "small", item: "s\(n)", value: "small-\(n)") }
        let grown = try await firstSync()
        #expect(grown.secrets == 50 && grown.report.inclusionProofs == first.report.inclusionProofs + 24)
        #expect(grown.requests == first.requests, "\(grown.requests) requests for 50 items, \(first.requests) for 26")
        print("first-sync requests: \(first.requests) for 26 items (\(first.report.inclusionProofs) log entries), \(grown.requests) for 50 items (\(grown.report.inclusionProofs) log entries)")

        // A delta sync after one change costs what an unverified one does: the sync answer
        // carries the signed head, the consistency proof, the new checkpoints' proofs and the
        // touched vault's signer directory.
        let reader = try await Latch.create(apiKey: op.configuration.apiKey, privateKeyPEM: op.configuration.privateKeyPEM,
                                            baseURL: server.url, environment: ["LATCH_HOME": server.dir + "/delta"], sync: true)
        _ = try await op.setSecret(vault: "big", item: "b3", value: "big-3-changed")
        let before = reader.timings.counts["requests"] ?? 0
        try await reader.refresh()
        let delta = (reader.timings.counts["requests"] ?? 0) - before
        let report = try #require(reader.lastLogReport)
        #expect(try reader.get("B3") == "big-3-changed")
        #expect(report.consistencyProofVerified && report.inclusionProofs == 2, "\(report)")   // new summary and detail
        #expect(delta == 1, "a delta sync of one change made \(delta) requests (the sync alone expected)")

        // A client starting with a pinned log asks for itself on the first sync page: one request.
        let again = try await Latch.create(apiKey: op.configuration.apiKey, privateKeyPEM: op.configuration.privateKeyPEM,
                                           baseURL: server.url, environment: ["LATCH_HOME": server.dir + "/delta"], sync: true)
        #expect(again.timings.counts["requests"] == 1 && again.identity.principal.id == op.identity.principal.id)
        #expect(try again.get("B3") == "big-3-changed")

        // A server that ignores `include` (an older release) costs more requests, not correctness.
        let older = try await Latch.create(apiKey: op.configuration.apiKey, privateKeyPEM: op.configuration.privateKeyPEM,
                                           baseURL: server.url, environment: ["LATCH_HOME": server.dir + "/older"],
                                           transport: WithoutSyncExtras(), sync: true)
        #expect(try older.get("B3") == "big-3-changed" && older.env.count == 50)
        let olderRequests = older.timings.counts["requests"] ?? 0
        #expect(olderRequests == 5, "sync, me, 2 signer directories, 1 proof batch expected; made \(olderRequests)")
    }
}

extension SyncRequestCountTests {
    /// The bootstrap operator of a fresh server, synced.
    @Test("a client that stays up keeps its proven leaves bounded: past twice what a full pass kept, a sync proves what it holds again and keeps only that")
    func provenLeavesStayBounded() async throws {
        let server = try TestServer()
        defer { server.stop() }
        let op = try await Self.operatorClient(server)
        _ = try await op.createVault(name: "churn")
        for n in 0..<3 { _ = try await op.setSecret(vault: "churn", item: "s\(n)", value: "first-\(n)") }
        let reader = try await Latch.create(apiKey: op.configuration.apiKey, privateKeyPEM: op.configuration.privateKeyPEM,
                                            baseURL: server.url, environment: ["LATCH_HOME": server.dir + "/long-lived"], sync: true)
        reader.provenLeafSlack = 4
        let afterFirst = try #require(try reader.trustFile.load()).verified.count
        var most = afterFirst
        for round in 0..<16 {   // each update is a new detail and a new summary: two new leaves
            _ = try await op.setSecret(vault: "churn", item: "s0", value: "round-\(round)")
            try await reader.refresh()
            #expect(try reader.get("S0") == "round-\(round)")
            most = max(most, try #require(try reader.trustFile.load()).verified.count)
        }
        // Without the bound: afterFirst + 32.
        #expect(most <= 2 * afterFirst + 4 + 2, "proven leaves reached \(most), from \(afterFirst) after the first sync")
        #expect(try #require(try reader.trustFile.load()).verified.count <= 2 * afterFirst + 6)
    }

    @Test("a long-lived client's per-item memos drop the items of an archived vault")
    func memosFollowTheCache() async throws {
        let server = try TestServer()
        defer { server.stop() }
        let op = try await Self.operatorClient(server)
        _ = try await op.createVault(name: "keep")
        let gone = try await op.createVault(name: "gone")
        _ = try await op.setSecret(vault: "keep", item: "k", value: "k-1")
        for n in 0..<3 { _ = try await op.setSecret(vault: "gone", item: "g\(n)", value: "g-\(n)") }
        let reader = try await Latch.create(apiKey: op.configuration.apiKey, privateKeyPEM: op.configuration.privateKeyPEM,
                                            baseURL: server.url, environment: ["LATCH_HOME": server.dir + "/memo"], sync: true)
        #expect(reader.detailMemoCounts == (4, 4))
        _ = try await op.http.send(method: "DELETE", path: LatchRoutes.vault(gone.id))   // archived
        try await reader.refresh()
        #expect(reader.detailMemoCounts == (1, 1), "\(reader.detailMemoCounts)")
        #expect(try reader.get("K") == "k-1" && reader.env.count == 1)
    }

    static func operatorClient(_ server: TestServer) async throws -> Latch {
        let home = server.dir + "/home"
        _ = try await Latch.bootstrap(server: server.url, token: server.token, profile: "op", home: home,
                                      organisation: "o", tenant: "t", user: "operator")
        return try await Latch.create(profile: "op", environment: ["LATCH_HOME": home], sync: true)
    }

    @Test("a client whose key the server lacks registers it, then syncs afresh and proves the key's leaf")
    func registersAKeyThenSyncs() async throws {
        let server = try TestServer()
        defer { server.stop() }
        let op = try await Self.operatorClient(server)
        let made = try LatchJSON.decoder().decode(CreatePrincipalResponse.self, from: try await op.request(
            method: "POST", path: LatchRoutes.agents, body: try LatchJSON.encoder().encode(CreateAgentRequest(name: "keyless"))))
        let key = try PrincipalPrivateKey.generate(bits: 2048)
        let agent = try await Latch.create(apiKey: made.apiKey, privateKeyPEM: key.pkcs8PEM, baseURL: server.url,
                                           environment: ["LATCH_HOME": server.dir + "/agent"], sync: true)
        #expect(agent.identity.publicKey?.keyId == key.publicKey.keyId)
        let report = try #require(agent.lastLogReport)
        #expect(report.publicKeys == 1, "the agent's own key, registered after the first sync page, is proven in the log: \(report)")
    }
}

/// The default transport, with `include=` taken off every sync request: a server that does not
/// know it.
struct WithoutSyncExtras: HTTPTransport {
    let inner = DefaultHTTPTransport()
    func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        var request = request
        if var parts = URLComponents(url: request.url, resolvingAgainstBaseURL: false), let items = parts.queryItems {
            parts.queryItems = items.filter { $0.name != "include" }
            request.url = try #require(parts.url)
        }
        return try await inner.send(request)
    }
}
