import Foundation
import LatchCrypto

/// A key rotation as the caller sends it (`POST /vault/public-key` with the rotation fields).
public struct KeyRotationInput: Sendable {
    public var publicKey: String
    public var previousKeyId: String?
    /// `SignedEnvelope<KeyRotationStatement>` JSON text, signed by the previous key.
    public var rotationSignature: String?
    /// One re-wrap per vault (each with `principalId` nil and `vaultId` set).
    public var rewraps: [WrappedKeyInputValue]?
    public init(publicKey: String, previousKeyId: String?, rotationSignature: String?, rewraps: [WrappedKeyInputValue]?) {
        self.publicKey = publicKey; self.previousKeyId = previousKeyId; self.rotationSignature = rotationSignature; self.rewraps = rewraps
    }
    /// True when any rotation field is present (the request is a rotation, not a registration).
    public var isRotation: Bool { previousKeyId != nil || rotationSignature != nil || rewraps != nil }
}

public struct KeyRotationResult: Sendable {
    /// The new, active key (logged).
    public var key: PublicKeyRecord
    /// The previous key, now retired.
    public var previous: PublicKeyRecord
    /// The vaults whose current DEK was re-wrapped to the new key, sorted.
    public var rewrappedVaultIds: [String]
}

extension DomainError {
    static func rotationSignature(_ m: String) -> DomainError { .init(.invalid, code: "rotation_signature_invalid", m) }
    static func rotationBatchInvalid(_ m: String) -> DomainError { .init(.invalid, code: "rotation_batch_invalid", m) }
    static func rotationBatchIncomplete(_ m: String) -> DomainError { .init(.conflict, code: "rotation_batch_incomplete", m) }
    static func rotationOrphans(_ m: String) -> DomainError { .init(.conflict, code: "rotation_orphans_signatures", m) }
}

/// Only the signer of a stored envelope (to find what a key signed).
private struct EnvelopeSigner: Decodable { var signerKeyId: String }

extension LatchService {
    static let maxRotationBatch = 10_000

    /// The continuity chain that ends at `key`, oldest first (empty for a key never rotated).
    func rotationChain(_ tx: any StoreTransaction, to key: PublicKeyRecord) async throws -> [(previous: PublicKeyRecord, statement: String)] {
        guard key.rotationStatement != nil else { return [] }
        let all = Dictionary(try await tx.publicKeys(principalId: key.principalId).map { ($0.keyId, $0) }, uniquingKeysWith: { a, _ in a })
        var chain: [(previous: PublicKeyRecord, statement: String)] = []
        var current = key
        while let text = current.rotationStatement, chain.count < 1000 {
            let st: KeyRotationStatement = try stored(text, KeyRotationStatement.self)
            guard let previous = all[st.previousKeyId] else {
                throw StoreError(.corrupt, "key \(current.keyId) names previous key \(st.previousKeyId), which is not stored")
            }
            chain.insert((previous, text), at: 0)
            current = previous
        }
        return chain
    }

    /// Rotates the caller's key (issue 5): checks the continuity signature (a
    /// `KeyRotationStatement` naming the caller, its active key and the posted key, signed by
    /// the active key) and that the batch re-wraps, to the new key and signed by it, the
    /// current DEK of exactly the vaults the active key opens; then, in one transaction,
    /// retires the old key, registers and logs the new one and swaps the wraps. All or nothing.
    public func rotatePublicKey(_ ctx: AuthContext, _ input: KeyRotationInput) async throws -> KeyRotationResult {
        try await perform(ctx, "key.rotate", assetType: ctx.principal.type.rawValue, assetId: ctx.principal.id) { tx in
            try ctx.requireIdentityKey("rotating a public key")
            let r = try await self.rotate(tx, ctx, input)
            return (r, "previousKeyId=\(r.previous.keyId) keyId=\(r.key.keyId) vaults=\(r.rewrappedVaultIds.count)")
        }
    }

