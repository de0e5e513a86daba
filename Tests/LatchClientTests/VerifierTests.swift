import Foundation
import Testing
@testable import LatchClient
import LatchCrypto
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

let agentTestKey: PrincipalPrivateKey = {
    do { return try PrincipalPrivateKey.generate(bits: 2048) } catch { fatalError("key generation failed: \(error)") }
}()
let outsiderTestKey: PrincipalPrivateKey = {
    do { return try PrincipalPrivateKey.generate(bits: 2048) } catch { fatalError("key generation failed: \(error)") }
}()

/// A vault written by `sharedTestKey` (the operator) and shared to `agentTestKey`.
struct Fixture {
    var vaultId = "v-1"
    var dek: DataEncryptionKey
    var summary: SignedEnvelope<VaultSummaryCheckpoint>
    var details: [String: SignedEnvelope<ItemDetailCheckpoint>] = [:]
    var envelopes: [String: [String: String]] = [:]
    var agentWrap: VaultWriter.Wrap
    var directory: [DirectoryKey]

    init() throws {
        let op = sharedTestKey
        let v = try VaultWriter.newVault(id: "v-1", name: "prod", creator: op)
        dek = v.dek
        summary = v.summary
        agentWrap = try VaultWriter.wrap(v.dek, vaultId: "v-1", to: agentTestKey.publicKey, signer: op)
        directory = [DirectoryKey(principalId: "operator", publicKey: op.publicKey, accessLevel: "ADMIN"),
                     DirectoryKey(principalId: "agent", publicKey: agentTestKey.publicKey, accessLevel: "READ")]
        try write("i-db", "database", [("f-user", "username", "admin"), ("f-pass", "password", "s3cr3t-pw")])
        try write("i-openai", "openai", [("f-key", "api key", "sk-test-123")])
    }

    mutating func write(_ itemId: String, _ name: String, _ fields: [(String, String, String)], signer: PrincipalPrivateKey = sharedTestKey) throws {
        let w = try VaultWriter.writeItem(
            summary: summary.checkpoint, previousDetail: details[itemId]?.checkpoint, itemId: itemId, name: name, type: "API_KEY",
            fields: fields.enumerated().map { VaultWriter.FieldInput(id: $1.0, name: $1.1, order: $0, isEnvironmentVariable: false, value: $1.2) },
            dek: dek, signer: signer)
        summary = w.summary
        details[itemId] = w.detail
        envelopes[itemId] = w.envelopes
    }

    var material: VaultMaterial {
        VaultMaterial(vaultId: vaultId, summary: summary,
                      wrappedKeys: [.init(dekVersion: agentWrap.dekVersion, wrappedKey: agentWrap.wrappedKey, statement: agentWrap.statement)],
                      items: details.keys.sorted().map { VaultMaterial.Item(id: $0, detail: details[$0]!, envelopes: envelopes[$0]!) },
                      directory: directory)
    }
}

@Suite struct VerifierTests {
    func verify(_ m: VaultMaterial, seen: inout SeenState) throws -> VerifiedVault {
        try VaultVerifier.verify(m, privateKey: agentTestKey, seen: &seen)
    }

    func expectRefused(_ m: VaultMaterial, containing text: String, seen: SeenState = SeenState()) {
        var s = seen
        let e = #expect(throws: LatchError.self) { try VaultVerifier.verify(m, privateKey: agentTestKey, seen: &s) }
        #expect(e?.kind == .verification, "\(String(describing: e))")
        #expect(e?.message.contains(text) == true, "expected \"\(text)\" in: \(e?.message ?? "no error")")
        #expect(s == seen, "seen state must not move on failure")
    }

    @Test func happyPathDecryptsEveryField() throws {
        let f = try Fixture()
        var seen = SeenState()
        let v = try verify(f.material, seen: &seen)
        #expect(v.name == "prod")
        #expect(v.summaryVersion == 3)
        let values = v.items.flatMap { $0.fields.map { "\($0.name)=\($0.value)" } }
        #expect(values == ["username=admin", "password=s3cr3t-pw", "api key=sk-test-123"])
        #expect(seen.vaults["v-1"]?.summaryVersion == 3)
        #expect(seen.vaults["v-1"]?.items == ["i-db": 1, "i-openai": 1])
    }

    @Test func swappedFieldValuesAreRefused() throws {
        let f = try Fixture()
        var m = f.material
        let i = m.items.firstIndex { $0.id == "i-db" }!
        let user = m.items[i].envelopes["f-user"], pass = m.items[i].envelopes["f-pass"]
        m.items[i].envelopes["f-user"] = pass
        m.items[i].envelopes["f-pass"] = user
        expectRefused(m, containing: "does not match the envelope hash")
    }

    @Test func replayedOldValueIsRefused() throws {
        var f = try Fixture()
        let old = f.envelopes["i-openai"]!
        try f.write("i-openai", "openai", [("f-key", "api key", "sk-test-456")])
        var m = f.material
        let i = m.items.firstIndex { $0.id == "i-openai" }!
        m.items[i].envelopes = old
        expectRefused(m, containing: "does not match the envelope hash")
    }

    @Test func droppedAndExtraItemsAreRefused() throws {
        let f = try Fixture()
        var dropped = f.material
        dropped.items.removeAll { $0.id == "i-openai" }
        expectRefused(dropped, containing: "did not serve it")
        var extra = f.material
        extra.items.append(VaultMaterial.Item(id: "i-evil", detail: f.details["i-db"]!, envelopes: [:]))
        expectRefused(extra, containing: "does not list")
    }

    @Test func renamedItemIsRefused() throws {
        var f = try Fixture()
        // the server swaps the detail checkpoints of two items
        let db = f.details["i-db"]!
        f.details["i-db"] = f.details["i-openai"]
        f.details["i-openai"] = db
        expectRefused(f.material, containing: "detail checkpoint is for item")
    }

