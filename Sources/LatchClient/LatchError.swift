import Foundation

/// Process exit codes used by `latch` and available to SDK users who wrap it.
///
/// Values follow BSD `sysexits.h` where one fits, so the argument parser's own usage
/// failures (64) land in the same table. `latch run` passes the child's status through
/// unchanged, which may overlap this table; that is documented.
public enum LatchExitCode: Int32, Sendable, CaseIterable {
    case ok = 0
    /// Anything not covered below (local I/O, unexpected server answer).
    case failure = 1
    /// Bad command line or arguments.
    case usage = 64
    /// A signature, checkpoint, hash or key check failed: the data was refused.
    case verificationFailed = 65
    /// The named vault, item, secret or profile does not exist (or is not visible).
    case notFound = 66
    /// The API key or private key was rejected, or no credentials are configured.
    case authFailed = 67
    /// The server could not be reached or answered 5xx.
    case serverUnavailable = 69
    /// Rate limited (429) after retries.
    case rateLimited = 75
    /// Authenticated, but not allowed to do this.
    case forbidden = 77
    /// Configuration missing or invalid (no profile, unreadable key file, bad URL).
    case configuration = 78
}

/// The one error type the client reports. `kind` says which layer failed, `message` what
/// happened, `hint` what a person can do about it. Never carries a secret value.
public struct LatchError: Error, Sendable, CustomStringConvertible, Equatable {
    public enum Kind: String, Sendable, Equatable {
        case usage, configuration, auth, forbidden, notFound, verification, unavailable,
            rateLimited, conflict, badRequest, invalidResponse, io, process, other
    }

    public var kind: Kind
    public var message: String
    public var hint: String?
    /// Server error code from `{"error":{"code":…}}`, when the server sent one.
    public var serverCode: String?
    /// HTTP status, when the error came from an HTTP answer.
    public var status: Int?

    public init(_ kind: Kind, _ message: String, hint: String? = nil, serverCode: String? = nil, status: Int? = nil) {
        self.kind = kind
        self.message = message
        self.hint = hint
        self.serverCode = serverCode
        self.status = status
    }

    public var exitCode: LatchExitCode {
        switch kind {
        case .usage, .badRequest: .usage
        case .configuration: .configuration
        case .auth: .authFailed
        case .forbidden: .forbidden
        case .notFound: .notFound
        case .verification: .verificationFailed
        case .unavailable: .serverUnavailable
        case .rateLimited: .rateLimited
        case .conflict, .invalidResponse, .io, .process, .other: .failure
        }
    }

    /// One line: the message, then the hint.
    public var description: String {
        var line = message
        if let hint { line += " — " + hint }
        return line.replacingOccurrences(of: "\n", with: " ")
    }
}