    func rotate(_ tx: any StoreTransaction, _ ctx: AuthContext, _ input: KeyRotationInput) async throws -> KeyRotationResult {
        let principal = ctx.principal
        guard let previousKeyId = input.previousKeyId, let signature = input.rotationSignature, let batch = input.rewraps else {
            let missing = [("previousEncryptionKeyId", input.previousKeyId == nil), ("rotationSignature", input.rotationSignature == nil),
                           ("rewrappedVaultKeys", input.rewraps == nil)].filter(\.1).map(\.0)
            throw DomainError.invalid("a key rotation needs previousEncryptionKeyId, rotationSignature and rewrappedVaultKeys together; missing \(missing.joined(separator: ", "))")
        }
        let new = try parseKey(input.publicKey)
        guard let active = try await tx.activePublicKey(principalId: principal.id) else {
            throw DomainError.noPublicKey("\(principal.type.rawValue.lowercased()) \(principal.id) has no active key to rotate; register a key with {\"publicKey\"} alone")
        }
        guard previousKeyId == active.keyId else {
            let applied = new.keyId == active.keyId ? " (the posted key is already your active key: this rotation was applied before)" : ""
            throw DomainError.staleVersion("previousEncryptionKeyId \(previousKeyId.prefix(64)) is not your active key \(active.keyId)\(applied)")
        }
        guard new.keyId != active.keyId else { throw DomainError.invalid("a rotation must change the key: publicKey is the active key") }
        if try await tx.publicKey(keyId: new.keyId) != nil {
            throw DomainError.conflict("key \(new.keyId) is already registered; a rotation needs a fresh key pair")
        }

        // 1. Continuity: the statement names this principal, the active key and the new key,
        //    and the active key signed it.
        let env = try decodeEnvelope(signature, KeyRotationStatement.self, "rotationSignature")
        guard env.signerKeyId == active.keyId else {
            throw DomainError.rotationSignature("rotationSignature is signed by key \(env.signerKeyId.prefix(64)), not by your active key \(active.keyId)")
        }
        guard env.checkpoint.principalId == principal.id else {
            throw DomainError.rotationSignature("the rotation statement is for principal \(env.checkpoint.principalId.prefix(64)), not \(principal.id)")
        }
        do { try env.verifyRotation(from: try parseKey(active.pem), to: new) } catch let e as DomainError { throw e } catch {
            throw DomainError.rotationSignature("the rotation statement does not prove continuity from \(active.keyId) to \(new.keyId): \(error)")
        }

        // 2. The vaults the old key opens now: active (not archived), still accessible, with a
        //    wrap of the current DEK addressed to the old key.
        let resolver = AccessResolver(tx)
        let mine = try await tx.wrappedKeys(principalId: principal.id)
        var required: [String: Vault] = [:]
        var touchedVaults: [String: Vault] = [:]
        for w in mine where w.recipientKeyId == active.keyId {
            guard let v = try await tx.vault(w.vaultId), v.tenantId == ctx.tenant.id else { continue }
            touchedVaults[v.id] = v
            guard !v.archived, w.dekVersion == v.currentDekVersion, try await resolver.vaultAccess(principal, v) != nil else { continue }
            required[v.id] = v
        }

        // 3. The batch covers exactly those vaults, each wrap to the new key and signed by it.
        guard batch.count <= Self.maxRotationBatch else {
            throw DomainError.rotationBatchInvalid("rewrappedVaultKeys holds \(batch.count) entries; at most \(Self.maxRotationBatch)")
        }
        var records: [WrappedKey] = []
        var covered = Set<String>()
        for (i, w) in batch.enumerated() {
            let at = "rewrappedVaultKeys[\(i)]"
            guard let vaultId = w.vaultId else { throw DomainError.invalid("\(at) needs vaultId") }
            try Self.checkId(vaultId, "\(at).vaultId")
            guard covered.insert(vaultId).inserted else { throw DomainError.rotationBatchInvalid("\(at): vault \(vaultId) appears twice") }
            if let pid = w.principalId, pid != principal.id {
                throw DomainError.rotationBatchInvalid("\(at): principalId must be yours (or absent) in a rotation")
            }
            guard let v = required[vaultId] else {
                throw DomainError.rotationBatchInvalid("\(at): vault \(vaultId) is not one whose current DEK your key \(active.keyId) opens (unknown, archived, not shared with you, or holding no wrap of its current DEK)")
            }
            guard w.recipientKeyId == new.keyId else {
                throw DomainError.rotationBatchInvalid("\(at): recipientKeyId must be the new key \(new.keyId)")
            }
            guard w.dekVersion == v.currentDekVersion else {
                throw DomainError.staleVersion("\(at): DEK version \(w.dekVersion); vault \(vaultId)'s current DEK version is \(v.currentDekVersion)")
            }
            guard let bytes = Data(base64Encoded: w.wrappedKey), !bytes.isEmpty, bytes.count <= 1024 else {
                throw DomainError.invalid("\(at).wrappedKey must be standard base64 of the RSA-OAEP ciphertext")
            }
            let st = try decodeEnvelope(w.statement, WrappedKeyStatement.self, "\(at).statement")
            guard st.signerKeyId == new.keyId else {
                throw DomainError.rotationBatchInvalid("\(at).statement is signed by key \(st.signerKeyId.prefix(64)); in a rotation the new key \(new.keyId) signs its wraps")
            }
            do { try st.verify(with: new) } catch {
                throw DomainError.badSignature("\(at).statement's signature does not verify against the new key \(new.keyId): \(error)")
            }
            guard st.checkpoint.vaultId == vaultId, st.checkpoint.dekVersion == w.dekVersion, st.checkpoint.recipientKeyId == new.keyId,
                  st.checkpoint.wrappedKeyHash == Hashing.sha256Hex(bytes) else {
                throw DomainError.checkpointMismatch("\(at).statement must name vault \(vaultId), DEK version \(w.dekVersion), the new key and the SHA-256 of the wrapped key")
            }
            records.append(WrappedKey(vaultId: vaultId, tenantId: v.tenantId, principalId: principal.id, recipientKeyId: new.keyId,
                                      dekVersion: w.dekVersion, wrappedKey: w.wrappedKey, statement: w.statement,
                                      signerPrincipalId: principal.id, createdAt: clock.now()))
        }
        let missing = Set(required.keys).subtracting(covered).sorted()
        guard missing.isEmpty else {
            throw DomainError.rotationBatchIncomplete("rewrappedVaultKeys misses \(missing.count) vault(s) your key \(active.keyId) opens: \(missing.joined(separator: ", ")); sync and re-wrap every one")
        }

        // 4. Members verify checkpoints and wraps against active keys only, so a rotation must
        //    not strand what the old key signed for others.
        var orphaned: [String] = []
        func signer(_ text: String) -> String? { try? JSONDecoder().decode(EnvelopeSigner.self, from: Data(text.utf8)).signerKeyId }
        for v in touchedVaults.values.sorted(by: { $0.id < $1.id }) where !v.archived {
            if signer(v.summaryCheckpoint) == active.keyId { orphaned.append("vault \(v.id) summary") }
            for item in try await tx.items(vaultId: v.id) where !item.archived && signer(item.detailCheckpoint) == active.keyId {
                orphaned.append("item \(item.id) detail")
            }
            for w in try await tx.wrappedKeys(vaultId: v.id) where w.principalId != principal.id && signer(w.statement) == active.keyId {
                orphaned.append("vault \(v.id) wrap for \(w.principalId)")
            }
        }
        guard orphaned.isEmpty else {
            throw DomainError.rotationOrphans("your key \(active.keyId) signed \(orphaned.count) checkpoint(s) or wrap(s) other members verify against it (\(orphaned.prefix(5).joined(separator: "; "))\(orphaned.count > 5 ? "; …" : "")); rotating it would make them unverifiable, which this server does not support yet")
        }

        // 5. Apply: retire the old key, register and log the new one, swap the wraps.
        let now = clock.now()
        var retired = active
        retired.status = .retired
        retired.retiredAt = now
        try await tx.putPublicKey(retired)
        try await change(tx, principal.tenantId, .publicKey, retired.keyId, vault: nil)
        let rec = try await logged(PublicKeyRecord(keyId: new.keyId, principalId: principal.id, tenantId: principal.tenantId, pem: new.pem,
                                                   status: .active, createdAt: now, retiredAt: nil, rotationStatement: signature), tx)
        try await tx.putPublicKey(rec)
        try await change(tx, principal.tenantId, .publicKey, rec.keyId, vault: nil)
        for w in mine where w.recipientKeyId == active.keyId {
            try await tx.deleteWrappedKey(w.id)
            try await change(tx, principal.tenantId, .wrappedKey, w.id, vault: w.vaultId)
        }
        for w in records {
            try await tx.putWrappedKey(w)
            try await change(tx, principal.tenantId, .wrappedKey, w.id, vault: w.vaultId)
        }
        return KeyRotationResult(key: rec, previous: retired, rewrappedVaultIds: records.map(\.vaultId).sorted())
    }
}
