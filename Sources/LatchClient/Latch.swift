import Foundation
import LatchCrypto
import LatchLog
import LatchWire

/// One secret's address (no value): what `search` returns.
public struct SecretName: Sendable, Codable, Equatable {
    public var name: String
    public var vaultId: String
    public var vault: String
    public var itemId: String
    public var item: String
    public var field: String
    public var type: String
}

/// The Latchkey client: authenticates, registers its public key if the server lacks it,
/// syncs and verifies every vault it can read, and serves decrypted values from memory.
/// No value it decrypts is written to disk; what it has seen (checkpoint versions) is, and the
/// DEKs it unwrapped are, sealed under a key derived from its own private key (`UnwrapMemo`).
public final class Latch: @unchecked Sendable {
    public let configuration: ResolvedConfiguration
    public let http: LatchHTTPClient
    /// This client's private key, parsed when first needed: a run whose wrapped DEKs are all in
    /// the unwrap memo (`UnwrapMemo`) and that signs nothing never parses it.
    public var privateKey: PrincipalPrivateKey { get throws { try ownKey.key() } }
    /// The id of this client's public key.
    public var keyId: String { ownKey.keyId }
    let ownKey: ConfiguredKey
    public private(set) var identity: MeResponse
    /// Time spent per phase ("keyLoad", "http", "verify").
    public let timings: Timings
    let seenPath: String?
    /// The profile's transparency-log trust file (`LogTrust`).
    let trustPath: String
    public var trustFilePath: String { trustPath }
    /// `log.json`, kept in memory between syncs and written behind them.
    let trustFile: TrustFile
    /// What the last sync's transparency-log check did.
    public private(set) var lastLogReport: LogReport? {
        get { lock.withLock { _lastLogReport } }
        set { lock.withLock { _lastLogReport = newValue } }
    }
    private var _lastLogReport: LogReport?
    /// When false, nothing checked in an earlier sync is reused: every signature is verified,
    /// every wrapped key unwrapped and every entry's inclusion proven again, even where an
    /// earlier verified head already covered the same leaf (`latch verify`).
    var reuseEarlierChecks = true
    /// A process that stays up proves a new leaf in each delta sync that accepts a new version,
    /// and keeps it (`log.json`'s `verified`, the leaf-hash memo); the superseded leaves are
    /// never checked again. Once the proven leaves outnumber twice what the last full pass
    /// kept plus this many, a sync proves every entry it holds again (no new proof for an
    /// unchanged leaf) and keeps only those.
    var provenLeafSlack = 256
    /// How many proven leaves the last full pass kept.
    private var provenAtLastFullPass = 0
    /// BENCHMARK ONLY (`latch-bench sync`, through `@_spi(Benchmark) import LatchClient`): when
    /// true, syncs skip every transparency-log check, so a hostile server's log attacks go
    /// unnoticed. It exists to measure what the log checks cost; never set it anywhere else
    /// (the CLI, MCP server and SDK users cannot reach it without the SPI import).
    @_spi(Benchmark) public var unsafeSkipTransparencyLogForBenchmark = false
    private let lock = NSLock()
    private var vaults: [String: VerifiedVault] = [:]
    private var vaultInfos: [String: VaultInfo] = [:]
    private var plan = EnvNames.Plan(assignments: [], collisions: [], unnamed: [])
    private var seen: SeenState
    /// What `seenPath` held when this client last read or wrote it.
    private var seenBase: SeenState
    /// Vaults the caller can list but cannot open yet (no wrapped key), with the reason.
    public private(set) var unavailableVaults: [String: String] = [:]

    init(configuration: ResolvedConfiguration, http: LatchHTTPClient, key: ConfiguredKey, identity: MeResponse,
         seenPath: String?, trustFile: TrustFile, seen: SeenState) {
        self.configuration = configuration
        self.http = http
        self.ownKey = key
        self.identity = identity
        self.seenPath = seenPath
        self.trustPath = trustFile.path
        self.timings = http.timings ?? Timings()
        self.trustFile = trustFile
        self.seen = seen
        self.seenBase = seen
    }

    /// Writes the seen state, joined with whatever another process of this profile wrote since
    /// this one last read or wrote the file (`SeenState.save(path:base:)`), and adopts the join.
    /// A failure to write is not an error of the read that produced the state.
    private func persistSeen(_ state: SeenState) {
        guard let seenPath else { return }
        let base = lock.withLock { seenBase }
        guard let written = try? state.save(path: seenPath, base: base) else { return }
        lock.withLock {
            seen = seen.merged(with: written, base: base)
            seenBase = written
        }
    }

    // MARK: creation

    /// Configure from explicit arguments, then the environment, then the profile; authenticate
    /// (`GET /me`, or the first sync page, which carries the same answer); register the public
    /// key if the server has none (idempotent); and, when `sync` is true, load and verify every
    /// readable vault.
    public static func create(apiKey: String? = nil, privateKeyPath: String? = nil, privateKeyPEM: String? = nil,
                              baseURL: String? = nil, profile: String? = nil,
                              environment: [String: String] = ProcessInfo.processInfo.environment,
                              transport: (any HTTPTransport)? = nil, sync: Bool = true) async throws -> Latch {
        let config = try ConfigurationResolver.resolve(
            ExplicitConfiguration(apiKey: apiKey, privateKeyPath: privateKeyPath, privateKeyPEM: privateKeyPEM,
                                  baseURL: baseURL, profile: profile),
            environment: environment)
        return try await create(configuration: config, transport: transport, sync: sync)
    }

