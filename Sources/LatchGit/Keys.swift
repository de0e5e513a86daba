import Foundation
import LatchAge

/// Key files as agent-vault writes them: the bare `age1…` or `AGE-SECRET-KEY-1…` string,
/// no trailing newline. Readers accept surrounding whitespace and, for private keys, an
/// `age-keygen` style file whose first `AGE-SECRET-KEY-` line is the key.
public enum VaultKeyFile {
    public static func publicKeyData(_ recipient: AgeX25519Recipient) -> Data { Data(recipient.string.utf8) }
    public static func privateKeyData(_ identity: AgeX25519Identity) -> Data { Data(identity.string.utf8) }

    public static func parseRecipient(_ data: Data, file: String) throws -> AgeX25519Recipient {
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        do { return try AgeX25519Recipient(string: text) } catch {
            throw GitVaultError.malformed(file: file, reason: "not an age public key (age1…): \(error)")
        }
    }

    /// Parses the first `AGE-SECRET-KEY-` line of `text`. `source` names where it came from
    /// (a path or `AGENT_VAULT_KEY`); the key itself never appears in an error.
    public static func parseIdentity(_ text: String, source: String) throws -> AgeX25519Identity {
        for line in text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("AGE-SECRET-KEY-") {
                do { return try AgeX25519Identity(string: trimmed) } catch {
                    throw GitVaultError.invalidKey("\(source) holds a malformed AGE-SECRET-KEY- string")
                }
            }
        }
        throw GitVaultError.invalidKey("\(source) holds no AGE-SECRET-KEY- line")
    }
}

/// Where `get` found its key, without the key itself.
public enum IdentitySource: Sendable, Equatable, CustomStringConvertible {
    case keyOption(String)
    case environmentFile(String)
    case environmentValue
    case ownerKey(String)

    public var description: String {
        switch self {
        case .keyOption(let path): return "--key \(path)"
        case .environmentFile(let path): return "AGENT_VAULT_KEY file \(path)"
        case .environmentValue: return "AGENT_VAULT_KEY"
        case .ownerKey(let path): return path
        }
    }
}

/// agent-vault's key resolution for `get`: `--key PATH`, then `AGENT_VAULT_KEY` (a raw
/// `AGE-SECRET-KEY-…` string held in memory only, or a file path), then
/// `~/.agent-vault/owner.key`.
public struct IdentityResolver: Sendable {
    public var environment: VaultEnvironment
    public var fileSystem: any VaultFileSystem

    public init(environment: VaultEnvironment, fileSystem: any VaultFileSystem = LocalFileSystem()) {
        self.environment = environment
        self.fileSystem = fileSystem
    }

    public func resolve(keyOption: String?) throws -> (identity: AgeX25519Identity, source: IdentitySource) {
        if let path = keyOption {
            let url = URL(fileURLWithPath: path)
            guard fileSystem.fileExists(url) else {
                throw GitVaultError.noIdentityKey("key file \(path) (from --key) does not exist")
            }
            return (try load(url, source: path), .keyOption(path))
        }
        if let value = environment.agentVaultKey {
            let trimmed = value.trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.hasPrefix("AGE-SECRET-KEY-") {
                return (try VaultKeyFile.parseIdentity(trimmed, source: "AGENT_VAULT_KEY"), .environmentValue)
            }
            let url = URL(fileURLWithPath: value)
            if fileSystem.fileExists(url) {
                return (try load(url, source: value), .environmentFile(value))
            }
        }
        let owner = environment.keys.ownerKey
        if fileSystem.fileExists(owner) {
            return (try load(owner, source: owner.path), .ownerKey(owner.path))
        }
        var detail = "use --key <path>, set AGENT_VAULT_KEY, or create ~/.agent-vault/owner.key with `agent-vault init`"
        if environment.agentVaultKey != nil {
            detail = "AGENT_VAULT_KEY is neither an AGE-SECRET-KEY- string nor an existing file; " + detail
        }
        throw GitVaultError.noIdentityKey(detail)
    }

    /// The owner's identity, needed by every command that re-encrypts.
    public func ownerIdentity() throws -> AgeX25519Identity {
        let owner = environment.keys.ownerKey
        guard fileSystem.fileExists(owner) else {
            throw GitVaultError.noIdentityKey("the owner key \(owner.path) is missing; this command needs the vault owner's key")
        }
        return try load(owner, source: owner.path)
    }

    func load(_ url: URL, source: String) throws -> AgeX25519Identity {
        let data = try fileSystem.read(url)
        return try VaultKeyFile.parseIdentity(String(decoding: data, as: UTF8.self), source: source)
    }
}
