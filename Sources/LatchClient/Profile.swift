import Foundation
import LatchCrypto

/// What a profile remembers about one identity on one server. Stored as
/// `$LATCH_HOME/profiles/NAME/profile.json` (mode 0600). Holds no secret: the API secret and
/// the private key live in their own 0600 files next to it.
public struct Profile: Codable, Sendable, Equatable {
    public var name: String
    public var baseUrl: String
    /// Public part of the API key (`{accessKey}.{secret}`).
    public var accessKey: String
    /// Fingerprint of the profile's public key (lowercase hex SHA-256 of its SPKI DER).
    public var keyId: String?
    /// `USER` or `AGENT`.
    public var principalType: String?
    public var principalId: String?
    public var tenantId: String?
    public var orgId: String?
    /// Hex SHA-256 of the server's transparency-log key, once pinned.
    public var logKeyId: String?

    /// `profile.json` read directly (see `DocScanner`); nil gives up and JSONDecoder reads it.
    static func readDirect(_ data: Data) -> Profile? {
        var name, baseUrl, accessKey: String?
        var keyId, principalType, principalId, tenantId, orgId, logKeyId: String??
        guard DocScanner.read(data, { s, key in
            switch key {
            case "name": return once(&name, s.string())
            case "baseUrl": return once(&baseUrl, s.string())
            case "accessKey": return once(&accessKey, s.string())
            case "keyId": return once(&keyId, s.optionalString())
            case "principalType": return once(&principalType, s.optionalString())
            case "principalId": return once(&principalId, s.optionalString())
            case "tenantId": return once(&tenantId, s.optionalString())
            case "orgId": return once(&orgId, s.optionalString())
            case "logKeyId": return once(&logKeyId, s.optionalString())
            default: return s.skipValue()
            }
        }), let name, let baseUrl, let accessKey else { return nil }
        return Profile(name: name, baseUrl: baseUrl, accessKey: accessKey, keyId: keyId ?? nil, principalType: principalType ?? nil,
                       principalId: principalId ?? nil, tenantId: tenantId ?? nil, orgId: orgId ?? nil, logKeyId: logKeyId ?? nil)
    }

    public init(name: String, baseUrl: String, accessKey: String, keyId: String? = nil,
                principalType: String? = nil, principalId: String? = nil, tenantId: String? = nil,
                orgId: String? = nil, logKeyId: String? = nil) {
        self.name = name
        self.baseUrl = baseUrl
        self.accessKey = accessKey
        self.keyId = keyId
        self.principalType = principalType
        self.principalId = principalId
        self.tenantId = tenantId
        self.orgId = orgId
        self.logKeyId = logKeyId
    }
}

/// Profiles under `$LATCH_HOME/profiles/NAME/`:
///
/// | file | mode | content |
/// |---|---|---|
/// | `profile.json` | 0600 | `Profile` |
/// | `api-secret` | 0600 | the secret half of the API key, no newline; or the whole key `{accessKey}.{secret}` (written when a profile moves to another key: `apiKey(_:)`) |
/// | `private-key.pem` | 0600 | PKCS#8 PEM private key |
/// | `seen.json` | 0600 | `SeenState`: last checkpoint versions (no secret) |
/// | `seen.json.lock` | 0600 | empty; `flock`ed while `seen.json` is merged and written |
/// | `log.json` | 0600 | `LogTrust`: pinned transparency-log key and last verified tree head (no secret) |
/// | `log.json.lock` | 0600 | empty; `flock`ed while `log.json` is written (`TrustFile.write`) |
///
/// The profile used when none is named is always the one called `default`; writing another
/// profile never changes that.
public struct ProfileStore: Sendable {
    public static let defaultProfileName = "default"
    public let home: String

    public init(home: String) { self.home = home }

