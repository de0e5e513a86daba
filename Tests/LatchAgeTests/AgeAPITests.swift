import Foundation
import Testing

@testable import LatchAge

/// A deterministic generator for reproducible tests (SplitMix64). Never use outside tests.
struct TestRNG: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite struct AgeKeyTests {
    /// The example key pair from the age specification (c2sp.org/age).
    @Test func specExampleKeyPair() throws {
        let identity = try AgeX25519Identity(
            string: "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX")
        #expect(identity.recipient.string == "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj")
        #expect(identity.string == "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX")
        let recipient = try AgeX25519Recipient(string: "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj")
        #expect(recipient == identity.recipient)
    }

    @Test func generatedKeysRoundTrip() throws {
        var rng = TestRNG(seed: 1)
        let identity = AgeX25519Identity.generate(using: &rng)
        #expect(identity.string.hasPrefix("AGE-SECRET-KEY-1"))
        #expect(identity.recipient.string.hasPrefix("age1"))
        let reparsed = try AgeX25519Identity(string: identity.string)
        #expect(reparsed.recipient == identity.recipient)
        #expect(try AgeX25519Recipient(string: identity.recipient.string) == identity.recipient)
        // Lower case is valid Bech32 too; mixed case is not.
        #expect(try AgeX25519Identity(string: identity.string.lowercased()).recipient == identity.recipient)
        var mixed = Array(identity.string)
        mixed[mixed.count - 1] = Character(mixed[mixed.count - 1].lowercased())
        if mixed.last!.isLetter {
            #expect(throws: AgeError.self) { try AgeX25519Identity(string: String(mixed)) }
        }
        var other = TestRNG(seed: 2)
        #expect(AgeX25519Identity.generate(using: &other).string != identity.string)
        #expect(AgeX25519Identity.generate().string != AgeX25519Identity.generate().string)
    }

    @Test func rejectsBadKeyStrings() {
        let good = "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj"
        var flipped = Array(good)
        flipped[10] = flipped[10] == "q" ? "p" : "q"
        for bad in [
            "", "age1", String(flipped), good.uppercased().replacingOccurrences(of: "AGE1", with: "AGF1"),
            " " + good, good + "\n",
            "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX",  // identity as recipient
        ] {
            #expect(throws: AgeError.self, "\(bad.debugDescription)") { try AgeX25519Recipient(string: bad) }
        }
        #expect(throws: AgeError.self) { try AgeX25519Identity(string: good) }
    }

    @Test func keyFiles() throws {
        let a = AgeX25519Identity.generate()
        let b = AgeX25519Identity.generate()
        let text = "# created: 2026-01-01T00:00:00Z\r\n# public key: \(a.recipient)\r\n\(a.string)\r\n\n  \(b.string)  \n"
        #expect(try AgeX25519Identity.parseKeyFile(text).map(\.recipient) == [a.recipient, b.recipient])
        #expect(try AgeX25519Identity.parseKeyFile(a.string).map(\.recipient) == [a.recipient])
        #expect(throws: AgeError.self) { try AgeX25519Identity.parseKeyFile("# only a comment\n") }
        #expect(throws: AgeError.self) { try AgeX25519Identity.parseKeyFile("\(a.string)\nnot a key\n") }
    }

    @Test func identityDescriptionHidesTheSecret() {
        let identity = AgeX25519Identity.generate()
        let secretBody = String(identity.string.dropFirst("AGE-SECRET-KEY-1".count).prefix(20))
        for text in [String(describing: identity), String(reflecting: identity), "\(identity)"] {
            #expect(!text.contains(secretBody))
            #expect(!text.uppercased().contains(secretBody))
        }
        #expect(!String(describing: AgeScryptIdentity(passphrase: "hunter2")).contains("hunter2"))
    }
}

