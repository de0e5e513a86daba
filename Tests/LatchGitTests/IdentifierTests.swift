import Testing
@testable import LatchGit

@Suite struct IdentifierTests {
    @Test(arguments: ["stripe/api-key", "stripe/production/api-key", "apps/a.b/c-d_e", "single", "ünïcode/ключ"])
    func acceptsSecretPaths(_ path: String) throws {
        try VaultIdentifier.validateSecretPath(path)
    }

    @Test(arguments: ["", "/etc/passwd", "stripe//api", "stripe/./api", "stripe/../api", "../x", "stripe/..",
                      "stripe/", "stripe\\api", "C:temp", "a/b\u{0}c", "a/b\nc", "a/\u{7F}", "a/\u{85}x", ".", ".."])
    func rejectsSecretPaths(_ path: String) {
        #expect(throws: GitVaultError.invalidIdentifier(kind: "secret path", value: path)) {
            try VaultIdentifier.validateSecretPath(path)
        }
    }

    @Test(arguments: ["", ".", "..", "a/b", "a\\b", "/tmp", "C:temp", "bad\u{0}name", "tab\tname"])
    func rejectsAgentAndGroupNames(_ name: String) {
        #expect(throws: GitVaultError.self) { try VaultIdentifier.validateAgent(name) }
        #expect(throws: GitVaultError.self) { try VaultIdentifier.validateGroup(name) }
    }

    @Test func acceptsAgentAndGroupNames() throws {
        try VaultIdentifier.validateAgent("build.bot")
        try VaultIdentifier.validateGroup("production")
    }

    @Test func defaultGroupAndStorage() {
        #expect(VaultIdentifier.defaultGroup(forSecretPath: "stripe/api-key") == "stripe")
        #expect(VaultIdentifier.defaultGroup(forSecretPath: "apps/prod/token") == "apps")
        #expect(VaultIdentifier.defaultGroup(forSecretPath: "lonely") == "default")
        #expect(VaultLayout.secretFile("stripe/api-key") == ".agent-vault/secrets/stripe/api-key.enc")
        #expect(VaultLayout.metadataFile("apps/prod/token") == ".agent-vault/secrets/apps/prod/token.meta")
        #expect(VaultLayout.secretFile("lonely") == ".agent-vault/secrets/default/lonely.enc")
    }
}
