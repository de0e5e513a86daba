import Foundation
import Hummingbird
import HummingbirdTesting
import LatchCrypto
import LatchDomain
import LatchLog
import LatchServer
import LatchStoreSQLite
import LatchWire
import Logging
import Testing

/// A fixed clock the tests move by hand.
final class TestClock: LatchDomain.Clock, @unchecked Sendable {
    private let lock = NSLock()
    private var t = Date(timeIntervalSince1970: 1_800_000_000)
    func now() -> Date { lock.withLock { t } }
    func advance(_ s: TimeInterval) { lock.withLock { t += s } }
}

/// Keys are slow to make; share a few per test process.
enum Keys {
    static let pool: [PrincipalPrivateKey] = (0..<8).map { _ in
        do { return try PrincipalPrivateKey.generate(bits: 2048) } catch { fatalError("RSA key generation failed: \(error)") }
    }
}

func signed<S: SignedStatement>(_ s: S, _ key: PrincipalPrivateKey) throws -> String {
    String(decoding: try JSONEncoder().encode(try SignedEnvelope.sign(s, with: key)), as: UTF8.self)
}

struct HTTPResult {
    var status: HTTPResponse.Status
    var headers: HTTPFields
    var data: Data
    func decode<T: Decodable>(_ t: T.Type) throws -> T { try LatchJSON.decoder().decode(t, from: data) }
    var code: String? { (try? LatchJSON.decoder().decode(WireError.self, from: data))?.error.code }
}

/// A principal as the tests drive it: its private key and API key.
struct Party: Sendable {
    var id: String
    var apiKey: String
    var key: PrincipalPrivateKey
}

/// The client-side state of one vault: its DEK and the last signed checkpoints.
struct VaultModel: Sendable {
    var id: String
    var name: String
    var dek: DataEncryptionKey
    var summary: VaultSummaryCheckpoint
    var details: [String: ItemDetailCheckpoint] = [:]
    var envelopes: [String: String] = [:]   // fieldId -> envelope string

    func nextSummary(_ change: (inout [VaultSummaryCheckpoint.Item]) -> Void) -> VaultSummaryCheckpoint {
        var items = summary.items
        change(&items)
        return VaultSummaryCheckpoint(vaultId: id, version: summary.version + 1, name: summary.name,
                                      dataClassification: summary.dataClassification, currentDekVersion: summary.currentDekVersion, items: items)
    }
}

/// Drives the router through HummingbirdTesting with real keys and envelopes.
struct Harness: Sendable {
    let client: any TestClientProtocol
    let store: any LatchStore

    func call(_ method: HTTPRequest.Method, _ path: String, key: String? = nil, json: Data? = nil,
              headers extra: HTTPFields = [:]) async throws -> HTTPResult {
        var h = extra
        if let key { h[.init("X-API-Key")!] = key }
        if json != nil { h[.contentType] = "application/json" }
        return try await client.execute(uri: path, method: method, headers: h, body: json.map { ByteBuffer(bytes: $0) }) { r in
            HTTPResult(status: r.status, headers: r.headers, data: Data(r.body.readableBytesView))
        }
    }

    func call<B: Encodable>(_ method: HTTPRequest.Method, _ path: String, key: String? = nil, body: B) async throws -> HTTPResult {
        try await call(method, path, key: key, json: try LatchJSON.encoder().encode(body))
    }

    /// Bootstraps with a fresh token from the store; returns the admin.
    func bootstrap(key: PrincipalPrivateKey = Keys.pool[0]) async throws -> Party {
        let token = try #require(try await LatchService(store: store).prepareBootstrap())
        let r = try await call(.post, LatchRoutes.bootstrap, body: BootstrapRequest(
            token: token, publicKey: key.publicKey.pem, organisationName: "Acme", tenantName: "prod", userName: "alice"))
        #expect(r.status == .created, "bootstrap: \(String(decoding: r.data, as: UTF8.self))")
        let b = try r.decode(BootstrapResponse.self)
        return Party(id: b.userId, apiKey: b.apiKey, key: key)
    }

    func createVault(_ p: Party, name: String = "payments", id: String = UUID().uuidString.lowercased(),
                     dek: DataEncryptionKey = .generate(version: 1)) async throws -> (VaultModel, HTTPResult) {
        let summary = VaultSummaryCheckpoint(vaultId: id, version: 1, name: name, dataClassification: "CONFIDENTIAL", currentDekVersion: 1, items: [])
        let wrapped = try p.key.publicKey.wrap(dek)
        let st = WrappedKeyStatement(vaultId: id, dekVersion: 1, recipientKeyId: p.key.publicKey.keyId, wrappedKey: wrapped)
        let r = try await call(.post, LatchRoutes.vaults, key: p.apiKey, body: CreateVaultRequest(
            id: id, summaryCheckpoint: try signed(summary, p.key),
            wrappedKey: WrappedKeyInput(recipientKeyId: p.key.publicKey.keyId, dekVersion: 1,
                                        wrappedKey: wrapped.base64EncodedString(), statement: try signed(st, p.key))))
        return (VaultModel(id: id, name: name, dek: dek, summary: summary), r)
    }

