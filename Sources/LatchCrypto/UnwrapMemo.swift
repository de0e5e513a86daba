import Crypto
import Foundation

/// What one private key has unwrapped, sealed so that only the holder of that same private key
/// can read it back. A client that opens the same wrapped DEK in every run (`latch get` in an
/// agent's start-up path) then skips the RSA private-key operation, the largest single cost of
/// such a run.
///
/// It is the memo of a pure function, `unwrap(wrapped) -> DEK`, keyed by the SHA-256 of the
/// wrapped bytes, and it decides nothing: the caller checks the wrapped key against its signed
/// statement, the statement's signer, and the DEK version exactly as before, and asks the memo
/// only for the bytes that `PrincipalPrivateKey.unwrap` would have returned. A wrapped key the
/// server no longer serves (revocation) is never looked up, and a rotated DEK comes wrapped in
/// new bytes, so it is a miss.
///
/// The sealed form (docs/protocol.md 6.10): `LKM1 ‖ nonce (12) ‖ AES-256-GCM
/// ciphertext ‖ tag (16)`, additional data `LKM1`, under
/// `SHA-256("latchkey unwrap memo v1" ‖ 0x00 ‖ the private key's DER)` (the DER is a secret of
/// thousands of bits, so one hash with a domain prefix is a sound key derivation).
/// Whoever can read the memo file can read the private key file beside it, which opens every
/// wrapped DEK anyway; without that key the memo is ciphertext. The plaintext is UTF-8 lines:
/// `key <keyId>` (the public key id, so that a run can check its key without parsing the RSA
/// key), then `dek <version> <sha256(wrapped) hex> <DEK base64>` per DEK, then `sig <digest>` per
/// signature check that passed (`SignedEnvelope.signatureDigest`: the key id, signature and
/// signed bytes of a check whose answer cannot change, so a later run need not redo the RSA
/// operation; whether that signer may sign is decided afresh every time).
public struct UnwrapMemo: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The public key id of the key this memo belongs to.
    public var keyId: String?
    private var entries: [String: (version: Int, bytes: Data)] = [:]
    private var signatures: [String: Bool] = [:]

    static let magic: [UInt8] = [0x4C, 0x4B, 0x4D, 0x31]   // "LKM1"

    public init(keyId: String? = nil) { self.keyId = keyId }

    public var count: Int { entries.count }

    /// Signature checks held.
    public var signatureCount: Int { signatures.count }

    /// Never shows a DEK: only the key id and how many it holds.
    public var description: String { "UnwrapMemo(keyId: \(keyId ?? "none"), \(entries.count) DEKs, \(signatures.count) signatures, <redacted>)" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }

    /// The DEK that `wrapped` unwraps to, if this memo holds it for `version`.
    public func dek(unwrapping wrapped: Data, version: Int) -> DataEncryptionKey? {
        guard let e = entries[SHA256Hex.of(wrapped)], e.version == version else { return nil }
        return DataEncryptionKey(key: SymmetricKey(data: e.bytes), version: version)
    }

    /// Remembers that `wrapped` unwraps to `dek`.
    public mutating func remember(_ dek: DataEncryptionKey, unwrapping wrapped: Data) {
        entries[SHA256Hex.of(wrapped)] = (dek.version, dek.key.withUnsafeBytes { Data($0) })
    }

    /// Keeps only the entries for these wrapped keys.
    public mutating func keep(onlyUnwrapping wrapped: [Data]) {
        var wanted: [String] = []
        for w in wrapped { wanted.append(SHA256Hex.of(w)) }   // (not generic `map`: see `Data(utf8Of:)`)
        entries = entries.filter { wanted.contains($0.key) }
    }

    /// Whether the signature check named by `digest` (`SignedEnvelope.signatureDigest`) passed before.
    public func hasVerified(_ digest: String) -> Bool { signatures[digest] != nil }

    /// Remembers that the check named by `digest` passed.
    public mutating func rememberVerified(_ digest: String) { signatures[digest] = true }

    /// Keeps only these signature checks.
    public mutating func keep(onlyVerified digests: [String]) {
        signatures = signatures.filter { digests.contains($0.key) }
    }

    /// The key that seals the memo of the private key whose PEM this is (PKCS#8 or PKCS#1;
    /// the memo of one spelling does not open with the other).
    public struct SealingKey: Sendable {
        let key: SymmetricKey
        public init(privateKeyPEM pem: String) throws {
            var input = Array("latchkey unwrap memo v1".utf8)
            input.append(0)
            input.append(contentsOf: try PEMBlock(parsing: pem).der)
            key = SymmetricKey(data: SHA256.hash(data: input))
        }
    }

    /// The sealed memo, with a fresh nonce from `rng`.
    public func sealed(with k: SealingKey, using rng: inout some RandomNumberGenerator) throws -> Data {
        var text = "key \(keyId ?? "")\n"
        for (hash, e) in entries.sorted(by: { $0.key < $1.key }) {
            text += "dek \(e.version) \(hash) \(e.bytes.base64EncodedString())\n"
        }
        for digest in signatures.keys.sorted() { text += "sig \(digest)\n" }
        var nonce = [UInt8](repeating: 0, count: 12)
        for i in nonce.indices { nonce[i] = UInt8.random(in: 0...255, using: &rng) }
        let box = try AES.GCM.seal(Array(text.utf8), using: k.key, nonce: try AES.GCM.Nonce(data: nonce), authenticating: Self.magic)
        guard let combined = box.combined else { throw LatchCryptoError.wrap("AES-GCM gave no combined form") }
        return Data(Self.magic) + combined
    }

    /// The memo sealed in `data` under `k`; nil for anything that does not open (another key,
    /// an altered or truncated file): the caller then unwraps with RSA as if there were none.
    public static func open(_ data: Data, with k: SealingKey) -> UnwrapMemo? {
        guard data.count >= 4 + 12 + 16, data.prefix(4).elementsEqual(magic),
              let box = try? AES.GCM.SealedBox(combined: data.dropFirst(4)),
              let plain = try? AES.GCM.open(box, using: k.key, authenticating: magic) else { return nil }
        var memo = UnwrapMemo()
        for line in String(decoding: plain, as: UTF8.self).split(separator: "\n") {
            let f = line.split(separator: " ", omittingEmptySubsequences: false)
            if f.count == 2, f[0] == "key" {
                memo.keyId = f[1].isEmpty ? nil : String(f[1])
            } else if f.count == 4, f[0] == "dek", let v = Int(f[1]), v >= 1, f[2].utf8.count == 64,
                      let dek = Data(base64Encoded: String(f[3])), dek.count == DataEncryptionKey.byteCount {
                memo.entries[String(f[2])] = (v, dek)
            } else if f.count == 2, f[0] == "sig", f[1].utf8.count == 64 {
                memo.signatures[String(f[1])] = true
            } else {
                return nil
            }
        }
        return memo
    }
}