    public static func create(configuration config: ResolvedConfiguration, transport: (any HTTPTransport)? = nil,
                              sync: Bool = true) async throws -> Latch {
        let timings = Timings()
        var http = LatchHTTPClient(baseURL: config.baseURL, apiKey: config.apiKey, transport: transport ?? DefaultHTTPTransport())
        http.timings = timings
        let seenPath: String?
        let trustPath: String
        let memoPath: String
        if case .profile(let name) = config.apiKeySource {
            seenPath = ProfileStore(home: config.home).seenStatePath(name)
            trustPath = ProfileStore(home: config.home).logTrustPath(name)
            memoPath = ProfileStore(home: config.home).unwrapMemoPath(name)
        } else {
            let safe = String(config.accessKey.unicodeScalars.map { CharacterSet.alphanumerics.contains($0) ? Character($0) : "_" })
            seenPath = config.home + "/state/" + safe + ".seen.json"
            trustPath = config.home + "/state/" + safe + ".log.json"
            memoPath = config.home + "/state/" + safe + ".unwrap-memo"
        }
        let keyStart = DispatchTime.now().uptimeNanoseconds
        let key = try ConfiguredKey(pem: config.privateKeyPEM, source: "\(config.privateKeySource)", memoPath: memoPath)
        timings.add("keyLoad", since: keyStart)
        let trustFile = TrustFile(path: trustPath, timings: timings)
        // A client that syncs asks for itself on the first sync page: one request, not two.
        var firstPage: SyncResponse?
        if sync {
            do {
                firstPage = try await http.getJSON(SyncResponse.self, syncPath(cursor: nil, logFrom: pinnedLogSize(trustFile), me: true))
            } catch let e as LatchError where e.kind == .notFound && e.serverCode == "not_found" {
                firstPage = nil   // a server without /vault/sync: `refresh` takes the per-vault path
            }
        }
        var me: MeResponse
        if let served = firstPage?.me { me = served } else { me = try await http.getJSON(MeResponse.self, LatchRoutes.me) }
        if let registered = me.publicKey {
            guard registered.keyId == key.keyId else {
                throw LatchError(.auth, "the server holds key \(registered.keyId.prefix(16))… for \(me.principal.name), but the configured private key is \(key.keyId.prefix(16))…",
                                 hint: "use the private key that belongs to this API key (a key change needs `latch agent rotate-key`; if a rotation was interrupted after the server accepted it, private-key.pem.rotating-<key id prefix> in the profile holds the new key)")
            }
        } else {
            _ = try await http.postJSON(PublicKeyInfo.self, LatchRoutes.publicKey, body: RegisterPublicKeyRequest(publicKey: try key.key().publicKey.pem))
            me = try await http.getJSON(MeResponse.self, LatchRoutes.me)
            firstPage = nil   // its log head predates the key's leaf, which this client proves: sync afresh
        }
        let seen = try seenPath.map(SeenState.load(path:)) ?? SeenState()
        let latch = Latch(configuration: config, http: http, key: key, identity: me, seenPath: seenPath, trustFile: trustFile, seen: seen)
        if sync { try await latch.refresh(firstPage: firstPage) }
        return latch
    }

    /// `GET /vault/sync` from `cursor` (nil: everything), with the log material from `logFrom`
    /// (nil: none), each touched vault's signer directory, and, when `me`, the caller.
    static func syncPath(cursor: String?, logFrom: Int64?, me: Bool) -> String {
        var query: [String] = []
        if let cursor { query.append("cursor=" + (cursor.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? cursor)) }
        if let logFrom { query.append("logFrom=\(logFrom)") }
        query.append(me ? "include=me,directories" : "include=directories")
        var path = LatchRoutes.sync
        for (i, q) in query.enumerated() { path += (i == 0 ? "?" : "&") + q }
        return path
    }

    /// The tree size this profile last verified (0: none yet).
    static func pinnedLogSize(_ trustFile: TrustFile) -> Int64 {
        (try? trustFile.load()).flatMap { $0?.treeSize } ?? 0
    }

    // MARK: reading

    /// Every exported secret, by env name (see `EnvNames`).
    public var env: [String: String] {
        lock.withLock {
            var out: [String: String] = [:]
            for a in plan.assignments {
                if let v = value(of: a.field) { out[a.name] = v }
            }
            return out
        }
    }

    /// Env-name collisions of the last sync (names only).
    public var collisions: [(name: String, kept: String, dropped: String)] {
        lock.withLock { plan.collisions.map { ($0.name, $0.kept.path, $0.dropped.path) } }
    }

    private func value(of f: EnvNames.Field) -> String? {
        vaults[f.vaultId]?.items.first { $0.id == f.itemId }?.fields.first { $0.id == f.fieldId }?.value
    }

    /// One value by env name (`ITEM_FIELD` or `ITEM`), or by `ITEM/FIELD` / `VAULT/ITEM/FIELD`.
    public func get(_ name: String) throws -> String {
        try lock.withLock {
            if let a = plan.assignments.first(where: { $0.name == name }), let v = value(of: a.field) { return v }
            if let c = plan.collisions.first(where: { $0.name == name }) {
                throw LatchError(.usage, "\(name) is ambiguous: \(c.kept.path) and \(c.dropped.path)",
                                 hint: "rename one item, or ask for VAULT/ITEM/FIELD")
            }
            let parts = name.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            if parts.count == 2 || parts.count == 3 {
                let (vaultName, itemName, fieldName) = parts.count == 3 ? (parts[0] as String?, parts[1], parts[2]) : (nil, parts[0], parts[1])
                let matches = vaults.values.filter { vaultName == nil || $0.name == vaultName }.flatMap { v in
                    v.items.filter { $0.name == itemName }.flatMap { $0.fields.filter { $0.name == fieldName } }
                }
                if matches.count == 1 { return matches[0].value }
                if matches.count > 1 { throw LatchError(.usage, "\(name) matches \(matches.count) fields", hint: "use VAULT/ITEM/FIELD") }
            }
            if let snake = EnvNames.screamingSnake(name), snake != name,
               let a = plan.assignments.first(where: { $0.name == snake }), let v = value(of: a.field) { return v }
            throw LatchError(.notFound, "no secret named \(name)", hint: "list names with `latch search ''` or `latch env --format json | jq keys`")
        }
    }

    /// Secret names matching `query` (case-insensitive substring of the env name, vault, item
    /// or field name). Never values.
    public func search(_ query: String) -> [SecretName] {
        let q = query.lowercased()
        return lock.withLock {
            plan.assignments.compactMap { a -> SecretName? in
                let f = a.field
                let type = vaults[f.vaultId]?.items.first { $0.id == f.itemId }?.fields.first { $0.id == f.fieldId }?.type ?? ""
                let hay = [a.name, f.vaultName, f.itemName, f.fieldName].map { $0.lowercased() }
                guard q.isEmpty || hay.contains(where: { $0.contains(q) }) else { return nil }
                return SecretName(name: a.name, vaultId: f.vaultId, vault: f.vaultName, itemId: f.itemId, item: f.itemName, field: f.fieldName, type: type)
            }
        }
    }

    /// Verified vaults (names and ids; values stay inside).
    public var verifiedVaults: [VerifiedVault] { lock.withLock { vaults.values.sorted { $0.name < $1.name } } }

