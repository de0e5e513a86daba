import Foundation
import LatchCrypto

/// Who is calling: the principal, the API key it used, its tenant and where it came from.
public struct AuthContext: Sendable {
    public var principal: Principal
    public var apiKey: APIKeyRecord
    public var tenant: Tenant
    public var source: String?

    public func require(_ permission: String) throws(DomainError) {
        guard apiKey.permissions.contains(permission) else { throw .missingPermission(permission) }
    }

    /// Refuses a key that does not act as its principal's cryptographic identity (a TENANT
    /// administration key) on a route that changes that identity.
    public func requireIdentityKey(_ what: String) throws(DomainError) {
        guard apiKey.scope == .user || apiKey.scope == .agent else {
            throw .forbidden("\(what) needs the principal's own USER or AGENT key, not a \(apiKey.scope.rawValue) key")
        }
    }
}

/// A freshly made API key: the stored record and the one-time `{accessKey}.{secret}` string.
public struct IssuedAPIKey: Sendable {
    public var record: APIKeyRecord
    public var apiKey: String
}

/// The use cases. Takes a store, a clock and randomness; returns domain values or `DomainError`.
public struct LatchService: Sendable {
    public let store: any LatchStore
    public let clock: any Clock
    public let random: any RandomSource
    let audit: AuditBatcher
    let authCache: AuthCache
    let readCache = ReadCache()

    /// `authCacheSeconds`: how long a verified API key's principal is reused without a store
    /// read (0 = never). A change to the key or principal takes at most this long to apply.
    public init(store: any LatchStore, clock: any Clock = SystemClock(), random: any RandomSource = SystemRandomSource(),
                authCacheSeconds: Double = 5) {
        self.store = store; self.clock = clock; self.random = random
        audit = AuditBatcher(store: store, clock: clock)
        authCache = AuthCache(ttl: authCacheSeconds)
    }

    /// Forgets cached authentications (call after revoking a key or archiving a principal).
    public func invalidateAuthCache() async { authCache.clear() }

    // MARK: helpers

    static func isId(_ s: String) -> Bool {
        let c = Array(s.utf8)
        guard c.count == 36 else { return false }
        for (i, b) in c.enumerated() {
            if [8, 13, 18, 23].contains(i) { if b != UInt8(ascii: "-") { return false } } else if !((b >= 48 && b <= 57) || (b >= 97 && b <= 102)) { return false }
        }
        return true
    }
    static func checkId(_ s: String, _ what: String) throws(DomainError) {
        guard isId(s) else { throw .invalidId("\(what) '\(s.prefix(64))' is not a lowercase UUID") }
    }

