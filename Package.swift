// swift-tools-version: 6.1
// Latchkey: one package, a small core with no I/O and thin shells around it.
// Each area below appends its own products and targets; keep to your section.
import PackageDescription

// Metadata of concrete generic types (a `KeyedDecodingContainer<X.CodingKeys>` in every synthesized
// `init(from:)`) is reached through accessor functions, not mangled names: a mangled name is
// demangled at its first use and each of its conformances found by a scan of every conformance
// record in the binary, once per process, which was the largest part of a `latch get`'s decoding.
let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .unsafeFlags(["-Xfrontend", "-disable-concrete-type-metadata-mangled-name-accessors"]),
]

var products: [Product] = []
var targets: [Target] = []

let dependencies: [Package.Dependency] = [
    .package(url: "https://github.com/apple/swift-crypto.git", from: "4.0.0"),
    .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
    .package(url: "https://github.com/apple/swift-log.git", from: "1.16.0"),
    .package(url: "https://github.com/jpsim/Yams.git", from: "6.0.0"),
    .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.0.0"),
    .package(url: "https://github.com/modelcontextprotocol/swift-sdk.git", from: "0.12.0"),
    .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.21.0"),
]

let crypto: Target.Dependency = .product(name: "Crypto", package: "swift-crypto")
let cryptoExtras: Target.Dependency = .product(name: "CryptoExtras", package: "swift-crypto")

// MARK: - Crypto core (no I/O): keys, PEM, DEK wrap, envelopes, signatures, canonical JSON, checkpoints
targets += [
    .target(name: "LatchCrypto", dependencies: [crypto, cryptoExtras], swiftSettings: swiftSettings),
    .testTarget(
        name: "LatchCryptoTests", dependencies: ["LatchCrypto", crypto, cryptoExtras],
        resources: [.copy("Vectors")], swiftSettings: swiftSettings),
]

// MARK: - Transparency log (no I/O): RFC 6962 Merkle maths, proofs, signed tree heads
targets += [
    .target(name: "LatchLog", dependencies: [crypto], swiftSettings: swiftSettings),
    .testTarget(
        name: "LatchLogTests", dependencies: ["LatchLog"],
        resources: [.copy("Vectors")], swiftSettings: swiftSettings),
]

// MARK: - age v1 format (no I/O)
// CZlib: the system zlib (zlib1g-dev), used only by the tests to inflate compressed vectors.
targets += [
    .target(name: "LatchAge", dependencies: [crypto, cryptoExtras], swiftSettings: swiftSettings),
    .systemLibrary(name: "CZlib", path: "Tests/CZlib", providers: [.apt(["zlib1g-dev"]), .brew(["zlib"])]),
    .testTarget(
        name: "LatchAgeTests", dependencies: ["LatchAge", "CZlib", crypto],
        resources: [.copy("Vectors")], swiftSettings: swiftSettings),
]

// MARK: - Git vault (agent-vault compatible)
// LatchGit: the .agent-vault/ repository model. LatchGitCommands: the agent-vault command line,
// shared by the `agent-vault` executable and `latch repo`.
let yams: Target.Dependency = .product(name: "Yams", package: "Yams")
products += [.executable(name: "agent-vault", targets: ["AgentVaultCLI"])]
targets += [
    .target(name: "LatchGit", dependencies: ["LatchAge", yams], swiftSettings: swiftSettings),
    .target(
        name: "LatchGitCommands",
        dependencies: ["LatchGit", "LatchAge", .product(name: "ArgumentParser", package: "swift-argument-parser")],
        swiftSettings: swiftSettings),
    .executableTarget(name: "AgentVaultCLI", dependencies: ["LatchGitCommands"], swiftSettings: swiftSettings),
    // Benchmark: `swift run -c release GitVaultBench grant-revoke` (see its --help).
    .executableTarget(name: "GitVaultBench", dependencies: ["LatchGit", "LatchAge"], swiftSettings: swiftSettings),
    .testTarget(
        name: "LatchGitTests", dependencies: ["LatchGit", "LatchAge"],
        resources: [.copy("Vectors")], swiftSettings: swiftSettings),
]

