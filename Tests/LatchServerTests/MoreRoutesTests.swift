import Foundation
import Hummingbird
import HummingbirdTesting
import LatchCrypto
import LatchDomain
import LatchServer
import LatchWire
import Testing

@Suite("Sync, search, groups, projects, feedback, audit")
struct MoreRoutesTests {
    @Test("delta sync returns only what changed; bad cursors are refused")
    func sync() async throws {
        try await withHarness { h in
            let admin = try await h.bootstrap()
            var (vault, _) = try await h.createVault(admin)
            for i in 0..<5 { #expect(try await h.putItem(admin, &vault, name: "item\(i)", fields: [("v", "s\(i)", true)]).status == .created) }
            let full = try await h.call(.get, LatchRoutes.sync, key: admin.apiKey).decode(SyncResponse.self)
            #expect(full.full && full.items.count == 5 && full.fields.count == 5 && full.wrappedKeys.count == 1)
            let empty = try await h.call(.get, LatchRoutes.sync + "?cursor=\(full.cursor)", key: admin.apiKey).decode(SyncResponse.self)
            #expect(!empty.full && empty.items.isEmpty && empty.vaults.isEmpty && empty.cursor == full.cursor)
            let target = try #require(vault.details.keys.sorted().first)
            let name = try #require(vault.details[target]?.name)
            #expect(try await h.putItem(admin, &vault, itemId: target, name: name, fields: [("v", "new", true)]).status == .ok)
            let delta = try await h.call(.get, LatchRoutes.sync + "?cursor=\(full.cursor)", key: admin.apiKey).decode(SyncResponse.self)
            #expect(delta.items.map(\.item.id) == [target])
            #expect(delta.fields.count == 1 && delta.vaults.map(\.vault.id) == [vault.id] && delta.cursor != full.cursor)
            let bad = try await h.call(.get, LatchRoutes.sync + "?cursor=garbage", key: admin.apiKey)
            #expect(bad.status == .badRequest && bad.code == "invalid_cursor")
        }
    }

    @Test("sync carries the caller and the signer directory of each vault it sends, when asked, and only those the caller can read")
    func syncExtras() async throws {
        try await withHarness { h in
            let admin = try await h.bootstrap()
            var (shared, _) = try await h.createVault(admin, name: "shared")
            var (other, _) = try await h.createVault(admin, name: "other")
            try await h.putItem(admin, &shared, name: "db", fields: [("password", "s1", true)])
            try await h.putItem(admin, &other, name: "api", fields: [("token", "s2", true)])
            let agent = try await h.createAgent(admin, name: "bot", key: Keys.pool[1])
            #expect(try await h.grant(admin, vault: shared.id, [PermissionEntry(granteeType: "AGENT", granteeId: agent.id, level: "READ")]).status == .ok)
            #expect(try await h.share(admin, shared, to: agent).status == .created)

            // Not asked: neither is sent.
            let plain = try await h.call(.get, LatchRoutes.sync, key: agent.apiKey).decode(SyncResponse.self)
            #expect(plain.me == nil && plain.directories == nil)

            // Asked: the same answers as GET /me and GET /vault/:id/public-keys, for the one readable vault.
            let full = try await h.call(.get, LatchRoutes.sync + "?include=me,directories,future-thing", key: agent.apiKey).decode(SyncResponse.self)
            let me = try await h.call(.get, LatchRoutes.me, key: agent.apiKey).decode(MeResponse.self)
            let directory = try await h.call(.get, LatchRoutes.vaultPublicKeys(shared.id), key: agent.apiKey).decode(PublicKeysResponse.self)
            #expect(full.vaults.map(\.vault.id) == [shared.id])
            #expect(try canonical(full.me) == canonical(me))
            #expect(try canonical(full.directories) == canonical([directory]))
            #expect(directory.publicKeys.map(\.principalId).sorted() == [admin.id, agent.id].sorted())

            // A delta carries the directory of the vault it touches, and nothing for a vault the
            // caller cannot read, even one that changed.
            try await h.putItem(admin, &other, name: "api", fields: [("token", "s3", true)])
            let quiet = try await h.call(.get, LatchRoutes.sync + "?cursor=\(full.cursor)&include=directories", key: agent.apiKey).decode(SyncResponse.self)
            #expect(quiet.vaults.isEmpty && quiet.items.isEmpty && quiet.directories?.isEmpty == true && quiet.me == nil)
            try await h.putItem(admin, &shared, name: "db", fields: [("password", "s4", true)])
            let delta = try await h.call(.get, LatchRoutes.sync + "?cursor=\(quiet.cursor)&include=directories", key: agent.apiKey).decode(SyncResponse.self)
            #expect(delta.items.map(\.item.vaultId) == [shared.id])
            #expect(delta.directories?.map(\.vaultId) == [shared.id])
        }
    }

    /// Sorted-key JSON, to compare two answers whose wire types are not Equatable.
    private func canonical<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    @Test("search matches names and never returns values")
    func search() async throws {
        try await withHarness { h in
            let admin = try await h.bootstrap()
            var (vault, _) = try await h.createVault(admin)
            _ = try await h.putItem(admin, &vault, name: "GitHub token", fields: [("token", "ghp_VALUE", true)])
            let r = try await h.call(.post, LatchRoutes.search, key: admin.apiKey, body: SearchRequest(query: "github"))
            let body = try r.decode(SearchResponse.self)
            #expect(body.results.map(\.itemName) == ["GitHub token"] && body.results[0].fieldNames == ["token"])
            let raw = String(decoding: r.data, as: UTF8.self)
            #expect(!raw.contains("ghp_VALUE") && !raw.contains("\"v\":3") && !raw.contains("iv"))
            let none = try await h.call(.post, LatchRoutes.search, key: admin.apiKey, body: SearchRequest(query: "ghp_VALUE")).decode(SearchResponse.self)
            #expect(none.results.isEmpty)
        }
    }

    @Test("access through a group becomes a pending grant; projects grant their vaults")
    func groupsAndProjects() async throws {
        try await withHarness { h in
            let admin = try await h.bootstrap()
            let agent = try await h.createAgent(admin, name: "worker", key: Keys.pool[2],
                                               permissions: ["machine.vault.read", "machine.vault.secret.read", "machine.project.read"])
            let g = try await h.call(.post, LatchRoutes.groups, key: admin.apiKey, body: CreateGroupRequest(name: "workers")).decode(GroupInfo.self)
            let (vault, _) = try await h.createVault(admin)
            #expect(try await h.grant(admin, vault: vault.id, [PermissionEntry(granteeType: "GROUP", granteeId: g.id, level: "READ")]).status == .ok)
            let m = try await h.call(.put, LatchRoutes.groupMembers(g.id), key: admin.apiKey, body: SetGroupMembersRequest(members: [agent.id]))
            #expect(m.status == .ok)
            #expect(try m.decode(GroupMembersResponse.self).pendingGrants.map(\.principalId) == [agent.id])
            #expect(try await h.call(.get, LatchRoutes.vault(vault.id), key: agent.apiKey).status == .ok)
            #expect(try await h.share(admin, vault, to: agent).status == .created)
            #expect(try await h.call(.get, LatchRoutes.pendingGrants, key: admin.apiKey).decode(PendingGrantsResponse.self).pendingGrants.isEmpty)
            // removing the agent from the group removes its access
            _ = try await h.call(.put, LatchRoutes.groupMembers(g.id), key: admin.apiKey, body: SetGroupMembersRequest(members: []))
            #expect(try await h.call(.get, LatchRoutes.vault(vault.id), key: agent.apiKey).status == .notFound)

            let p = try await h.call(.post, LatchRoutes.projects, key: admin.apiKey, body: CreateProjectRequest(name: "billing")).decode(ProjectInfo.self)
            let pid = p.id
            let pv = try await h.call(.post, LatchRoutes.vaults, key: admin.apiKey, body: CreateVaultRequest(
                id: UUID().uuidString.lowercased(), projectId: pid, summaryCheckpoint: "{}",
                wrappedKey: WrappedKeyInput(recipientKeyId: "", dekVersion: 1, wrappedKey: "", statement: "{}")))
            #expect(pv.status == .badRequest)
            let projects = try await h.call(.get, LatchRoutes.projects, key: admin.apiKey).decode(ProjectListResponse.self)
            #expect(projects.projects.map(\.name) == ["billing"])
            #expect(try await h.call(.post, LatchRoutes.setPermissions("PROJECT", pid), key: admin.apiKey,
                                     body: SetPermissionsRequest(permissions: [PermissionEntry(granteeType: "AGENT", granteeId: agent.id, level: "READ")])).status == .ok)
            let seen = try await h.call(.get, LatchRoutes.projects + "/\(pid)", key: agent.apiKey)
            #expect(seen.status == .ok)
            let seenProject = try seen.decode(ProjectResponse.self)
            #expect(seenProject.project.level == "READ")
        }
    }

    @Test("feedback from agent keys only; audit events filtered, admins only")
    func feedbackAndAudit() async throws {
        try await withHarness { h in
            let admin = try await h.bootstrap()
            let agent = try await h.createAgent(admin, name: "a", key: Keys.pool[2])
            let fb = FeedbackRequest(surface: "CLI", summary: "latch get is slow", details: "2s", desiredOutcome: "faster")
            #expect(try await h.call(.post, LatchRoutes.feedback, key: agent.apiKey, body: fb).status == .created)
            let byUser = try await h.call(.post, LatchRoutes.feedback, key: admin.apiKey, body: fb)
            #expect(byUser.status == .forbidden)
            let badSurface = try await h.call(.post, LatchRoutes.feedback, key: agent.apiKey, body: FeedbackRequest(surface: "FAX", summary: "x"))
            #expect(badSurface.status == .badRequest)
            let ev = try await h.call(.get, LatchRoutes.auditEvents + "?action=feedback.submit", key: admin.apiKey).decode(AuditEventsResponse.self)
            #expect(ev.events.count == 3 && ev.events.filter { $0.outcome == "success" }.count == 1)
            let limited = try await h.call(.get, LatchRoutes.auditEvents + "?limit=2", key: admin.apiKey).decode(AuditEventsResponse.self)
            #expect(limited.events.count == 2)
            #expect(try await h.call(.get, LatchRoutes.auditEvents, key: agent.apiKey).status == .forbidden)
            #expect(try await h.call(.get, LatchRoutes.auditEvents + "?limit=x", key: admin.apiKey).status == .badRequest)
        }
    }
}