    func base64url(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    func issueKey(principal: Principal, scope: APIKeyScope, permissions: [String], expiresAt: Date? = nil,
                  tx: any StoreTransaction) async throws -> IssuedAPIKey {
        let access = "lk_" + random.bytes(10).map { String(format: "%02x", $0) }.joined()
        let secret = base64url(random.bytes(32))
        let rec = APIKeyRecord(accessKey: access, principalId: principal.id, tenantId: principal.tenantId, scope: scope,
                               secretHash: Hashing.sha256Hex(secret), permissions: permissions, createdAt: clock.now(), revoked: false,
                               expiresAt: expiresAt)
        try await tx.insertAPIKey(rec)
        return IssuedAPIKey(record: rec, apiKey: "\(access).\(secret)")
    }

    func parseKey(_ pem: String) throws(DomainError) -> PrincipalPublicKey {
        do { return try PrincipalPublicKey(pem: pem) } catch {
            throw .invalidPublicKey("publicKey is not an RSA public key PEM of 2048-4096 bits (\(error)); send an SPKI \"PUBLIC KEY\" PEM")
        }
    }

    /// Runs `body` in one write transaction with an audit event appended on success; on a
    /// domain error, records a failed event (in its own transaction) and rethrows. With `read`,
    /// runs it in a read transaction instead (`answerRead`).
    func perform<T: Sendable>(
        _ ctx: AuthContext?, require permission: String? = nil, _ action: String, assetType: String? = nil, assetId: String? = nil,
        read: Bool = false, cacheKey: String? = nil,
        _ body: @Sendable @escaping (any StoreTransaction) async throws -> (T, String?)
    ) async throws -> T {
        let now = clock.now()
        @Sendable func draft(_ outcome: String, _ detail: String?) -> AuditDraft {
            AuditDraft(time: now, tenantId: ctx?.tenant.id, action: action, outcome: outcome, principalId: ctx?.principal.id,
                       accessKey: ctx?.apiKey.accessKey, assetType: assetType, assetId: assetId, source: ctx?.source, detail: detail)
        }
        do {
            if let permission, let ctx { try ctx.require(permission) }
            if read {
                let key = cacheKey.map { "\(action) \(ctx?.apiKey.accessKey ?? "-") \($0)" }
                return try await answerRead(reuse: key, audit: { draft("success", $0) }, body)
            }
            return try await store.write { tx in
                let (result, detail) = try await body(tx)
                try await tx.appendAudit([draft("success", detail)])
                return result
            }
        } catch let e as DomainError {
            if read { try? await auditRead(draft(e.code, nil)) } else { _ = try? await audit.append(draft(e.code, nil)) }
            throw e
        }
    }

    /// A read use case's answer, its audit event recorded before it is returned: in the store's
    /// read-audit journal, where it survives a crash of the server at once and a power loss
    /// within a fraction of a second (it joins the chain shortly after), or else in the next
    /// group commit, with deferred durability.
    ///
    /// A read with a `reuse` key (the use case and its arguments, the API key among them) may be
    /// answered from `readCache` instead of a read transaction, in one of two ways:
    /// - the store has a local `commitVersion()` (SQLite's WAL index, the memory store): a
    ///   result is kept when the version was the same before and after its read transaction,
    ///   and given again while the version has not moved;
    /// - otherwise, on a store whose audit group commit checks a data version (PostgreSQL,
    ///   `AuditBatchResult`): a result is kept when the batch that recorded its read saw the
    ///   same data version as the last batch before the read, and given again when the
    ///   request's audit event, appended on the condition that the version is still that one,
    ///   is appended; if it is not, the request reads afresh.
    /// The caller checks permissions before either; every answer, reused or not, is audited.
    func answerRead<T: Sendable>(reuse key: String?, audit event: (String?) -> AuditDraft,
                                 _ body: @Sendable @escaping (any StoreTransaction) async throws -> (T, String?)) async throws -> T {
        if let key, let version = store.commitVersion() {
            let (result, detail): (T, String?)
            if let hit = readCache.value(key, version: version, as: (T, String?).self) {
                (result, detail) = hit
            } else {
                (result, detail) = try await store.read(body)
                if store.commitVersion() == version { readCache.put(key, version: version, (result, detail)) }
            }
            try await auditRead(event(detail))
            return result
        }
        guard let key, store.readAuditJournal == nil else {
            let (result, detail) = try await store.read(body)
            try await auditRead(event(detail))
            return result
        }
        if let hit = readCache.entry(key, as: (T, String?).self),
           try await audit.append(event(hit.value.1), read: true, expecting: hit.version).appended {
            return hit.value.0
        }
        let before = audit.dataVersion
        let (result, detail) = try await store.read(body)
        let seen = try await audit.append(event(detail), read: true).dataVersion
        if let before, seen == before { readCache.put(key, version: before, (result, detail)) }
        return result
    }

    /// Records a read's audit event: in the store's read-audit journal when it has one, else in
    /// the group commit (deferred durability).
    func auditRead(_ d: AuditDraft) async throws {
        if let journal = store.readAuditJournal { try journal.record(d) } else { try await audit.append(d, read: true) }
    }

    func change(_ tx: any StoreTransaction, _ tenantId: String, _ kind: ChangeRecord.Kind, _ id: String, vault: String?) async throws {
        _ = try await tx.appendChange(tenantId: tenantId, kind: kind, entityId: id, vaultId: vault)
    }

    // MARK: bootstrap

    /// On a store that was never bootstrapped, makes a fresh one-time token (stored only as a
    /// hash, replacing any earlier one) and returns it; returns nil once bootstrapped.
    public func prepareBootstrap() async throws -> String? {
        let token = "lbt_" + base64url(random.bytes(32))
        return try await store.write { tx in
            if try await tx.setting("bootstrapped") == "1" { return nil }
            try await tx.setSetting("bootstrap_token_sha256", Hashing.sha256Hex(token))
            return token
        }
    }

    public struct BootstrapResult: Sendable {
        public var organisation: Organisation
        public var tenant: Tenant
        public var user: Principal
        public var key: PublicKeyRecord
        public var apiKey: IssuedAPIKey
    }

    public func bootstrap(token: String, publicKeyPEM: String, organisationName: String, tenantName: String,
                          userName: String, source: String?) async throws -> BootstrapResult {
        let now = clock.now()
        let ids = (random.uuid(), random.uuid(), random.uuid())
        do {
            return try await store.write { tx in
                if try await tx.setting("bootstrapped") == "1" {
                    throw DomainError(.conflict, code: "already_bootstrapped", "this server is already bootstrapped; use an API key")
                }
                guard let stored = try await tx.setting("bootstrap_token_sha256"),
                      Hashing.constantTimeEqual(stored.utf8, Hashing.sha256Hex(token).utf8) else {
                    throw DomainError(.unauthenticated, code: "bootstrap_token_invalid",
                                      "the bootstrap token is wrong; use the one in <data-dir>/bootstrap-token")
                }
                for (n, v) in [("organisationName", organisationName), ("tenantName", tenantName), ("userName", userName)]
                where v.trimmingCharacters(in: .whitespaces).isEmpty || v.count > 200 {
                    throw DomainError.invalid("\(n) must be 1-200 characters")
                }
                let pk = try self.parseKey(publicKeyPEM)
                let org = Organisation(id: ids.0, name: organisationName, createdAt: now, foundingTenantId: ids.1)
                let tenant = Tenant(id: ids.1, organisationId: org.id, name: tenantName, createdAt: now)
                let user = Principal(id: ids.2, tenantId: tenant.id, type: .user, name: userName, role: .tenantAdmin,
                                     createdAt: now, createdBy: nil, archived: false)
                let key = PublicKeyRecord(keyId: pk.keyId, principalId: user.id, tenantId: tenant.id, pem: pk.pem,
                                          status: .active, createdAt: now, retiredAt: nil)
                try await tx.insertOrganisation(org)
                try await tx.insertTenant(tenant)
                try await tx.putPrincipal(user)
                try await tx.putPublicKey(try await self.logged(key, tx))
                let issued = try await self.issueKey(principal: user, scope: .user, permissions: MachinePermission.all, tx: tx)
                try await tx.setSetting("bootstrap_token_sha256", nil)
                try await tx.setSetting("bootstrapped", "1")
                try await self.change(tx, tenant.id, .principal, user.id, vault: nil)
                try await self.change(tx, tenant.id, .publicKey, key.keyId, vault: nil)
                try await tx.appendAudit(time: now, tenantId: tenant.id, action: "bootstrap", outcome: "success", principalId: user.id,
                                         accessKey: issued.record.accessKey, assetType: "TENANT", assetId: tenant.id, source: source,
                                         detail: "keyId=\(key.keyId)")
                return BootstrapResult(organisation: org, tenant: tenant, user: user, key: key, apiKey: issued)
            }
        } catch let e as DomainError {
            _ = try? await store.write { tx in
                try await tx.appendAudit(time: now, tenantId: nil, action: "bootstrap", outcome: e.code, principalId: nil,
                                         accessKey: nil, source: source)
            }
            throw e
        }
    }

    // MARK: authentication

    /// Resolves `{accessKey}.{secret}`. Unknown, revoked or wrong keys are audited and refused
    /// with one indistinguishable error.
    public func authenticate(apiKey raw: String, source: String?) async throws -> AuthContext {
        let parts = raw.split(separator: ".", maxSplits: 1).map(String.init)
        let access = parts.first ?? ""
        let secret = parts.count == 2 ? parts[1] : ""
        let secretHash = Hashing.sha256Hex(secret)
        let now = clock.now()
        if parts.count == 2, var cached = authCache.get(access, now: now), cached.apiKey.isLive(at: now),
           Hashing.constantTimeEqual(cached.apiKey.secretHash.utf8, secretHash.utf8) {
            cached.source = source
            return cached
        }
        let generation = authCache.currentGeneration()
        let found: AuthContext? = try await store.read { tx in
            guard parts.count == 2, access.count <= 64, let key = try await tx.apiKey(accessKey: access) else { return nil }
            let ok = Hashing.constantTimeEqual(key.secretHash.utf8, secretHash.utf8)
            guard ok, key.isLive(at: now), let p = try await tx.principal(key.principalId), !p.archived,
                  let t = try await tx.tenant(key.tenantId), p.tenantId == t.id else { return nil }
            return AuthContext(principal: p, apiKey: key, tenant: t, source: source)
        }
        guard let ctx = found else {
            _ = try? await store.write { tx in
                let known = try await tx.apiKey(accessKey: access)
                try await tx.appendAudit(time: now, tenantId: known?.tenantId, action: "auth", outcome: "invalid_api_key",
                                         principalId: known?.principalId, accessKey: String(access.prefix(64)), source: source)
            }
            throw DomainError.invalidAPIKey()
        }
        authCache.put(access, ctx, now: clock.now(), generation: generation)
        return ctx
    }

    // MARK: identity

    public struct Me: Sendable {
        public var principal: Principal
        public var apiKey: APIKeyRecord
        public var tenant: Tenant
        public var organisation: Organisation?
        public var activeKey: PublicKeyRecord?
    }

    public func me(_ ctx: AuthContext) async throws -> Me {
        try await perform(ctx, "me", read: true) { tx in (try await self.me(tx, ctx), nil) }
    }

    func me(_ tx: any StoreTransaction, _ ctx: AuthContext) async throws -> Me {
        Me(principal: ctx.principal, apiKey: ctx.apiKey, tenant: ctx.tenant,
           organisation: try await tx.organisation(ctx.tenant.organisationId),
           activeKey: try await tx.activePublicKey(principalId: ctx.principal.id))
    }

    /// Registers the caller's public key. The same key again is a no-op; a different one
    /// without the rotation fields is refused (see `rotatePublicKey`).
    public func registerPublicKey(_ ctx: AuthContext, pem: String) async throws -> (PublicKeyRecord, created: Bool) {
        try await perform(ctx, "key.register", assetType: ctx.principal.type.rawValue, assetId: ctx.principal.id) { tx in
            try ctx.requireIdentityKey("registering a public key")
            let r = try await self.registerKey(tx, principal: ctx.principal, pem: pem)
            return (r, "keyId=\(r.0.keyId) created=\(r.1)")
        }
    }

    func registerKey(_ tx: any StoreTransaction, principal: Principal, pem: String) async throws -> (PublicKeyRecord, created: Bool) {
        let pk = try parseKey(pem)
        if let active = try await tx.activePublicKey(principalId: principal.id) {
            if active.keyId == pk.keyId { return (active, false) }
            throw DomainError(.conflict, code: "key_rotation_required",
                              "\(principal.type.rawValue.lowercased()) \(principal.id) already has active key \(active.keyId); a different key is a rotation: send previousEncryptionKeyId, rotationSignature and rewrappedVaultKeys with it (`latch agent rotate-key`)")
        }
        if let other = try await tx.publicKey(keyId: pk.keyId), other.principalId != principal.id || other.status == .retired {
            throw DomainError.conflict("this public key is already registered (keyId \(pk.keyId)); generate a fresh key pair")
        }
        let rec = PublicKeyRecord(keyId: pk.keyId, principalId: principal.id, tenantId: principal.tenantId, pem: pk.pem,
                                  status: .active, createdAt: clock.now(), retiredAt: nil)
        let logged = try await logged(rec, tx)
        try await tx.putPublicKey(logged)
        try await change(tx, principal.tenantId, .publicKey, rec.keyId, vault: nil)
        return (logged, true)
    }
}

extension LatchService {
    /// Adds a tenant with its first TENANT_ADMIN user to an existing organisation (operator
    /// tooling; over HTTP an ORG key does it: `createTenant(_:name:adminName:adminPublicKeyPEM:)`).
    /// Returns the user's USER API key once.
    public func createTenant(organisationId: String, tenantName: String, adminName: String,
                             adminPublicKeyPEM: String) async throws -> BootstrapResult {
        try await store.write { tx in
            try await self.addTenant(tx, organisationId: organisationId, tenantName: tenantName, adminName: adminName,
                                     adminPublicKeyPEM: adminPublicKeyPEM)
        }
    }