@Suite struct AgeRoundTripTests {
    @Test(arguments: [0, 1, 1000, 65536, 65537, 3 * 65536, 200_000])
    func x25519RoundTrip(size: Int) throws {
        var rng = TestRNG(seed: UInt64(size) + 7)
        let plaintext = Data(AgePrimitives.randomBytes(size, using: &rng))
        let alice = AgeX25519Identity.generate(using: &rng)
        let bob = AgeX25519Identity.generate(using: &rng)
        let mallory = AgeX25519Identity.generate(using: &rng)
        for armored in [false, true] {
            let file = try Age.encrypt(
                plaintext, to: [alice.recipient, bob.recipient], armored: armored, using: &rng)
            #expect(AgeArmor.looksArmored(file) == armored)
            #expect(try Age.decrypt(file, identities: [alice]) == plaintext)
            #expect(try Age.decrypt(file, identities: [mallory, bob]) == plaintext)
            #expect(throws: AgeError.noMatch) { try Age.decrypt(file, identities: [mallory]) }
            #expect(throws: AgeError.noMatch) { try Age.decrypt(file, identities: []) }
        }
    }

    @Test func deterministicWithTheSameGenerator() throws {
        var keys = TestRNG(seed: 99)
        let identity = AgeX25519Identity.generate(using: &keys)
        var first = TestRNG(seed: 5)
        var second = TestRNG(seed: 5)
        var third = TestRNG(seed: 6)
        let a = try Age.encrypt(Data("hello".utf8), to: [identity.recipient], using: &first)
        let b = try Age.encrypt(Data("hello".utf8), to: [identity.recipient], using: &second)
        let c = try Age.encrypt(Data("hello".utf8), to: [identity.recipient], using: &third)
        #expect(a == b)
        #expect(a != c)
        #expect(a.starts(with: Data("age-encryption.org/v1\n-> X25519 ".utf8)))
    }

