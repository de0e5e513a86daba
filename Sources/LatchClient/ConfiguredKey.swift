import Foundation
import LatchCrypto

/// The client's own private key as configured: its id known at once, the RSA key parsed only
/// when something needs it (signing, registering, or a wrapped DEK the unwrap memo does not
/// hold), and the unwrap memo (`UnwrapMemo`) read from and written to `memoPath`.
final class ConfiguredKey: @unchecked Sendable {
    let keyId: String
    private let pem: String
    private let source: String
    private let memoPath: String?
    private let sealing: UnwrapMemo.SealingKey?
    private let lock = NSLock()
    private var parsed: PrincipalPrivateKey?
    private var memo: UnwrapMemo
    private var memoChanged = false
    /// Signature checks looked up or recorded since the memo was last saved.
    private var usedSignatures: [String] = []

    /// `source` names where the PEM came from, for the error when it does not load.
    init(pem: String, source: String, memoPath: String?) throws {
        self.pem = pem
        self.source = source
        self.memoPath = memoPath
        sealing = try? UnwrapMemo.SealingKey(privateKeyPEM: pem)
        // A memo that opens was sealed under this very key's bytes by a run that parsed them,
        // so its key id is this key's.
        if let sealing, let memoPath, let data = try? SecureFile.read(memoPath),
           let m = UnwrapMemo.open(data, with: sealing), let id = m.keyId {
            memo = m
            keyId = id
        } else {
            let key = try Self.parse(pem, source: source)
            parsed = key
            keyId = key.publicKey.keyId
            memo = UnwrapMemo(keyId: keyId)
        }
    }

    static func parse(_ pem: String, source: String) throws -> PrincipalPrivateKey {
        do { return try PrincipalPrivateKey(pem: pem) } catch {
            throw LatchError(.configuration, "private key from \(source) cannot be loaded: \(error)",
                             hint: "give a PKCS#8 or PKCS#1 RSA private key PEM (2048-4096 bits)")
        }
    }

    /// The RSA key (parsed on first use).
    func key() throws -> PrincipalPrivateKey {
        try lock.withLock {
            if let parsed { return parsed }
            let key = try Self.parse(pem, source: source)
            parsed = key
            return key
        }
    }

    /// `PrincipalPrivateKey.unwrap`, answered from the memo when it holds `wrapped`
    /// (`useMemo` false: always with RSA, as `latch verify` wants).
    func unwrap(_ wrapped: Data, version: Int, useMemo: Bool = true) throws -> DataEncryptionKey {
        if useMemo, let dek = lock.withLock({ memo.dek(unwrapping: wrapped, version: version) }) { return dek }
        let dek = try key().unwrap(wrapped, version: version)
        lock.withLock {
            if memo.dek(unwrapping: wrapped, version: version) == nil {
                memo.remember(dek, unwrapping: wrapped)
                memoChanged = true
            }
        }
        return dek
    }

    /// Keeps only the entries for `current` (the wrapped keys of every vault the client now
    /// holds open) and, when `signaturesUsed`, only the signature checks this pass looked up or
    /// recorded; writes the memo if that changed it, without waiting for the disk: a memo that
    /// is lost, cut short or not written costs the next run its RSA operations, nothing else.
    func saveMemo(keeping current: [Data], signaturesUsed: Bool = true) {
        guard let memoPath, let sealing else { return }
        let data: Data? = lock.withLock {
            var next = memo
            next.keep(onlyUnwrapping: current)
            if signaturesUsed { next.keep(onlyVerified: usedSignatures) }
            usedSignatures = []
            guard memoChanged || next.count < memo.count || next.signatureCount < memo.signatureCount else { return nil }
            var rng = SystemRandomNumberGenerator()
            guard let data = try? next.sealed(with: sealing, using: &rng) else { return nil }
            memo = next
            memoChanged = false
            return data
        }
        guard let data else { return }
        try? SecureFile.makeDirectory((memoPath as NSString).deletingLastPathComponent, mode: 0o700)
        try? SecureFile.write(data, to: memoPath, mode: 0o600, sync: false)
    }
}

extension ConfiguredKey: VerifiedSignatures {
    func check(_ digest: String) -> Bool {
        lock.withLock {
            guard memo.hasVerified(digest) else { return false }
            usedSignatures.append(digest)
            return true
        }
    }

    func record(_ digest: String) {
        lock.withLock {
            memo.rememberVerified(digest)
            usedSignatures.append(digest)
            memoChanged = true
        }
    }
}