    public var profilesDirectory: String { home + "/profiles" }
    public func directory(for name: String) -> String { profilesDirectory + "/" + name }
    public func profilePath(_ name: String) -> String { directory(for: name) + "/profile.json" }
    public func apiSecretPath(_ name: String) -> String { directory(for: name) + "/api-secret" }
    public func privateKeyPath(_ name: String) -> String { directory(for: name) + "/private-key.pem" }
    public func seenStatePath(_ name: String) -> String { directory(for: name) + "/seen.json" }
    public func logTrustPath(_ name: String) -> String { directory(for: name) + "/log.json" }
    /// The unwrap memo (`UnwrapMemo`): sealed under a key derived from the profile's private key.
    public func unwrapMemoPath(_ name: String) -> String { directory(for: name) + "/unwrap-memo" }

    /// Profile names: 1–64 of `A-Z a-z 0-9 . _ -`, not starting with `.`.
    public static func validate(name: String) throws {
        let allowed = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")
        guard !name.isEmpty, name.count <= 64, !name.hasPrefix("."), name.allSatisfy({ allowed.contains($0) }) else {
            throw LatchError(.usage, "invalid profile name \"\(name)\"",
                             hint: "use 1-64 letters, digits, '.', '_' or '-', not starting with '.'")
        }
    }

    public func exists(_ name: String) -> Bool {
        FileManager.default.fileExists(atPath: profilePath(name))
    }

    public func list() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: profilesDirectory)) ?? []
        return names.filter { exists($0) }.sorted()
    }

    public func load(_ name: String) throws -> Profile {
        try Self.validate(name: name)
        let path = profilePath(name)
        guard FileManager.default.fileExists(atPath: path) else {
            throw LatchError(.configuration, "no profile named \"\(name)\" in \(profilesDirectory)",
                             hint: "run `latch init` or `latch configure agent`, or set LATCH_API_KEY and LATCH_PRIVATE_KEY_PATH")
        }
        do {
            let data = try SecureFile.read(path)
            return try Profile.readDirect(data) ?? JSONDecoder().decode(Profile.self, from: data)
        } catch let error as LatchError {
            throw error
        } catch {
            throw LatchError(.configuration, "profile file \(path) is not valid JSON: \(error)")
        }
    }

    public func apiSecret(_ name: String) throws -> String {
        let data = try SecureFile.read(apiSecretPath(name))
        return String(decoding: data, as: UTF8.self).trimmedASCII
    }

    /// The profile's API key: `api-secret` when it holds the whole key (a secret has no `.`),
    /// else `profile`'s access key and that secret. Moving a profile to another key writes the
    /// whole key there first, in one rename, and `profile.json` after: a crash between the two
    /// leaves the new key in force, not a new secret beside the old access key (with the old
    /// secret overwritten and the new access key nowhere).
    public func apiKey(_ profile: Profile) throws -> String {
        let stored = try apiSecret(profile.name)
        return stored.contains(".") ? stored : profile.accessKey + "." + stored
    }

    /// Write a profile with its API secret and private key. The directory is made 0700 and
    /// every file 0600. Refuses to replace an existing profile unless `overwrite`.
    public func save(_ profile: Profile, apiSecret: String, privateKeyPEM: String, overwrite: Bool = false) throws {
        try Self.validate(name: profile.name)
        if exists(profile.name) && !overwrite {
            throw LatchError(.conflict, "profile \"\(profile.name)\" already exists",
                             hint: "choose another name with --profile NAME, or pass --overwrite")
        }
        try SecureFile.makeDirectory(home, mode: 0o700)
        try SecureFile.makeDirectory(profilesDirectory, mode: 0o700)
        try SecureFile.makeDirectory(directory(for: profile.name), mode: 0o700)
        try SecureFile.write(Data(privateKeyPEM.utf8), to: privateKeyPath(profile.name), mode: 0o600)
        try SecureFile.write(Data(apiSecret.utf8), to: apiSecretPath(profile.name), mode: 0o600)
        try update(profile)
    }

    /// Rewrite `profile.json` only.
    public func update(_ profile: Profile) throws {
        try Self.validate(name: profile.name)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try SecureFile.write(try encoder.encode(profile), to: profilePath(profile.name), mode: 0o600)
    }
}
