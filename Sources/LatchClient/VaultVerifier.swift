import Foundation
import LatchCrypto

/// Signature checks that passed before (the `sig` entries of the client's unwrap memo).
public protocol VerifiedSignatures: AnyObject, Sendable {
    /// Whether the check named by `digest` (`SignedEnvelope.signatureDigest`) passed before.
    func check(_ digest: String) -> Bool
    /// Records that it passed.
    func record(_ digest: String)
}

/// A key in a vault's signer directory (`GET /vault/:id/public-keys`): a member's active key
/// and, when the server says, the member's access level.
public struct DirectoryKey: Sendable {
    public var principalId: String
    public var publicKey: PrincipalPublicKey
    /// `READ`, `WRITE` or `ADMIN`; nil when the server does not say.
    public var accessLevel: String?
    /// The member's name and the key's transparency-log index, as the server says.
    public var name: String?
    public var logIndex: Int64?
    /// The served rotation chain to `publicKey`, oldest first: each retired key and the
    /// rotation statement it signed.
    public var rotations: [(previous: PrincipalPublicKey, statement: SignedEnvelope<KeyRotationStatement>)] = []
    public init(principalId: String, publicKey: PrincipalPublicKey, accessLevel: String? = nil, name: String? = nil, logIndex: Int64? = nil) {
        self.principalId = principalId
        self.publicKey = publicKey
        self.accessLevel = accessLevel
        self.name = name
        self.logIndex = logIndex
    }
}

/// One served version of a vault's writer set, with its signer and the signer's key.
public struct WritersLinkMaterial: Sendable {
    public var envelope: SignedEnvelope<VaultWritersStatement>
    /// The envelope's JSON text exactly as served (its log leaf hashes these bytes).
    public var text: String
    public var signerId: String
    public var signerKey: PrincipalPublicKey
    public var signerKeyLogIndex: Int64?
    public init(envelope: SignedEnvelope<VaultWritersStatement>, text: String, signerId: String, signerKey: PrincipalPublicKey,
                signerKeyLogIndex: Int64?) {
        self.envelope = envelope; self.text = text; self.signerId = signerId; self.signerKey = signerKey
        self.signerKeyLogIndex = signerKeyLogIndex
    }
}

/// Everything the server served for one vault, before any check.
public struct VaultMaterial: Sendable {
    public struct WrappedKey: Sendable {
        public var dekVersion: Int
        public var wrappedKey: Data
        public var statement: SignedEnvelope<WrappedKeyStatement>
        public init(dekVersion: Int, wrappedKey: Data, statement: SignedEnvelope<WrappedKeyStatement>) {
            self.dekVersion = dekVersion; self.wrappedKey = wrappedKey; self.statement = statement
        }
    }
    public struct Item: Sendable {
        public var id: String
        public var detail: SignedEnvelope<ItemDetailCheckpoint>
        /// field id → envelope string as served
        public var envelopes: [String: String]
        public init(id: String, detail: SignedEnvelope<ItemDetailCheckpoint>, envelopes: [String: String]) {
            self.id = id; self.detail = detail; self.envelopes = envelopes
        }
    }
    public var vaultId: String
    public var summary: SignedEnvelope<VaultSummaryCheckpoint>
    public var wrappedKeys: [WrappedKey]
    public var items: [Item]
    public var directory: [DirectoryKey]
    /// The writer set chain, oldest first, and the newest version's log index.
    public var writers: [WritersLinkMaterial]
    public var writersLogIndex: Int64?
    public init(vaultId: String, summary: SignedEnvelope<VaultSummaryCheckpoint>, wrappedKeys: [WrappedKey],
                items: [Item], directory: [DirectoryKey], writers: [WritersLinkMaterial] = [], writersLogIndex: Int64? = nil) {
        self.vaultId = vaultId; self.summary = summary; self.wrappedKeys = wrappedKeys
        self.items = items; self.directory = directory; self.writers = writers; self.writersLogIndex = writersLogIndex
    }
}

/// A field whose name, position and value all verified.
public struct VerifiedField: Sendable {
    public var id: String
    public var name: String
    public var type: String
    public var order: Int
    public var isEnvironmentVariable: Bool
    /// The decrypted value. Never logged or printed by the library.
    public var value: String
}

public struct VerifiedItem: Sendable {
    public var id: String
    public var name: String
    public var type: String
    public var version: Int
    public var fields: [VerifiedField]
    /// The verified detail checkpoint (what the next version must follow).
    public var detail: ItemDetailCheckpoint
    /// The detail envelope as it verified (checkpoint, signer key id, signature).
    var signed: SignedEnvelope<ItemDetailCheckpoint>
    /// `detail.hash`, as computed when it verified (a canonical encoding: worth not redoing).
    var detailHash: String
}

