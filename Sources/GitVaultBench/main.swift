import Foundation
import LatchAge
import LatchGit

// Git-mode benchmark. `GitVaultBench grant-revoke [--secrets N] [--agents M] [--keep]`:
// builds a vault whose group holds N secrets encrypted to the owner and M-1 agents
// (M recipients), times `grant` of one more agent and its `revoke` (re-encryption of every
// secret plus the git commit), then times a shell loop of `age -d | age -e` over the same
// files to the same recipients, and prints both.

let usage = """
    usage: GitVaultBench grant-revoke [--secrets N] [--agents M] [--keep] [--no-baseline]
           GitVaultBench age-loop [N]
      --secrets N   secrets in the group (default 1000)
      --agents M    recipients of each secret before the grant, owner included (default 10)
      --keep        keep the temporary vault and print its path
      --no-baseline skip the age shell loop (for profiling; no speed-up is printed)
    """

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data((message + "\n").utf8))
    exit(1)
}

var args = Array(CommandLine.arguments.dropFirst())
if args.first == "age-loop" {
    // `GitVaultBench age-loop N`: N decryptions and N encryptions of a 40-byte value to 11
    // X25519 recipients, the age code alone (for `time` or `perf record`).
    let count = args.dropFirst().first.flatMap(Int.init) ?? 100
    let identities = (0..<11).map { _ in AgeX25519Identity.generate() }
    let recipients: [any AgeRecipient] = identities.map(\.recipient)
    var file = try Age.encrypt(Data(repeating: 0x61, count: 40), to: recipients)
    for _ in 0..<count {
        let plain = try Age.decrypt(file, identities: [identities[0]])
        file = try Age.encrypt(plain, to: recipients)
    }
    exit(0)
}
guard args.first == "grant-revoke" else { fail(usage) }
args.removeFirst()
var secretCount = 1000, recipientCount = 10, keep = false, baseline = true
while let arg = args.first {
    args.removeFirst()
    switch arg {
    case "--secrets": secretCount = args.first.flatMap(Int.init) ?? 0; args = Array(args.dropFirst())
    case "--agents": recipientCount = args.first.flatMap(Int.init) ?? 0; args = Array(args.dropFirst())
    case "--keep": keep = true
    case "--no-baseline": baseline = false
    default: fail(usage)
    }
}
guard secretCount > 0, recipientCount > 0 else { fail(usage) }

/// CPU seconds (user + system) of this process and of its finished children so far.
func cpuSeconds() -> Double {
    var total = 0.0
    for who in [RUSAGE_SELF, RUSAGE_CHILDREN] {
        var usage = rusage()
        getrusage(__rusage_who_t(who.rawValue), &usage)
        total += Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
        total += Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
    }
    return total
}

nonisolated(unsafe) var lastCPU = 0.0
/// Wall-clock seconds of `body`; its CPU seconds (ours and git's/age's) go to `lastCPU`.
func seconds(_ body: () throws -> Void) rethrows -> Double {
    let cpu = cpuSeconds()
    let start = DispatchTime.now().uptimeNanoseconds
    try body()
    lastCPU = cpuSeconds() - cpu
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}

func shell(_ script: String, in dir: URL) -> Int32 {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/sh")
    process.arguments = ["-c", script]
    process.currentDirectoryURL = dir
    do { try process.run() } catch { fail("cannot run /bin/sh: \(error)") }
    process.waitUntilExit()
    return process.terminationStatus
}

