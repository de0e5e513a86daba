// `latch-bench load`: the seeder and the write-load generator of scripts/bench-replicas.sh
// (issue 7: SQLite vs PostgreSQL with one and two replicas). Two steps, so a second replica can
// be started after the first one is bootstrapped:
//
//     latch-bench load seed BASE_URL BOOTSTRAP_TOKEN STATE_FILE
//         bootstraps the server, creates one vault with one item and one field (real keys, real
//         signed checkpoints, a real envelope), writes STATE_FILE (0600: the throwaway bench
//         principal's key and API key) and prints shell assignments API_KEY, VAULT_ID, FIELD_ID.
//     latch-bench load writes STATE_FILE BASE_URL[,BASE_URL...] [--writers 8] [--writes 100]
//         creates one vault (with one single-field item) per writer, pre-signs each writer's
//         chain of `--writes` updates (new envelope, item detail and vault summary checkpoints,
//         exactly what `latch secret set` sends), then times sending them: each writer
//         `PATCH`es its own item in order, writer i talking to BASE_URL[i % n]. One vault per
//         writer, so writers never contend for a version chain; a 409 is counted as a conflict
//         and ends that writer. Prints WRITES_OK, WRITE_CONFLICTS, WRITE_ERRORS, WRITE_SECONDS,
//         WRITES_PER_S as shell assignments.
//
// Signing is done before the clock starts, so the figure is what the server (and its store)
// sustains, not the client's RSA signing rate. Nothing secret is printed.
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import LatchClient
import LatchCrypto
import LatchWire

enum LoadBench {
    struct Failure: Error, CustomStringConvertible { var description: String }

    struct State: Codable {
        var apiKey: String
        var userId: String
        var privateKeyPEM: String
        var vaultId: String
        var fieldId: String
    }

    static func main(_ arguments: [String]) async {
        do {
            switch arguments.first {
            case "seed": try await seed(Array(arguments.dropFirst()))
            case "writes": try await writes(Array(arguments.dropFirst()))
            default:
                print("usage: latch-bench load seed BASE_URL BOOTSTRAP_TOKEN STATE_FILE\n       latch-bench load writes STATE_FILE BASE_URL[,BASE_URL...] [--writers 8] [--writes 100]")
                exit(arguments.first == "--help" || arguments.first == "-h" ? 0 : 2)
            }
        } catch {
            FileHandle.standardError.write(Data("latch-bench load: \(error)\n".utf8))
            exit(1)
        }
    }

    // MARK: HTTP

    static let session: URLSession = {
        let c = URLSessionConfiguration.ephemeral
        c.httpMaximumConnectionsPerHost = 64
        c.timeoutIntervalForRequest = 60
        return URLSession(configuration: c)
    }()

    /// Sends `body` and returns the status and the response body.
    static func send<B: Encodable>(_ base: String, _ method: String, _ path: String, key: String?, _ body: B) async throws -> (Int, Data) {
        guard let url = URL(string: base + path) else { throw Failure(description: "bad URL \(base + path)") }
        var req = URLRequest(url: url)
        req.httpMethod = method
        req.setValue("application/json", forHTTPHeaderField: "Content-Type")
        if let key { req.setValue(key, forHTTPHeaderField: "X-API-Key") }
        req.httpBody = try LatchJSON.encoder().encode(body)
        let (data, resp) = try await session.data(for: req)
        return ((resp as? HTTPURLResponse)?.statusCode ?? 0, data)
    }

    static func call<B: Encodable, R: Decodable>(_ base: String, _ method: String, _ path: String, key: String?, _ body: B, _ r: R.Type) async throws -> R {
        let (status, data) = try await send(base, method, path, key: key, body)
        guard (200..<300).contains(status) else {
            throw Failure(description: "\(method) \(path) answered \(status): \(String(decoding: data.prefix(300), as: UTF8.self))")
        }
        return try LatchJSON.decoder().decode(r, from: data)
    }

    static func text<S: SignedStatement>(_ e: SignedEnvelope<S>) throws -> String { String(decoding: try e.canonicalJSON(), as: UTF8.self) }

    /// One vault with one single-field item, through `base`. Returns what the next write needs.
    static func makeVault(_ base: String, _ st: State, key: PrincipalPrivateKey, name: String)
        async throws -> (summary: VaultSummaryCheckpoint, detail: ItemDetailCheckpoint, dek: DataEncryptionKey, itemId: String, fieldId: String) {
        let id = UUID().uuidString.lowercased()
        let made = try VaultWriter.newVault(id: id, name: name, dataClassification: "INTERNAL", creator: key, creatorId: st.userId)
        _ = try await call(base, "POST", LatchRoutes.vaults, key: st.apiKey, CreateVaultRequest(
            id: id, summaryCheckpoint: try text(made.summary),
            wrappedKey: WrappedKeyInput(principalId: st.userId, recipientKeyId: key.publicKey.keyId, dekVersion: made.creatorWrap.dekVersion,
                                        wrappedKey: made.creatorWrap.wrappedKey.base64EncodedString(), statement: try text(made.creatorWrap.statement)),
            writersStatement: try text(made.writers)), VaultResponse.self)
        let itemId = UUID().uuidString.lowercased(), fieldId = UUID().uuidString.lowercased()
        let w = try VaultWriter.writeItem(summary: made.summary.checkpoint, previousDetail: nil, itemId: itemId, name: "bench", type: "API_KEY",
                                          fields: [.init(id: fieldId, name: "value", value: "bench-secret-value")], dek: made.dek, signer: key)
        _ = try await call(base, "POST", LatchRoutes.vaultItems(id), key: st.apiKey,
                           CreateItemRequest(detailCheckpoint: try text(w.detail), summaryCheckpoint: try text(w.summary),
                                             fields: [FieldValueInput(id: fieldId, value: w.envelopes[fieldId] ?? "")]), ItemDetailResponse.self)
        return (w.summary.checkpoint, w.detail.checkpoint, made.dek, itemId, fieldId)
    }