public struct VerifiedVault: Sendable {
    public var id: String
    public var name: String
    public var summaryVersion: Int
    public var dekVersion: Int
    public var items: [VerifiedItem]
    /// The verified summary checkpoint (what the next version must follow).
    public var summary: VaultSummaryCheckpoint
    /// The verified newest writer set (what the next version must follow).
    public var writers: VaultWritersStatement
    /// The unwrapped DEK; kept in memory only.
    var dek: DataEncryptionKey
    /// The wrapped key it was unwrapped from.
    var wrappedKey: Data
}

/// Checks one vault's material against the caller's key and the signer directory, then
/// unwraps the DEK and opens every field. Pure: no I/O. Any failed check throws a
/// `LatchError(.verification, …)` naming the vault, item or field and what failed; nothing
/// is returned for a vault that fails.
public enum VaultVerifier {
    static func fail(_ message: String) -> LatchError {
        LatchError(.verification, message, hint: "the server sent data no authorised member signed; refusing it")
    }

    /// The directory entry whose key signed `what`. With `writers`, the signer must also be
    /// a writer (WRITE or ADMIN) in that verified writer set; the directory's own access levels
    /// are the server's word and are never used for this.
    static func signer(_ keyId: String, in directory: [DirectoryKey], what: String, writers: VaultWritersStatement? = nil) throws -> DirectoryKey {
        guard let entry = directory.first(where: { $0.publicKey.keyId == keyId }) else {
            throw fail("\(what) is signed by key \(keyId.prefix(16))…, which is not a member key in the vault's signer directory")
        }
        if let writers, writers.level(of: entry.principalId) == nil {
            let level = entry.accessLevel.map { "; the server's records say \($0), but only an ADMIN's signature makes a writer" } ?? ""
            throw fail("\(what) is signed by \(entry.name ?? "member") (\(entry.principalId)), which the vault's signed writer set v\(writers.version) does not list as a writer (WRITE or ADMIN)\(level)")
        }
        return entry
    }

    /// `e.verify(with: key)`, answered from `memo` when this exact check (key id, signature,
    /// signed bytes) passed before; a check that passes now is recorded there.
    static func checkSignature<S>(_ e: SignedEnvelope<S>, with key: PrincipalPublicKey, _ memo: (any VerifiedSignatures)?) throws {
        guard let memo, e.signerKeyId == key.keyId else { return try e.verify(with: key) }
        let digest = try e.signatureDigest()
        if memo.check(digest) { return }
        try e.verify(with: key)
        memo.record(digest)
    }

    /// Checks the writer set chain from version 1: each link signed by the key served with it,
    /// by a principal the version before lists as ADMIN (the first by an ADMIN it lists), hash-
    /// linked, and passing through the version this client saw last (no rollback or fork).
    /// Returns the newest version. Binding each signer's key to its principal is the
    /// transparency log's job (`Latch.logEntries`).
    static func verifyWriters(_ m: VaultMaterial, seen: inout SeenState, signatures: (any VerifiedSignatures)? = nil) throws -> VaultWritersStatement {
        let vaultLabel = "vault \(m.vaultId)"
        guard !m.writers.isEmpty else {
            throw fail("\(vaultLabel) has no signed writer set, so no checkpoint in it can be trusted; an ADMIN of the vault must sign one (any write by an ADMIN's `latch` does)")
        }
        var previous: VaultWritersStatement?
        for link in m.writers {
            let st = link.envelope.checkpoint
            let label = "\(vaultLabel) writer set v\(st.version)"
            guard st.vaultId == m.vaultId else { throw fail("\(label) is for vault \(st.vaultId)") }
            guard link.envelope.signerKeyId == link.signerKey.keyId else {
                throw fail("\(label) is served with key \(link.signerKey.keyId.prefix(16))…, not the key \(link.envelope.signerKeyId.prefix(16))… that signed it")
            }
            do { try checkSignature(link.envelope, with: link.signerKey, signatures) } catch {
                throw fail("\(label): signature is invalid (\(error))")
            }
            do { try VaultWritersStatement.checkLink(st, follows: previous, signerId: link.signerId) } catch {
                throw fail("\(label): \(error)")
            }
            previous = st
        }
        let newest = previous!
        try seen.acceptWriters(vaultId: m.vaultId, chain: m.writers.map(\.envelope.checkpoint))
        return newest
    }