do {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gitvault-bench-\(UUID().uuidString)")
    let repo = dir.appendingPathComponent("repo"), home = dir.appendingPathComponent("home")
    try FileManager.default.createDirectory(at: repo, withIntermediateDirectories: true)
    defer { if !keep { try? FileManager.default.removeItem(at: dir) } }

    var env = ProcessInfo.processInfo.environment
    env["HOME"] = home.path
    let git = try SystemGit(environment: env)
    let environment = VaultEnvironment(home: home, userName: "bench")
    let vault = try GitVault.initialize(in: repo, environment: environment, git: git)

    // Setup (not timed): agents, then N secrets written in one commit.
    print("setting up \(secretCount) secrets for \(recipientCount) recipients in \(repo.path) …")
    let agents = (1..<recipientCount).map { "agent-\($0)" } + ["newcomer"]
    for agent in agents { try vault.addAgent(agent) }
    var manifest = try vault.loadManifest()
    let group = "bench"
    let members = Array(agents.dropLast())
    for i in 0..<secretCount { try manifest.addSecret("\(group)/secret-\(i)", toGroup: group) }
    for member in members { try manifest.grant(agent: member, group: group) }
    var recipients: [any AgeRecipient] = [try vault.ownerRecipient()]
    for member in members { if let r = try vault.agentRecipient(member) { recipients.append(r) } }
    let fs = LocalFileSystem()
    let now = SystemVaultClock().now()
    var changed = [VaultLayout.manifestFile]
    for i in 0..<secretCount {
        let path = "\(group)/secret-\(i)"
        let value = Data("value-\(i)-\(UUID().uuidString)".utf8)
        try fs.write(try Age.encrypt(value, to: recipients), to: vault.layout.url(VaultLayout.secretFile(path)), privateFile: false)
        let meta = SecretMetadata(name: path, group: group, created: now, rotated: now, authorizedAgents: members.sorted())
        try fs.write(Data(try meta.yaml().utf8), to: vault.layout.url(VaultLayout.metadataFile(path)), privateFile: false)
        changed += [VaultLayout.secretFile(path), VaultLayout.metadataFile(path)]
    }
    try fs.write(Data(try manifest.yaml().utf8), to: vault.layout.url(VaultLayout.manifestFile), privateFile: false)
    try git.commit(root: repo, changed: changed, removed: [], message: "bench: setup")

    if ProcessInfo.processInfo.environment["GITVAULT_BENCH_PROFILE"] != nil {
        let owner = try IdentityResolver(environment: environment).ownerIdentity()
        let sample = try fs.read(vault.layout.url(VaultLayout.secretFile("\(group)/secret-0")))
        var plain = Data()
        let dec = try seconds { for _ in 0..<1000 { plain = try Age.decrypt(sample, identities: [owner]) } } / 5
        let decCPU = lastCPU / 5
        let enc = try seconds { for _ in 0..<1000 { _ = try Age.encrypt(plain, to: recipients) } } / 5
        let encCPU = lastCPU / 5
        let metaText = try String(decoding: fs.read(vault.layout.url(VaultLayout.metadataFile("\(group)/secret-0"))), as: UTF8.self)
        let yaml = try seconds { for _ in 0..<200 { _ = try SecretMetadata(yaml: metaText).yaml() } }
        let man = try seconds { _ = try VaultManifest(yaml: manifest.yaml()) }
        let commit = try seconds { try git.commit(root: repo, changed: changed, removed: [], message: "bench: noop") }
        // The steps of one re-encryption, one after another over 200 secrets.
        var steps = [Double](repeating: 0, count: 6)
        let ownerRecipients = recipients
        for i in 0..<200 {
            let path = "\(group)/secret-\(i)"
            let enc = vault.layout.url(VaultLayout.secretFile(path)), metaURL = vault.layout.url(VaultLayout.metadataFile(path))
            var bytes = Data(), plain = Data(), out = Data(), text = "", meta: SecretMetadata? = nil
            steps[0] += try seconds { bytes = try fs.read(enc) }
            steps[1] += try seconds { plain = try Age.decrypt(bytes, identities: [owner]) }
            steps[2] += try seconds { out = try Age.encrypt(plain, to: ownerRecipients) }
            steps[3] += try seconds { try fs.overwrite(out, at: enc) }
            steps[4] += try seconds { text = String(decoding: try fs.read(metaURL), as: UTF8.self); meta = try SecretMetadata(yaml: text) }
            steps[5] += try seconds { try fs.overwrite(Data(try meta!.yaml().utf8), at: metaURL) }
        }
        print(String(format: "steps per secret (ms): read %.3f decrypt %.3f encrypt %.3f write %.3f meta read+parse %.3f meta emit+write %.3f",
                     steps[0] * 5, steps[1] * 5, steps[2] * 5, steps[3] * 5, steps[4] * 5, steps[5] * 5))
        print(String(format: "per secret: decrypt %.3f ms (CPU %.3f), encrypt to %d %.3f ms (CPU %.3f), meta parse+emit %.3f ms; manifest %.3f s; commit of %d paths %.3f s",
                     dec * 5, decCPU * 5, recipients.count, enc * 5, encCPU * 5, yaml * 5, man, changed.count, commit))
    }

    // Timed: grant and revoke through the library (re-encryption + one commit each).
    // GITVAULT_BENCH_PERF_CTL names the control fifo of `perf record -D -1 --control fifo:…`,
    // so a profile covers only these two operations.
    let perfControl = ProcessInfo.processInfo.environment["GITVAULT_BENCH_PERF_CTL"].flatMap { FileHandle(forWritingAtPath: $0) }
    perfControl?.write(Data("enable\n".utf8))
    var granted: [String] = [], revoked: [String] = []
    let grantTime = try seconds { granted = try vault.grant(agent: "newcomer", group: group) }
    let grantCPU = lastCPU
    let revokeTime = try seconds { revoked = try vault.revoke(agent: "newcomer", group: group) }
    let revokeCPU = lastCPU
    perfControl?.write(Data("disable\n".utf8))
    guard granted.count == secretCount, revoked.count == secretCount else { fail("unexpected secret count") }

    func fmt(_ value: Double) -> String { String(format: "%.3f s", value) }
    if !baseline {
        print("latch grant  (re-encrypt + commit): \(fmt(grantTime)) wall, \(fmt(grantCPU)) CPU")
        print("latch revoke (re-encrypt + commit): \(fmt(revokeTime)) wall, \(fmt(revokeCPU)) CPU")
        if keep { print("vault kept at \(repo.path)") } else { try? FileManager.default.removeItem(at: dir) }
        exit(0)   // skips the deferred removal above
    }
    // Baseline: the same re-encryption as a shell loop of age -d | age -e (recipients after grant).
    var recipientLines = try [vault.ownerRecipient().string]
    for agent in agents { if let r = try vault.agentRecipient(agent) { recipientLines.append(r.string) } }
    let recipientsFile = dir.appendingPathComponent("recipients.txt")
    try Data((recipientLines.joined(separator: "\n") + "\n").utf8).write(to: recipientsFile)
    let ownerKey = environment.keys.ownerKey.path
    let script = """
        set -e
        for f in .agent-vault/secrets/\(group)/*.enc; do
          age -d -i '\(ownerKey)' "$f" | age -e -R '\(recipientsFile.path)' -o "$f.new"
          mv "$f.new" "$f"
        done
        """
    var status: Int32 = 0
    let loopTime = seconds { status = shell(script, in: repo) }
    let loopCPU = lastCPU
    guard status == 0 else { fail("the age shell loop failed (is `age` installed?)") }

    print("secrets: \(secretCount), recipients: \(recipientCount) before the grant, \(recipientCount + 1) after")
    print("                                   wall clock   CPU (incl. git/age children)")
    print("latch grant  (re-encrypt + commit): \(fmt(grantTime))    \(fmt(grantCPU))")
    print("latch revoke (re-encrypt + commit): \(fmt(revokeTime))    \(fmt(revokeCPU))")
    print("shell loop age -d | age -e:         \(fmt(loopTime))    \(fmt(loopCPU))")
    print(String(format: "speed-up, wall clock: grant %.1fx, revoke %.1fx; CPU: grant %.1fx, revoke %.1fx",
                 loopTime / grantTime, loopTime / revokeTime, loopCPU / grantCPU, loopCPU / revokeCPU))
    if keep { print("vault kept at \(repo.path)") }
} catch {
    fail("benchmark failed: \(error)")
}