    // MARK: seed

    static func seed(_ a: [String]) async throws {
        guard a.count == 3 else { throw Failure(description: "usage: latch-bench load seed BASE_URL BOOTSTRAP_TOKEN STATE_FILE") }
        let base = a[0], token = a[1], path = a[2]
        let key = try PrincipalPrivateKey.generate(bits: 2048)
        let boot = try await call(base, "POST", LatchRoutes.bootstrap, key: nil,
                                  BootstrapRequest(token: token, publicKey: key.publicKey.pem, organisationName: "bench", tenantName: "bench", userName: "bench"),
                                  BootstrapResponse.self)
        var st = State(apiKey: boot.apiKey, userId: boot.userId, privateKeyPEM: key.pkcs8PEM, vaultId: "", fieldId: "")
        let v = try await makeVault(base, st, key: key, name: "bench-read")
        st.vaultId = v.summary.vaultId
        st.fieldId = v.fieldId
        let data = try JSONEncoder().encode(st)
        // It holds a private key: 0600 from its creation.
        do { try SecureFile.write(data, to: path, sync: false) } catch { throw Failure(description: "could not write \(path): \(error)") }
        print("API_KEY='\(st.apiKey)'")
        print("VAULT_ID='\(st.vaultId)'")
        print("FIELD_ID='\(st.fieldId)'")
    }

    // MARK: writes

    struct Writer: Sendable {
        var base: String
        var itemId: String
        var bodies: [UpdateItemRequest]
    }

    struct Tally: Sendable { var ok = 0, conflicts = 0, errors = 0; var firstError: String? }

    static func writes(_ a: [String]) async throws {
        guard a.count >= 2 else { throw Failure(description: "usage: latch-bench load writes STATE_FILE BASE_URL[,BASE_URL...] [--writers 8] [--writes 100]") }
        let st = try JSONDecoder().decode(State.self, from: Data(contentsOf: URL(fileURLWithPath: a[0])))
        let bases = a[1].split(separator: ",").map(String.init)
        var writerCount = 8, perWriter = 100
        var rest = a.dropFirst(2)
        while let o = rest.popFirst() {
            switch o {
            case "--writers": writerCount = rest.popFirst().flatMap(Int.init) ?? writerCount
            case "--writes": perWriter = rest.popFirst().flatMap(Int.init) ?? perWriter
            default: throw Failure(description: "unknown argument \(o)")
            }
        }
        let key = try PrincipalPrivateKey(pem: st.privateKeyPEM)
        var writers: [Writer] = []
        for i in 0..<writerCount {
            let base = bases[i % bases.count]
            let made = try await makeVault(base, st, key: key, name: "bench-write-\(i)")
            var summary = made.summary, detail = made.detail
            let dek = made.dek, itemId = made.itemId, fieldId = made.fieldId
            var bodies: [UpdateItemRequest] = []
            bodies.reserveCapacity(perWriter)
            for n in 0..<perWriter {
                let w = try VaultWriter.writeItem(summary: summary, previousDetail: detail, itemId: itemId, name: "bench", type: "API_KEY",
                                                  fields: [.init(id: fieldId, name: "value", value: "bench-secret-value-\(n)")], dek: dek, signer: key)
                bodies.append(UpdateItemRequest(detailCheckpoint: try text(w.detail), summaryCheckpoint: try text(w.summary),
                                                fields: [FieldValueInput(id: fieldId, value: w.envelopes[fieldId] ?? "")]))
                summary = w.summary.checkpoint
                detail = w.detail.checkpoint
            }
            writers.append(Writer(base: base, itemId: itemId, bodies: bodies))
        }
        let apiKey = st.apiKey
        let clock = ContinuousClock()
        let start = clock.now
        let tally = await withTaskGroup(of: Tally.self) { group in
            for w in writers {
                group.addTask {
                    var t = Tally()
                    for body in w.bodies {
                        do {
                            let (status, data) = try await send(w.base, "PATCH", LatchRoutes.updateItem(w.itemId), key: apiKey, body)
                            if (200..<300).contains(status) { t.ok += 1; continue }
                            if status == 409 { t.conflicts += 1 } else { t.errors += 1 }
                            t.firstError = t.firstError ?? "\(status): \(String(decoding: data.prefix(200), as: UTF8.self))"
                        } catch {
                            t.errors += 1
                            t.firstError = t.firstError ?? "\(error)"
                        }
                        break   // the chain is broken: this writer stops
                    }
                    return t
                }
            }
            var total = Tally()
            for await t in group {
                total.ok += t.ok; total.conflicts += t.conflicts; total.errors += t.errors
                total.firstError = total.firstError ?? t.firstError
            }
            return total
        }
        let d = clock.now - start
        let secs = Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
        if let e = tally.firstError { FileHandle.standardError.write(Data("latch-bench load writes: first failure: \(e)\n".utf8)) }
        print("WRITES_OK=\(tally.ok)")
        print("WRITE_CONFLICTS=\(tally.conflicts)")
        print("WRITE_ERRORS=\(tally.errors)")
        print(String(format: "WRITE_SECONDS=%.3f", secs))
        print(String(format: "WRITES_PER_S=%.1f", Double(tally.ok) / max(secs, 1e-9)))
    }
}
