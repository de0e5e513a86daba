import Foundation
import Testing
@testable import LatchGit

@Suite struct DocumentTests {
    @Test(arguments: ["manifest.yaml", "manifest-new.yaml", "manifest-quoted.yaml"])
    func manifestRoundTripsByteForByte(_ name: String) throws {
        let text = try vector(name)
        let manifest = try VaultManifest(yaml: text)
        #expect(try manifest.yaml() == text)
    }

    @Test func manifestContents() throws {
        let manifest = try VaultManifest(yaml: vector("manifest.yaml"))
        #expect(manifest.owners == [.init(name: "alice", publicKey: "owner.pub")])
        #expect(manifest.agents.map(\.name) == ["billing-agent", "seo-crawler"])
        #expect(manifest.secrets(inGroup: "postgres") == ["postgres/prod/conn-string"])
        #expect(manifest.authorizedAgents(forSecret: "stripe/api-key") == ["billing-agent"])
        #expect(manifest.authorizedAgents(forSecret: "empty/none") == [])
        let quoted = try VaultManifest(yaml: vector("manifest-quoted.yaml"))
        #expect(quoted.owners[0].name == "123")
        #expect(quoted.agents[0].name == "yes")
        #expect(quoted.groups.map(\.name) == ["true", "1.5"])
        #expect(quoted.groups[1].secrets == ["0x1f"])
    }

    @Test func newManifestMatchesInit() throws {
        #expect(try VaultManifest(owners: [.init(name: "alice")]).yaml() == vector("manifest-new.yaml"))
    }

    @Test(arguments: ["api-key.meta", "conn-string.meta"])
    func metadataRoundTripsByteForByte(_ name: String) throws {
        let text = try vector(name)
        #expect(try SecretMetadata(yaml: text).yaml() == text)
    }

    @Test func metadataFields() throws {
        let meta = try SecretMetadata(yaml: vector("conn-string.meta"))
        #expect(meta.name == "postgres/prod/conn-string")
        #expect(meta.group == "postgres")
        #expect(meta.created == VaultTimestamp(seconds: 1_769_941_230, nanoseconds: 120_000_000))
        #expect(meta.rotated.nanoseconds == 123_400_000)
        #expect(meta.expires == VaultTimestamp(seconds: 1_798_675_200))
        #expect(meta.authorizedAgents.isEmpty)
        let built = SecretMetadata(name: "stripe/api-key", group: "stripe",
                                   created: VaultTimestamp(seconds: 1_769_941_230, nanoseconds: 123_456_789),
                                   rotated: VaultTimestamp(seconds: 1_772_600_767), authorizedAgents: ["billing-agent"])
        #expect(try built.yaml() == vector("api-key.meta"))
    }

    @Test func configAndGitignore() throws {
        #expect(try VaultConfig().yaml() == vector("config.yaml"))
        #expect(try VaultConfig(yaml: vector("config.yaml")) == VaultConfig())
        #expect(VaultLayout.gitignoreContents == (try vector("gitignore")))
    }

    @Test func rejectsMalformedDocuments() {
        #expect(throws: GitVaultError.self) { try VaultManifest(yaml: "owners: []\n") }             // no version
        #expect(throws: GitVaultError.self) { try VaultManifest(yaml: "version: 1\nagents:\n- name: ../x\n") }
        #expect(throws: GitVaultError.self) { try VaultConfig(yaml: "version: [\n") }
        #expect(throws: GitVaultError.self) {
            try SecretMetadata(yaml: "name: a/b\ngroup: a\ncreated: yesterday\nrotated: 2026-01-01T00:00:00Z\n")
        }
    }

    @Test func timestamps() throws {
        #expect(VaultTimestamp(seconds: 0).description == "1970-01-01T00:00:00Z")
        #expect(VaultTimestamp(seconds: 951_782_400, nanoseconds: 5_000_000).description == "2000-02-29T00:00:00.005Z")
        #expect(VaultTimestamp(seconds: 1, nanoseconds: 1_000).description == "1970-01-01T00:00:01.000001Z")
        #expect(VaultTimestamp(seconds: 1, nanoseconds: 1).description == "1970-01-01T00:00:01.000000001Z")
        #expect(VaultTimestamp(rfc3339: "2026-12-31T01:00:00+01:00") == VaultTimestamp(rfc3339: "2026-12-31T00:00:00Z"))
        #expect(VaultTimestamp(rfc3339: "2026-12-31 00:00:00.5z")?.nanoseconds == 500_000_000)
        #expect(VaultTimestamp(rfc3339: "2026-02-30T00:00:00Z") == nil)
        #expect(VaultTimestamp(rfc3339: "2026-12-31T00:00:00") == nil)
        #expect(VaultTimestamp(rfc3339: "2026-12-31") == nil)
        #expect(VaultTimestamp(userInput: "2026-12-31") == VaultTimestamp(rfc3339: "2026-12-31T00:00:00Z"))
        let now = VaultTimestamp(seconds: 1_000_000)
        #expect(now.wholeDays(until: VaultTimestamp(seconds: 1_000_000 + 86_400 * 3 + 5)) == 3)
        #expect(now.wholeDays(until: VaultTimestamp(seconds: 1_000_000 - 86_400 * 2 - 5)) == -2)
    }

    /// The hand-built description pads like the `String(format:)` it replaced, also for years
    /// before 1000, before year 0 and after 9999.
    @Test func timestampPaddingMatchesPrintf() {
        for value in [0, 7, 42, 999, 1000, 12345, -1, -7, -42, -999, -12345] {
            for width in [2, 3, 4, 6, 9] {
                #expect(VaultTimestamp.zeroPadded(value, width) == String(format: "%0\(width)d", value), "\(value) \(width)")
            }
        }
        for seconds: Int64 in [-62_198_755_200, -62_167_219_201, -30_000_000_000, 253_402_300_800, 1_800_000_000] {
            let (y, m, d, hh, mm, ss) = VaultTimestamp.civil(from: seconds)
            let expected = String(format: "%04d-%02d-%02dT%02d:%02d:%02d", y, m, d, hh, mm, ss) + ".000123Z"
            #expect(VaultTimestamp(seconds: seconds, nanoseconds: 123_000).description == expected)
        }
    }

    @Test func scalarStyles() {
        for ambiguous in ["", "null", "~", "true", "False", "yes", "off", "12", "-3", "+4", "0x1F", "0o17", "0b101",
                          "1.5", ".5", "1e3", "-2.5E-3", ".inf", "-.Inf", ".NaN", "1_000", "007"] {
            #expect(AgentVaultYAML.style(for: ambiguous) == .singleQuoted, "\(ambiguous)")
        }
        for plain in ["stripe", "stripe/api-key", "2026-12-31T00:00:00Z", "1.2.3", "v1", "e5", "0x", "a b", "nan"] {
            #expect(AgentVaultYAML.style(for: plain) == .any, "\(plain)")
        }
        #expect(AgentVaultYAML.style(for: "two\nlines") == .literal)
    }
}