    func addTenant(_ tx: any StoreTransaction, organisationId: String, tenantName: String, adminName: String,
                   adminPublicKeyPEM: String) async throws -> BootstrapResult {
        let now = clock.now()
        let ids = (random.uuid(), random.uuid())
        guard let org = try await tx.organisation(organisationId) else { throw DomainError.notFound("organisation \(organisationId) does not exist") }
        try validName(tenantName, "tenant name")
        try validName(adminName, "user name")
        let pk = try parseKey(adminPublicKeyPEM)
        let tenant = Tenant(id: ids.0, organisationId: org.id, name: tenantName, createdAt: now)
        let user = Principal(id: ids.1, tenantId: tenant.id, type: .user, name: adminName, role: .tenantAdmin,
                             createdAt: now, createdBy: nil, archived: false)
        try await tx.insertTenant(tenant)
        try await tx.putPrincipal(user)
        let key = try await registerKey(tx, principal: user, pem: pk.pem).0
        let issued = try await issueKey(principal: user, scope: .user, permissions: MachinePermission.all, tx: tx)
        try await change(tx, tenant.id, .principal, user.id, vault: nil)
        try await tx.appendAudit(time: now, tenantId: tenant.id, action: "tenant.create", outcome: "success", principalId: user.id,
                                 accessKey: issued.record.accessKey, assetType: "TENANT", assetId: tenant.id)
        return BootstrapResult(organisation: org, tenant: tenant, user: user, key: key, apiKey: issued)
    }
}

/// Group commit for audit events that are not part of a write: concurrent callers' events are
/// appended to the chain in one write transaction, and each caller resumes only once its event
/// is committed. A batch holding only the events of reads (`read: true`) is committed with
/// `.deferred` durability; a batch with any other event (a refused write, a failed sign-in) with
/// `.full`.
///
/// No task or actor of its own: the caller that finds no commit running commits the batch
/// itself (its own event and any queued), and when others queued meanwhile it hands the next
/// batch to the first of them. A leader of reads may first wait a little for more callers
/// (`ReadBatchHold`); the caller whose arrival completes the batch ends that wait, or a timer
/// task does.
///
/// An event may expect a data version (`AuditBatchResult`): it is then appended only if the
/// store's data version is still that one, and its caller learns which.
final class AuditBatcher: @unchecked Sendable {
    struct Draft { var event: AuditDraft; var read: Bool; var expecting: UInt64? }
    /// What a caller gets back: whether its event was appended, and the batch's data version.
    typealias Outcome = (appended: Bool, dataVersion: UInt64?)
    /// A queued caller is resumed with its outcome once its batch is committed, or with nil
    /// when it is to lead the next one.
    typealias Waiter = (draft: Draft, resume: CheckedContinuation<Outcome?, any Error>)
    /// A leader waiting for its read batch to grow: released by the caller that brings the
    /// queue to `size` or whose event is not a read's, or by the timer of the same `round`.
    typealias Held = (round: Int, size: Int, resume: CheckedContinuation<Void, Never>)
    let store: any LatchStore
    let clock: any Clock
    private let lock = NSLock()
    private var queue: [Waiter] = []
    private var committing = false
    private var lastDataVersion: UInt64?
    private var hold: ReadBatchHold
    private var held: Held?
    private var holdRounds = 0

