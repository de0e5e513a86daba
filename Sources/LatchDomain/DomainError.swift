import Foundation

/// A domain error: a stable `code` (the wire's error code), a category that maps to an HTTP
/// status, and a message that says what was wrong and what to do.
public struct DomainError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        case invalid, unauthenticated, forbidden, notFound, conflict, rateLimited, tooLarge, unavailable
    }
    public var kind: Kind
    public var code: String
    public var message: String

    public init(_ kind: Kind, code: String, _ message: String) {
        self.kind = kind; self.code = code; self.message = message
    }
    public var description: String { "domain: \(code): \(message)" }

    public static func invalid(_ m: String) -> DomainError { .init(.invalid, code: "invalid_request", m) }
    public static func invalidId(_ m: String) -> DomainError { .init(.invalid, code: "invalid_id", m) }
    public static func badSignature(_ m: String) -> DomainError { .init(.invalid, code: "bad_signature", m) }
    public static func unknownSigner(_ m: String) -> DomainError { .init(.invalid, code: "unknown_signer", m) }
    public static func checkpointMismatch(_ m: String) -> DomainError { .init(.invalid, code: "checkpoint_mismatch", m) }
    public static func invalidEnvelope(_ m: String) -> DomainError { .init(.invalid, code: "invalid_envelope", m) }
    public static func invalidPublicKey(_ m: String) -> DomainError { .init(.invalid, code: "invalid_public_key", m) }
    public static func staleVersion(_ m: String) -> DomainError { .init(.conflict, code: "stale_version", m) }
    public static func conflict(_ m: String) -> DomainError { .init(.conflict, code: "conflict", m) }
    public static func notFound(_ m: String) -> DomainError { .init(.notFound, code: "not_found", m) }
    public static func forbidden(_ m: String) -> DomainError { .init(.forbidden, code: "forbidden", m) }
    public static func missingPermission(_ p: String) -> DomainError {
        .init(.forbidden, code: "missing_permission", "this API key lacks the machine permission \(p); create a key that carries it")
    }
    public static func unauthenticated(_ m: String) -> DomainError { .init(.unauthenticated, code: "unauthenticated", m) }
    public static func invalidAPIKey() -> DomainError {
        .init(.unauthenticated, code: "invalid_api_key", "the API key is unknown, revoked or wrong; check X-API-Key ({accessKey}.{secret})")
    }
    public static func noPublicKey(_ m: String) -> DomainError { .init(.conflict, code: "no_public_key", m) }
    public static func archived(_ m: String) -> DomainError { .init(.conflict, code: "archived", m) }
}
