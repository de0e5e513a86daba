import Foundation
import Hummingbird
import HummingbirdTesting
import LatchCrypto
import LatchDomain
import LatchServer
import LatchStoreSQLite
import LatchWire
import Testing

@Suite("Bad input and limits")
struct ErrorTests {
    @Test("each client mistake gets its own 4xx code, never 500")
    func clientMistakes() async throws {
        try await withHarness(config: ServerConfiguration(rateLimitPerMinute: 0, maxBodySize: 4096)) { h in
            let admin = try await h.bootstrap()
            let k = admin.apiKey
            let malformed = try await h.call(.post, LatchRoutes.vaults, key: k, json: Data("{not json".utf8))
            #expect(malformed.status == .badRequest && malformed.code == "malformed_json")
            let wrongType = try await h.call(.post, LatchRoutes.vaults, key: k, json: Data(#"{"id":5,"summaryCheckpoint":"x","wrappedKey":{}}"#.utf8))
            #expect(wrongType.status == .badRequest && wrongType.code == "invalid_request")
            let missing = try await h.call(.post, LatchRoutes.vaults, key: k, json: Data(#"{"id":"x"}"#.utf8))
            #expect(missing.status == .badRequest && missing.code == "invalid_request")
            let badId = try await h.call(.get, LatchRoutes.vault("not-a-uuid"), key: k)
            #expect(badId.status == .badRequest && badId.code == "invalid_id")
            let unknown = try await h.call(.get, LatchRoutes.vault(UUID().uuidString.lowercased()), key: k)
            #expect(unknown.status == .notFound && unknown.code == "not_found")
            let big = try await h.call(.post, LatchRoutes.vaults, key: k, json: Data(repeating: UInt8(ascii: " "), count: 10_000))
            #expect(big.status == .contentTooLarge && big.code == "body_too_large")
            let noRoute = try await h.call(.get, "/api/v1/machine/nothing-here", key: k)
            #expect(noRoute.status == .notFound)
            let badEnvelope = try await h.call(.post, LatchRoutes.vaults, key: k, body: CreateVaultRequest(
                id: UUID().uuidString.lowercased(), summaryCheckpoint: "{}",
                wrappedKey: WrappedKeyInput(recipientKeyId: "x", dekVersion: 1, wrappedKey: "AA==", statement: "{}")))
            #expect(badEnvelope.status == .badRequest && badEnvelope.code == "invalid_request")
            let badKey = try await h.call(.post, LatchRoutes.agents, key: k, body: CreateAgentRequest(name: "a", publicKey: "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"))
            #expect(badKey.status == .badRequest && badKey.code == "invalid_public_key")
            let badPerm = try await h.call(.post, LatchRoutes.agents, key: k, body: CreateAgentRequest(name: "a", permissions: ["machine.root"]))
            #expect(badPerm.status == .badRequest && badPerm.code == "invalid_request")
            // nothing created by the failures
            let agents = try await h.call(.get, LatchRoutes.agents, key: k).decode(PrincipalListResponse.self)
            #expect(agents.principals.isEmpty)
            // every failure was audited
            let failed = try await h.store.auditEvents(AuditFilter(limit: 10_000)).filter { $0.outcome != "success" }
            #expect(failed.count >= 5)
        }
    }

    @Test("per-key rate limit answers 429 with Retry-After; the limit refills with time")
    func rateLimit() async throws {
        let clock = TestClock()
        try await withHarness(clock: clock, config: ServerConfiguration(rateLimitPerMinute: 60, rateLimitBurst: 3)) { h in
            let admin = try await h.bootstrap()
            for _ in 0..<3 { #expect(try await h.call(.get, LatchRoutes.me, key: admin.apiKey).status == .ok) }
            let limited = try await h.call(.get, LatchRoutes.me, key: admin.apiKey)
            #expect(limited.status == .tooManyRequests && limited.code == "rate_limit_exceeded")
            #expect(limited.headers[.retryAfter] == "1")
            clock.advance(2)
            #expect(try await h.call(.get, LatchRoutes.me, key: admin.apiKey).status == .ok)
        }
    }

    @Test("failed authentications are limited per source address and audited")
    func failedAuthLimit() async throws {
        try await withHarness(config: ServerConfiguration(rateLimitPerMinute: 0, failedAuthPerMinute: 5)) { h in
            let admin = try await h.bootstrap()
            for _ in 0..<5 {
                let r = try await h.call(.get, LatchRoutes.me, key: "lk_0000.wrong")
                #expect(r.status == .unauthorized && r.code == "invalid_api_key")
            }
            let blocked = try await h.call(.get, LatchRoutes.me, key: "lk_0000.wrong")
            #expect(blocked.status == .tooManyRequests && blocked.headers[.retryAfter] != nil)
            // wrong secret for a real access key
            let access = String(admin.apiKey.split(separator: ".")[0])
            let events = try await h.store.auditEvents(AuditFilter(action: "auth"))
            #expect(events.count == 5 && events.allSatisfy { $0.outcome == "invalid_api_key" })
            _ = access
        }
    }
}
