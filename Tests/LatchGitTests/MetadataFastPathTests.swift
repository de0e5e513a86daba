import Foundation
import Testing
@testable import LatchGit

/// The `.meta` fast path must give exactly what the Yams path gives, and step aside otherwise.
@Suite struct MetadataFastPathTests {
    static let t1 = VaultTimestamp(rfc3339: "2026-02-01T10:20:30.123456789Z")!
    static let t2 = VaultTimestamp(rfc3339: "2026-03-04T05:06:07Z")!

    static let metas: [SecretMetadata] = [
        SecretMetadata(name: "stripe/api-key", group: "stripe", created: t1, rotated: t2, authorizedAgents: ["billing-agent", "bot_2"]),
        SecretMetadata(name: "apps/prod/token", group: "apps", created: t2, rotated: t2, expires: t1, authorizedAgents: []),
        SecretMetadata(name: "x.y", group: "default", created: t1, rotated: t1, authorizedAgents: ["a"]),
        // Values the fast path must leave to Yams (quoting, odd characters, ambiguous words).
        SecretMetadata(name: "yes", group: "g", created: t1, rotated: t2, authorizedAgents: []),
        SecretMetadata(name: "s/1e3", group: "123", created: t1, rotated: t2, authorizedAgents: ["on"]),
        SecretMetadata(name: "a b/c: d", group: "-g", created: t1, rotated: t2, authorizedAgents: ["#x", "é"]),
    ]

    @Test func emitsWhatYamsEmits() throws {
        var fastCount = 0
        for meta in Self.metas {
            let slow = try meta.yamsYAML()
            #expect(try meta.yaml() == slow)
            if let fast = meta.fastYAML() {
                fastCount += 1
                #expect(fast == slow)
            }
            // Reading back through either path gives the same value.
            #expect(try SecretMetadata(yaml: slow) == meta)
            #expect(try SecretMetadata(yamsYAML: slow) == meta)
        }
        #expect(fastCount == 3)
    }

    @Test func parsesOnlyTheCanonicalShape() throws {
        let canonical = try Self.metas[0].yamsYAML()
        #expect(SecretMetadata.fastParse(canonical) == Self.metas[0])
        for text in [
            canonical.replacingOccurrences(of: "name: stripe/api-key", with: "name: 'stripe/api-key'"),
            canonical.replacingOccurrences(of: "group: stripe\n", with: "group: stripe  # comment\n"),
            canonical + "extra: 1\n",
            "group: stripe\n" + canonical,
            String(canonical.dropLast()),
            canonical.replacingOccurrences(of: "- bot_2", with: "- 'no'"),
        ] {
            #expect(SecretMetadata.fastParse(text) == nil, "\(text)")
            // …and the general reader still reads whatever is valid YAML.
            if let slow = try? SecretMetadata(yamsYAML: text) { #expect(try SecretMetadata(yaml: text) == slow) }
        }
    }
}
