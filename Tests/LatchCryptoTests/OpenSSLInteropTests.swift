import Foundation
import Testing
@testable import LatchCrypto

/// Runs the real `openssl` binary as a peer. Fails (never skips) when openssl is missing.
struct OpenSSL {
    let dir: URL

    static func locate() throws -> URL {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for d in path.split(separator: ":").map(String.init) + ["/usr/bin", "/usr/local/bin"] {
            let url = URL(fileURLWithPath: d).appendingPathComponent("openssl")
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        throw VectorError("the `openssl` tool is required for the interop tests but was not found on PATH (apt-get install openssl)")
    }

    /// Creates a private temp dir, runs `body`, then removes the dir.
    static func withTempDir<T>(_ body: (OpenSSL) throws -> T) throws -> T {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("latch-openssl-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(at: dir) }
        return try body(OpenSSL(dir: dir))
    }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    func write(_ name: String, _ data: Data, secret: Bool = false) throws {
        let p = path(name)
        guard FileManager.default.createFile(atPath: p, contents: nil, attributes: [.posixPermissions: secret ? 0o600 : 0o644]) else {
            throw VectorError("cannot create \(p)")
        }
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: p))
        defer { try? h.close() }
        try h.write(contentsOf: data)
    }

    func read(_ name: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path(name))) }

    struct Result { var status: Int32; var stdout: Data; var stderr: String }

    @discardableResult
    func run(_ args: [String], expectSuccess: Bool = true) throws -> Result {
        let p = Process()
        p.executableURL = try Self.locate()
        p.arguments = args
        p.currentDirectoryURL = dir
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let r = Result(status: p.terminationStatus, stdout: o, stderr: String(decoding: e, as: UTF8.self))
        if expectSuccess, r.status != 0 {
            throw VectorError("openssl \(args.joined(separator: " ")) failed (\(r.status)): \(r.stderr)")
        }
        return r
    }
}

