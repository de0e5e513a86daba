import Foundation
import Testing
@testable import LatchCrypto

@Suite("Signed statements")
struct StatementTests {
    static func detail(version: Int = 1, envelopeHash: String = String(repeating: "a", count: 64)) -> ItemDetailCheckpoint {
        ItemDetailCheckpoint(
            vaultItemId: "item-1", vaultId: "vault-1", version: version, name: "GitHub", type: "LOGIN",
            websites: ["https://github.com"], groupId: nil,
            fields: [
                .init(id: "f1", name: "username", type: "TEXT", order: 0, isEnvironmentVariable: false, envelopeHash: envelopeHash),
                .init(id: "f2", name: "token", type: "SECRET", order: 1, isEnvironmentVariable: true, envelopeHash: envelopeHash),
            ])
    }

    static func summary(version: Int = 1, dek: Int = 1, detail: ItemDetailCheckpoint = detail()) -> VaultSummaryCheckpoint {
        VaultSummaryCheckpoint(
            vaultId: "vault-1", version: version, name: "Production", dataClassification: "CONFIDENTIAL",
            currentDekVersion: dek,
            items: [.init(id: detail.vaultItemId, name: detail.name, type: detail.type, websites: detail.websites,
                          groupId: "group-9", detailHash: detail.hash)])
    }

    func isSignature(_ e: LatchCryptoError) -> Bool { if case .signature = e { true } else { false } }
    func isChain(_ e: LatchCryptoError) -> Bool { if case .versionChain = e { true } else { false } }

    @Test("Sign, JSON round trip, verify for all four types")
    func signVerify() throws {
        let key = TestKeys.alice
        try roundTrip(Self.summary(), key)
        try roundTrip(Self.detail(), key)
        try roundTrip(WrappedKeyStatement(vaultId: "vault-1", dekVersion: 1, recipientKeyId: TestKeys.bob.publicKey.keyId,
                                          wrappedKey: Data([1, 2, 3])), key)
        try roundTrip(KeyRotationStatement(principalId: "p1", previousKeyId: key.publicKey.keyId,
                                           newKeyId: TestKeys.bob.publicKey.keyId), key)
    }

    @Test("Writer sets: canonical form, strict parsing, and the link rules")
    func writerSets() throws {
        let v1 = VaultWritersStatement.genesis(vaultId: "vault-1", creatorId: "alice")
        try roundTrip(v1, TestKeys.alice)
        #expect(String(decoding: v1.canonicalJSON, as: UTF8.self) ==
                #"{"previousHash":null,"type":"latchkey.vault-writers.v1","vaultId":"vault-1","version":1,"writers":[{"accessLevel":"ADMIN","principalId":"alice"}]}"#)
        let v2 = v1.setting("carol", to: .write).setting("bob", to: .admin)
        #expect(v2.version == 3 && v2.writers.map(\.principalId) == ["alice", "bob", "carol"])
        let a = v1.setting("bob", to: .admin)
        try VaultWritersStatement.checkLink(v1, follows: nil, signerId: "alice")
        try VaultWritersStatement.checkLink(a, follows: v1, signerId: "alice")
        try VaultWritersStatement.checkLink(a.setting("carol", to: .write), follows: a, signerId: "bob")
        expectError(isChain, "genesis by a non-ADMIN") { try VaultWritersStatement.checkLink(v1, follows: nil, signerId: "bob") }
        expectError(isChain, "link signed by someone the previous version does not make ADMIN") {
            try VaultWritersStatement.checkLink(a, follows: v1, signerId: "bob")
        }
        expectError(isChain, "a later version as genesis") { try VaultWritersStatement.checkLink(a, follows: nil, signerId: "bob") }
        expectError(isChain, "skipped version") { try VaultWritersStatement.checkLink(a.setting("x", to: .write), follows: v1, signerId: "alice") }
        var dup = a
        dup.writers.append(.init(principalId: "bob", accessLevel: .write))
        expectError(isChain, "duplicate writer") { try VaultWritersStatement.checkLink(dup, follows: v1, signerId: "alice") }
        // Parsing refuses unsorted lists, unknown levels and unknown fields.
        for bad in [#"{"previousHash":null,"type":"latchkey.vault-writers.v1","vaultId":"v","version":1,"writers":[{"accessLevel":"ADMIN","principalId":"b"},{"accessLevel":"ADMIN","principalId":"a"}]}"#,
                    #"{"previousHash":null,"type":"latchkey.vault-writers.v1","vaultId":"v","version":1,"writers":[{"accessLevel":"READ","principalId":"a"}]}"#,
                    #"{"previousHash":null,"type":"latchkey.vault-writers.v1","vaultId":"v","version":1,"writers":[],"extra":1}"#] {
            #expect(throws: LatchCryptoError.self, "\(bad)") { try VaultWritersStatement(json: Data(bad.utf8)) }
        }
    }