    init(store: any LatchStore, clock: any Clock, hold: ReadBatchHold = ReadBatchHold()) {
        self.store = store; self.clock = clock; self.hold = hold
    }

    /// The data version the last committed batch saw (nil before the first, or when the store
    /// keeps none).
    var dataVersion: UInt64? { lock.withLock { lastDataVersion } }

    /// How many callers wait in the queue for the next batch.
    var queued: Int { lock.withLock { queue.count } }
    /// Whether a leader is holding its read batch.
    var holding: Bool { lock.withLock { held != nil } }

    @discardableResult
    func append(_ d: AuditDraft, read: Bool = false, expecting: UInt64? = nil) async throws -> Outcome {
        let draft = Draft(event: d, read: read, expecting: expecting)
        let lead = lock.withLock { () -> Bool in
            if committing { return false }
            committing = true
            return true
        }
        if !lead {
            let outcome = try await withCheckedThrowingContinuation { (c: CheckedContinuation<Outcome?, any Error>) in
                let (leadNow, release) = lock.withLock { () -> (Bool, Held?) in
                    if !committing { committing = true; return (true, nil) }
                    queue.append((draft, c))
                    guard let h = held, queue.count + 1 >= h.size || !read else { return (false, nil) }
                    held = nil
                    return (false, h)
                }
                release?.resume.resume()
                if leadNow { c.resume(returning: nil) }
            }
            if let outcome { return outcome }
        }
        if read { await holdForBatch() }
        return try await commit(own: draft)
    }

