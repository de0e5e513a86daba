import Foundation
import LatchAge

/// Reading many secrets at once with one key, for `latch run --repo` (and anything else that
/// wants every secret a key may read). Values only ever live in memory.
extension GitVault {
    /// The secrets `identity` can decrypt, in `list` order (sorted by file path), optionally only
    /// those whose `.meta` names `group`. A secret whose `.enc` does not name the key as a
    /// recipient is left out and named in `unreadable`; any other failure throws.
    public func readableSecrets(identity: AgeX25519Identity, group: String? = nil) throws -> ReadableSecrets {
        let selected = try listSecrets(group: group)
        var result = ReadableSecrets()
        for meta in selected {
            let file = VaultLayout.secretFile(meta.name)
            guard exists(file) else { continue }
            do {
                result.secrets.append((meta.name, try decrypt(read(file), identity: identity, what: meta.name)))
            } catch GitVaultError.notAuthorized {
                result.unreadable.append(meta.name)
            }
        }
        return result
    }
}

/// What `readableSecrets` found: the decrypted secrets and the paths this key cannot read.
public struct ReadableSecrets: Sendable {
    public var secrets: [(path: String, value: Data)] = []
    public var unreadable: [String] = []
    public init() {}
}

/// Environment-variable names for git-mode secrets: the full secret path through a naming rule
/// (the `latch` CLI passes `EnvNames.screamingSnake`, so `stripe/api-key` becomes
/// `STRIPE_API_KEY` and `apps/prod/token` `APPS_PROD_TOKEN`), then the prefix. Secrets are
/// taken in path order; on a collision the first keeps the name and later ones are dropped and
/// reported; a path that yields no name is reported as unnamed.
public struct GitSecretEnvironment: Sendable {
    public var variables: [(name: String, path: String, value: String)] = []
    public var collisions: [(name: String, kept: String, dropped: String)] = []
    public var unnamed: [String] = []

    public init(secrets: [(path: String, value: Data)], prefix: String = "", name: (String) -> String?) {
        var taken: [String: String] = [:]
        for (path, value) in secrets {
            guard let base = name(path) else {
                unnamed.append(path)
                continue
            }
            let variable = prefix + base
            if let kept = taken[variable] {
                collisions.append((variable, kept, path))
                continue
            }
            taken[variable] = path
            variables.append((variable, path, String(decoding: value, as: UTF8.self)))
        }
    }

    /// Name → value.
    public var dictionary: [String: String] {
        Dictionary(variables.map { ($0.name, $0.value) }, uniquingKeysWith: { first, _ in first })
    }
}
