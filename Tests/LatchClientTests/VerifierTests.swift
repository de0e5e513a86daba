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
    var writers: [WritersLinkMaterial]

    init() throws {
        let op = sharedTestKey
        let v = try VaultWriter.newVault(id: "v-1", name: "prod", creator: op, creatorId: "operator")
        dek = v.dek
        summary = v.summary
        writers = []
        agentWrap = try VaultWriter.wrap(v.dek, vaultId: "v-1", to: agentTestKey.publicKey, signer: op)
        directory = [DirectoryKey(principalId: "operator", publicKey: op.publicKey, accessLevel: "ADMIN"),
                     DirectoryKey(principalId: "agent", publicKey: agentTestKey.publicKey, accessLevel: "READ")]
        try addWriters(v.writers, signerId: "operator", key: op.publicKey)
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

    mutating func addWriters(_ envelope: SignedEnvelope<VaultWritersStatement>, signerId: String, key: PrincipalPublicKey) throws {
        writers.append(WritersLinkMaterial(envelope: envelope, text: String(decoding: try envelope.canonicalJSON(), as: UTF8.self),
                                           signerId: signerId, signerKey: key, signerKeyLogIndex: nil))
    }

    /// The operator signs the next writer set with `principalId` at `level`.
    mutating func setWriter(_ principalId: String, _ level: VaultWritersStatement.Level?) throws {
        let next = writers.last!.envelope.checkpoint.setting(principalId, to: level)
        try addWriters(try .sign(next, with: sharedTestKey), signerId: "operator", key: sharedTestKey.publicKey)
    }

    var material: VaultMaterial {
        VaultMaterial(vaultId: vaultId, summary: summary,
                      wrappedKeys: [.init(dekVersion: agentWrap.dekVersion, wrappedKey: agentWrap.wrappedKey, statement: agentWrap.statement)],
                      items: details.keys.sorted().map { VaultMaterial.Item(id: $0, detail: details[$0]!, envelopes: envelopes[$0]!) },
                      directory: directory, writers: writers)
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

    /// A delta sync hands in the vault as it verified before; only byte-identical input may
    /// skip work, and every check still refuses what it refused without `earlier`.
    @Test func earlierChecksAreReusedOnlyForIdenticalInput() throws {
        var f = try Fixture()
        var seen = SeenState()
        let earlier = try verify(f.material, seen: &seen)
        let before = f.material
        try f.write("i-openai", "openai", [("f-key", "api key", "sk-test-456")])
        var next = seen
        let v = try VaultVerifier.verify(f.material, privateKey: agentTestKey, seen: &next, earlier: earlier)
        #expect(v.items.flatMap { $0.fields.map(\.value) } == ["admin", "s3cr3t-pw", "sk-test-456"])
        #expect(next.vaults["v-1"]?.items == ["i-db": 1, "i-openai": 2])

        func refusedWithEarlier(_ m: VaultMaterial, _ text: String) {
            var s = seen
            let e = #expect(throws: LatchError.self) { try VaultVerifier.verify(m, privateKey: agentTestKey, seen: &s, earlier: earlier) }
            #expect(e?.message.contains(text) == true, "expected \"\(text)\" in: \(e?.message ?? "no error")")
        }
        // the same detail with its values swapped
        var swapped = f.material
        let i = swapped.items.firstIndex { $0.id == "i-db" }!
        swapped.items[i].envelopes = ["f-user": swapped.items[i].envelopes["f-pass"]!, "f-pass": swapped.items[i].envelopes["f-user"]!]
        refusedWithEarlier(swapped, "does not match the envelope hash")
        // the same checkpoint under another signature: checked again, not taken from `earlier`
        var forged = f.material
        let d = forged.items[i].detail
        forged.items[i].detail = SignedEnvelope(checkpoint: d.checkpoint, signerKeyId: d.signerKeyId,
                                                signature: try outsiderTestKey.sign(Data("x".utf8)).base64EncodedString())
        refusedWithEarlier(forged, "detail checkpoint signature is invalid")
        // a newer summary, signed by a writer, that lists another hash for an unchanged detail:
        // the hash remembered from the earlier check is still compared with the new summary
        var relisted = f.material
        var sum = relisted.summary.checkpoint
        sum.version += 1
        let j = sum.items.firstIndex { $0.id == "i-db" }!
        sum.items[j].detailHash = String(repeating: "0", count: 64)
        relisted.summary = try .sign(sum, with: sharedTestKey)
        refusedWithEarlier(relisted, "does not match the hash in the signed summary")
        // the vault as it was before the write, replayed to a client that verified the write
        var s2 = next
        let e = #expect(throws: LatchError.self) { try VaultVerifier.verify(before, privateKey: agentTestKey, seen: &s2, earlier: v) }
        #expect(e?.message.contains("rollback") == true, "\(e?.message ?? "no error")")
    }

    /// The unwrap memo's signature checks spare the RSA operation of a check that passed before,
    /// and nothing else: any change to the signed bytes, the signature or the key id is a new
    /// check, and who may sign is decided afresh.
    @Test func rememberedSignatureChecksSpareOnlyTheRSAOperation() throws {
        final class Memo: VerifiedSignatures, @unchecked Sendable {
            var known: [String: Int] = [:]   // digest -> times looked up with success
            var recorded: [String] = []
            func check(_ digest: String) -> Bool {
                guard known[digest] != nil else { return false }
                known[digest]! += 1
                return true
            }
            func record(_ digest: String) { known[digest] = 0; recorded.append(digest) }
        }
        var f = try Fixture()
        let memo = Memo()
        func verify(_ m: VaultMaterial, _ memo: Memo) throws -> VerifiedVault {
            var seen = SeenState()
            return try VaultVerifier.verify(m, recipientKeyId: agentTestKey.publicKey.keyId, unwrap: agentTestKey.unwrap, seen: &seen, signatures: memo)
        }
        func refused(_ m: VaultMaterial, _ text: String) {
            let e = #expect(throws: LatchError.self) { _ = try verify(m, memo) }
            #expect(e?.message.contains(text) == true, "expected \"\(text)\" in: \(e?.message ?? "no error")")
        }
        // First pass: every check (writer set, summary, wrap, two details) runs and is recorded.
        let first = try verify(f.material, memo)
        #expect(memo.recorded.count == 5)
        #expect(Set(memo.recorded) == Set([try f.writers[0].envelope.signatureDigest(), try f.summary.signatureDigest(),
                                           try f.agentWrap.statement.signatureDigest(), try f.details["i-db"]!.signatureDigest(),
                                           try f.details["i-openai"]!.signatureDigest()]))
        // Second pass: all five answered from the memo, the same values out.
        memo.recorded = []
        let second = try verify(f.material, memo)
        #expect(memo.recorded.isEmpty && memo.known.values.allSatisfy { $0 == 1 })
        #expect(second.items.flatMap { $0.fields.map(\.value) } == first.items.flatMap { $0.fields.map(\.value) })
        // The same detail under another signature, or an altered detail under the remembered
        // signature, is a check the memo has not seen: refused by RSA as without a memo.
        let i = f.material.items.firstIndex { $0.id == "i-db" }!
        let d = f.details["i-db"]!
        var forged = f.material
        forged.items[i].detail = SignedEnvelope(checkpoint: d.checkpoint, signerKeyId: d.signerKeyId,
                                                signature: try outsiderTestKey.sign(Data("x".utf8)).base64EncodedString())
        refused(forged, "detail checkpoint signature is invalid")
        var altered = f.material
        var c = d.checkpoint
        c.websites = ["https://evil.example"]
        altered.items[i].detail = SignedEnvelope(checkpoint: c, signerKeyId: d.signerKeyId, signature: d.signature)
        var sum = f.summary.checkpoint
        sum.items[sum.items.firstIndex { $0.id == "i-db" }!].detailHash = c.hash
        altered.summary = try .sign(sum, with: sharedTestKey)   // so that only the detail's signature is wrong
        refused(altered, "detail checkpoint signature is invalid")
        // A remembered check does not make its signer a writer: the reader's own write is
        // refused even when the memo says its signature verified.
        try f.write("i-openai", "openai", [("f-key", "api key", "sk-by-reader")], signer: agentTestKey)
        memo.record(try f.details["i-openai"]!.signatureDigest())
        refused(f.material, "does not list as a writer")
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
        expectRefused(g.material, containing: "does not list as a writer (WRITE or ADMIN); the server's records say READ")
        // The server raising the reader's level in its own records changes nothing: only the
        // signed writer set counts.
        g.directory[1].accessLevel = "WRITE"
        expectRefused(g.material, containing: "does not list as a writer")
    }

    @Test func writerSetDecidesWhoMaySign() throws {
        var f = try Fixture()
        try f.setWriter("agent", .write)
        try f.write("i-openai", "openai", [("f-key", "api key", "sk-by-writer")], signer: agentTestKey)
        var seen = SeenState()
        let v = try verify(f.material, seen: &seen)
        #expect(v.writers.version == 2 && v.writers.level(of: "agent") == .write)
        #expect(seen.writers?["v-1"]?.version == 2)
        #expect(v.items.first { $0.name == "openai" }?.fields.first?.value == "sk-by-writer")
        // Demoted later: its next write is refused.
        try f.setWriter("agent", nil)
        try f.write("i-openai", "openai", [("f-key", "api key", "sk-after-demotion")], signer: agentTestKey)
        expectRefused(f.material, containing: "writer set v3 does not list as a writer", seen: seen)
    }

    @Test func writerSetChainIsChecked() throws {
        // No writer set at all.
        var none = try Fixture()
        none.writers = []
        expectRefused(none.material, containing: "has no signed writer set")
        // A reader that signs itself in as a writer.
        var selfMade = try Fixture()
        let forged = selfMade.writers[0].envelope.checkpoint.setting("agent", to: .admin)
        try selfMade.addWriters(try .sign(forged, with: agentTestKey), signerId: "agent", key: agentTestKey.publicKey)
        expectRefused(selfMade.material, containing: "which v1 does not list as ADMIN")
        // ... or claims the operator signed it.
        var lied = try Fixture()
        try lied.addWriters(try .sign(forged, with: agentTestKey), signerId: "operator", key: sharedTestKey.publicKey)
        expectRefused(lied.material, containing: "not the key")
        // A link whose hash chain is broken.
        var broken = try Fixture()
        var skip = broken.writers[0].envelope.checkpoint.setting("agent", to: .write)
        skip.previousHash = String(repeating: "0", count: 64)
        try broken.addWriters(try .sign(skip, with: sharedTestKey), signerId: "operator", key: sharedTestKey.publicKey)
        expectRefused(broken.material, containing: "does not follow v1")
    }

    @Test func writerSetRollbackAndForkAreRefused() throws {
        var f = try Fixture()
        let v1 = f.material
        try f.setWriter("agent", .write)
        var seen = SeenState()
        _ = try verify(f.material, seen: &seen)
        expectRefused(v1, containing: "writer set version 1, older than version 2", seen: seen)
        // Another v2 (same version, other content) is a fork.
        var other = try Fixture()
        other.writers = [f.writers[0]]
        try other.setWriter("someone-else", .write)
        expectRefused(other.material, containing: "(fork)", seen: seen)
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
        let seen: LockedBox<[HTTPRequest]>
        func send(_ request: HTTPRequest) async throws -> HTTPResponse {
            seen.mutate { $0.append(request) }
            let next = answers.mutate { $0.removeFirst() }
            return HTTPResponse(status: next.0, headers: next.1, body: Data(next.2.utf8))
        }
    }

    @Test func sendsApiKeyAndDecodesErrors() async throws {
        let answers = LockedBox<[(Int, [String: String], String)]>([
            (404, [:], #"{"error":{"code":"vault_not_found","message":"no vault v-9"}}"#),
            (401, [:], #"{"error":{"code":"unauthorized","message":"bad key"}}"#),
            (403, [:], "not json"),
            (503, [:], ""),
        ])
        let seen = LockedBox<[HTTPRequest]>([])
        let client = LatchHTTPClient(baseURL: URL(string: "http://x:1")!, apiKey: "ak.sec", transport: Scripted(answers: answers, seen: seen))
        let e1 = await #expect(throws: LatchError.self) { try await client.send(method: "GET", path: "/api/v1/machine/vault/v-9") }
        #expect(e1?.kind == .notFound)
        #expect(e1?.serverCode == "vault_not_found")
        #expect(e1?.message.contains("no vault v-9") == true)
        #expect(seen.value.first?.headers["X-API-Key"] == "ak.sec")
        #expect(seen.value.first?.url.absoluteString == "http://x:1/api/v1/machine/vault/v-9")
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