// MARK: - Domain core, wire API, stores, server
let hummingbird: Target.Dependency = .product(name: "Hummingbird", package: "hummingbird")
let logging: Target.Dependency = .product(name: "Logging", package: "swift-log")
products += [.executable(name: "latch-server-seed", targets: ["LatchServerSeed"])]
targets += [
    .target(name: "LatchDomain", dependencies: ["LatchCrypto", "LatchLog", crypto], swiftSettings: swiftSettings),
    .target(name: "LatchWire", dependencies: ["LatchCrypto"], swiftSettings: swiftSettings),
    // CLatchSQLite: the system SQLite (libsqlite3-dev), bound by LatchStoreSQLite itself.
    .systemLibrary(name: "CLatchSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"]), .brew(["sqlite"])]),
    .target(
        name: "LatchStoreSQLite",
        dependencies: ["LatchDomain", "CLatchSQLite"],
        swiftSettings: swiftSettings),
    .target(
        name: "LatchStorePostgres",
        dependencies: ["LatchDomain", logging, .product(name: "PostgresNIO", package: "postgres-nio")],
        swiftSettings: swiftSettings),
    .testTarget(
        name: "LatchStoreTests",
        dependencies: ["LatchDomain", "LatchStoreSQLite", "LatchStorePostgres"],
        swiftSettings: swiftSettings),
    .testTarget(
        name: "LatchReplicaTests",
        dependencies: ["LatchDomain", "LatchWire", "LatchCrypto", "LatchStorePostgres", "LatchClient"],
        swiftSettings: swiftSettings),
    .target(
        name: "LatchServer", dependencies: ["LatchCrypto", "LatchDomain", "LatchWire", "LatchLog", hummingbird, logging],
        swiftSettings: swiftSettings),
    // Seeds a running server for scripts/bench-server.sh (bootstrap, one vault, one field), and
    // runs its delta-sync goal (`latch-server-seed delta-sync`: seeds SQLite stores directly).
    .executableTarget(name: "LatchServerSeed", dependencies: ["LatchCrypto", "LatchWire", "LatchDomain", "LatchStoreSQLite", "LatchBenchSupport"],
                     swiftSettings: swiftSettings),
    .testTarget(
        name: "LatchServerTests",
        dependencies: [
            "LatchDomain", "LatchWire", "LatchServer", "LatchStoreSQLite", "LatchStorePostgres", "LatchCrypto", "LatchLog",
            .product(name: "HummingbirdTesting", package: "hummingbird"),
        ],
        swiftSettings: swiftSettings),
]

