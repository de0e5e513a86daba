import Foundation
import Testing
@testable import LatchGit

/// agent-vault's Python SDK (PyPI `agent-vault-sdk`) reading a vault written by our executable.
/// Needs a Python with that package: set AGENT_VAULT_PYTHON to its interpreter, e.g.
/// `python3 -m venv /tmp/av && /tmp/av/bin/pip install agent-vault-sdk` then
/// `AGENT_VAULT_PYTHON=/tmp/av/bin/python swift test --filter SDKCompatibilityTests`.
@Suite struct SDKCompatibilityTests {
    static let python = ProcessInfo.processInfo.environment["AGENT_VAULT_PYTHON"].flatMap { $0.isEmpty ? nil : $0 }

    @Test(.enabled(if: python != nil, "AGENT_VAULT_PYTHON is not set (it names a Python with agent-vault-sdk installed)"))
    func pythonSDKReadsOurVault() async throws {
        let s = try CLISessionTests.Session()
        defer { cleanup(s.dir) }
        #expect(try await s.git("init", "-q", "-b", "main").status == 0)
        for args in [["init"], ["add-agent", "bot1"], ["set", "stripe/api-key", "sk_live_9", "--expires", "2030-01-01"],
                     ["set", "apps/prod/token", "tok"], ["grant", "bot1", "stripe"]] {
            let r = try await runProcess(s.executable, args, in: s.repo, environment: s.environment)
            #expect(r.status == 0, "\(args): \(r.stderr)")
        }
        let script = """
            from agent_vault import Vault
            from agent_vault.errors import NotAuthorizedError
            v = Vault(repo_path=\(String(reflecting: s.repo.path)), key_path=\(String(reflecting: s.agentKey("bot1").path)), auto_pull=False)
            assert v.get("stripe/api-key") == "sk_live_9"
            metas = v.list_secrets()
            assert [m.name for m in metas] == ["apps/prod/token", "stripe/api-key"], metas
            assert metas[1].authorized_agents == ["bot1"] and metas[1].expires.year == 2030
            assert v.list_agents() == [{"name": "bot1", "groups": ["stripe"]}]
            try:
                v.get("apps/prod/token"); raise SystemExit("agent read a secret it was not granted")
            except NotAuthorizedError:
                pass
            o = Vault(repo_path=\(String(reflecting: s.repo.path)), auto_pull=False)
            assert o.get("apps/prod/token") == "tok"
            print("ok")
            """
        let r = try await runProcess(URL(fileURLWithPath: Self.python ?? "python3"), ["-c", script], in: s.repo,
                               environment: s.environment)
        #expect(r.status == 0 && r.out == "ok\n", "\(r.stderr)")
    }
}
