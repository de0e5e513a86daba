import Foundation
import LatchWire

extension ProfileStore {
    /// Switches profile `name` to another API key of the same principal (one an operator issued
    /// with `latch apikey create`): the key is first checked with the server (`GET /me`) to
    /// belong to the profile's principal and to the key pair the profile holds; then the whole
    /// key goes to the API secret file and `profile.json` follows (0600; see `apiKey(_:)` for why
    /// in that order). The old key keeps working until it is revoked. Returns who the key is.
    public func adoptAPIKey(_ apiKey: String, profile name: String, transport: any HTTPTransport = DefaultHTTPTransport()) async throws -> MeResponse {
        let parts = apiKey.split(separator: ".", maxSplits: 1).map(String.init)
        guard parts.count == 2, parts[0].hasPrefix("lk_"), !parts[1].isEmpty, !apiKey.contains(where: \.isWhitespace) else {
            throw LatchError(.usage, "that is not an API key: expected {accessKey}.{secret} on one line (accessKey starts with lk_)")
        }
        var profile = try load(name)
        let http = LatchHTTPClient(baseURL: try ConfigurationResolver.parseBaseURL(profile.baseUrl, source: .profile(name)),
                                   apiKey: apiKey, transport: transport)
        let me = try await http.getJSON(MeResponse.self, LatchRoutes.me)
        if let id = profile.principalId, me.principal.id != id {
            throw LatchError(.auth, "the key belongs to \(me.principal.type.lowercased()) \(me.principal.name) (\(me.principal.id)), not to this profile's \(id)",
                             hint: "import it into the profile of that principal, or `latch configure agent` a new runtime config")
        }
        if let keyId = profile.keyId, let served = me.publicKey?.keyId, served != keyId {
            throw LatchError(.auth, "the server holds key \(served.prefix(16))… for \(me.principal.name), but this profile's private key is \(keyId.prefix(16))…")
        }
        try SecureFile.write(Data(apiKey.utf8), to: apiSecretPath(name), mode: 0o600)   // the whole key: in force from here on
        profile.accessKey = parts[0]
        profile.principalId = me.principal.id
        try update(profile)
        return me
    }
}

extension Latch {
    /// What `rotateProfileAPIKey` did.
    public struct APIKeyRotation: Sendable {
        public var previousAccessKey: String
        public var key: APIKeyInfo
        /// Nil when the old key was revoked; otherwise why it was not (it still works: revoke it).
        public var revocationError: String?
    }

    /// Rotates a user profile's API key in one go: a new USER key with the same permissions
    /// (working until `expiresAt` when given) is issued, the profile switched to it (checked
    /// with the server first), and the old key revoked with the new one. An agent's keys are
    /// issued by its operators instead (`latch apikey create --agent`, then `latch configure
    /// api-key` on the agent's host).
    public static func rotateProfileAPIKey(profile name: String?, expiresAt: Date? = nil,
                                           environment: [String: String] = ProcessInfo.processInfo.environment,
                                           transport: (any HTTPTransport)? = nil) async throws -> APIKeyRotation {
        let config = try ConfigurationResolver.resolve(ExplicitConfiguration(profile: name), environment: environment)
        guard case .profile(let profileName) = config.apiKeySource else {
            throw LatchError(.configuration, "rotate changes a profile's API key, but the key in use comes from \(config.apiKeySource)",
                             hint: "unset LATCH_API_KEY and pass --profile NAME")
        }
        let latch = try await create(configuration: config, transport: transport, sync: false)
        guard latch.identity.principal.type == "USER", latch.identity.scope == "USER" else {
            throw LatchError(.usage, "only a user's USER key rotates itself; this profile holds a \(latch.identity.scope) key of \(latch.identity.principal.type.lowercased()) \(latch.identity.principal.name)",
                             hint: "an operator issues an agent's next key: `latch apikey create --agent NAME --out FILE`, then `latch configure api-key --from-file FILE` on the agent's host")
        }
        let old = latch.identity.accessKey
        let issued = try await latch.issueAPIKey(scope: "USER", permissions: latch.identity.permissions, expiresAt: expiresAt)
        guard let key = issued.apiKey else { throw LatchError(.invalidResponse, "the server issued \(issued.accessKey) but did not return it") }
        let store = ProfileStore(home: config.home)
        do {
            _ = try await store.adoptAPIKey(key, profile: profileName, transport: transport ?? DefaultHTTPTransport())
        } catch {
            let cause = (error as? LatchError) ?? LatchError(.io, "\(error)")
            var failed = cause
            if (try? store.load(profileName)).flatMap({ try? store.apiKey($0) }) == key {
                // The whole key reached api-secret (it is in force); only profile.json lagged.
                failed.message = "the profile now uses the new key \(issued.accessKey), but: " + cause.message
                failed.hint = "the old key \(old) still works: `latch apikey revoke \(old)`"
                throw failed
            }
            // The profile still holds the old key. The new key must not linger with nowhere on
            // disk: revoke it with the old.
            do {
                _ = try await latch.revokeAPIKey(accessKey: issued.accessKey)
                failed.message = "rotation undone, the profile keeps its key: " + cause.message
            } catch {
                failed.message = "rotation failed and the new key \(issued.accessKey) could not be revoked: " + cause.message
                failed.hint = "revoke it: `latch apikey revoke \(issued.accessKey)`; the profile still uses its old key"
            }
            throw failed
        }
        let http = LatchHTTPClient(baseURL: config.baseURL, apiKey: key, transport: transport ?? DefaultHTTPTransport())
        do {
            _ = try await http.send(method: "DELETE", path: LatchRoutes.apiKey(old))
            return APIKeyRotation(previousAccessKey: old, key: issued, revocationError: nil)
        } catch {
            return APIKeyRotation(previousAccessKey: old, key: issued, revocationError: "\(error)")
        }
    }
}