    @Test func binaryLayoutMatchesTheSpec() throws {
        var rng = TestRNG(seed: 3)
        let identity = AgeX25519Identity.generate(using: &rng)
        let file = Array(try Age.encrypt(Data(), to: [identity.recipient], using: &rng))
        let (header, offset) = try AgeFormat.parseHeader(file)
        #expect(header.stanzas.count == 1)
        #expect(header.stanzas[0].type == "X25519")
        #expect(header.stanzas[0].arguments.count == 1)
        #expect(header.stanzas[0].body.count == 32)
        // Empty plaintext: 16-byte nonce plus one empty final chunk (16-byte tag).
        #expect(file.count - offset == 32)
        let text = String(decoding: file[..<offset], as: UTF8.self)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 5)  // version, stanza, body, MAC, "" after the last LF
        #expect(lines[2].count == 43)
        #expect(lines[3].hasPrefix("--- ") && lines[3].count == 47)
    }

    @Test func tamperingIsDetectedByLayer() throws {
        var rng = TestRNG(seed: 4)
        let identity = AgeX25519Identity.generate(using: &rng)
        let plaintext = Data(AgePrimitives.randomBytes(70_000, using: &rng))
        let file = Array(try Age.encrypt(plaintext, to: [identity.recipient], using: &rng))
        let (_, offset) = try AgeFormat.parseHeader(file)
        // Flip a bit in the MAC-covered stanza argument → still parses but MAC or unwrap fails.
        var payload = file
        payload[payload.count - 5] ^= 1
        #expect(throws: AgeError.self) { try Age.decrypt(payload, identities: [identity]) }
        do {
            _ = try Age.decrypt(payload, identities: [identity])
        } catch let error as AgeError {
            guard case .payload = error else { Issue.record("expected payload error, got \(error)"); return }
        }
        var truncated = file
        truncated.removeLast(20)
        #expect {
            try Age.decrypt(truncated, identities: [identity])
        } throws: { error in
            if case .payload = error as? AgeError { return true }
            return false
        }
        var version = file
        version[20] = UInt8(ascii: "2")  // age-encryption.org/v2
        #expect {
            try Age.decrypt(version, identities: [identity])
        } throws: { error in
            if case .header = error as? AgeError { return true }
            return false
        }
        // Changing the MAC line itself.
        var mac = file
        let macIndex = offset - 10
        mac[macIndex] = mac[macIndex] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        #expect {
            try Age.decrypt(mac, identities: [identity])
        } throws: { error in
            let e = error as? AgeError
            if e == .hmac { return true }
            if case .header = e { return true }  // a changed last character can make it non-canonical
            return false
        }
    }

    @Test func scryptRoundTripAndRules() throws {
        var rng = TestRNG(seed: 8)
        let plaintext = Data("passphrase protected".utf8)
        let file = try Age.encrypt(
            plaintext, to: [AgeScryptRecipient(passphrase: "correct horse", workFactor: 10)], using: &rng)
        #expect(String(decoding: file.prefix(40), as: UTF8.self).contains("-> scrypt "))
        #expect(try Age.decrypt(file, identities: [AgeScryptIdentity(passphrase: "correct horse")]) == plaintext)
        #expect(throws: AgeError.noMatch) {
            try Age.decrypt(file, identities: [AgeScryptIdentity(passphrase: "wrong horse")])
        }
        let x = AgeX25519Identity.generate(using: &rng)
        #expect(throws: AgeError.self) {
            try Age.encrypt(plaintext, to: [AgeScryptRecipient(passphrase: "p", workFactor: 10), x.recipient])
        }
        for bad in [0, 23, -1] {
            #expect(throws: AgeError.self) {
                try Age.encrypt(plaintext, to: [AgeScryptRecipient(passphrase: "p", workFactor: bad)])
            }
        }
        #expect(throws: AgeError.self) { try Age.encrypt(plaintext, to: [AgeScryptRecipient(passphrase: "")]) }
        #expect(throws: AgeError.self) { try Age.encrypt(plaintext, to: []) }
    }

    @Test func hybridRoundTripAndRules() throws {
        var rng = TestRNG(seed: 21)
        let identity = AgeHybridIdentity.generate(using: &rng)
        #expect(identity.string.hasPrefix("AGE-SECRET-KEY-PQ-1"))
        #expect(identity.recipient.string.hasPrefix("age1pq1"))
        let reparsed = try AgeHybridIdentity(string: identity.string)
        #expect(reparsed.recipient == identity.recipient)
        #expect(try AgeHybridRecipient(string: identity.recipient.string) == identity.recipient)
        #expect(!String(describing: identity).contains(String(identity.string.dropFirst(19).prefix(16))))
        var again = TestRNG(seed: 21)
        #expect(AgeHybridIdentity.generate(using: &again).string == identity.string)

        let other = AgeHybridIdentity.generate(using: &rng)
        let plaintext = Data(AgePrimitives.randomBytes(70_000, using: &rng))
        let file = try Age.encrypt(plaintext, to: [identity.recipient, other.recipient], armored: true, using: &rng)
        #expect(String(decoding: try AgeArmor.decode(file).prefix(60), as: UTF8.self).contains("-> mlkem768x25519 "))
        #expect(try Age.decrypt(file, identities: [identity]) == plaintext)
        #expect(try Age.decrypt(file, identities: [other]) == plaintext)
        #expect(throws: AgeError.noMatch) { try Age.decrypt(file, identities: [AgeHybridIdentity.generate()]) }
        // Not mixed with classic recipients, and the key kinds are not interchangeable.
        let classic = AgeX25519Identity.generate(using: &rng)
        #expect(throws: AgeError.self) { try Age.encrypt(plaintext, to: [identity.recipient, classic.recipient]) }
        #expect(throws: AgeError.self) { try AgeX25519Identity(string: identity.string) }
        #expect(throws: AgeError.self) { try AgeHybridIdentity(string: classic.string) }
        #expect(throws: AgeError.self) { try AgeHybridRecipient(string: classic.recipient.string) }
    }

    @Test func foreignRecipientAndIdentityTypesAreRefused() {
        struct Plugin: AgeRecipient, AgeIdentity {}
        #expect(throws: AgeError.self) { try Age.encrypt(Data("x".utf8), to: [Plugin()]) }
        let identity = AgeX25519Identity.generate()
        let file = try? Age.encrypt(Data("x".utf8), to: [identity.recipient])
        #expect(throws: AgeError.self) { try Age.decrypt(file ?? Data(), identities: [Plugin()]) }
    }
}