    /// The name a vault's verified summary checkpoint gives it, or nil when this client has not
    /// verified that vault (the server's listings carry names of their own, unsigned).
    public func signedName(ofVault id: String) -> String? { lock.withLock { vaults[id]?.name } }

    // MARK: sync

    /// Load what changed since the last sync (vaults whose summary version moved, and within
    /// them items whose detail version moved), verify it all, and swap it in. On any failed
    /// check nothing is swapped in.
    public func refresh() async throws { try await refresh(firstPage: nil) }

    /// `firstPage`: the answer to this client's first sync request, already fetched.
    func refresh(firstPage: SyncResponse?) async throws {
        if syncUnsupported { return try await refreshPerVault() }
        do {
            try await refreshWithSync(firstPage: firstPage)
        } catch let e as LatchError where e.kind == .notFound && e.serverCode == "not_found" && syncCursor == nil {
            syncUnsupported = true   // a server without /vault/sync
            try await refreshPerVault()
        }
    }

    /// Ciphertext and signed metadata from `/vault/sync`, kept in memory between refreshes.
    struct SyncCache {
        var vaults: [String: VaultResponse] = [:]
        var items: [String: SyncItem] = [:]
        var fields: [String: SyncField] = [:]
        var wraps: [String: WrappedKeyInfo] = [:]
    }
    private var syncCursor: String?
    private var syncUnsupported = false
    private var cache = SyncCache()

    /// Delta sync: `GET /vault/sync[?cursor=]`, apply the changes to the in-memory cache, and
    /// re-verify every vault the delta touched (the signer directory is fetched for each).
    func refreshWithSync(firstPage: SyncResponse? = nil) async throws {
        var cursor = lock.withLock { syncCursor }
        var cache = lock.withLock { self.cache }
        var touched = Set<String>()
        var removed = Set<String>()
        var changedItems = Set<String>()
        var droppedItems = Set<String>()   // archived, or in a removed vault: their memos go too
        var full = false
        // The log material rides on the sync answer (no extra request) when there is one page.
        let logFrom: Int64? = unsafeSkipTransparencyLogForBenchmark ? nil : Self.pinnedLogSize(trustFile)
        var logProofs: SyncLogProofs?
        var directories: [String: PublicKeysResponse] = [:]
        var pages = 0
        while true {
            let r: SyncResponse
            if pages == 0, let firstPage { r = firstPage } else {
                r = try await http.getJSON(SyncResponse.self, Self.syncPath(cursor: cursor, logFrom: logFrom, me: false))
            }
            pages += 1
            logProofs = pages == 1 ? r.log : nil
            for d in r.directories ?? [] { directories[d.vaultId] = d }
            if r.full { cache = SyncCache(); full = true }
            for v in r.vaults {
                touched.insert(v.vault.id)
                if v.vault.archived { removed.insert(v.vault.id) } else { cache.vaults[v.vault.id] = v }
            }
            for id in r.removedVaultIds { removed.insert(id); touched.insert(id) }
            for i in r.items {
                touched.insert(i.item.vaultId)
                changedItems.insert(i.item.id)
                if i.archived { cache.items[i.item.id] = nil; droppedItems.insert(i.item.id) } else { cache.items[i.item.id] = i }
            }
            for f in r.fields { cache.fields[f.field.id] = f; touched.insert(f.vaultId) }
            for id in r.deletedFieldIds {
                if let f = cache.fields.removeValue(forKey: id) { touched.insert(f.vaultId) }
            }
            for w in r.wrappedKeys where w.recipientKeyId == keyId {
                cache.wraps["\(w.vaultId)|\(w.dekVersion)"] = w
                touched.insert(w.vaultId)
            }
            cursor = r.cursor
            if !r.hasMore { break }
        }
        for id in removed {
            cache.vaults[id] = nil
            for (itemId, i) in cache.items where i.item.vaultId == id { droppedItems.insert(itemId) }
            cache.items = cache.items.filter { $0.value.item.vaultId != id }
            cache.fields = cache.fields.filter { $0.value.vaultId != id }
            cache.wraps = cache.wraps.filter { $0.value.vaultId != id }
        }
        var (newVaults, unavailable) = lock.withLock { (vaults, unavailableVaults) }
        let earlier = reuseEarlierChecks ? newVaults : [:]
        if full { newVaults = [:]; unavailable = [:] }
        var seenCopy = lock.withLock { seen }
        var entries = ownKeyEntries()
        let proven = (try? trustFile.load()?.verified.count) ?? 0
        let everything = full || proven > 2 * lock.withLock({ provenAtLastFullPass }) + provenLeafSlack
        for id in touched.union(everything ? Set(cache.vaults.keys) : []) {
            newVaults[id] = nil
            unavailable[id] = nil
            guard let v = cache.vaults[id] else { continue }
            let material = try await materialFromCache(v, cache, directory: directories[id])
            let verifyStart = DispatchTime.now().uptimeNanoseconds
            defer { timings.add("verify", since: verifyStart) }
            do {
                newVaults[id] = try VaultVerifier.verify(material, recipientKeyId: keyId, unwrap: unwrap, seen: &seenCopy, earlier: earlier[id],
                                                         signatures: reuseEarlierChecks ? ownKey : nil)
            } catch let e as LatchError where e.kind == .forbidden {
                unavailable[id] = e.message
                continue
            }
            if unsafeSkipTransparencyLogForBenchmark { continue }
            // A delta sync proves only what changed: a detail this client accepted earlier, with
            // its leaf proven under a head that every later head must prove consistent with,
            // is still in the log.
            // (`earlier` holds only vaults whose every entry was proven; the cache keeps the
            // exact text of each item this sync did not resend.)
            withExtendedLifetime(material) {   // the timer covers building the entries, not freeing the material
                let entriesStarted = DispatchTime.now().uptimeNanoseconds
                let onlyChanged = !everything && earlier[id] != nil
                let items = onlyChanged ? changedItems.compactMap { cache.items[$0] }.filter { $0.item.vaultId == id }
                                        : cache.items.values.filter { $0.item.vaultId == id }
                entries += logEntries(material, summary: v.summaryCheckpoint, summaryIndex: v.vault.summaryLogIndex,
                                      details: items.map { ($0.item.id, $0.detailCheckpoint, $0.item.detailLogIndex) })
                timings.add("log.entries", since: entriesStarted)
            }
        }
        // Nothing is swapped in or remembered until the log vouches for all of it.
        let report = try await verifyLog(entries, prune: everything, prefetched: logProofs)
        if everything, let kept = try? trustFile.load()?.verified.count { lock.withLock { provenAtLastFullPass = kept } }
        let newPlan = Self.plan(for: newVaults)
        let infos = Dictionary(uniqueKeysWithValues: cache.vaults.map { ($0.key, $0.value.vault) })
        let finalCursor = cursor
        let seenChanged = lock.withLock { () -> Bool in
            vaults = newVaults
            vaultInfos = infos
            plan = newPlan
            let changed = seen != seenCopy
            seen = seenCopy
            unavailableVaults = unavailable
            syncCursor = finalCursor
            self.cache = cache
            _lastLogReport = report
            // The per-item memos follow the cache: a long-lived client (SDK, MCP) keeps no entry
            // for an item it no longer holds. A full answer replaced the cache wholesale.
            if full {
                detailEntryMemo = detailEntryMemo.filter { cache.items[$0.key] != nil }
                detailEnvelopeMemo = detailEnvelopeMemo.filter { cache.items[$0.key] != nil }
            } else {
                for id in droppedItems where cache.items[id] == nil {
                    detailEntryMemo[id] = nil
                    detailEnvelopeMemo[id] = nil
                }
            }
            return changed
        }
        if seenChanged { persistSeen(seenCopy) }
        ownKey.saveMemo(keeping: newVaults.values.map(\.wrappedKey), signaturesUsed: reuseEarlierChecks)
    }