    /// `earlier` is this vault as it verified in an earlier sync of this client, or nil. Work
    /// whose inputs are byte for byte those of the earlier check is not redone: unwrapping the
    /// same wrapped key, checking the same signature by the same key over the same detail (and
    /// re-encoding that detail for its hash), and decrypting a value whose served text hashes
    /// to the same signed envelope hash. Every
    /// other check (signers against the directory and the writer set, the summary's item
    /// hashes, versions against `seen`) runs in full, so a delta sync of one change costs one
    /// item's work, not the vault's.
    public static func verify(_ m: VaultMaterial, privateKey: PrincipalPrivateKey, seen: inout SeenState,
                              earlier: VerifiedVault? = nil) throws -> VerifiedVault {
        try verify(m, recipientKeyId: privateKey.publicKey.keyId, unwrap: privateKey.unwrap, seen: &seen, earlier: earlier)
    }

    /// The same, for the key whose id is `recipientKeyId`, with `unwrap` in place of its
    /// `PrincipalPrivateKey.unwrap` (the client's, which consults its unwrap memo first).
    /// `signatures`: signature checks that passed before (the client's unwrap memo), consulted
    /// for the RSA operation alone; every other check runs as without it.
    public static func verify(_ m: VaultMaterial, recipientKeyId: String, unwrap: (Data, Int) throws -> DataEncryptionKey,
                              seen: inout SeenState, earlier: VerifiedVault? = nil,
                              signatures: (any VerifiedSignatures)? = nil) throws -> VerifiedVault {
        let vaultLabel = "vault \(m.vaultId)"
        // 0. member keys: a key that differs from the one seen before for that member must be
        //    reached by rotation statements signed by the earlier key (continuity)
        //    (pinned only if the whole vault verifies)
        var keysSeen = seen
        for k in m.directory { try keysSeen.acceptMemberKey(k, vaultLabel: vaultLabel) }
        let writers = try verifyWriters(m, seen: &keysSeen, signatures: signatures)
        // 1. summary checkpoint
        let summary = m.summary.checkpoint
        guard summary.vaultId == m.vaultId else {
            throw fail("\(vaultLabel): summary checkpoint is for vault \(summary.vaultId)")
        }
        let summarySigner = try signer(m.summary.signerKeyId, in: m.directory, what: "\(vaultLabel) summary checkpoint v\(summary.version)", writers: writers)
        do { try checkSignature(m.summary, with: summarySigner.publicKey, signatures) } catch {
            throw fail("\(vaultLabel): summary checkpoint signature is invalid (\(error))")
        }

        // 2. wrapped key → DEK
        let dekVersion = summary.currentDekVersion
        guard let wrapped = m.wrappedKeys.first(where: { $0.dekVersion == dekVersion }) else {
            throw LatchError(.forbidden, "\(vaultLabel): no wrapped key for DEK version \(dekVersion) addressed to this key",
                             hint: "ask a member to share the vault again (latch share)")
        }
        let st = wrapped.statement.checkpoint
        guard st.vaultId == m.vaultId, st.dekVersion == dekVersion else {
            throw fail("\(vaultLabel): wrapped-key statement is for vault \(st.vaultId) DEK v\(st.dekVersion)")
        }
        let wrapSigner = try signer(wrapped.statement.signerKeyId, in: m.directory, what: "\(vaultLabel) wrapped key v\(dekVersion)")
        do { try checkSignature(wrapped.statement, with: wrapSigner.publicKey, signatures) } catch {
            throw fail("\(vaultLabel): wrapped-key statement signature is invalid (\(error))")
        }
        do { try st.checkMatches(wrappedKey: wrapped.wrappedKey, recipientKeyId: recipientKeyId) } catch {
            throw fail("\(vaultLabel): wrapped key does not match its signed statement (\(error))")
        }
        let dek: DataEncryptionKey
        let sameKey = earlier.map { $0.dekVersion == dekVersion && $0.wrappedKey == wrapped.wrappedKey } ?? false
        if sameKey, let earlier { dek = earlier.dek } else {
            do { dek = try unwrap(wrapped.wrappedKey, dekVersion) } catch {
                throw fail("\(vaultLabel): wrapped key does not open with this private key (\(error))")
            }
        }
        let earlierItems = sameKey ? Dictionary((earlier?.items ?? []).map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a }) : [:]

