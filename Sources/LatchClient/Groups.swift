import Foundation
import LatchCrypto
import LatchWire

/// Security groups: create them, add members, share vaults to them. A group grant is the
/// server's word on who may read; each member still needs the vault key wrapped to its own
/// logged key, which is done here for every member with a key (the others stay pending).
/// WRITE or ADMIN through a group is not signed into the vault's writer set.
extension Latch {
    /// What sharing a vault to a group did.
    public struct GroupShareResult: Codable, Sendable, Equatable {
        public var vaultId: String
        public var groupId: String
        public var level: String
        /// Members the vault key was wrapped to now.
        public var wrapped: [String]
        /// Members of the vault still without a wrap (no key yet, or a key the log does not show).
        public var pending: [String]
    }

    public func createGroup(name: String) async throws -> GroupInfo {
        try await http.postJSON(GroupInfo.self, LatchRoutes.groups, body: CreateGroupRequest(name: name))
    }

    /// Add principals to a group (its member list is read and replaced with the union).
    @discardableResult
    public func addMembers(_ principalIds: [String], to group: GroupInfo) async throws -> GroupMembersResponse {
        let current = try await listGroups().first { $0.id == group.id }?.members ?? group.members
        let members = current + principalIds.filter { !current.contains($0) }
        return try await http.postJSON(GroupMembersResponse.self, LatchRoutes.groupMembers(group.id),
                                       body: SetGroupMembersRequest(members: members), method: "PUT")
    }

    /// Grant `level` on a vault to a group (the vault's other grants are kept; the group's own
    /// grant is replaced), then wrap the vault key to every member whose key is in the vault's
    /// signer directory and in the log. The writer set is not changed.
    public func share(vault: String, group: GroupInfo, level: String = "READ") async throws -> GroupShareResult {
        let v = try await verifiedVault(vault)
        let current = try await http.getJSON(PermissionsResponse.self, LatchRoutes.permissions("VAULT", v.id))
        var entries = current.permissions.filter { !($0.granteeId == group.id && $0.granteeType == "GROUP") }
        entries.append(PermissionEntry(granteeType: "GROUP", granteeId: group.id, level: level.uppercased()))
        _ = try await http.postJSON(PermissionsResponse.self, LatchRoutes.setPermissions("VAULT", v.id),
                                    body: SetPermissionsRequest(permissions: entries))
        let done = try await fulfilPendingGrants(vaultIds: [v.id])
        let left = try await pendingGrants().filter { $0.vaultId == v.id }
        return GroupShareResult(vaultId: v.id, groupId: group.id, level: level.uppercased(),
                                wrapped: done.map(\.principalId).sorted(), pending: left.map(\.principalId).sorted())
    }

    /// Create an agent (as `createAgent`), add it to each group, and wrap to it, with the key
    /// generated here, the key of every vault it can now read through those groups that this
    /// client can open. Vaults this client cannot open stay pending for one who can.
    public func createAgent(name: String, vaults: [String], groups: [GroupInfo], permissions: [String]? = nil,
                            role: String? = nil) async throws -> (config: RuntimeConfig, wrapped: [String], pending: [String]) {
        let made = try await makeAgent(name: name, vaults: vaults, permissions: permissions, role: role)
        let config = made.config
        guard !groups.isEmpty else { return (config, [], []) }
        for g in groups { try await addMembers([made.principal.id], to: g) }
        var wrapped: [String] = [], pending: [String] = []
        for g in try await pendingGrants() where g.principalId == made.principal.id {
            guard let v = verifiedVaults.first(where: { $0.id == g.vaultId }) else { pending.append(g.vaultId); continue }
            let wrap = try VaultWriter.wrap(v.dek, vaultId: v.id, to: made.key, signer: privateKey)
            _ = try await http.postJSON(WrappedKeysResponse.self, LatchRoutes.wrappedKeys(v.id), body: ShareRequest(wrappedKeys: [
                WrappedKeyInput(principalId: made.principal.id, recipientKeyId: made.key.keyId, dekVersion: wrap.dekVersion,
                                wrappedKey: wrap.wrappedKey.base64EncodedString(), statement: try Self.text(wrap.statement)),
            ]))
            wrapped.append(v.id)
        }
        return (config, wrapped.sorted(), pending.sorted())
    }
}