    /// Unwraps with this client's key, through its unwrap memo unless every check is being
    /// redone (`latch verify`).
    private func unwrap(_ wrapped: Data, _ version: Int) throws -> DataEncryptionKey {
        try ownKey.unwrap(wrapped, version: version, useMemo: reuseEarlierChecks)
    }

    /// `directory`: the vault's signer directory as the sync answer carried it (nil: fetch it).
    func materialFromCache(_ v: VaultResponse, _ cache: SyncCache, directory served: PublicKeysResponse?) async throws -> VaultMaterial {
        let vaultId = v.vault.id
        let directory = try await self.directory(vaultId, served: served)
        var wraps: [VaultMaterial.WrappedKey] = []
        for w in cache.wraps.values where w.vaultId == vaultId {
            guard let bytes = Data(base64Encoded: w.wrappedKey) else { throw VaultVerifier.fail("vault \(vaultId): wrapped key is not base64") }
            wraps.append(.init(dekVersion: w.dekVersion, wrappedKey: bytes,
                               statement: try Self.envelope(w.statement, what: "vault \(vaultId) wrapped-key statement")))
        }
        var envelopesByItem: [String: [String: String]] = [:]
        for f in cache.fields.values where f.vaultId == vaultId { envelopesByItem[f.field.itemId, default: [:]][f.field.id] = f.field.value }
        var items: [VaultMaterial.Item] = []
        for i in cache.items.values where i.item.vaultId == vaultId {
            // Memo of a pure function (same text → same decoded envelope).
            let detail: SignedEnvelope<ItemDetailCheckpoint>
            if let hit = lock.withLock({ detailEnvelopeMemo[i.item.id] }), hit.text == i.detailCheckpoint { detail = hit.envelope } else {
                detail = try Self.envelope(i.detailCheckpoint, what: "item \(i.item.id) detail checkpoint")
                lock.withLock { detailEnvelopeMemo[i.item.id] = (i.detailCheckpoint, detail) }
            }
            items.append(.init(id: i.item.id, detail: detail, envelopes: envelopesByItem[i.item.id] ?? [:]))
        }
        return VaultMaterial(vaultId: vaultId, summary: try Self.envelope(v.summaryCheckpoint, what: "vault \(vaultId) summary checkpoint"),
                             wrappedKeys: wraps, items: items, directory: directory.keys, writers: directory.writers,
                             writersLogIndex: directory.writersLogIndex)
    }

    /// The signer directory and the writer set chain served with it.
    struct ServedDirectory {
        var keys: [DirectoryKey]
        var writers: [WritersLinkMaterial]
        var writersLogIndex: Int64?
    }

    /// The signer directory of `vaultId`: `served` when the sync answer carried it (same
    /// checks either way), else `GET /vault/:id/public-keys`.
    func directory(_ vaultId: String, served: PublicKeysResponse? = nil) async throws -> ServedDirectory {
        var keys = served
        if keys == nil { keys = try await http.getJSON(PublicKeysResponse.self, LatchRoutes.vaultPublicKeys(vaultId)) }
        guard let keys, keys.vaultId == vaultId else { throw VaultVerifier.fail("vault \(vaultId): the signer directory served is another vault's") }
        var writers: [WritersLinkMaterial] = []
        for link in keys.writers ?? [] {
            guard let pk = try? PrincipalPublicKey(pem: link.signerPublicKey) else {
                throw VaultVerifier.fail("vault \(vaultId): a writer set link is served with a key that does not parse")
            }
            writers.append(WritersLinkMaterial(envelope: try Self.envelope(link.statement, what: "vault \(vaultId) writer set"), text: link.statement,
                                               signerId: link.signerId, signerKey: pk, signerKeyLogIndex: link.signerKeyLogIndex))
        }
        let directory = try keys.publicKeys.map { try Self.directoryKey($0, vaultLabel: "vault \(vaultId)") }
        return ServedDirectory(keys: directory, writers: writers, writersLogIndex: keys.writersLogIndex)
    }

    /// One signer-directory entry as served, parsed: its key must match its key id, and its
    /// rotation links must parse (they are checked against the pinned key later).
    static func directoryKey(_ k: MemberKey, vaultLabel: String) throws -> DirectoryKey {
        guard let pk = try? PrincipalPublicKey(pem: k.publicKey), pk.keyId == k.keyId else {
            throw VaultVerifier.fail("\(vaultLabel): signer directory entry for \(k.name) has a key that does not match its key id")
        }
        var entry = DirectoryKey(principalId: k.principalId, publicKey: pk, accessLevel: k.level, name: k.name, logIndex: k.logIndex)
        for link in k.rotations ?? [] {
            guard let previous = try? PrincipalPublicKey(pem: link.previousPublicKey),
                  let statement = try? SignedEnvelope<KeyRotationStatement>.decode(text: link.statement) else {
                throw VaultVerifier.fail("\(vaultLabel): signer directory entry for \(k.name) has a rotation link that does not parse")
            }
            entry.rotations.append((previous, statement))
        }
        return entry
    }