    /// Waits, when `ReadBatchHold` says so, until the queue and the leader make a full batch or
    /// the hold's time is up.
    private func holdForBatch() async {
        guard let (size, wait) = lock.withLock({ hold.next }) else { return }
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let round = lock.withLock { () -> Int? in
                // A full batch, or one with an event that is not a read's (it never waits), goes now.
                guard queue.count + 1 < size, queue.allSatisfy(\.draft.read) else { return nil }
                holdRounds &+= 1
                held = (holdRounds, size, c)
                return holdRounds
            }
            guard let round else { return c.resume() }
            Task { [clock] in
                await clock.sleep(nanoseconds: wait)
                let h = self.lock.withLock { () -> Held? in
                    guard let h = self.held, h.round == round else { return nil }
                    self.held = nil
                    return h
                }
                h?.resume.resume()
            }
        }
    }

    /// Commits `own` with everything queued, resumes those waiters, and passes the lead on.
    private func commit(own: Draft) async throws -> Outcome {
        let batch = lock.withLock { () -> [Waiter] in let b = queue; queue = []; return b }
        let drafts = [own] + batch.map(\.draft)
        let durability: CommitDurability = drafts.allSatisfy(\.read) ? .deferred : .full
        let result: Result<AuditBatchResult, any Error>
        do {
            let r = try await store.appendAuditBatch(drafts.map(\.event), expecting: drafts.map(\.expecting), durability: durability)
            guard r.appended.count == drafts.count else { throw StoreError(.corrupt, "the audit group commit answered for \(r.appended.count) of \(drafts.count) events") }
            result = .success(r)
        } catch { result = .failure(error) }
        let next = lock.withLock { () -> Waiter? in
            if case .success(let r) = result {
                lastDataVersion = r.dataVersion
                if let first = r.events.first, let last = r.events.last {
                    hold.committed(first: first.seq, last: last.seq, size: drafts.count)
                }
            }
            if queue.isEmpty { committing = false; return nil }
            return queue.removeFirst()
        }
        for (i, w) in batch.enumerated() {
            switch result {
            case .success(let r): w.resume.resume(returning: (r.appended[i + 1], r.dataVersion))
            case .failure(let e): w.resume.resume(throwing: e)
            }
        }
        next?.resume.resume(returning: nil)
        let r = try result.get()
        return (r.appended[0], r.dataVersion)
    }
}

