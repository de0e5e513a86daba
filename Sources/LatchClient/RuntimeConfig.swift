import Foundation

/// The one-time runtime config JSON handed to an agent by `latch agent create`:
/// `{"agentId","accessKey","accessSecret","privateKey","baseUrl"}` (extra keys are kept out
/// of the way and ignored). `privateKey` is a PKCS#8 PEM. Treat the whole file as a secret.
public struct RuntimeConfig: Codable, Sendable, CustomStringConvertible {
    public var agentId: String
    public var accessKey: String
    public var accessSecret: String
    public var privateKey: String
    public var baseUrl: String
    public var tenantId: String?
    public var keyId: String?

    public init(agentId: String, accessKey: String, accessSecret: String, privateKey: String, baseUrl: String,
                tenantId: String? = nil, keyId: String? = nil) {
        self.agentId = agentId
        self.accessKey = accessKey
        self.accessSecret = accessSecret
        self.privateKey = privateKey
        self.baseUrl = baseUrl
        self.tenantId = tenantId
        self.keyId = keyId
    }

    public var apiKey: String { accessKey + "." + accessSecret }

    public var description: String { "RuntimeConfig(agentId: \(agentId), accessKey: \(accessKey), baseUrl: \(baseUrl), secrets: <redacted>)" }

    /// Parse and check the shape (every required field present and non-empty, URL valid).
    public static func parse(_ data: Data) throws -> RuntimeConfig {
        let config: RuntimeConfig
        do {
            config = try JSONDecoder().decode(RuntimeConfig.self, from: data)
        } catch DecodingError.keyNotFound(let key, _) {
            throw LatchError(.configuration, "runtime config is missing \"\(key.stringValue)\"",
                             hint: "use the JSON file written by `latch agent create --out FILE`")
        } catch {
            throw LatchError(.configuration, "runtime config is not valid JSON of the expected shape",
                             hint: "use the JSON file written by `latch agent create --out FILE`")
        }
        for (name, value) in [("agentId", config.agentId), ("accessKey", config.accessKey),
                              ("accessSecret", config.accessSecret), ("privateKey", config.privateKey),
                              ("baseUrl", config.baseUrl)] where value.isEmpty {
            throw LatchError(.configuration, "runtime config field \"\(name)\" is empty")
        }
        if config.accessKey.contains(".") {
            throw LatchError(.configuration, "runtime config accessKey must not contain '.'")
        }
        _ = try ConfigurationResolver.parseBaseURL(config.baseUrl)
        return config
    }

    /// JSON with sorted keys (for writing the file).
    public func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }
}

extension ProfileStore {
    /// Import a runtime config as profile `name`. `keyId` is the fingerprint of the config's
    /// public key, computed by the caller (which has parsed the private key).
    @discardableResult
    public func importRuntimeConfig(_ config: RuntimeConfig, as name: String, keyId: String?,
                                    overwrite: Bool = false) throws -> Profile {
        var baseUrl = config.baseUrl
        while baseUrl.hasSuffix("/") { baseUrl.removeLast() }
        let profile = Profile(name: name, baseUrl: baseUrl, accessKey: config.accessKey, keyId: keyId ?? config.keyId,
                              principalType: "AGENT", principalId: config.agentId, tenantId: config.tenantId)
        try save(profile, apiSecret: config.accessSecret, privateKeyPEM: config.privateKey, overwrite: overwrite)
        return profile
    }
}