    static func plan(for vaults: [String: VerifiedVault]) -> EnvNames.Plan {
        var fields: [EnvNames.Field] = []
        for v in vaults.values {
            for item in v.items {
                for f in item.fields {
                    fields.append(EnvNames.Field(vaultId: v.id, vaultName: v.name, itemId: item.id, itemName: item.name,
                                                 itemFieldCount: item.fields.count, fieldId: f.id, fieldName: f.name,
                                                 order: f.order, isEnvironmentVariable: f.isEnvironmentVariable))
                }
            }
        }
        return EnvNames.plan(fields)
    }

    /// The per-vault path (servers without `/vault/sync`): list vaults and re-fetch those
    /// whose summary version moved.
    func refreshPerVault() async throws {
        let list = try await http.getJSON(VaultListResponse.self, LatchRoutes.vaults).vaults.filter { !$0.archived }
        var newVaults: [String: VerifiedVault] = [:]
        var newInfos: [String: VaultInfo] = [:]
        var unavailable: [String: String] = [:]
        var seenCopy = lock.withLock { seen }
        var entries = ownKeyEntries()
        let (oldVaults, oldInfos) = lock.withLock { (vaults, vaultInfos) }
        for info in list {
            if let old = oldVaults[info.id], let oldInfo = oldInfos[info.id],
               oldInfo.summaryVersion == info.summaryVersion, oldInfo.currentDekVersion == info.currentDekVersion {
                newVaults[info.id] = old
                newInfos[info.id] = info
                continue
            }
            do {
                let (material, served) = try await fetchMaterial(vaultId: info.id, previous: oldVaults[info.id])
                newVaults[info.id] = try VaultVerifier.verify(material, recipientKeyId: keyId, unwrap: unwrap, seen: &seenCopy,
                                                              signatures: reuseEarlierChecks ? ownKey : nil)
                newInfos[info.id] = info
                entries += logEntries(material, summary: served.summary, summaryIndex: served.summaryIndex, details: served.details)
            } catch let e as LatchError where e.kind == .forbidden || e.kind == .notFound {
                unavailable[info.id] = e.message
            }
        }
        var fields: [EnvNames.Field] = []
        for v in newVaults.values {
            for item in v.items {
                for f in item.fields {
                    fields.append(EnvNames.Field(vaultId: v.id, vaultName: v.name, itemId: item.id, itemName: item.name,
                                                 itemFieldCount: item.fields.count, fieldId: f.id, fieldName: f.name,
                                                 order: f.order, isEnvironmentVariable: f.isEnvironmentVariable))
                }
            }
        }
        let newPlan = EnvNames.plan(fields)
        let report = try await verifyLog(entries, prune: false)
        let seenChanged = lock.withLock { () -> Bool in
            vaults = newVaults
            vaultInfos = newInfos
            plan = newPlan
            let changed = seen != seenCopy
            seen = seenCopy
            unavailableVaults = unavailable
            _lastLogReport = report
            return changed
        }
        if seenChanged { persistSeen(seenCopy) }
        ownKey.saveMemo(keeping: newVaults.values.map(\.wrappedKey), signaturesUsed: reuseEarlierChecks)
    }

    /// Fetch one vault's material. Items whose detail version is unchanged since `previous`
    /// are not fetched again: their verified detail is re-checked against the new summary.
    /// The envelope texts and log indexes served with one vault's material.
    struct ServedCheckpoints {
        var summary: String
        var summaryIndex: Int64?
        var details: [(itemId: String, envelope: String, index: Int64?)]
    }

    func fetchMaterial(vaultId: String, previous: VerifiedVault?) async throws -> (VaultMaterial, ServedCheckpoints) {
        let directory = try await self.directory(vaultId)
        let wrapsResponse = try await http.getJSON(WrappedKeysResponse.self, LatchRoutes.wrappedKey(vaultId))
        var wraps: [VaultMaterial.WrappedKey] = []
        for w in wrapsResponse.wrappedKeys where w.recipientKeyId == keyId {
            guard let bytes = Data(base64Encoded: w.wrappedKey) else {
                throw VaultVerifier.fail("vault \(vaultId): wrapped key is not base64")
            }
            wraps.append(.init(dekVersion: w.dekVersion, wrappedKey: bytes, statement: try Self.envelope(w.statement, what: "vault \(vaultId) wrapped-key statement")))
        }
        let itemsResponse = try await http.getJSON(VaultItemsResponse.self, LatchRoutes.vaultItems(vaultId))
        let summary: SignedEnvelope<VaultSummaryCheckpoint> = try Self.envelope(itemsResponse.summaryCheckpoint, what: "vault \(vaultId) summary checkpoint")
        var items: [VaultMaterial.Item] = []
        var served = ServedCheckpoints(summary: itemsResponse.summaryCheckpoint, summaryIndex: itemsResponse.summaryLogIndex, details: [])
        for entry in summary.checkpoint.items {
            let detail = try await http.getJSON(ItemDetailResponse.self, LatchRoutes.vaultItem(vaultId, entry.id))
            let env: SignedEnvelope<ItemDetailCheckpoint> = try Self.envelope(detail.detailCheckpoint, what: "item \(entry.id) detail checkpoint")
            var envelopes: [String: String] = [:]
            for f in detail.fields { envelopes[f.id] = f.value }
            items.append(.init(id: detail.id, detail: env, envelopes: envelopes))
            served.details.append((detail.id, detail.detailCheckpoint, detail.detailLogIndex))
        }
        return (VaultMaterial(vaultId: vaultId, summary: summary, wrappedKeys: wraps, items: items, directory: directory.keys,
                              writers: directory.writers, writersLogIndex: directory.writersLogIndex), served)
    }

    static func envelope<S: SignedStatement>(_ text: String, what: String) throws -> SignedEnvelope<S> {
        do {
            return try SignedEnvelope<S>.decode(text: text)
        } catch {
            throw VaultVerifier.fail("\(what) is malformed (\(error))")
        }
    }

    // MARK: transparency log

    var tenantId: String { identity.principal.tenantId }

    /// This client's own registered key.
    func ownKeyEntries() -> [LogEntry] {
        guard let k = identity.publicKey else { return [] }
        return [.key(tenantId: tenantId, principalId: k.principalId, name: identity.principal.name, keyId: k.keyId, index: k.logIndex, role: "own")]
    }

