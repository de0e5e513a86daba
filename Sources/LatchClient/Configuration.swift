import Foundation
import LatchCrypto

/// Environment variable names the client reads. The `R4_` names are aliases accepted so that
/// runtimes written for R4 work unchanged; a `LATCH_` variable wins over its alias.
public enum LatchEnvironmentKey {
    public static let apiKey = ["LATCH_API_KEY", "R4_API_KEY"]
    public static let privateKeyPath = ["LATCH_PRIVATE_KEY_PATH", "R4_PRIVATE_KEY_PATH"]
    public static let privateKey = ["LATCH_PRIVATE_KEY", "R4_PRIVATE_KEY"]
    public static let baseURL = ["LATCH_BASE_URL", "R4_BASE_URL"]
    public static let profile = "LATCH_PROFILE"
    public static let home = "LATCH_HOME"
    /// The transparency-log verifier key to pin (`name+keyid+base64`), instead of trusting
    /// the key the server serves on first use.
    public static let logKey = "LATCH_LOG_KEY"
}

/// Values given explicitly (command-line options or SDK arguments). They beat the environment,
/// which beats the profile.
public struct ExplicitConfiguration: Sendable {
    public var apiKey: String?
    public var privateKeyPath: String?
    public var privateKeyPEM: String?
    public var baseURL: String?
    public var profile: String?
    public var home: String?
    /// The transparency-log key to pin (`--log-key`).
    public var logKey: String?

    public init(apiKey: String? = nil, privateKeyPath: String? = nil, privateKeyPEM: String? = nil,
                baseURL: String? = nil, profile: String? = nil, home: String? = nil, logKey: String? = nil) {
        self.logKey = logKey
        self.apiKey = apiKey
        self.privateKeyPath = privateKeyPath
        self.privateKeyPEM = privateKeyPEM
        self.baseURL = baseURL
        self.profile = profile
        self.home = home
    }
}

/// Where a resolved value came from (for `latch doctor` and error messages).
public enum ConfigurationSource: Sendable, Equatable, CustomStringConvertible {
    case explicit
    case environment(String)
    case profile(String)
    case builtIn

    public var description: String {
        switch self {
        case .explicit: "command line"
        case .environment(let name): "environment \(name)"
        case .profile(let name): "profile \(name)"
        case .builtIn: "built-in default"
        }
    }
}

/// A fully resolved configuration. `privateKeyPEM` is key material: never print it.
public struct ResolvedConfiguration: Sendable, CustomStringConvertible {
    public var apiKey: String
    public var apiKeySource: ConfigurationSource
    public var privateKeyPEM: String
    public var privateKeySource: ConfigurationSource
    /// The key file, when the key came from a file (for permission checks).
    public var privateKeyPath: String?
    public var baseURL: URL
    public var baseURLSource: ConfigurationSource
    public var home: String
    /// The profile name in effect (whether or not it supplied any value).
    public var profileName: String
    /// The loaded profile, when one exists.
    public var profile: Profile?
    /// A transparency-log key given explicitly (`--log-key` or `LATCH_LOG_KEY`), and where from.
    public var logKey: String?
    public var logKeySource: ConfigurationSource?

    /// The access-key half of the API key (safe to show).
    public var accessKey: String {
        apiKey.split(separator: ".", maxSplits: 1).first.map(String.init) ?? ""
    }

    public var description: String {
        "ResolvedConfiguration(accessKey: \(accessKey), baseURL: \(baseURL), profile: \(profileName), key: <redacted>)"
    }
}

public enum ConfigurationResolver {
    public static let defaultBaseURL = "http://127.0.0.1:8484"

    /// `LATCH_HOME`, else `$HOME/.latch`.
    public static func home(explicit: String? = nil, environment: [String: String]) -> String {
        if let explicit, !explicit.isEmpty { return explicit }
        if let value = environment[LatchEnvironmentKey.home], !value.isEmpty { return value }
        let userHome = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return userHome + "/.latch"
    }

    /// `path` with a leading `~` or `~/` read against `HOME`; `~user/…` goes to NSString (whose
    /// first use costs a short process a scan of every conformance record, so not for the rest).
    static func expandingTilde(_ path: String, environment: [String: String]) -> String {
        guard path.hasPrefix("~") else { return path }
        if path == "~" || path.hasPrefix("~/"), let home = environment["HOME"], !home.isEmpty { return home + path.dropFirst() }
        return (path as NSString).expandingTildeInPath
    }

    /// `--profile`, else `LATCH_PROFILE`, else `default`.
    public static func profileName(explicit: String? = nil, environment: [String: String]) -> String {
        if let explicit, !explicit.isEmpty { return explicit }
        if let value = environment[LatchEnvironmentKey.profile], !value.isEmpty { return value }
        return ProfileStore.defaultProfileName
    }