    func roundTrip<S: SignedStatement>(_ s: S, _ key: PrincipalPrivateKey) throws {
        let env = try SignedEnvelope.sign(s, with: key)
        #expect(env.signerKeyId == key.publicKey.keyId)
        try env.verify(with: key.publicKey)
        // Through ordinary (non-canonical, pretty) JSON and back.
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted]
        let wire = try enc.encode(env)
        let back = try JSONDecoder().decode(SignedEnvelope<S>.self, from: wire)
        #expect(back == env)
        // The strict parser's direct read (what clients use) gives the same envelope, without
        // falling back; unknown envelope members are ignored by both.
        let text = String(decoding: wire, as: UTF8.self)
        #expect(try SignedEnvelope<S>.readDirect(text) == env)
        #expect(try SignedEnvelope<S>.decode(text: text) == env)
        let extra = text.replacingOccurrences(of: "\"signerKeyId\"", with: "\"note\":[1,{\"a\":null}],\"signerKeyId\"")
        #expect(extra != text)
        #expect(try SignedEnvelope<S>.readDirect(extra) == env)
        #expect(try JSONDecoder().decode(SignedEnvelope<S>.self, from: Data(extra.utf8)) == env)
        try back.verify(with: key.publicKey)
        // The signed JSON carries the statement type.
        let signed = try SignedEnvelope<S>.signedBytes(of: s)
        #expect(String(decoding: signed, as: UTF8.self).contains("\"type\":\"\(S.statementType)\""))
        #expect(try CanonicalJSON.canonicalize(signed) == signed)
        #expect(try CanonicalJSON.encode(s) == signed)
        // Another key does not verify it.
        expectError(isSignature, "\(S.statementType) verified by another key") { try env.verify(with: TestKeys.bob.publicKey) }
        // Whole-envelope canonical form parses back.
        let canon = try env.canonicalJSON()
        #expect(try JSONDecoder().decode(SignedEnvelope<S>.self, from: canon) == env)
    }

    @Test("Tampering with any signed field or the signature is detected")
    func tamper() throws {
        let key = TestKeys.alice
        let env = try SignedEnvelope.sign(Self.detail(), with: key)
        var changes: [ItemDetailCheckpoint] = []
        var c = env.checkpoint
        c.name = "GitHub2"; changes.append(c); c = env.checkpoint
        c.version = 2; changes.append(c); c = env.checkpoint
        c.type = "NOTE"; changes.append(c); c = env.checkpoint
        c.groupId = "g"; changes.append(c); c = env.checkpoint
        c.websites = []; changes.append(c); c = env.checkpoint
        c.fields[1].envelopeHash = String(repeating: "b", count: 64); changes.append(c); c = env.checkpoint
        c.fields[0].isEnvironmentVariable = true; changes.append(c); c = env.checkpoint
        c.fields[0].order = 5; changes.append(c); c = env.checkpoint
        c.fields.swapAt(0, 1); changes.append(c); c = env.checkpoint
        for changed in changes {
            let forged = SignedEnvelope(checkpoint: changed, signerKeyId: env.signerKeyId, signature: env.signature)
            expectError(isSignature, "tampered \(changed)") { try forged.verify(with: key.publicKey) }
            #expect(changed.hash != env.checkpoint.hash)
        }
        var sig = try #require(Data(base64Encoded: env.signature))
        sig[0] ^= 1
        for bad in [sig.base64EncodedString(), "", "not base64", String(env.signature.dropLast(4))] {
            let forged = SignedEnvelope(checkpoint: env.checkpoint, signerKeyId: env.signerKeyId, signature: bad)
            expectError(isSignature, "bad signature \(bad.prefix(8))") { try forged.verify(with: key.publicKey) }
        }
        // Verifying against a set of trusted keys picks the signer by id.
        #expect(try env.verify(trusting: [TestKeys.bob.publicKey, key.publicKey]) == key.publicKey)
        expectError(isSignature, "signer not trusted") { try env.verify(trusting: [TestKeys.bob.publicKey]) }
        // Claiming another signer fails before any maths.
        let renamed = SignedEnvelope(checkpoint: env.checkpoint, signerKeyId: TestKeys.bob.publicKey.keyId, signature: env.signature)
        expectError(isSignature, "wrong signer id") { try renamed.verify(with: key.publicKey) }
        // Tampered wire JSON: unknown fields, missing fields, wrong types are statement errors.
        let wire = String(decoding: try JSONEncoder().encode(env), as: UTF8.self)
        for bad in [wire.replacingOccurrences(of: "\"vaultItemId\"", with: "\"extra\":1,\"vaultItemId\""),
                    wire.replacingOccurrences(of: "\"itemType\"", with: "\"itemKind\""),
                    wire.replacingOccurrences(of: "\"version\":1", with: "\"version\":\"1\""),
                    wire.replacingOccurrences(of: "\"version\":1", with: "\"version\":1.5")] {
            #expect(bad != wire)
            #expect(throws: (any Error).self) { _ = try JSONDecoder().decode(SignedEnvelope<ItemDetailCheckpoint>.self, from: Data(bad.utf8)) }
            #expect(throws: (any Error).self) { _ = try SignedEnvelope<ItemDetailCheckpoint>.decode(text: bad) }
        }
        // A member twice: the strict parser refuses it, and JSONDecoder's answer stands.
        let twice = wire.replacingOccurrences(of: "\"signature\"", with: "\"signature\":\"x\",\"signature\"")
        #expect(throws: LatchCryptoError.self) { _ = try SignedEnvelope<ItemDetailCheckpoint>.readDirect(twice) }
        let viaDecoder = Result { try JSONDecoder().decode(SignedEnvelope<ItemDetailCheckpoint>.self, from: Data(twice.utf8)) }
        let viaText = Result { try SignedEnvelope<ItemDetailCheckpoint>.decode(text: twice) }
        switch (viaDecoder, viaText) {
        case (.success(let a), .success(let b)): #expect(a == b)
        case (.failure(let a), .failure(let b)): #expect("\(a)" == "\(b)")
        default: Issue.record("decode(text:) and JSONDecoder disagree on a duplicate member")
        }
    }

    @Test("Mutated envelopes: whenever the strict parser's direct read accepts one, JSONDecoder gives the same envelope")
    func mutatedEnvelopesNeverDisagree() throws {
        let env = try SignedEnvelope.sign(Self.detail(), with: TestKeys.alice)
        let wire = [UInt8](try JSONEncoder().encode(env))
        let specials: [UInt8] = Array("{}[]\",:0123456789.-eE tnfu\\".utf8) + [0x00, 0x1F, 0x7F, 0xC3, 0xFF]
        var state: UInt64 = 0x5eed
        func next() -> Int { state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407; return Int(truncatingIfNeeded: state >> 33) }
        var accepted = 0, refused = 0
        for _ in 0..<2000 {
            var bytes = wire
            let at = next() % bytes.count
            switch next() % 3 {
            case 0: bytes[at] = specials[next() % specials.count]
            case 1: bytes.insert(specials[next() % specials.count], at: at)
            default: bytes.remove(at: at)
            }
            guard let direct = try? SignedEnvelope<ItemDetailCheckpoint>.readDirect(String(decoding: bytes, as: UTF8.self)),
                  bytes == Array(String(decoding: bytes, as: UTF8.self).utf8) else { refused += 1; continue }
            accepted += 1
            #expect(try JSONDecoder().decode(SignedEnvelope<ItemDetailCheckpoint>.self, from: Data(bytes)) == direct,
                    "\(String(decoding: bytes, as: UTF8.self).prefix(300))")
        }
        #expect(accepted > 20 && refused > 20, "accepted \(accepted), refused \(refused)")
    }

    @Test("Cross-type domain separation")
    func domainSeparation() throws {
        let key = TestKeys.alice
        // Two statements with field-for-field identical content except their type.
        let wrap = WrappedKeyStatement(vaultId: "v", dekVersion: 1, recipientKeyId: "k", wrappedKeyHash: "h")
        let env = try SignedEnvelope.sign(wrap, with: key)
        let wire = try JSONEncoder().encode(env)
        // Decoding as another type fails on the type member ...
        #expect(throws: (any Error).self) { _ = try JSONDecoder().decode(SignedEnvelope<KeyRotationStatement>.self, from: wire) }
        // ... and relabelling the JSON does not help: the signature covers `type`.
        let relabelled = String(decoding: wire, as: UTF8.self)
            .replacingOccurrences(of: WrappedKeyStatement.statementType, with: KeyRotationStatement.statementType)
            .replacingOccurrences(of: "\"vaultId\"", with: "\"principalId\"")
            .replacingOccurrences(of: "\"recipientKeyId\"", with: "\"previousKeyId\"")
            .replacingOccurrences(of: "\"wrappedKeyHash\"", with: "\"newKeyId\"")
            .replacingOccurrences(of: ",\"dekVersion\":1", with: "").replacingOccurrences(of: "\"dekVersion\":1,", with: "")
        let asRotation = try JSONDecoder().decode(SignedEnvelope<KeyRotationStatement>.self, from: Data(relabelled.utf8))
        #expect(asRotation.checkpoint.principalId == "v")
        expectError(isSignature, "wrap signature as rotation") { try asRotation.verify(with: key.publicKey) }
        // A raw signature over one type's bytes never verifies as another type's bytes.
        let types = [VaultSummaryCheckpoint.statementType, ItemDetailCheckpoint.statementType,
                     WrappedKeyStatement.statementType, KeyRotationStatement.statementType]
        #expect(Set(types).count == 4)
    }

    @Test("Version chains: first is 1, then +1, same vault/item, DEK never goes back")
    func versionChains() throws {
        try Self.summary(version: 1).checkFollows(nil)
        try Self.summary(version: 2).checkFollows(Self.summary(version: 1))
        try Self.summary(version: 3, dek: 2).checkFollows(Self.summary(version: 2, dek: 1))
        expectError(isChain, "first summary v2") { try Self.summary(version: 2).checkFollows(nil) }
        expectError(isChain, "replay same version") { try Self.summary(version: 2).checkFollows(Self.summary(version: 2)) }
        expectError(isChain, "skip a version") { try Self.summary(version: 4).checkFollows(Self.summary(version: 2)) }
        expectError(isChain, "rollback") { try Self.summary(version: 1).checkFollows(Self.summary(version: 2)) }
        expectError(isChain, "DEK rollback") { try Self.summary(version: 3, dek: 1).checkFollows(Self.summary(version: 2, dek: 2)) }
        var otherVault = Self.summary(version: 2)
        otherVault.vaultId = "vault-2"
        expectError(isChain, "other vault") { try otherVault.checkFollows(Self.summary(version: 1)) }
        var dup = Self.summary(version: 1)
        dup.items.append(dup.items[0])
        expectError(isChain, "duplicate item") { try dup.checkFollows(nil) }
        let maxed = Self.summary(version: Int.max)
        expectError(isChain, "overflow") { try Self.summary(version: Int.min).checkFollows(maxed) }

        try Self.detail(version: 1).checkFollows(nil)
        try Self.detail(version: 2).checkFollows(Self.detail(version: 1))
        expectError(isChain, "first detail v3") { try Self.detail(version: 3).checkFollows(nil) }
        expectError(isChain, "detail replay") { try Self.detail(version: 1).checkFollows(Self.detail(version: 1)) }
        var otherItem = Self.detail(version: 2)
        otherItem.vaultItemId = "item-2"
        expectError(isChain, "other item") { try otherItem.checkFollows(Self.detail(version: 1)) }
        var dupField = Self.detail(version: 1)
        dupField.fields[1].id = "f1"
        expectError(isChain, "duplicate field") { try dupField.checkFollows(nil) }
    }

    @Test("detailHash and envelopeHash link summary → detail → envelope")
    func hashes() throws {
        var rng = TestRNG(state: 9)
        let dek = DataEncryptionKey.generate(version: 1, using: &rng)
        let ctx = EnvelopeContext(vaultId: "vault-1", itemId: "item-1", fieldId: "f2", dekVersion: 1)
        let env = try FieldEnvelope.seal(Data("ghp_x".utf8), key: dek, context: ctx, using: &rng)
        let detail = Self.detail(envelopeHash: env.sha256Hex)
        #expect(detail.hash == hexString(SHA256ForTests.hash(detail.canonicalJSON)))
        let summary = Self.summary(detail: detail)
        #expect(summary.items[0].detailHash == detail.hash)
        // Replaying an older value changes the envelope hash, so the signed detail no longer matches.
        let older = try FieldEnvelope.seal(Data("ghp_old".utf8), key: dek, context: ctx, using: &rng)
        #expect(older.sha256Hex != detail.fields[1].envelopeHash)
    }

    @Test("Wrapped-key statement binds the wrap; rotation is signed by the previous key")
    func keyStatements() throws {
        let alice = TestKeys.alice, bob = TestKeys.bob
        let dek = DataEncryptionKey.generate(version: 3)
        let wrapped = try bob.publicKey.wrap(dek)
        let st = WrappedKeyStatement(vaultId: "vault-1", dekVersion: 3, recipientKeyId: bob.publicKey.keyId, wrappedKey: wrapped)
        try st.checkMatches(wrappedKey: wrapped, recipient: bob.publicKey)
        expectError({ if case .wrap = $0 { true } else { false } }, "other wrap") {
            try st.checkMatches(wrappedKey: try bob.publicKey.wrap(dek), recipient: bob.publicKey)
        }
        expectError({ if case .wrap = $0 { true } else { false } }, "other recipient") {
            try st.checkMatches(wrappedKey: wrapped, recipient: alice.publicKey)
        }

        let rotation = KeyRotationStatement(principalId: "p", previousKeyId: alice.publicKey.keyId, newKeyId: bob.publicKey.keyId)
        let signed = try SignedEnvelope.sign(rotation, with: alice)
        try signed.verifyRotation(from: alice.publicKey, to: bob.publicKey)
        expectError(isSignature, "rotation signed by new key") {
            try SignedEnvelope.sign(rotation, with: bob).verifyRotation(from: alice.publicKey, to: bob.publicKey)
        }
        expectError(isChain, "rotation to another key") {
            try signed.verifyRotation(from: alice.publicKey, to: alice.publicKey)
        }
    }
}