    /// The log entries behind one verified vault: its summary, every item's detail (as the
    /// envelope texts were served) and every key in its signer directory.
    func logEntries(_ m: VaultMaterial, summary: String, summaryIndex: Int64?,
                    details: [(itemId: String, envelope: String, index: Int64?)]) -> [LogEntry] {
        var out: [LogEntry] = [.summary(tenantId: tenantId, vaultId: m.vaultId, version: m.summary.checkpoint.version,
                                        envelope: summary, index: summaryIndex)]
        // The version only names the entry in errors. It is read from the decoded detail of the
        // same text (decoded for this vault's material just before), not by a pass over every
        // item of the vault, which a one-item delta of a large vault could not afford.
        var byId: [String: Int]? = nil
        func version(_ d: (itemId: String, envelope: String, index: Int64?)) -> Int {
            if let hit = lock.withLock({ detailEnvelopeMemo[d.itemId] }), hit.text == d.envelope { return hit.envelope.checkpoint.version }
            if byId == nil { byId = Dictionary(m.items.map { ($0.id, $0.detail.checkpoint.version) }) { a, _ in a } }
            return byId?[d.itemId] ?? 0
        }
        for d in details.sorted(by: { $0.itemId < $1.itemId }) {
            // Memo of a pure function (same envelope text → same leaf, version included): a delta
            // sync does not re-hash the unchanged details of a large vault.
            if let hit = lock.withLock({ detailEntryMemo[d.itemId] }), hit.envelope == d.envelope, hit.entry.index == d.index,
               hit.entry.leaf.tenantId == tenantId, hit.vaultId == m.vaultId {
                out.append(hit.entry)
                continue
            }
            let version = version(d)
            let entry = LogEntry.detail(tenantId: tenantId, vaultId: m.vaultId, itemId: d.itemId, version: version, envelope: d.envelope, index: d.index)
            lock.withLock { detailEntryMemo[d.itemId] = (m.vaultId, d.envelope, entry) }
            out.append(entry)
        }
        for k in m.directory {
            out.append(.key(tenantId: tenantId, principalId: k.principalId, name: k.name ?? k.principalId, keyId: k.publicKey.keyId,
                            index: k.logIndex, role: "vault \(m.vaultId) signer directory"))
        }
        // The writer set: its newest version, and each link's signer key bound to its signer.
        if let newest = m.writers.last {
            out.append(.writers(tenantId: tenantId, vaultId: m.vaultId, version: newest.envelope.checkpoint.version,
                                envelope: newest.text, index: m.writersLogIndex))
        }
        for link in m.writers where !out.contains(where: { $0.leaf == .publicKey(tenantId: tenantId, principalId: link.signerId, keyId: link.signerKey.keyId) }) {
            out.append(.key(tenantId: tenantId, principalId: link.signerId, name: link.signerId, keyId: link.signerKey.keyId,
                            index: link.signerKeyLogIndex, role: "vault \(m.vaultId) writer set signer"))
        }
        return out
    }