@Suite struct AgeFormatTests {
    @Test func bodyWrapsAt64ColumnsWithAFinalShortLine() throws {
        for length in [0, 1, 47, 48, 49, 96, 100] {
            let body = [UInt8]((0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31) })
            let stanza = AgeStanza(type: "example.com/test", arguments: ["a", "b!~"], body: body)
            let text = AgeFormat.headerWithoutMAC([stanza]) + AgeFormat.macLineTail([UInt8](repeating: 7, count: 32))
            let lines = String(decoding: text, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
            let bodyLines = lines[2..<(lines.count - 2)]
            #expect(bodyLines.dropLast().allSatisfy { $0.count == 64 })
            #expect(bodyLines.last!.count < 64)
            let (header, offset) = try AgeFormat.parseHeader(text)
            #expect(offset == text.count)
            #expect(header.stanzas == [stanza])
            #expect(header.mac == [UInt8](repeating: 7, count: 32))
        }
    }

    @Test func base64IsCanonical() {
        #expect(AgeBase64.decodeUnpadded("Zm9v".utf8) == Array("foo".utf8))
        #expect(AgeBase64.decodeUnpadded("Zm8".utf8) == Array("fo".utf8))
        #expect(AgeBase64.decodeUnpadded("Zm9".utf8) == nil)  // unused bits set
        #expect(AgeBase64.decodeUnpadded("Zm8=".utf8) == nil)  // padding not allowed
        #expect(AgeBase64.decodeUnpadded("Z".utf8) == nil)
        #expect(AgeBase64.decodePadded("Zm8=".utf8) == Array("fo".utf8))
        #expect(AgeBase64.decodePadded("Zm9=".utf8) == nil)
        #expect(AgeBase64.decodePadded("Zm8".utf8) == nil)
        #expect(AgeBase64.decodePadded("Zg==".utf8) == Array("f".utf8))
        #expect(AgeBase64.decodePadded("Zh==".utf8) == nil)
        #expect(AgeBase64.decodePadded("Z===".utf8) == nil)
        #expect(AgeBase64.encode(Array("fo".utf8), padded: false) == "Zm8")
        #expect(AgeBase64.encode(Array("f".utf8), padded: true) == "Zg==")
    }

    @Test func armorRoundTripAndDetection() throws {
        for size in [1, 47, 48, 49, 100, 1000] {
            let binary = Data((0..<size).map { UInt8(truncatingIfNeeded: $0) })
            let armored = AgeArmor.encode(binary)
            let text = String(decoding: armored, as: UTF8.self)
            #expect(text.hasPrefix(AgeArmor.beginLine + "\n"))
            #expect(text.hasSuffix(AgeArmor.endLine + "\n"))
            let lines = text.split(separator: "\n")
            #expect(lines.dropFirst().dropLast().dropLast().allSatisfy { $0.count == 64 })
            #expect(try AgeArmor.decode(armored) == binary)
            #expect(try AgeArmor.decode(Data(("\r\n  " + text.replacingOccurrences(of: "\n", with: "\r\n") + " \t").utf8)) == binary)
            #expect(AgeArmor.looksArmored(armored))
            #expect(!AgeArmor.looksArmored(Data("age-encryption.org/v1\n".utf8)))
        }
    }
}