// MARK: - Client (SDK), latch CLI, MCP server
let argumentParser: Target.Dependency = .product(name: "ArgumentParser", package: "swift-argument-parser")
products += [.executable(name: "latch", targets: ["LatchCLI"])]
products += [.library(name: "LatchSDK", targets: ["LatchClient"])]
targets += [
    // LatchLog (no I/O): the client checks tree heads and inclusion/consistency proofs itself.
    // HTTP/1.1 is the client's own, over sockets; https on Linux is TLS from the system OpenSSL
    // (libssl-dev), on Apple platforms URLSession. No FoundationNetworking (libcurl) and no NIO
    // stack in a `latch` process.
    // CLatchOpenSSL opens libssl at the first https connection instead of linking it (headers
    // from libssl-dev), so that `latch get` on http does not load it.
    .target(name: "CLatchOpenSSL", linkerSettings: [.linkedLibrary("dl", .when(platforms: [.linux]))]),
    .target(name: "LatchClient", dependencies: [
        "LatchCrypto", "LatchWire", "LatchLog",
        .target(name: "CLatchOpenSSL", condition: .when(platforms: [.linux])),
    ], swiftSettings: swiftSettings),
    .testTarget(
        name: "LatchClientTests", dependencies: ["LatchClient", "LatchCrypto", "LatchStoreSQLite", "LatchDomain", "LatchLog"],
        swiftSettings: swiftSettings),
]
// On Linux `latch` carries the Swift runtime and Foundation (static libraries from the
// toolchain): loading and relocating them as shared objects was a third of a `latch get`.
// The group lets the linker resolve Foundation's libraries against each other in any order.
// `-no-pie`: a position-dependent executable needs none of the ~90,000 relative relocations a
// position-independent one of this size has the dynamic loader apply (and copy the written
// pages for) at every start. `--no-export-dynamic` undoes the driver's `-export-dynamic`: its
// ~14,000 exported symbols made every symbol lookup at start (and each `dladdr`) search them.
// `link/static-cxx` first on the library path: the C++ runtime the Swift runtime needs comes from
// libstdc++.a and libgcc_eh.a (see the linker script there), so the dynamic loader maps and
// relocates only libc and libm: a `latch get` that fails at once took 3.7 ms with them, 2.2 without.
let packageDirectory = String(#filePath.dropLast("/Package.swift".count))
let staticSwiftRuntimeOnLinux: [LinkerSetting] = [
    .unsafeFlags(["-static-stdlib", "-L", packageDirectory + "/link/static-cxx",
                  "-Xclang-linker", "-no-pie", "-Xlinker", "--no-export-dynamic", "-Xlinker", "--start-group"]
                 + ["Foundation", "FoundationInternationalization", "FoundationEssentials", "_FoundationICU",
                    "_FoundationCShims", "_FoundationCollections", "CoreFoundation", "swiftSynchronization", "stdc++"].flatMap { ["-Xlinker", "-l\($0)"] }
                 + ["-Xlinker", "--end-group"],
                 .when(platforms: [.linux])),
]
// `latch` (LatchCLI) is the client and git mode, so that `latch get` starts fast: no server,
// MCP SDK or libcurl in it. It hands `serve` and `mcp` to `latchd` (LatchDaemon, the
// whole command tree in one binary) from its own directory. (Listing LatchDaemon as a
// dependency would link all of it into `latch`.)
products += [.executable(name: "latchd", targets: ["LatchDaemon"])]
targets += [
    .target(name: "LatchCommands", dependencies: [argumentParser, "LatchClient", "LatchCrypto", "LatchWire", "LatchGit", "LatchGitCommands"],
            swiftSettings: swiftSettings),
    .executableTarget(name: "LatchCLI", dependencies: [argumentParser, "LatchCommands"], swiftSettings: swiftSettings,
                      linkerSettings: staticSwiftRuntimeOnLinux),
    .executableTarget(
        name: "LatchDaemon",
        dependencies: [
            argumentParser, "LatchCommands",
            // one line per area: server, git vault, client, mcp
            "LatchServer", "LatchStoreSQLite", "LatchDomain", "LatchLog", hummingbird,
            "LatchGit", "LatchGitCommands",
            "LatchStorePostgres",
            "LatchClient",
            .product(name: "MCP", package: "swift-sdk"),
        ],
        swiftSettings: swiftSettings),
]

// MARK: - Benchmarks
products += [.executable(name: "latch-bench", targets: ["LatchBench"])]
targets += [
    // LatchBenchSupport: what the benchmark executables share (starting a real `latch serve`).
    .target(name: "LatchBenchSupport", dependencies: [], swiftSettings: swiftSettings),
    .executableTarget(name: "LatchBench", dependencies: ["LatchLog", "LatchCrypto", "LatchClient", "LatchBenchSupport"], swiftSettings: swiftSettings),
]

let package = Package(
    name: "latchkey",
    platforms: [.macOS(.v14)],
    products: products,
    dependencies: dependencies,
    targets: targets
)
