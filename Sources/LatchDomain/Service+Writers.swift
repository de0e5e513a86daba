import Foundation
import LatchCrypto

/// The vault's signed writer set (issue 5): who may sign its checkpoints, as an ADMIN's
/// private key says, not as the server's grants say. The server stores every version, checks
/// each link as a client would, logs it, and serves the chain with the signer directory.
extension LatchService {
    /// Checks `statement` (signed by the caller's active key) as the next link of `vault`'s
    /// chain, appends it and logs it. The caller's transaction saves the vault.
    func acceptWriters(_ tx: any StoreTransaction, _ ctx: AuthContext, _ vault: inout Vault, statement: String) async throws {
        let next = try await verifySigned(tx, ctx, statement, VaultWritersStatement.self, "writersStatement")
        guard next.vaultId == vault.id else {
            throw DomainError.checkpointMismatch("writersStatement is for vault \(next.vaultId), not \(vault.id)")
        }
        let previous = try vault.writers?.last.map { try stored($0.statement, VaultWritersStatement.self) }
        guard (previous ?? next).level(of: ctx.principal.id) == .admin else {
            throw DomainError.forbidden(previous.map { "only an ADMIN in the vault's signed writer set v\($0.version) can sign its next version" }
                                        ?? "a vault's first writer set must list its signer as ADMIN")
        }
        try follows({ try VaultWritersStatement.checkLink(next, follows: previous, signerId: ctx.principal.id) }, "writersStatement")
        for w in next.writers {
            guard let p = try await tx.principal(w.principalId), p.tenantId == vault.tenantId, !p.archived else {
                throw DomainError.notFound("writersStatement lists principal \(w.principalId), which does not exist in this tenant")
            }
        }
        let keyId = try decodeEnvelope(statement, VaultWritersStatement.self, "writersStatement").signerKeyId
        vault.writers = (vault.writers ?? []) + [WritersLink(statement: statement, signerId: ctx.principal.id, signerKeyId: keyId)]
        vault.writersLogIndex = try await logCheckpoint(tx, .vaultWriters, tenantId: vault.tenantId, subjectId: vault.id, envelope: statement)
    }

    /// Refuses a write whose checkpoints the caller signs when the vault's newest signed writer
    /// set does not list the caller: every client would refuse those checkpoints (protocol
    /// 1.7.5, 6.5) and so the whole vault, whatever the server's grants say (WRITE through a
    /// group, or a direct grant an ADMIN has not yet signed in). A vault made before writer
    /// sets has no set to check.
    func requireSignedWriter(_ ctx: AuthContext, _ vault: Vault) throws {
        guard let newest = vault.writers?.last else { return }
        let set = try stored(newest.statement, VaultWritersStatement.self)
        guard set.level(of: ctx.principal.id) != nil else {
            throw DomainError.forbidden("you are not a writer in vault \(vault.id)'s signed writer set v\(set.version), so every client would refuse the checkpoints you sign; an ADMIN of that set must add you first (`latch share` with --level WRITE, or POST /vault/\(vault.id)/writers)")
        }
    }

    /// Posts the next version of a vault's writer set (or its first, for a vault made before
    /// writer sets). Needs ADMIN on the vault here and ADMIN in the current signed set.
    public func updateWriters(_ ctx: AuthContext, vaultId: String, statement: String) async throws -> Vault {
        return try await perform(ctx, require: "machine.vault.write", "vault.writers.update", assetType: "VAULT", assetId: vaultId) { tx in
            var v = try await self.loadVault(tx, ctx, vaultId, need: .admin)
            try await self.acceptWriters(tx, ctx, &v, statement: statement)
            v.updatedAt = self.clock.now()
            try await tx.putVault(v)
            try await self.change(tx, ctx.tenant.id, .vault, vaultId, vault: vaultId)
            return (v, "version=\(v.writers?.count ?? 0)")
        }
    }

    /// What a client needs to check a writer set chain: each link with its signer's key record
    /// (the key may since have been retired; its log index ties it to the signer).
    public struct WritersLinkValue: Sendable {
        public var link: WritersLink
        public var signerKey: PublicKeyRecord
    }

    func writersChain(_ tx: any StoreTransaction, _ v: Vault) async throws -> [WritersLinkValue] {
        var out: [WritersLinkValue] = []
        for link in v.writers ?? [] {
            guard let key = try await tx.publicKey(keyId: link.signerKeyId) else {
                throw StoreError(.corrupt, "vault \(v.id) writer set is signed by key \(link.signerKeyId), which the store no longer has")
            }
            out.append(WritersLinkValue(link: link, signerKey: key))
        }
        return out
    }
}