    @Test func rollbackIsRefused() throws {
        var f = try Fixture()
        let oldMaterial = f.material
        try f.write("i-openai", "openai", [("f-key", "api key", "sk-test-789")])
        var seen = SeenState()
        _ = try verify(f.material, seen: &seen)
        expectRefused(oldMaterial, containing: "rollback", seen: seen)
    }

    @Test func foreignAndReadOnlySignersAreRefused() throws {
        var f = try Fixture()
        f.summary = try .sign(f.summary.checkpoint, with: outsiderTestKey)
        expectRefused(f.material, containing: "not a member key")

        var g = try Fixture()
        try g.write("i-openai", "openai", [("f-key", "api key", "sk-by-reader")], signer: agentTestKey)
        expectRefused(g.material, containing: "READ-only member")
    }

    @Test func serverMadeWrapIsRefused() throws {
        var f = try Fixture()
        // the server wraps a DEK of its own choosing and signs with a key of its own
        let fake = DataEncryptionKey.generate(version: 1)
        f.agentWrap = try VaultWriter.wrap(fake, vaultId: "v-1", to: agentTestKey.publicKey, signer: outsiderTestKey)
        expectRefused(f.material, containing: "wrapped key v1")
    }

    @Test func tamperedWrapIsRefused() throws {
        var f = try Fixture()
        var bytes = [UInt8](f.agentWrap.wrappedKey)
        bytes[10] ^= 1
        f.agentWrap.wrappedKey = Data(bytes)
        expectRefused(f.material, containing: "does not match its signed statement")
    }

    @Test func missingWrapIsForbidden() throws {
        let f = try Fixture()
        var m = f.material
        m.wrappedKeys = []
        var seen = SeenState()
        let e = #expect(throws: LatchError.self) { try verify(m, seen: &seen) }
        #expect(e?.kind == .forbidden)
    }
}

@Suite struct HTTPClientTests {
    struct Scripted: HTTPTransport {
        let answers: LockedBox<[(Int, [String: String], String)]>
        let seen: LockedBox<[URLRequest]>
        func send(_ request: URLRequest) async throws -> (Data, HTTPURLResponse) {
            seen.mutate { $0.append(request) }
            let next = answers.mutate { $0.removeFirst() }
            return (Data(next.2.utf8), HTTPURLResponse(url: request.url!, statusCode: next.0, httpVersion: "HTTP/1.1", headerFields: next.1)!)
        }
    }

    @Test func sendsApiKeyAndDecodesErrors() async throws {
        let answers = LockedBox<[(Int, [String: String], String)]>([
            (404, [:], #"{"error":{"code":"vault_not_found","message":"no vault v-9"}}"#),
            (401, [:], #"{"error":{"code":"unauthorized","message":"bad key"}}"#),
            (403, [:], "not json"),
            (503, [:], ""),
        ])
        let seen = LockedBox<[URLRequest]>([])
        let client = LatchHTTPClient(baseURL: URL(string: "http://x:1")!, apiKey: "ak.sec", transport: Scripted(answers: answers, seen: seen))
        let e1 = await #expect(throws: LatchError.self) { try await client.send(method: "GET", path: "/api/v1/machine/vault/v-9") }
        #expect(e1?.kind == .notFound)
        #expect(e1?.serverCode == "vault_not_found")
        #expect(e1?.message.contains("no vault v-9") == true)
        #expect(seen.value.first?.value(forHTTPHeaderField: "X-API-Key") == "ak.sec")
        #expect(seen.value.first?.url?.absoluteString == "http://x:1/api/v1/machine/vault/v-9")
        let e2 = await #expect(throws: LatchError.self) { try await client.send(method: "GET", path: "/a") }
        #expect(e2?.exitCode == .authFailed)
        let e3 = await #expect(throws: LatchError.self) { try await client.send(method: "GET", path: "/a") }
        #expect(e3?.exitCode == .forbidden)
        let e4 = await #expect(throws: LatchError.self) { try await client.send(method: "GET", path: "/a") }
        #expect(e4?.exitCode == .serverUnavailable)
    }

    @Test func retriesAfter429() async throws {
        let answers = LockedBox<[(Int, [String: String], String)]>([
            (429, ["Retry-After": "2"], #"{"error":{"code":"rate_limit_exceeded","message":"slow down"}}"#),
            (200, [:], #"{"ok":true}"#),
            (429, ["Retry-After": "1"], ""), (429, ["Retry-After": "1"], ""), (429, ["Retry-After": "1"], ""), (429, ["Retry-After": "7"], ""),
        ])
        let waits = LockedBox<[Double]>([])
        var client = LatchHTTPClient(baseURL: URL(string: "http://x:1")!, apiKey: "a.b",
                                     transport: Scripted(answers: answers, seen: LockedBox([])))
        client.sleep = { s in waits.mutate { $0.append(s) } }
        let data = try await client.send(method: "GET", path: "/x")
        #expect(String(decoding: data, as: UTF8.self) == #"{"ok":true}"#)
        #expect(waits.value == [2])
        let e = await #expect(throws: LatchError.self) { try await client.send(method: "GET", path: "/x") }
        #expect(e?.exitCode == .rateLimited)
        #expect(e?.hint?.contains("7") == true)
        #expect(waits.value == [2, 1, 1, 1])
    }
}

final class LockedBox<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var _value: T
    init(_ v: T) { _value = v }
    var value: T { lock.lock(); defer { lock.unlock() }; return _value }
    @discardableResult func mutate<R>(_ f: (inout T) -> R) -> R { lock.lock(); defer { lock.unlock() }; return f(&_value) }
}