    /// Checks `entries` against the server's transparency log and remembers the new tree head:
    /// fetches the signed tree head (1 request) and opens it with the pinned key (pinning the
    /// served key on first use, or the `--log-key`/`LATCH_LOG_KEY` one); proves it extends the
    /// last verified head (1 request when the tree grew; a smaller tree or a failed proof is a
    /// rollback or fork); proves each entry's rebuilt leaf included (1 batch request for
    /// every leaf not already proven under an earlier verified head, `inclusionProofs`). Any failure throws
    /// before the new head is saved. `prune` keeps only these entries' leaves in the trust file.
    func verifyLog(_ entries: [LogEntry], prune: Bool, prefetched: SyncLogProofs? = nil) async throws -> LogReport {
        if unsafeSkipTransparencyLogForBenchmark {
            return LogReport(logKey: "", pinnedNow: false, treeSize: 0, rootHash: "", previousTreeSize: nil, consistencyProofVerified: false,
                             inclusionProofs: 0, inclusionCached: 0, vaultSummaries: 0, itemDetails: 0, publicKeys: 0)
        }
        let started = DispatchTime.now().uptimeNanoseconds
        defer { timings.add("log", since: started) }
        // A sync answer may carry the head and proofs (read in its transaction): they are
        // checked exactly as fetched ones, and whatever they lack is fetched.
        let served: LogCheckpointResponse
        do {
            if let prefetched { served = prefetched.head } else {
                served = try await http.getJSON(LogCheckpointResponse.self, LatchRoutes.logCheckpoint)
            }
        } catch var e as LatchError {
            e.message = "cannot fetch the transparency log tree head, so nothing served can be verified: " + e.message
            throw e
        }
        let source = configuration.logKeySource.map { $0 == .explicit ? "--log-key" : $0.description } ?? "--log-key"
        let explicit = configuration.logKey.map { (key: $0, source: source) }
        var (state, pinnedNow) = try LogVerifier.pinned(trust: try trustFile.load(), explicit: explicit, trustPath: trustPath)
        if pinnedNow, explicit != nil { try trustFile.save(state, durably: true) }   // an explicit pin holds even if this run fails
        let verifier = try LogVerifier.verifier(&state, served: served.logKey, pinnedNow: pinnedNow, explicitSource: explicit?.source,
                                                trustPath: trustPath, parse: parsedLogKey)
        let head = try LogVerifier.openHead(served, verifier: verifier, verifiedBefore: reuseEarlierChecks ? state.checkpoint : nil)
        if pinnedNow, explicit == nil { try trustFile.save(state, durably: true) }   // trust on first use: the key whose signature verified
        let size = Int64(head.size)
        timings.add("log.head", since: started)   // sub-phases of "log", for latch-bench sync

        var consistencyVerified = false
        var consistencyProof: [MerkleHash] = []
        if LogVerifier.needsConsistencyProof(from: state, to: head) {
            var response = prefetched.flatMap { $0.consistencyFrom == state.treeSize ? LogProofResponse(proof: $0.consistency) : nil }
            if response == nil {
                response = try await http.getJSON(LogProofResponse.self, LatchRoutes.logConsistency(from: state.treeSize, to: size))
            }
            consistencyProof = try LogVerifier.hashes(response ?? LogProofResponse(proof: []), what: "consistency")
            consistencyVerified = true
        }
        try LogVerifier.checkConsistency(from: state, to: head, proof: consistencyProof)

        let leavesStarted = DispatchTime.now().uptimeNanoseconds
        var newLeaves: [Int64: (leaf: LogLeaf, hash: MerkleHash)] = [:]
        var checked: [Int64: (LogEntry, MerkleHash)] = [:]
        var toProve: [(entry: LogEntry, index: Int64, leaf: MerkleHash)] = []
        var cached = 0
        for e in entries {
            let index = try LogVerifier.index(of: e, in: head)
            let leaf: MerkleHash
            if !prune, let hit = lock.withLock({ leafHashMemo[index] }), hit.leaf == e.leaf { leaf = hit.hash } else {
                leaf = try LogVerifier.leafHash(e)
                newLeaves[index] = (e.leaf, leaf)
            }
            if let (other, h) = checked[index] {
                guard h == leaf else {
                    throw LogVerifier.fail("\(e.what) is not in the transparency log: it claims leaf \(index), which holds \(other.what)")
                }
                continue
            }
            checked[index] = (e, leaf)
            if reuseEarlierChecks, state.verified[index] == leaf { cached += 1; continue }
            toProve.append((e, index, leaf))
        }
        lock.withLock {
            if prune { leafHashMemo = checked.mapValues { ($0.0.leaf, $0.1) } } else { leafHashMemo.merge(newLeaves) { $1 } }
        }
        let proofsStarted = DispatchTime.now().uptimeNanoseconds
        timings.add("log.leaves", since: leavesStarted)
        var given: [Int64: [MerkleHash]] = [:]
        if let batch = prefetched?.inclusion, batch.treeSize == size {
            let hashes = try LogVerifier.hashes(LogProofResponse(proof: batch.hashes), what: "inclusion")
            for p in batch.proofs where p.path.allSatisfy({ hashes.indices.contains($0) }) { given[p.leafIndex] = p.path.map { hashes[$0] } }
        }
        let missing = toProve.map(\.index).filter { given[$0] == nil }
        if !missing.isEmpty {
            for (i, proof) in zip(missing, try await inclusionProofs(missing, treeSize: size)) { given[i] = proof }
        }
        for p in toProve {
            try LogVerifier.checkInclusion(p.entry, leafHash: p.leaf, index: p.index, head: head, proof: given[p.index] ?? [])
        }
        timings.add("log.proofs", since: proofsStarted)

        var next = state
        next.treeSize = size
        next.rootHash = head.root.base64
        next.checkpoint = served.checkpoint
        var grew = false
        if prune { next.verified = checked.mapValues(\.1) } else {
            for (index, (_, leaf)) in checked where next.verified[index] != leaf { next.verified[index] = leaf; grew = true }
        }
        let saveStarted = DispatchTime.now().uptimeNanoseconds
        let changed = pinnedNow || grew || next.treeSize != state.treeSize || next.checkpoint != state.checkpoint
            || (prune && next.verified != state.verified)
        if changed { try trustFile.save(next) }   // written behind the caller; an unchanged head is not rewritten
        timings.add("log.save", since: saveStarted)
        let kinds = checked.values.map(\.0.kind)
        return LogReport(logKey: state.logKey, pinnedNow: pinnedNow, treeSize: size, rootHash: head.root.base64,
                         previousTreeSize: state.treeSize > 0 ? state.treeSize : nil, consistencyProofVerified: consistencyVerified,
                         inclusionProofs: toProve.count, inclusionCached: cached,
                         vaultSummaries: kinds.filter { $0 == .vaultSummary }.count, itemDetails: kinds.filter { $0 == .itemDetail }.count,
                         publicKeys: kinds.filter { $0 == .publicKey }.count, writerSets: kinds.filter { $0 == .vaultWriters }.count)
    }

    /// Memos of pure functions over what was served (issue 5, performance): a detail's log entry
    /// by item (reused only for the identical envelope text and index), a detail's
    /// decoded envelope by item (only for the identical text), and a leaf's hash by index (only
    /// for an equal leaf). Never a record of what was verified.
    private var detailEntryMemo: [String: (vaultId: String, envelope: String, entry: LogEntry)] = [:]
    private var detailEnvelopeMemo: [String: (text: String, envelope: SignedEnvelope<ItemDetailCheckpoint>)] = [:]
    /// How many items the per-item memos hold (tests).
    var detailMemoCounts: (entries: Int, envelopes: Int) { lock.withLock { (detailEntryMemo.count, detailEnvelopeMemo.count) } }
    private var leafHashMemo: [Int64: (leaf: LogLeaf, hash: MerkleHash)] = [:]
    private var logKeyMemo: (text: String, verifier: NoteVerifier)?

    /// The pinned log key's text parsed, memoised (the parse checks the key id's hash).
    private func parsedLogKey(_ text: String) throws -> NoteVerifier {
        if let hit = lock.withLock({ logKeyMemo }), hit.text == text { return hit.verifier }
        let verifier = try NoteVerifier(keyString: text)
        lock.withLock { logKeyMemo = (text, verifier) }
        return verifier
    }

    /// Set when the server has no batch route (`POST …/transparency/proof/inclusion`): proofs are
    /// then fetched one leaf at a time.
    private var batchProofsUnsupported: Bool {
        get { lock.withLock { _batchProofsUnsupported } }
        set { lock.withLock { _batchProofsUnsupported = newValue } }
    }
    private var _batchProofsUnsupported = false

    /// The inclusion proofs of `indexes` in the tree of `treeSize` leaves, in order: one
    /// `POST …/transparency/proof/inclusion` per `LogInclusionBatchRequest.maxLeaves` leaves;
    /// from a server without that route, one `GET` per leaf (at most 8 at a time).
    func inclusionProofs(_ indexes: [Int64], treeSize size: Int64) async throws -> [[MerkleHash]] {
        if indexes.isEmpty { return [] }
        if !batchProofsUnsupported {
            var out: [[MerkleHash]] = []
            out.reserveCapacity(indexes.count)
            do {
                for start in stride(from: 0, to: indexes.count, by: LogInclusionBatchRequest.maxLeaves) {
                    let chunk = Array(indexes[start..<min(indexes.count, start + LogInclusionBatchRequest.maxLeaves)])
                    let r = try await http.postJSON(LogInclusionBatchResponse.self, LatchRoutes.logInclusionBatch,
                                                    body: LogInclusionBatchRequest(treeSize: size, leafIndexes: chunk))
                    out += try LogVerifier.batchProofs(r, asked: chunk, treeSize: size)
                }
                return out
            } catch let e as LatchError where out.isEmpty && (e.status == 404 || e.status == 405) {
                batchProofsUnsupported = true   // an older server: fall back to one proof per request
            }
        }
        let http = self.http
        var proofs = [[MerkleHash]](repeating: [], count: indexes.count)
        try await withThrowingTaskGroup(of: (Int, LogProofResponse).self) { group in
            var next = 0
            while next < min(8, indexes.count) {
                let k = next, index = indexes[k]
                group.addTask { (k, try await http.getJSON(LogProofResponse.self, LatchRoutes.logInclusion(leafIndex: index, treeSize: size))) }
                next += 1
            }
            while let (k, r) = try await group.next() {
                proofs[k] = try LogVerifier.hashes(r, what: "inclusion")
                if next < indexes.count {
                    let k2 = next, index = indexes[k2]
                    group.addTask { (k2, try await http.getJSON(LogProofResponse.self, LatchRoutes.logInclusion(leafIndex: index, treeSize: size))) }
                    next += 1
                }
            }
        }
        return proofs
    }

