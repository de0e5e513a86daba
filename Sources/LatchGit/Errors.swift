import Foundation

/// Everything that can go wrong in git mode. Each case names what failed and, in its
/// description, what the user can do about it. The command line maps `exitCode` to the
/// process status.
public enum GitVaultError: Error, Equatable, CustomStringConvertible, Sendable {
    /// No `.agent-vault/` directory in the working directory or any parent.
    case vaultNotFound(searchedFrom: String)
    /// `init` found an existing vault.
    case alreadyInitialized(String)
    /// No private key was given and none was found in the usual places.
    case noIdentityKey(String)
    /// The key file or `AGENT_VAULT_KEY` holds no usable age identity.
    case invalidKey(String)
    /// The secret's `.enc` file does not exist.
    case secretNotFound(String)
    /// The key in use is not among the secret's recipients.
    case notAuthorized(secret: String)
    case agentExists(String)
    case agentNotFound(String)
    case groupNotFound(String)
    case invalidIdentifier(kind: String, value: String)
    /// A file in `.agent-vault/` could not be parsed.
    case malformed(file: String, reason: String)
    /// Reading or writing a file failed.
    case io(path: String, reason: String)
    /// The system `git` failed.
    case git(command: String, status: Int32, message: String)
    /// age encryption or decryption failed for a reason other than a missing recipient.
    case crypto(String)
    /// A command-line value was not usable (for example `--expires`).
    case usage(String)

    public var description: String {
        switch self {
        case .vaultNotFound(let dir):
            return "vault not found in \(dir) or any parent directory: run `agent-vault init` first"
        case .alreadyInitialized(let dir):
            return "vault already initialized in \(dir)"
        case .noIdentityKey(let detail):
            return "no identity key configured: \(detail)"
        case .invalidKey(let detail):
            return "invalid age identity: \(detail)"
        case .secretNotFound(let path):
            return "secret '\(path)' not found (see `agent-vault list`)"
        case .notAuthorized(let secret):
            return "not authorised: this key cannot decrypt '\(secret)' (ask the owner to grant its agent the secret's group)"
        case .agentExists(let name):
            return "agent '\(name)' already exists"
        case .agentNotFound(let name):
            return "agent '\(name)' not found (see `agent-vault list-agents`)"
        case .groupNotFound(let name):
            return "group '\(name)' not found in the manifest (a group is created by the first `agent-vault set` into it)"
        case .invalidIdentifier(let kind, let value):
            return "invalid \(kind): \(String(reflecting: value)) (use non-empty names without '.', '..', '\\' or control characters)"
        case .malformed(let file, let reason):
            return "cannot parse \(file): \(reason)"
        case .io(let path, let reason):
            return "cannot access \(path): \(reason)"
        case .git(let command, let status, let message):
            let detail = message.trimmingCharacters(in: .whitespacesAndNewlines)
            return "git \(command) failed (status \(status))" + (detail.isEmpty ? "" : ": \(detail)")
        case .crypto(let detail):
            return "age: \(detail)"
        case .usage(let detail):
            return detail
        }
    }

    /// The process exit status for this error. 2–5 are the ones scripts can act on.
    public var exitCode: Int32 {
        switch self {
        case .secretNotFound: return GitVaultExitCode.secretNotFound
        case .notAuthorized: return GitVaultExitCode.notAuthorized
        case .vaultNotFound: return GitVaultExitCode.vaultNotFound
        case .noIdentityKey, .invalidKey: return GitVaultExitCode.noKey
        default: return GitVaultExitCode.failure
        }
    }
}

/// Process exit statuses of `agent-vault` / `latch repo`.
public enum GitVaultExitCode {
    public static let success: Int32 = 0
    /// Any other failure, and `check` finding errors.
    public static let failure: Int32 = 1
    public static let secretNotFound: Int32 = 2
    public static let notAuthorized: Int32 = 3
    public static let vaultNotFound: Int32 = 4
    public static let noKey: Int32 = 5
}
