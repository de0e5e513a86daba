import Foundation
import LatchWire

extension ProfileStore {
    /// Switches profile `name` to another API key of the same principal (one an operator issued
    /// with `latch apikey create`): the key is first checked with the server (`GET /me`) to
    /// belong to the profile's principal and to the key pair the profile holds; then the API
    /// secret file and `profile.json` are rewritten (0600). The old key keeps working until it
    /// is revoked. Returns who the key is.
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
        try SecureFile.write(Data(parts[1].utf8), to: apiSecretPath(name), mode: 0o600)
        profile.accessKey = parts[0]
        profile.principalId = me.principal.id
        try update(profile)
        return me
    }
}