    /// Resolve each value independently: explicit, then environment (`LATCH_` before `R4_`),
    /// then the profile. Within one layer a key path beats an inline PEM. The environment is
    /// passed in; nothing here reads the process environment.
    public static func resolve(_ explicit: ExplicitConfiguration = ExplicitConfiguration(),
                               environment: [String: String]) throws -> ResolvedConfiguration {
        let home = home(explicit: explicit.home, environment: environment)
        let name = profileName(explicit: explicit.profile, environment: environment)
        try ProfileStore.validate(name: name)
        let store = ProfileStore(home: home)
        let namedExplicitly = explicit.profile != nil || environment[LatchEnvironmentKey.profile]?.isEmpty == false
        var profile: Profile? = nil
        if store.exists(name) {
            profile = try store.load(name)
        } else if namedExplicitly {
            throw LatchError(.configuration, "no profile named \"\(name)\" in \(store.profilesDirectory)",
                             hint: "list profiles with `ls \(store.profilesDirectory)` or create one with `latch configure agent --profile \(name)`")
        }

        func fromEnv(_ names: [String]) -> (String, String)? {
            for n in names { if let v = environment[n], !v.isEmpty { return (v, n) } }
            return nil
        }

        // API key
        var apiKey: (String, ConfigurationSource)? = nil
        if let v = explicit.apiKey, !v.isEmpty { apiKey = (v, .explicit) }
        else if let (v, n) = fromEnv(LatchEnvironmentKey.apiKey) { apiKey = (v, .environment(n)) }
        else if let profile {
            apiKey = (try store.apiKey(profile), .profile(name))
        }
        guard let apiKey else {
            throw LatchError(.configuration, "no API key configured (profile \"\(name)\" does not exist and LATCH_API_KEY is not set)",
                             hint: "run `latch init` or `latch configure agent --config FILE`, or set LATCH_API_KEY and LATCH_PRIVATE_KEY_PATH")
        }
        guard apiKey.0.utf8.contains(UInt8(ascii: ".")) else {
            throw LatchError(.configuration, "API key from \(apiKey.1) is not of the form ACCESS_KEY.SECRET")
        }

        // Private key
        var key: (pem: String, source: ConfigurationSource, path: String?)? = nil
        func readKey(_ path: String, _ source: ConfigurationSource) throws -> (String, ConfigurationSource, String?) {
            let expanded = expandingTilde(path, environment: environment)
            guard FileManager.default.fileExists(atPath: expanded) else {
                throw LatchError(.configuration, "private key file \(expanded) (from \(source)) does not exist")
            }
            guard let data = FileManager.default.contents(atPath: expanded) else {
                throw LatchError(.configuration, "private key file \(expanded) (from \(source)) is not readable")
            }
            return (String(decoding: data, as: UTF8.self), source, expanded)
        }
        if let p = explicit.privateKeyPath, !p.isEmpty { key = try readKey(p, .explicit) }
        else if let pem = explicit.privateKeyPEM, !pem.isEmpty { key = (pem, .explicit, nil) }
        else if let (p, n) = fromEnv([LatchEnvironmentKey.privateKeyPath[0]]) { key = try readKey(p, .environment(n)) }
        else if let (v, n) = fromEnv([LatchEnvironmentKey.privateKey[0]]) { key = (normalizePEM(v), .environment(n), nil) }
        else if let (p, n) = fromEnv([LatchEnvironmentKey.privateKeyPath[1]]) { key = try readKey(p, .environment(n)) }
        else if let (v, n) = fromEnv([LatchEnvironmentKey.privateKey[1]]) { key = (normalizePEM(v), .environment(n), nil) }
        else if profile != nil { key = try readKey(store.privateKeyPath(name), .profile(name)) }
        guard let key else {
            throw LatchError(.configuration, "no private key configured",
                             hint: "set LATCH_PRIVATE_KEY_PATH (or LATCH_PRIVATE_KEY), or use a profile")
        }

        // Base URL
        var base: (String, ConfigurationSource)
        if let v = explicit.baseURL, !v.isEmpty { base = (v, .explicit) }
        else if let (v, n) = fromEnv(LatchEnvironmentKey.baseURL) { base = (v, .environment(n)) }
        else if let profile { base = (profile.baseUrl, .profile(name)) }
        else { base = (defaultBaseURL, .builtIn) }
        let url = try parseBaseURL(base.0, source: base.1)

        // Transparency-log key (optional: without one, the key served first is pinned)
        var logKey: (String, ConfigurationSource)? = nil
        if let v = explicit.logKey, !v.isEmpty { logKey = (v, .explicit) }
        else if let (v, n) = fromEnv([LatchEnvironmentKey.logKey]) { logKey = (v, .environment(n)) }

        return ResolvedConfiguration(
            apiKey: apiKey.0, apiKeySource: apiKey.1, privateKeyPEM: key.pem, privateKeySource: key.source,
            privateKeyPath: key.path, baseURL: url, baseURLSource: base.1, home: home, profileName: name,
            profile: profile, logKey: logKey?.0.trimmingCharacters(in: .whitespacesAndNewlines), logKeySource: logKey?.1)
    }

    /// Accept `http(s)://host[:port][/prefix]`; strip a trailing `/`.
    public static func parseBaseURL(_ string: String, source: ConfigurationSource = .explicit) throws -> URL {
        var s = string.trimmedASCII
        while s.hasSuffix("/") { s.removeLast() }
        guard let url = URL(string: s), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
              url.host != nil else {
            throw LatchError(.configuration, "base URL \"\(string)\" (from \(source)) is not an http(s) URL",
                             hint: "use e.g. http://127.0.0.1:8484")
        }
        return url
    }

    /// Inline PEMs in environment variables often arrive with literal `\n`; restore newlines.
    static func normalizePEM(_ value: String) -> String {
        value.utf8.contains(UInt8(ascii: "\n")) ? value : value.replacingOccurrences(of: "\\n", with: "\n")
    }
}