@Suite("openssl interop", .serialized)
struct OpenSSLInteropTests {
    @Test("openssl keys load: genpkey PKCS#8, genrsa -traditional and rsa -traditional PKCS#1")
    func keysLoad() throws {
        try OpenSSL.withTempDir { ssl in
            try ssl.run(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072", "-out", ssl.path("k8.pem")])
            try ssl.run(["rsa", "-in", ssl.path("k8.pem"), "-traditional", "-out", ssl.path("k1.pem")])
            try ssl.run(["genrsa", "-traditional", "-out", ssl.path("g1.pem"), "2048"])
            try ssl.run(["pkey", "-in", ssl.path("k8.pem"), "-pubout", "-out", ssl.path("pub.pem")])
            try ssl.run(["rsa", "-in", ssl.path("k8.pem"), "-RSAPublicKey_out", "-out", ssl.path("pub1.pem")])
            try ssl.run(["pkey", "-in", ssl.path("k8.pem"), "-pubout", "-outform", "DER", "-out", ssl.path("pub.der")])

            let k8text = String(decoding: try ssl.read("k8.pem"), as: UTF8.self)
            let k1text = String(decoding: try ssl.read("k1.pem"), as: UTF8.self)
            #expect(k8text.hasPrefix("-----BEGIN PRIVATE KEY-----"))
            #expect(k1text.hasPrefix("-----BEGIN RSA PRIVATE KEY-----"))
            let k8 = try PrincipalPrivateKey(pem: k8text)
            let k1 = try PrincipalPrivateKey(pem: k1text)
            #expect(k8.bits == 3072 && k1.publicKey == k8.publicKey)
            let g1 = try PrincipalPrivateKey(pem: String(decoding: try ssl.read("g1.pem"), as: UTF8.self))
            #expect(g1.bits == 2048)

            let pub = try PrincipalPublicKey(pem: String(decoding: try ssl.read("pub.pem"), as: UTF8.self))
            let pub1 = try PrincipalPublicKey(pem: String(decoding: try ssl.read("pub1.pem"), as: UTF8.self))
            #expect(pub == k8.publicKey && pub1 == pub)
            // Key id equals SHA-256 of openssl's own SPKI DER.
            let der = try ssl.read("pub.der")
            #expect(pub.spkiDER == der)
            let dgst = try ssl.run(["dgst", "-sha256", "-r", ssl.path("pub.der")])
            #expect(String(decoding: dgst.stdout, as: UTF8.self).hasPrefix(pub.keyId))
            // Our PKCS#8 output is readable by openssl and is the same key.
            try ssl.write("ours.pem", Data(k1.pkcs8PEM.utf8), secret: true)
            try ssl.run(["pkey", "-in", ssl.path("ours.pem"), "-pubout", "-outform", "DER", "-out", ssl.path("ours.der")])
            #expect(try ssl.read("ours.der") == der)
        }
    }

    @Test("Our OAEP wrap decrypts with openssl pkeyutl")
    func oaepToOpenSSL() throws {
        let key = TestKeys.alice
        try OpenSSL.withTempDir { ssl in
            try ssl.write("key.pem", Data(key.pkcs8PEM.utf8), secret: true)
            let mode = try FileManager.default.attributesOfItem(atPath: ssl.path("key.pem"))[.posixPermissions] as? Int
            #expect(mode == 0o600)
            var rng = SystemRandomNumberGenerator()
            let dek = DataEncryptionKey.generate(version: 1, using: &rng)
            try ssl.write("wrapped.bin", try key.publicKey.wrap(dek))
            let r = try ssl.run(["pkeyutl", "-decrypt", "-inkey", ssl.path("key.pem"), "-in", ssl.path("wrapped.bin"),
                                 "-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha256",
                                 "-pkeyopt", "rsa_mgf1_md:sha256"])
            #expect(r.stdout == dekBytes(dek))
            // And the reverse: openssl's OAEP ciphertext unwraps here.
            try ssl.write("pub.pem", Data(key.publicKey.pem.utf8))
            try ssl.write("dek.bin", dekBytes(dek), secret: true)
            try ssl.run(["pkeyutl", "-encrypt", "-pubin", "-inkey", ssl.path("pub.pem"), "-in", ssl.path("dek.bin"),
                         "-out", ssl.path("o.bin"), "-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha256",
                         "-pkeyopt", "rsa_mgf1_md:sha256"])
            let back = try key.unwrap(try ssl.read("o.bin"), version: 1)
            #expect(dekBytes(back) == dekBytes(dek))
        }
    }

    @Test("Our PSS signatures verify with openssl; openssl's (salt = digest) verify here")
    func pss() throws {
        let key = TestKeys.alice
        try OpenSSL.withTempDir { ssl in
            try ssl.write("key.pem", Data(key.pkcs1PEM.utf8), secret: true)
            try ssl.write("pub.pem", Data(key.publicKey.pem.utf8))
            let msg = try CanonicalJSON.canonicalize(Data("{\"b\":1,\"a\":\"ü\"}".utf8))
            try ssl.write("msg", msg)
            try ssl.write("sig", try key.sign(msg))
            let pssOpts = ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32", "-sigopt", "rsa_mgf1_md:sha256"]
            let ok = try ssl.run(["dgst", "-sha256"] + pssOpts + ["-verify", ssl.path("pub.pem"), "-signature", ssl.path("sig"), ssl.path("msg")])
            #expect(String(decoding: ok.stdout, as: UTF8.self).contains("Verified OK"))
            // A tampered message fails in openssl too (guards against a verifier that always says OK).
            try ssl.write("msg2", msg + Data([0x20]))
            let bad = try ssl.run(["dgst", "-sha256"] + pssOpts + ["-verify", ssl.path("pub.pem"), "-signature", ssl.path("sig"), ssl.path("msg2")],
                                  expectSuccess: false)
            #expect(bad.status != 0)

            for i in 0..<3 {
                let m = Data("openssl message \(i)".utf8)
                try ssl.write("m\(i)", m)
                try ssl.run(["dgst", "-sha256", "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest",
                             "-sigopt", "rsa_mgf1_md:sha256", "-sign", ssl.path("key.pem"), "-out", ssl.path("s\(i)"), ssl.path("m\(i)")])
                let s = try ssl.read("s\(i)")
                #expect(key.publicKey.isValidSignature(s, for: m))
                #expect(!key.publicKey.isValidSignature(s, for: m + Data([0])))
            }
            // A signature with a different salt length (20) is not ours and is rejected.
            try ssl.run(["dgst", "-sha256", "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:20",
                         "-sigopt", "rsa_mgf1_md:sha256", "-sign", ssl.path("key.pem"), "-out", ssl.path("s20"), ssl.path("m0")])
            #expect(!key.publicKey.isValidSignature(try ssl.read("s20"), for: Data("openssl message 0".utf8)))
        }
    }
}