    /// Creates or updates an item with the given (name, plaintext, isEnv) fields; fields are
    /// matched by name to keep their ids across updates. Updates the model on success.
    @discardableResult
    func putItem(_ p: Party, _ v: inout VaultModel, itemId: String? = nil, name: String, type: String = "API_KEY",
                 fields: [(String, String, Bool)], signer: PrincipalPrivateKey? = nil, summaryVersionDelta: Int = 1,
                 detailVersionDelta: Int = 1) async throws -> HTTPResult {
        let signer = signer ?? p.key
        let id = itemId ?? UUID().uuidString.lowercased()
        let previous = v.details[id]
        var detailFields: [ItemDetailCheckpoint.Field] = []
        var values: [FieldValueInput] = []
        var newEnvelopes: [String: String] = [:]
        for (order, (fname, plain, env)) in fields.enumerated() {
            let fid = previous?.fields.first { $0.name == fname }?.id ?? UUID().uuidString.lowercased()
            let e = try FieldEnvelope.seal(Data(plain.utf8), key: v.dek, context: EnvelopeContext(vaultId: v.id, itemId: id, fieldId: fid, dekVersion: v.dek.version))
            detailFields.append(.init(id: fid, name: fname, type: "SECRET", order: order, isEnvironmentVariable: env, envelopeHash: e.sha256Hex))
            values.append(FieldValueInput(id: fid, value: e.string))
            newEnvelopes[fid] = e.string
        }
        let detail = ItemDetailCheckpoint(vaultItemId: id, vaultId: v.id, version: (previous?.version ?? 0) + detailVersionDelta, name: name,
                                          type: type, websites: [], groupId: nil, fields: detailFields)
        var summary = v.nextSummary { items in
            items.removeAll { $0.id == id }
            items.append(.init(id: id, name: name, type: type, websites: [], groupId: nil, detailHash: detail.hash))
        }
        summary.version = v.summary.version + summaryVersionDelta
        let body = CreateItemRequest(detailCheckpoint: try signed(detail, signer), summaryCheckpoint: try signed(summary, signer), fields: values)
        let r = previous == nil && itemId == nil
            ? try await call(.post, LatchRoutes.vaultItems(v.id), key: p.apiKey, body: body)
            : try await call(.patch, LatchRoutes.updateItem(id), key: p.apiKey, body: body)
        if r.status == .created || r.status == .ok {
            v.summary = summary
            v.details[id] = detail
            v.envelopes.merge(newEnvelopes) { _, n in n }
        }
        return r
    }

    func createAgent(_ admin: Party, name: String, key: PrincipalPrivateKey, permissions: [String]? = nil) async throws -> Party {
        let r = try await call(.post, LatchRoutes.agents, key: admin.apiKey, body: CreateAgentRequest(name: name, permissions: permissions))
        #expect(r.status == .created)
        let a = try r.decode(CreatePrincipalResponse.self)
        let k = try await call(.post, LatchRoutes.publicKey, key: a.apiKey, body: RegisterPublicKeyRequest(publicKey: key.publicKey.pem))
        #expect(k.status == .created)
        return Party(id: a.principal.id, apiKey: a.apiKey, key: key)
    }

    func grant(_ admin: Party, vault: String, _ entries: [PermissionEntry]) async throws -> HTTPResult {
        try await call(.post, LatchRoutes.setPermissions("VAULT", vault), key: admin.apiKey, body: SetPermissionsRequest(permissions: entries))
    }

    func share(_ from: Party, _ v: VaultModel, to: Party) async throws -> HTTPResult {
        let wrapped = try to.key.publicKey.wrap(v.dek)
        let st = WrappedKeyStatement(vaultId: v.id, dekVersion: v.dek.version, recipientKeyId: to.key.publicKey.keyId, wrappedKey: wrapped)
        return try await call(.post, LatchRoutes.wrappedKeys(v.id), key: from.apiKey, body: ShareRequest(wrappedKeys: [
            WrappedKeyInput(principalId: to.id, recipientKeyId: to.key.publicKey.keyId, dekVersion: v.dek.version,
                            wrappedKey: wrapped.base64EncodedString(), statement: try signed(st, from.key)),
        ]))
    }
}

func makeApp(store: any LatchStore, clock: TestClock = TestClock(), config: ServerConfiguration = ServerConfiguration(rateLimitPerMinute: 0))
    -> some ApplicationProtocol
{
    var logger = Logger(label: "test")
    logger.logLevel = .critical
    return buildApplication(configuration: config, store: store, clock: clock, logger: logger, logSigner: TestLog.signer)
}

/// The transparency log key every test server signs tree heads with.
enum TestLog {
    static let signer: NoteSigner = {
        do { return try NoteSigner.generate(name: "latchkey.log/test") } catch { fatalError("Ed25519 key generation failed: \(error)") }
    }()
}

func withHarness<T: Sendable>(store: (any LatchStore)? = nil, clock: TestClock = TestClock(),
                              config: ServerConfiguration = ServerConfiguration(rateLimitPerMinute: 0),
                              _ body: @Sendable (Harness) async throws -> T) async throws -> T {
    let s = store ?? MemoryStore()
    return try await makeApp(store: s, clock: clock, config: config).test(.router) { client in
        try await body(Harness(client: client, store: s))
    }
}

/// Every temporary directory of these tests lives under one root, removed when the test
/// process exits.
let testRoot: String = {
    let root = NSTemporaryDirectory() + "latch-server-tests-\(getpid())"
    try? FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    atexit { removeTestRoot() }
    return root
}()
private func removeTestRoot() { try? FileManager.default.removeItem(atPath: testRoot) }

func tempDir() throws -> String {
    let d = testRoot + "/latch-test-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
    return d
}