        // 3. items: exactly the summary's, each detail matching its hash, each envelope its hash
        let summaryIds = summary.items.map(\.id)
        guard Set(summaryIds).count == summaryIds.count else { throw fail("\(vaultLabel): summary lists an item twice") }
        let served = Dictionary(m.items.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        guard served.count == m.items.count else { throw fail("\(vaultLabel): server sent an item twice") }
        let listed = Set(summaryIds)
        if let extra = served.keys.first(where: { !listed.contains($0) }) {
            throw fail("\(vaultLabel): server sent item \(extra), which the signed summary v\(summary.version) does not list")
        }
        var nextSeen = seen
        try nextSeen.acceptSummary(vaultId: m.vaultId, version: summary.version)
        var items: [VerifiedItem] = []
        for entry in summary.items {
            let label = "\(vaultLabel) item \"\(entry.name)\" (\(entry.id))"
            guard let item = served[entry.id] else {
                throw fail("\(label) is in the signed summary but the server did not serve it")
            }
            let detail = item.detail.checkpoint
            guard detail.vaultItemId == entry.id, detail.vaultId == m.vaultId else {
                throw fail("\(label): detail checkpoint is for item \(detail.vaultItemId) in vault \(detail.vaultId)")
            }
            // An earlier check of this very envelope (same checkpoint, key id and signature).
            let same = earlierItems[entry.id].flatMap { $0.signed == item.detail ? $0 : nil }
            let detailHash = same?.detailHash ?? detail.hash
            guard detailHash == entry.detailHash else {
                throw fail("\(label): detail checkpoint v\(detail.version) does not match the hash in the signed summary")
            }
            guard detail.name == entry.name, detail.type == entry.type else {
                throw fail("\(label): detail checkpoint names it \"\(detail.name)\" (\(detail.type))")
            }
            let detailSigner = try signer(item.detail.signerKeyId, in: m.directory, what: "\(label) detail checkpoint v\(detail.version)", writers: writers)
            if same == nil {
                do { try checkSignature(item.detail, with: detailSigner.publicKey, signatures) } catch {
                    throw fail("\(label): detail checkpoint signature is invalid (\(error))")
                }
            }
            try nextSeen.acceptItem(vaultId: m.vaultId, itemId: entry.id, version: detail.version)
            let signedIds = Set(detail.fields.map(\.id))
            guard signedIds.count == detail.fields.count else { throw fail("\(label): detail lists a field twice") }
            if let extra = item.envelopes.keys.first(where: { !signedIds.contains($0) }) {
                throw fail("\(label): server sent field \(extra), which the signed detail does not list")
            }
            var fields: [VerifiedField] = []
            for f in detail.fields.sorted(by: { ($0.order, $0.id) < ($1.order, $1.id) }) {
                let flabel = "\(label) field \"\(f.name)\""
                guard let text = item.envelopes[f.id] else {
                    throw fail("\(flabel) is in the signed detail but the server did not serve its value")
                }
                if let same, let earlierField = same.fields.first(where: { $0.id == f.id }),
                   FieldEnvelope.sha256Hex(ofServed: text) == f.envelopeHash {
                    fields.append(earlierField)   // the same envelope under the same DEK: the same value
                    continue
                }
                let envelope: FieldEnvelope
                do { envelope = try FieldEnvelope(string: text) } catch {
                    throw fail("\(flabel): value is not a valid envelope (\(error))")
                }
                guard envelope.sha256Hex == f.envelopeHash else {
                    throw fail("\(flabel): value does not match the envelope hash in the signed detail (swapped or replayed)")
                }
                let plain: Data
                do {
                    plain = try envelope.open(key: dek, context: EnvelopeContext(vaultId: m.vaultId, itemId: entry.id, fieldId: f.id, dekVersion: dekVersion))
                } catch {
                    throw fail("\(flabel): value does not decrypt under vault DEK v\(dekVersion) (\(error))")
                }
                guard let value = String(data: plain, encoding: .utf8) else {
                    throw fail("\(flabel): value is not UTF-8 text")
                }
                fields.append(VerifiedField(id: f.id, name: f.name, type: f.type, order: f.order,
                                            isEnvironmentVariable: f.isEnvironmentVariable, value: value))
            }
            items.append(VerifiedItem(id: entry.id, name: entry.name, type: entry.type, version: detail.version, fields: fields, detail: detail,
                                      signed: item.detail, detailHash: detailHash))
        }
        seen = nextSeen
        seen.memberKeys = keysSeen.memberKeys
        seen.writers = keysSeen.writers
        return VerifiedVault(id: m.vaultId, name: summary.name, summaryVersion: summary.version, dekVersion: dekVersion, items: items,
                             summary: summary, writers: writers, dek: dek, wrappedKey: wrapped.wrappedKey)
    }
}
