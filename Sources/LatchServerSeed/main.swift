// latch-server-seed: prepares a running `latch serve` for the load benchmark. Bootstraps it with
// the given token, creates one vault with one item and one field (real keys, real signed
// checkpoints, a real envelope), and prints shell assignments: API_KEY, VAULT_ID, FIELD_ID.
// Usage: latch-server-seed BASE_URL BOOTSTRAP_TOKEN
//        latch-server-seed delta-sync LATCH_BIN [...]   (the delta-sync goal: DeltaSync.swift)
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import LatchCrypto
import LatchWire

func fail(_ m: String) -> Never {
    FileHandle.standardError.write(Data("latch-server-seed: \(m)\n".utf8))
    exit(1)
}

func call<B: Encodable, R: Decodable>(_ base: String, _ method: String, _ path: String, key: String?, _ body: B, _ r: R.Type) async throws -> R {
    guard let url = URL(string: base + path) else { fail("bad URL \(base + path)") }
    var req = URLRequest(url: url)
    req.httpMethod = method
    req.setValue("application/json", forHTTPHeaderField: "Content-Type")
    if let key { req.setValue(key, forHTTPHeaderField: "X-API-Key") }
    req.httpBody = try LatchJSON.encoder().encode(body)
    let (data, resp) = try await URLSession.shared.data(for: req)
    guard let http = resp as? HTTPURLResponse, (200..<300).contains(http.statusCode) else {
        fail("\(method) \(path) failed: \(String(decoding: data, as: UTF8.self))")
    }
    return try LatchJSON.decoder().decode(r, from: data)
}

func signed<S: SignedStatement>(_ s: S, _ k: PrincipalPrivateKey) throws -> String {
    String(decoding: try JSONEncoder().encode(try SignedEnvelope.sign(s, with: k)), as: UTF8.self)
}

if CommandLine.arguments.dropFirst().first == "delta-sync" {   // see DeltaSync.swift
    await DeltaSyncBench.main(Array(CommandLine.arguments.dropFirst(2)))
    exit(0)
}
let args = CommandLine.arguments
guard args.count == 3 else { fail("usage: latch-server-seed BASE_URL BOOTSTRAP_TOKEN") }
let base = args[1], token = args[2]
let key = try PrincipalPrivateKey.generate(bits: 2048)
let boot = try await call(base, "POST", LatchRoutes.bootstrap, key: nil,
                          BootstrapRequest(token: token, publicKey: key.publicKey.pem, organisationName: "bench", tenantName: "bench", userName: "bench"),
                          BootstrapResponse.self)
let vaultId = UUID().uuidString.lowercased(), itemId = UUID().uuidString.lowercased(), fieldId = UUID().uuidString.lowercased()
let dek = DataEncryptionKey.generate(version: 1)
let s1 = VaultSummaryCheckpoint(vaultId: vaultId, version: 1, name: "bench", dataClassification: "INTERNAL", currentDekVersion: 1, items: [])
let wrapped = try key.publicKey.wrap(dek)
let st = WrappedKeyStatement(vaultId: vaultId, dekVersion: 1, recipientKeyId: key.publicKey.keyId, wrappedKey: wrapped)
_ = try await call(base, "POST", LatchRoutes.vaults, key: boot.apiKey, CreateVaultRequest(
    id: vaultId, summaryCheckpoint: try signed(s1, key),
    wrappedKey: WrappedKeyInput(recipientKeyId: key.publicKey.keyId, dekVersion: 1, wrappedKey: wrapped.base64EncodedString(), statement: try signed(st, key))),
    VaultResponse.self)
let env = try FieldEnvelope.seal(Data("bench-secret-value".utf8), key: dek, context: EnvelopeContext(vaultId: vaultId, itemId: itemId, fieldId: fieldId, dekVersion: 1))
let d = ItemDetailCheckpoint(vaultItemId: itemId, vaultId: vaultId, version: 1, name: "bench", type: "API_KEY", websites: [], groupId: nil,
                             fields: [.init(id: fieldId, name: "value", type: "SECRET", order: 0, isEnvironmentVariable: true, envelopeHash: env.sha256Hex)])
let s2 = VaultSummaryCheckpoint(vaultId: vaultId, version: 2, name: "bench", dataClassification: "INTERNAL", currentDekVersion: 1,
                                items: [.init(id: itemId, name: "bench", type: "API_KEY", websites: [], groupId: nil, detailHash: d.hash)])
_ = try await call(base, "POST", LatchRoutes.vaultItems(vaultId), key: boot.apiKey,
                   CreateItemRequest(detailCheckpoint: try signed(d, key), summaryCheckpoint: try signed(s2, key), fields: [FieldValueInput(id: fieldId, value: env.string)]),
                   ItemDetailResponse.self)
print("API_KEY='\(boot.apiKey)'")
print("VAULT_ID='\(vaultId)'")
print("FIELD_ID='\(fieldId)'")