    /// Checks that a member key this client is about to wrap a vault key to is in the log.
    /// Vouches for a member key before a vault key is wrapped to it: the key is in the
    /// transparency log, and it is the key this profile pinned for that member (or reached from
    /// it by the member's signed rotations), so a server cannot substitute a key of its own,
    /// even one it also logged.
    func verifyLogged(_ k: MemberKey) async throws {
        var next = lock.withLock { seen }
        try next.acceptMemberKey(try Self.directoryKey(k, vaultLabel: "recipient \(k.name)"), vaultLabel: "recipient \(k.name)")
        _ = try await verifyLog([.key(tenantId: tenantId, principalId: k.principalId, name: k.name, keyId: k.keyId, index: k.logIndex,
                                      role: "recipient")], prune: false)
        let pinned = next.memberKeys ?? [:]
        let (saved, changed) = lock.withLock { () -> (SeenState, Bool) in
            let before = seen.memberKeys
            seen.memberKeys = (seen.memberKeys ?? [:]).merging(pinned) { _, n in n }
            return (seen, seen.memberKeys != before)
        }
        if changed { persistSeen(saved) }
    }

    /// Pins the log key (first use or `--log-key`) and checks this client's own key is logged.
    @discardableResult
    public func pinLog() async throws -> LogReport {
        let report = try await verifyLog(ownKeyEntries(), prune: false)
        lastLogReport = report
        return report
    }

    /// Writes the profile's transparency-log trust state (`log.json`) now, if a sync left an
    /// update pending. Otherwise it is written shortly after each sync, and at process exit.
    public func flushLogTrust() throws {
        try trustFile.flush()
    }

    /// `latch verify`: a full sync that proves every accepted entry's inclusion afresh (no leaf
    /// taken from an earlier run), consistency with the last verified head, and every vault.
    /// The signed tree head this profile verified last (a signed note another client can
    /// check with `compareWitness`), or nil before the first verification.
    public func verifiedHead() throws -> String? {
        try trustFile.load()?.checkpoint
    }

    /// Compares this profile's verified tree head with `note`, another client's signed tree head
    /// (run after `verifyEverything`): refuses a note the pinned key did not sign, and a pair of
    /// heads that are not views of one log (split view).
    public func compareWitness(_ note: String) async throws -> (witnessSize: Int64, ownSize: Int64) {
        guard let trust = try trustFile.load(), let own = trust.checkpoint else {
            throw LatchError(.usage, "this profile has not verified a tree head yet", hint: "run `latch verify` first")
        }
        let verifier: NoteVerifier
        do { verifier = try NoteVerifier(keyString: trust.logKey) } catch {
            throw LatchError(.configuration, "the pinned log key \(trust.logKey) is not a note verifier key (\(error))")
        }
        let mine = try Checkpoint.open(own, origin: verifier.name, verifiers: [verifier])
        let witness = try LogVerifier.openWitness(note, verifier: verifier)
        var proof: [MerkleHash] = []
        if witness.size != mine.size, min(witness.size, mine.size) > 0 {
            proof = try LogVerifier.hashes(try await http.getJSON(LogProofResponse.self, LatchRoutes.logConsistency(
                from: Int64(min(witness.size, mine.size)), to: Int64(max(witness.size, mine.size)))), what: "consistency")
        }
        try LogVerifier.checkWitness(witness, against: mine, proof: proof)
        return (Int64(witness.size), Int64(mine.size))
    }

    public func verifyEverything() async throws -> LogReport {
        reuseEarlierChecks = false
        defer { reuseEarlierChecks = true }
        lock.withLock { syncCursor = nil }
        try await refresh()
        guard let report = lastLogReport else { throw LatchError(.other, "no transparency log report") }
        return report
    }

    // MARK: raw access

    /// A raw machine-API request (`path` under the base URL, e.g. `/api/v1/machine/me`, or
    /// relative to `/api/v1/machine` when it does not start with `/api/`).
    public func request(method: String, path: String, body: Data? = nil) async throws -> Data {
        let full = path.hasPrefix("/api/") || path == "/healthz" ? path : LatchRoutes.machine + (path.hasPrefix("/") ? path : "/" + path)
        return try await http.send(method: method, path: full, body: body)
    }
}

extension LatchHTTPClient {
    public func getJSON<T: Decodable>(_ type: T.Type, _ path: String) async throws -> T {
        try decodeWire(type, try await send(method: "GET", path: path), path: path)
    }

    public func postJSON<T: Decodable>(_ type: T.Type, _ path: String, body: some Encodable, method: String = "POST") async throws -> T {
        let data = try LatchJSON.encoder().encode(body)
        return try decodeWire(type, try await send(method: method, path: path, body: data), path: path)
    }

    /// The sync answer and what it carries, read directly when they can be (see `DirectWireDecodable`).
    func getJSON<T: DirectWireDecodable>(_ type: T.Type, _ path: String) async throws -> T {
        let data = try await send(method: "GET", path: path)
        if let direct = T.readDirect(data) { return direct }
        return try decodeWire(type, data, path: path)
    }

    func decodeWire<T: Decodable>(_ type: T.Type, _ data: Data, path: String) throws -> T {
        do {
            return try LatchJSON.decoder().decode(type, from: data)
        } catch {
            throw LatchError(.invalidResponse, "unexpected answer to \(path): \(Self.describe(error))",
                             hint: "the server and client versions may not match")
        }
    }
}