/// When a read batch waits for more callers before its group commit. Pure: it sees only the
/// sequence numbers of the batches it is told about.
///
/// Several replicas on one PostgreSQL database each commit their read batches once per round
/// trip, as one replica alone would, so with two the database makes twice the commits, each
/// half as large, and its cost is mostly per commit. A replica learns that it shares the chain
/// from the gap between its consecutive batches' sequence numbers (events others appended in
/// between). When its last batch had such a gap and more than one event (it is busy, not
/// serving one read at a time), its next read batch waits until it has `size` events or `wait`
/// nanoseconds have passed. Alone, or with no concurrency of its own, it never waits. A write
/// transaction's events also make a gap; they cost at most one held batch.
struct ReadBatchHold: Sendable {
    /// The events a held batch waits for. Under load a PostgreSQL group commit costs about
    /// 200 µs of CPU in the database and as much in the replica whatever its size, so each read
    /// of an 8-event batch carries about 50 µs of it; 8 is also what one replica alone batches
    /// at 16 connections on the benchmark machine (docs/benchmarks.md, issue 7).
    var size: Int
    /// The longest a batch waits, in nanoseconds: 0.5 ms, about one group commit's round trip
    /// under load, so a read waits at most about twice as long as it would without the hold.
    var wait: UInt64
    private var lastSeq: Int64?
    private var engaged = false

