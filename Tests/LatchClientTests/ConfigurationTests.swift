import Foundation
import Testing
@testable import LatchClient
import LatchCrypto

/// Every temporary directory of these tests (profiles, keys, server data) lives under one root,
/// removed when the test process exits.
let testRoot: String = {
    let root = NSTemporaryDirectory() + "latch-client-tests-\(getpid())"
    try? FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    atexit { removeTestRoot() }
    return root
}()
private func removeTestRoot() { try? FileManager.default.removeItem(atPath: testRoot) }

func temporaryDirectory(_ label: String = "latch") throws -> String {
    let path = testRoot + "/\(label)-\(UUID().uuidString.lowercased())"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// One RSA key for the whole test run (generation is slow).
let sharedTestKey: PrincipalPrivateKey = {
    do { return try PrincipalPrivateKey.generate(bits: 2048) } catch { fatalError("key generation failed: \(error)") }
}()

@Suite struct ConfigurationTests {
    func makeProfile(home: String, name: String, baseUrl: String = "http://profile.example:1") throws -> ProfileStore {
        let store = ProfileStore(home: home)
        try store.save(Profile(name: name, baseUrl: baseUrl, accessKey: "ak_\(name)"), apiSecret: "sec_\(name)",
                       privateKeyPEM: "PROFILE-PEM-\(name)")
        return store
    }

    @Test func explicitBeatsEnvironmentBeatsProfile() throws {
        let home = try temporaryDirectory()
        _ = try makeProfile(home: home, name: "default")
        let keyFile = home + "/env.pem"
        try "ENV-PEM".write(toFile: keyFile, atomically: true, encoding: .utf8)

        let onlyProfile = try ConfigurationResolver.resolve(environment: ["LATCH_HOME": home])
        #expect(onlyProfile.apiKey == "ak_default.sec_default")
        #expect(onlyProfile.privateKeyPEM == "PROFILE-PEM-default")
        #expect(onlyProfile.baseURL.absoluteString == "http://profile.example:1")
        #expect(onlyProfile.apiKeySource == .profile("default"))

        let env = ["LATCH_HOME": home, "LATCH_API_KEY": "envak.envsec", "LATCH_PRIVATE_KEY_PATH": keyFile,
                   "LATCH_BASE_URL": "https://env.example/"]
        let fromEnv = try ConfigurationResolver.resolve(environment: env)
        #expect(fromEnv.apiKey == "envak.envsec")
        #expect(fromEnv.privateKeyPEM == "ENV-PEM")
        #expect(fromEnv.baseURL.absoluteString == "https://env.example")
        #expect(fromEnv.apiKeySource == .environment("LATCH_API_KEY"))

        let explicit = try ConfigurationResolver.resolve(
            ExplicitConfiguration(apiKey: "x.y", privateKeyPEM: "EXPLICIT-PEM", baseURL: "http://explicit:9"),
            environment: env)
        #expect(explicit.apiKey == "x.y")
        #expect(explicit.privateKeyPEM == "EXPLICIT-PEM")
        #expect(explicit.baseURL.absoluteString == "http://explicit:9")
        #expect(explicit.apiKeySource == .explicit)
    }

    @Test("a whole key in api-secret wins over profile.json's access key (a key switch cut short between its two writes)")
    func wholeKeyInSecretFile() throws {
        let home = try temporaryDirectory()
        let store = try makeProfile(home: home, name: "default")
        try SecureFile.write(Data("lk_new.sec_new".utf8), to: store.apiSecretPath("default"), mode: 0o600)
        #expect(try ConfigurationResolver.resolve(environment: ["LATCH_HOME": home]).apiKey == "lk_new.sec_new")
        try SecureFile.write(Data("sec_only".utf8), to: store.apiSecretPath("default"), mode: 0o600)
        #expect(try ConfigurationResolver.resolve(environment: ["LATCH_HOME": home]).apiKey == "ak_default.sec_only")
    }

    @Test func r4AliasesAndLatchPrecedence() throws {
        let home = try temporaryDirectory()
        let keyFile = home + "/r4.pem"
        try "R4-PEM".write(toFile: keyFile, atomically: true, encoding: .utf8)
        let r4 = ["LATCH_HOME": home, "R4_API_KEY": "r4ak.r4sec", "R4_PRIVATE_KEY_PATH": keyFile, "R4_BASE_URL": "http://r4.example"]
        let c = try ConfigurationResolver.resolve(environment: r4)
        #expect(c.apiKey == "r4ak.r4sec")
        #expect(c.privateKeyPEM == "R4-PEM")
        #expect(c.baseURL.host == "r4.example")
        #expect(c.privateKeySource == .environment("R4_PRIVATE_KEY_PATH"))

        var both = r4
        both["LATCH_API_KEY"] = "lak.lsec"
        both["LATCH_PRIVATE_KEY"] = "-----BEGIN X-----\\nabc\\n-----END X-----"
        let c2 = try ConfigurationResolver.resolve(environment: both)
        #expect(c2.apiKey == "lak.lsec")
        #expect(c2.privateKeyPEM == "-----BEGIN X-----\nabc\n-----END X-----")   // LATCH_ beats R4_, \n restored
        #expect(c2.baseURL.host == "r4.example")

        var inline = ["LATCH_HOME": home, "R4_API_KEY": "a.b", "R4_PRIVATE_KEY": "INLINE"]
        #expect(try ConfigurationResolver.resolve(environment: inline).privateKeyPEM == "INLINE")
        #expect(try ConfigurationResolver.resolve(environment: inline).baseURL.absoluteString == ConfigurationResolver.defaultBaseURL)
        inline["R4_PRIVATE_KEY_PATH"] = keyFile
        #expect(try ConfigurationResolver.resolve(environment: inline).privateKeyPEM == "R4-PEM")   // path beats inline
    }

    @Test func tildeExpandsAgainstHOME() {
        let env = ["HOME": "/home/agent"]
        #expect(ConfigurationResolver.expandingTilde("~", environment: env) == "/home/agent")
        #expect(ConfigurationResolver.expandingTilde("~/keys/a.pem", environment: env) == "/home/agent/keys/a.pem")
        #expect(ConfigurationResolver.expandingTilde("/etc/~x", environment: env) == "/etc/~x")
        #expect(ConfigurationResolver.expandingTilde("keys/~", environment: env) == "keys/~")
        // Without HOME in the given environment, or for `~user`, Foundation's own expansion.
        #expect(ConfigurationResolver.expandingTilde("~/a", environment: [:]) == ("~/a" as NSString).expandingTildeInPath)
        #expect(ConfigurationResolver.expandingTilde("~root/a", environment: env) == ("~root/a" as NSString).expandingTildeInPath)
    }

    @Test func profileSelectionAndHome() throws {
        let home = try temporaryDirectory()
        _ = try makeProfile(home: home, name: "default")
        _ = try makeProfile(home: home, name: "agent-1", baseUrl: "http://agent:2")
        #expect(try ConfigurationResolver.resolve(environment: ["LATCH_HOME": home, "LATCH_PROFILE": "agent-1"]).apiKey == "ak_agent-1.sec_agent-1")
        #expect(try ConfigurationResolver.resolve(ExplicitConfiguration(profile: "default"),
                                                  environment: ["LATCH_HOME": home, "LATCH_PROFILE": "agent-1"]).apiKey == "ak_default.sec_default")
        #expect(ConfigurationResolver.home(environment: ["HOME": "/h"]) == "/h/.latch")
        #expect(ConfigurationResolver.home(environment: ["HOME": "/h", "LATCH_HOME": "/x"]) == "/x")

        let missing = #expect(throws: LatchError.self) {
            try ConfigurationResolver.resolve(ExplicitConfiguration(profile: "nope"), environment: ["LATCH_HOME": home])
        }
        #expect(missing?.kind == .configuration)
        #expect(missing?.exitCode == .configuration)

        let nothing = #expect(throws: LatchError.self) {
            try ConfigurationResolver.resolve(environment: ["LATCH_HOME": try temporaryDirectory()])
        }
        #expect(nothing?.message.contains("no API key") == true)
        #expect(nothing?.exitCode.rawValue == 78)

        #expect(throws: LatchError.self) {
            try ConfigurationResolver.resolve(ExplicitConfiguration(profile: "../etc"), environment: ["LATCH_HOME": home])
        }
        #expect(throws: LatchError.self) {
            try ConfigurationResolver.resolve(ExplicitConfiguration(apiKey: "a.b", privateKeyPEM: "k", baseURL: "ftp://x"), environment: [:])
        }
        #expect(throws: LatchError.self) {
            try ConfigurationResolver.resolve(ExplicitConfiguration(apiKey: "nodot", privateKeyPEM: "k"), environment: ["LATCH_HOME": home])
        }
    }

    @Test func profileFilesHaveStrictModesAndDefaultIsNeverMoved() throws {
        let home = try temporaryDirectory()
        let store = try makeProfile(home: home, name: "default")
        #expect(SecureFile.mode(of: store.directory(for: "default")) == 0o700)
        #expect(SecureFile.mode(of: store.privateKeyPath("default")) == 0o600)
        #expect(SecureFile.mode(of: store.apiSecretPath("default")) == 0o600)
        #expect(SecureFile.mode(of: store.profilePath("default")) == 0o600)
        let profileJSON = String(decoding: try SecureFile.read(store.profilePath("default")), as: UTF8.self)
        #expect(!profileJSON.contains("sec_default"))
        #expect(!profileJSON.contains("PROFILE-PEM"))

        let config = RuntimeConfig(agentId: "agent-uuid", accessKey: "akagent", accessSecret: "agentsecret",
                                   privateKey: sharedTestKey.pkcs8PEM, baseUrl: "http://srv:1/")
        let parsed = try RuntimeConfig.parse(try config.encoded())
        try store.importRuntimeConfig(parsed, as: "bot", keyId: sharedTestKey.publicKey.keyId)
        let resolved = try ConfigurationResolver.resolve(environment: ["LATCH_HOME": home])
        #expect(resolved.profileName == "default")
        #expect(resolved.apiKey == "ak_default.sec_default")
        let bot = try ConfigurationResolver.resolve(ExplicitConfiguration(profile: "bot"), environment: ["LATCH_HOME": home])
        #expect(bot.apiKey == "akagent.agentsecret")
        #expect(bot.baseURL.absoluteString == "http://srv:1")
        #expect(try PrincipalPrivateKey(pem: bot.privateKeyPEM).publicKey.keyId == sharedTestKey.publicKey.keyId)
        #expect(try store.load("bot").keyId == sharedTestKey.publicKey.keyId)

        let again = #expect(throws: LatchError.self) {
            try store.importRuntimeConfig(parsed, as: "bot", keyId: nil)
        }
        #expect(again?.kind == .conflict)
        #expect(!String(describing: resolved).contains("PROFILE-PEM"))
    }

    @Test func runtimeConfigShapeErrors() throws {
        let e = #expect(throws: LatchError.self) {
            try RuntimeConfig.parse(Data(#"{"agentId":"a","accessKey":"b","accessSecret":"c","baseUrl":"http://x"}"#.utf8))
        }
        #expect(e?.message.contains("privateKey") == true)
        #expect(throws: LatchError.self) { try RuntimeConfig.parse(Data("not json".utf8)) }
        #expect(throws: LatchError.self) {
            try RuntimeConfig.parse(Data(#"{"agentId":"a","accessKey":"b","accessSecret":"c","privateKey":"k","baseUrl":"nope"}"#.utf8))
        }
    }

    @Test func seenStateCatchesRollbackAndHoldsNoSecret() throws {
        var state = SeenState()
        try state.acceptSummary(vaultId: "v1", version: 3)
        try state.acceptSummary(vaultId: "v1", version: 3)
        try state.acceptItem(vaultId: "v1", itemId: "i1", version: 2)
        let rollback = #expect(throws: LatchError.self) { try state.acceptSummary(vaultId: "v1", version: 2) }
        #expect(rollback?.kind == .verification)
        #expect(rollback?.exitCode.rawValue == 65)
        #expect(throws: LatchError.self) { try state.acceptItem(vaultId: "v1", itemId: "i1", version: 1) }
        let path = try temporaryDirectory() + "/p/seen.json"
        try state.save(path: path)
        #expect(SecureFile.mode(of: path) == 0o600)
        let loaded = try SeenState.load(path: path)
        #expect(loaded == state)
        #expect(String(decoding: try SecureFile.read(path), as: UTF8.self) == #"{"vaults":{"v1":{"items":{"i1":2},"summaryVersion":3}},"version":1}"#)
    }

    @Test("two processes of one profile saving their seen state: the later save keeps the newer versions of both")
    func seenStateSavesMerge() throws {
        let path = try temporaryDirectory() + "/p/seen.json"
        var base = SeenState()
        try base.acceptSummary(vaultId: "v1", version: 3)
        try base.acceptItem(vaultId: "v1", itemId: "i1", version: 2)
        base.memberKeys = ["alice": "k1", "bob": "k1"]
        try base.save(path: path)
        // Both processes read `base`. A saw version 5 and item i2 and a rotation of bob's key;
        // B, whose sync answered before A's, saw version 4, item i3 and a rotation of alice's.
        var a = base, b = base
        try a.acceptSummary(vaultId: "v1", version: 5)
        try a.acceptItem(vaultId: "v1", itemId: "i2", version: 7)
        a.memberKeys?["bob"] = "k2"
        try b.acceptSummary(vaultId: "v1", version: 4)
        try b.acceptItem(vaultId: "v1", itemId: "i3", version: 1)
        try b.acceptSummary(vaultId: "v2", version: 1)
        b.memberKeys?["alice"] = "k9"
        let afterA = try a.save(path: path, base: base)
        #expect(afterA == a)
        let afterB = try b.save(path: path, base: base)
        let onDisk = try SeenState.load(path: path)
        #expect(onDisk == afterB)
        #expect(onDisk.vaults["v1"]?.summaryVersion == 5)   // B's 4 did not put A's 5 back
        #expect(onDisk.vaults["v1"]?.items == ["i1": 2, "i2": 7, "i3": 1])
        #expect(onDisk.vaults["v2"]?.summaryVersion == 1)
        #expect(onDisk.memberKeys == ["alice": "k9", "bob": "k2"])
        #expect(SecureFile.mode(of: path) == 0o600)
        #expect(SecureFile.mode(of: path + ".lock") == 0o600)
        // A save from the state on disk changes nothing; a plain save would have lost version 5.
        #expect(try onDisk.save(path: path, base: onDisk) == onDisk)
        var stale = base
        try stale.acceptSummary(vaultId: "v1", version: 4)
        #expect(try stale.save(path: path, base: base).vaults["v1"]?.summaryVersion == 5)
    }

    @Test func exitCodesAreDistinct() {
        let codes = LatchExitCode.allCases.map(\.rawValue)
        #expect(Set(codes).count == codes.count)
        #expect(LatchError(.auth, "x").exitCode != LatchError(.forbidden, "x").exitCode)
        #expect(LatchError(.notFound, "x", hint: "do y").description == "x — do y")
    }
}
