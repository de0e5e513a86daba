import Foundation
import LatchCrypto
import LatchWire

/// Key rotation (issue 5): a new key pair made here, a continuity statement signed by the
/// current key, and the current DEK of every vault this key opens re-wrapped to the new key,
/// all sent as one `POST /vault/public-key`, which the server applies all or nothing.
extension Latch {
    public struct KeyRotation: Sendable {
        public var principalId: String
        public var previousKeyId: String
        public var newKeyId: String
        /// The re-wrapped vaults (id and name), sorted by name.
        public var vaults: [(id: String, name: String)]
    }

    /// The rotation request for `vaults` (verified, so each DEK came from a wrap signed by a
    /// member and opened by the current key). Pure: no I/O.
    public static func rotationRequest(principalId: String, current: PrincipalPrivateKey, new: PrincipalPrivateKey,
                                       vaults: [VerifiedVault]) throws -> RegisterPublicKeyRequest {
        let statement = KeyRotationStatement(principalId: principalId, previousKeyId: current.publicKey.keyId, newKeyId: new.publicKey.keyId)
        let signed = try SignedEnvelope.sign(statement, with: current)
        let wraps = try vaults.map { v -> WrappedKeyInput in
            // The new key signs its own wraps: it is the member that holds them from now on.
            let w = try VaultWriter.wrap(v.dek, vaultId: v.id, to: new.publicKey, signer: new)
            return WrappedKeyInput(vaultId: v.id, recipientKeyId: new.publicKey.keyId, dekVersion: w.dekVersion,
                                   wrappedKey: w.wrappedKey.base64EncodedString(), statement: try text(w.statement))
        }
        return RegisterPublicKeyRequest(publicKey: new.publicKey.pem, previousEncryptionKeyId: current.publicKey.keyId,
                                        rotationSignature: try text(signed), rewrappedVaultKeys: wraps)
    }

    /// Rotates this client's key to `new` on the server: syncs and verifies every vault first
    /// (a vault that does not verify stops the rotation), re-wraps each current DEK and posts
    /// the batch. Changes nothing locally; the caller stores `new` once this returns.
    public func rotateKey(to new: PrincipalPrivateKey) async throws -> KeyRotation {
        try await refresh()
        let vaults = verifiedVaults
        let request = try Self.rotationRequest(principalId: identity.principal.id, current: privateKey, new: new, vaults: vaults)
        let r = try await http.postJSON(KeyRotationResponse.self, LatchRoutes.publicKey, body: request)
        guard r.keyId == new.publicKey.keyId, r.previousKeyId == keyId,
              Set(r.rewrappedVaultIds) == Set(vaults.map(\.id)) else {
            throw LatchError(.invalidResponse, "the server's answer to the rotation does not match what was sent (key \(r.keyId.prefix(16))…, \(r.rewrappedVaultIds.count) vaults)")
        }
        return KeyRotation(principalId: identity.principal.id, previousKeyId: keyId, newKeyId: new.publicKey.keyId,
                           vaults: vaults.map { ($0.id, $0.name) })
    }

    /// `latch agent rotate-key`: rotates the key of profile `profile` (any principal type).
    /// The new private key is written 0600 to `private-key.pem.rotating-<new key id prefix>`
    /// before the request and
    /// renamed over `private-key.pem` only after the server accepted; if the request fails the
    /// pending file is removed and the profile still holds the old key. No copy of the old key
    /// is kept: once the server retired it, it opens nothing.
    public static func rotateProfileKey(profile name: String?, environment: [String: String] = ProcessInfo.processInfo.environment,
                                        transport: (any HTTPTransport)? = nil) async throws -> KeyRotation {
        let config = try ConfigurationResolver.resolve(ExplicitConfiguration(profile: name), environment: environment)
        guard case .profile(let profileName) = config.privateKeySource, case .profile = config.apiKeySource,
              let keyPath = config.privateKeyPath else {
            throw LatchError(.configuration, "rotate-key replaces a profile's key file, but the key or API key comes from \(config.privateKeySource)",
                             hint: "unset LATCH_API_KEY / LATCH_PRIVATE_KEY* and pass --profile NAME")
        }
        let latch = try await create(configuration: config, transport: transport, sync: false)
        let new = try PrincipalPrivateKey.generate(bits: 3072)
        // A name of its own per attempt, so two concurrent rotations never rename each other's key.
        let pending = keyPath + ".rotating-" + new.publicKey.keyId.prefix(16)
        try SecureFile.write(Data(new.pkcs8PEM.utf8), to: pending, mode: 0o600)
        let result: KeyRotation
        do {
            result = try await latch.rotateKey(to: new)
        } catch {
            // Before discarding the new key, ask which key the server holds: an answer lost on
            // the way back must not leave the profile with a retired key and no new one.
            let active = (try? await latch.http.getJSON(MeResponse.self, LatchRoutes.me))?.publicKey?.keyId
            if active == latch.keyId {
                unlink(pending)
                throw error
            }
            guard active == new.publicKey.keyId else {
                throw LatchError(.unavailable, "the rotation failed (\(error)) and the server's active key could not be confirmed",
                                 hint: "\(pending) holds the new private key (key id \(new.publicKey.keyId.prefix(16))…); if `latch whoami` fails with a key mismatch, move it over \(keyPath)")
            }
            result = KeyRotation(principalId: latch.identity.principal.id, previousKeyId: latch.keyId,
                                 newKeyId: new.publicKey.keyId, vaults: latch.verifiedVaults.map { ($0.id, $0.name) })
        }
        guard rename(pending, keyPath) == 0 else {
            throw LatchError(.io, "the server rotated to key \(new.publicKey.keyId.prefix(16))… but \(pending) could not be renamed to \(keyPath): \(String(cString: strerror(errno)))",
                             hint: "move \(pending) over \(keyPath) by hand; it holds the new private key")
        }
        let store = ProfileStore(home: config.home)
        if var p = try? store.load(profileName) {
            p.keyId = new.publicKey.keyId
            try store.update(p)
        }
        return result
    }
}