    init(size: Int = 8, wait: UInt64 = 500_000) { self.size = size; self.wait = wait }

    /// What the next read batch waits for: nil, send at once.
    var next: (size: Int, wait: UInt64)? { engaged ? (size, wait) : nil }

    /// Takes in a committed batch: the sequence numbers of its first and last appended events
    /// and how many events it carried.
    mutating func committed(first: Int64, last: Int64, size batch: Int) {
        engaged = lastSeq.map { first > $0 + 1 } == true && batch > 1
        lastSeq = last
    }
}

/// Verified API keys, briefly remembered so a busy agent's requests skip the key lookup. A
/// lock, not an actor: every authenticated request passes here. `clear` bumps a generation so a
/// lookup that started before it (and read the key before a revocation committed) cannot put
/// its stale context back afterwards.
final class AuthCache: @unchecked Sendable {
    let ttl: Double
    private let lock = NSLock()
    private var entries: [String: (AuthContext, Date)] = [:]
    private var generation = 0
    init(ttl: Double) { self.ttl = ttl }
    func get(_ access: String, now: Date) -> AuthContext? {
        guard ttl > 0 else { return nil }
        return lock.withLock {
            guard let (ctx, at) = entries[access] else { return nil }
            guard now.timeIntervalSince(at) < ttl, now >= at else { entries[access] = nil; return nil }
            return ctx
        }
    }
    /// The generation to hand back to `put` (taken before the store read).
    func currentGeneration() -> Int { lock.withLock { generation } }
    func put(_ access: String, _ ctx: AuthContext, now: Date, generation g: Int) {
        guard ttl > 0 else { return }
        lock.withLock {
            guard g == generation else { return }
            if entries.count > 10_000 { entries.removeAll() }
            entries[access] = (ctx, now)
        }
    }
    func clear() { lock.withLock { entries.removeAll(); generation &+= 1 } }
}
