import Foundation
import LatchCrypto
import LatchWire

/// Operator operations used by the `latch` command: bootstrap, vaults, secrets, agents,
/// sharing. Each signs what it changes with this client's key.
extension Latch {
    public struct BootstrapResult: Sendable {
        public var profile: Profile
        public var response: BootstrapResponse
    }

    /// Generate the admin key pair locally, bootstrap the server with `token`, and save the
    /// result as profile `profile` (0700/0600). The private key never leaves this host.
    public static func bootstrap(server: String, token: String, profile name: String, home: String,
                                 organisation: String, tenant: String, user: String, overwrite: Bool = false,
                                 transport: (any HTTPTransport)? = nil) async throws -> BootstrapResult {
        try ProfileStore.validate(name: name)
        let store = ProfileStore(home: home)
        if store.exists(name) && !overwrite {
            throw LatchError(.conflict, "profile \"\(name)\" already exists", hint: "pass --profile NAME for another one")
        }
        let url = try ConfigurationResolver.parseBaseURL(server)
        let key = try PrincipalPrivateKey.generate(bits: 3072)
        let http = LatchHTTPClient(baseURL: url, apiKey: "", transport: transport ?? DefaultHTTPTransport())
        let response = try await http.postJSON(BootstrapResponse.self, LatchRoutes.bootstrap, body: BootstrapRequest(
            token: token, publicKey: key.publicKey.pem, organisationName: organisation, tenantName: tenant, userName: user))
        guard response.keyId == key.publicKey.keyId else {
            throw LatchError(.verification, "the server registered key \(response.keyId), not ours (\(key.publicKey.keyId))")
        }
        let secret = response.apiKey.split(separator: ".", maxSplits: 1).dropFirst().first.map(String.init) ?? ""
        let profile = Profile(name: name, baseUrl: url.absoluteString, accessKey: response.accessKey, keyId: response.keyId,
                              principalType: "USER", principalId: response.userId, tenantId: response.tenantId,
                              orgId: response.organisationId)
        try store.save(profile, apiSecret: secret, privateKeyPEM: key.pkcs8PEM, overwrite: overwrite)
        return BootstrapResult(profile: profile, response: response)
    }

    /// The vaults the server lists, each vault this client has verified under the name its signed
    /// summary checkpoint gives it (the listing's own name is the server's word, and a hostile
    /// server could move a name onto another vault to steer a write there).
    public func listVaults() async throws -> [VaultInfo] {
        try await http.getJSON(VaultListResponse.self, LatchRoutes.vaults).vaults.filter { !$0.archived }.map { v in
            var v = v
            if let signed = signedName(ofVault: v.id) { v.name = signed }
            return v
        }
    }

    /// Resolve a vault by id or by exact name (as `listVaults` names it).
    public func vaultInfo(_ nameOrId: String) async throws -> VaultInfo {
        let all = try await listVaults()
        if let v = all.first(where: { $0.id == nameOrId }) { return v }
        let named = all.filter { $0.name == nameOrId }
        if named.count == 1 { return named[0] }
        if named.isEmpty { throw LatchError(.notFound, "no vault named \(nameOrId)", hint: "list vaults with `latch vault list`") }
        throw LatchError(.usage, "\(named.count) vaults are named \(nameOrId)", hint: "use the vault id")
    }

    /// The verified contents of one vault (loads and verifies it if needed).
    public func verifiedVault(_ nameOrId: String) async throws -> VerifiedVault {
        let info = try await vaultInfo(nameOrId)
        if let v = verifiedVaults.first(where: { $0.id == info.id }), v.summaryVersion == info.summaryVersion { return v }
        try await refresh()
        if let v = verifiedVaults.first(where: { $0.id == info.id }) {
            // Named by the listing before this client had verified it: the signed name must agree.
            guard nameOrId == v.id || nameOrId == v.name else {
                throw LatchError(.verification, "the server lists vault \(v.id) as \(nameOrId), but its signed summary checkpoint names it \(v.name)",
                                 hint: "nothing was changed; use the vault id, and treat the server's listing as suspect")
            }
            return v
        }
        throw LatchError(.forbidden, "vault \(info.name) cannot be opened: \(unavailableVaults[info.id] ?? "no wrapped key for this key")",
                         hint: "ask a member holding the vault key to share it (latch share)")
    }

    /// Create a vault: client-chosen id, a fresh DEK, the version-1 summary and our own wrap.
    public func createVault(name: String, projectId: String? = nil, dataClassification: String = "CONFIDENTIAL") async throws -> VaultInfo {
        let id = UUID().uuidString.lowercased()
        let made = try VaultWriter.newVault(id: id, name: name, dataClassification: dataClassification, creator: privateKey,
                                            creatorId: identity.principal.id)
        let request = CreateVaultRequest(
            id: id, projectId: projectId, summaryCheckpoint: try Self.text(made.summary),
            wrappedKey: WrappedKeyInput(principalId: identity.principal.id, recipientKeyId: keyId,
                                        dekVersion: made.creatorWrap.dekVersion, wrappedKey: made.creatorWrap.wrappedKey.base64EncodedString(),
                                        statement: try Self.text(made.creatorWrap.statement)),
            writersStatement: try Self.text(made.writers))
        let response = try await http.postJSON(VaultResponse.self, LatchRoutes.vaults, body: request)
        try await refresh()
        return response.vault
    }

    /// Set one field of an item: creates the item when it does not exist, else writes the
    /// item's next version with every other field unchanged.
    public func setSecret(vault: String, item: String, field: String? = nil, itemType: String = "API_KEY",
                          fieldType: String = "SECRET", value: String) async throws -> (itemId: String, version: Int) {
        let v = try await verifiedVault(vault)
        try requireWriter(v)
        let fieldName = field ?? "value"
        let existing = v.items.first { $0.name == item }
        var inputs: [VaultWriter.FieldInput] = []
        if let existing {
            var replaced = false
            for f in existing.fields {
                if f.name == fieldName {
                    inputs.append(.init(id: f.id, name: f.name, type: f.type, order: f.order, isEnvironmentVariable: f.isEnvironmentVariable, value: value))
                    replaced = true
                } else {
                    inputs.append(.init(id: f.id, name: f.name, type: f.type, order: f.order, isEnvironmentVariable: f.isEnvironmentVariable, value: f.value))
                }
            }
            if !replaced {
                let order = (existing.fields.map(\.order).max() ?? -1) + 1
                inputs.append(.init(id: UUID().uuidString.lowercased(), name: fieldName, type: fieldType, order: order,
                                    isEnvironmentVariable: existing.fields.contains { $0.isEnvironmentVariable }, value: value))
            }
        } else {
            inputs = [.init(id: UUID().uuidString.lowercased(), name: fieldName, type: fieldType, order: 0, isEnvironmentVariable: false, value: value)]
        }
        let itemId = existing?.id ?? UUID().uuidString.lowercased()
        let write = try VaultWriter.writeItem(summary: v.summary, previousDetail: existing?.detail, itemId: itemId, name: item,
                                              type: existing?.type ?? itemType, fields: inputs, dek: v.dek, signer: privateKey)
        let body = CreateItemRequest(detailCheckpoint: try Self.text(write.detail), summaryCheckpoint: try Self.text(write.summary),
                                     fields: inputs.map { FieldValueInput(id: $0.id, value: write.envelopes[$0.id] ?? "") })
        if existing != nil {
            _ = try await http.postJSON(ItemDetailResponse.self, LatchRoutes.updateItem(itemId), body: body, method: "PATCH")
        } else {
            _ = try await http.postJSON(ItemDetailResponse.self, LatchRoutes.vaultItems(v.id), body: body)
        }
        try await refresh()
        return (itemId, write.detail.checkpoint.version)
    }

    public func listAgents() async throws -> [PrincipalInfo] {
        try await http.getJSON(PrincipalListResponse.self, LatchRoutes.agents).principals
    }

    public func listUsers() async throws -> [PrincipalInfo] {
        try await http.getJSON(PrincipalListResponse.self, LatchRoutes.users).principals
    }

    /// Issue an API key for `principal` (nil: this profile's own principal). The answer holds
    /// the key itself (`apiKey`), shown once: store it, never print it.
    public func issueAPIKey(for principal: PrincipalInfo? = nil, scope: String? = nil, permissions: [String]? = nil,
                            expiresAt: Date? = nil) async throws -> APIKeyInfo {
        try await http.postJSON(APIKeyInfo.self, LatchRoutes.apiKeys,
                                body: CreateAPIKeyRequest(principalId: principal?.id, scope: scope, permissions: permissions, expiresAt: expiresAt))
    }

    /// The API keys of `principal` (nil: this profile's own; `wholeTenant`: every key of the
    /// tenant, for a TENANT_ADMIN), newest first; never their secrets.
    public func listAPIKeys(of principal: PrincipalInfo? = nil, wholeTenant: Bool = false) async throws -> [APIKeyInfo] {
        let query = wholeTenant ? "?all=true" : principal.map { "?principalId=\($0.id)" } ?? ""
        return try await http.getJSON(APIKeyListResponse.self, LatchRoutes.apiKeys + query).apiKeys
    }

    /// Revoke an API key by its access key (the part before the dot). Takes effect at once.
    public func revokeAPIKey(accessKey: String) async throws -> APIKeyInfo {
        try http.decodeWire(APIKeyInfo.self, try await http.send(method: "DELETE", path: LatchRoutes.apiKey(accessKey)), path: LatchRoutes.apiKeys)
    }

    /// Create an agent: generate its RSA-3072 key pair here, create it with its public key,
    /// grant it READ on each vault and wrap each vault's DEK to it. Returns the one-time
    /// runtime config (holds the private key and API secret: write it 0600, show it once).
    public func createAgent(name: String, vaults: [String], permissions: [String]? = nil, role: String? = nil) async throws -> RuntimeConfig {
        try await makeAgent(name: name, vaults: vaults, permissions: permissions, role: role).config
    }

    /// `createAgent`, also returning the agent as created and its public key.
    func makeAgent(name: String, vaults: [String], permissions: [String]?, role: String?) async throws
        -> (config: RuntimeConfig, principal: PrincipalInfo, key: PrincipalPublicKey) {
        let key = try PrincipalPrivateKey.generate(bits: 3072)
        let created = try await http.postJSON(CreatePrincipalResponse.self, LatchRoutes.agents,
                                              body: CreateAgentRequest(name: name, permissions: permissions, role: role, publicKey: key.publicKey.pem))
        for v in vaults {
            try await share(vault: v, principal: created.principal, level: "READ", recipientKey: key.publicKey)
        }
        let secret = created.apiKey.split(separator: ".", maxSplits: 1).dropFirst().first.map(String.init) ?? ""
        let config = RuntimeConfig(agentId: created.principal.id, accessKey: created.accessKey, accessSecret: secret,
                                   privateKey: key.pkcs8PEM, baseUrl: configuration.baseURL.absoluteString,
                                   tenantId: created.principal.tenantId, keyId: key.publicKey.keyId)
        return (config, created.principal, key.publicKey)
    }

    /// Find an agent or user by name or id.
    public func principal(named name: String, type: String) async throws -> PrincipalInfo {
        let all = type == "USER" ? try await listUsers() : try await listAgents()
        if let p = all.first(where: { $0.id == name }) { return p }
        let named = all.filter { $0.name == name }
        if named.count == 1 { return named[0] }
        if named.isEmpty { throw LatchError(.notFound, "no \(type.lowercased()) named \(name)") }
        throw LatchError(.usage, "\(named.count) \(type.lowercased())s are named \(name)", hint: "use the id")
    }

    /// Grant `level` on a vault and wrap its DEK to the principal's key (taken from the vault's
    /// signer directory and checked against the principal's active key id, or given).
    public func share(vault: String, principal: PrincipalInfo, level: String = "READ", recipientKey: PrincipalPublicKey? = nil) async throws {
        let v = try await verifiedVault(vault)
        let current = try await http.getJSON(PermissionsResponse.self, LatchRoutes.permissions("VAULT", v.id))
        var entries = current.permissions.filter { !($0.granteeId == principal.id && $0.granteeType == principal.type) }
        entries.append(PermissionEntry(granteeType: principal.type, granteeId: principal.id, level: level.uppercased()))
        _ = try await http.postJSON(PermissionsResponse.self, LatchRoutes.setPermissions("VAULT", v.id), body: SetPermissionsRequest(permissions: entries))
        // Writer set: a promotion is one signed statement; a demotion also replaces every
        // checkpoint the writer signed (a DEK rotation), else readers would refuse them.
        let newLevel = VaultWritersStatement.Level(rawValue: level.uppercased())
        if newLevel == nil, v.writers.level(of: principal.id) != nil {
            _ = try await rotateVaultKey(v, demoting: principal.id)   // wraps the new DEK to every member, this one too
            return
        } else {
            try await signWriter(principal.id, level: newLevel, in: v)
        }
        var key = recipientKey
        if key == nil {
            guard let active = principal.activeKeyId else { return }   // pending until the principal registers a key
            let dir = try await http.getJSON(PublicKeysResponse.self, LatchRoutes.vaultPublicKeys(v.id))
            guard let entry = dir.publicKeys.first(where: { $0.principalId == principal.id }),
                  let pk = try? PrincipalPublicKey(pem: entry.publicKey), pk.keyId == active, entry.keyId == active else {
                throw LatchError(.verification, "the server's public key for \(principal.name) does not match its active key id \(active.prefix(16))…")
            }
            try await verifyLogged(entry)   // wrap the vault key only to a key the log vouches for
            key = pk
        }
        guard let key else { return }
        let wrap = try VaultWriter.wrap(v.dek, vaultId: v.id, to: key, signer: privateKey)
        _ = try await http.postJSON(WrappedKeysResponse.self, LatchRoutes.wrappedKeys(v.id), body: ShareRequest(wrappedKeys: [
            WrappedKeyInput(principalId: principal.id, recipientKeyId: key.keyId, dekVersion: wrap.dekVersion,
                            wrappedKey: wrap.wrappedKey.base64EncodedString(), statement: try Self.text(wrap.statement)),
        ]))
    }

    /// Sign the next writer set version when `principalId`'s writer level there is not
    /// `level` (nil: not a writer). Only an ADMIN of the current signed set can.
    func signWriter(_ principalId: String, level: VaultWritersStatement.Level?, in v: VerifiedVault) async throws {
        try await signWriters(in: v) { $0.level(of: principalId) == level ? nil : $0.setting(principalId, to: level) }
    }

    /// Sign and post the writer set `change` makes of the newest verified one (nil: nothing to
    /// change). Only an ADMIN of the current signed set can; a set that moved meanwhile is
    /// re-read and the change applied again, once.
    func signWriters(in vault: VerifiedVault, _ change: (VaultWritersStatement) -> VaultWritersStatement?) async throws {
        var v = vault
        for attempt in 1...2 {
            guard let next = change(v.writers) else { return }
            guard v.writers.level(of: identity.principal.id) == .admin else {
                throw LatchError(.forbidden, "only an ADMIN in vault \(v.name)'s signed writer set can change who may write to it",
                                 hint: "ask one of its ADMINs: \(v.writers.writers.filter { $0.accessLevel == .admin }.map(\.principalId).joined(separator: ", "))")
            }
            let envelope = try SignedEnvelope.sign(next, with: privateKey)
            do {
                _ = try await http.postJSON(VaultResponse.self, LatchRoutes.vaultWriters(v.id), body: UpdateWritersRequest(statement: try Self.text(envelope)))
                return
            } catch let e as LatchError where e.kind == .conflict && attempt == 1 {
                try await refresh()
                guard let fresh = verifiedVaults.first(where: { $0.id == v.id }) else { throw e }
                v = fresh
            }
        }
    }

    /// Refuse to sign a write the vault's readers would refuse: this principal must be in the
    /// vault's signed writer set, whatever the server's grants say.
    func requireWriter(_ v: VerifiedVault) throws {
        guard v.writers.level(of: identity.principal.id) != nil else {
            throw LatchError(.forbidden, "you are not a writer in vault \(v.name)'s signed writer set (v\(v.writers.version)), so every client would refuse what you sign",
                             hint: "ask an ADMIN of the vault to run `latch share \(v.name) --\(identity.principal.type.lowercased()) \(identity.principal.name) --level WRITE`")
        }
    }

    /// Pending grants this caller can see (members without a wrap of the current DEK).
    public func pendingGrants() async throws -> [PendingGrantInfo] {
        try await http.getJSON(PendingGrantsResponse.self, LatchRoutes.pendingGrants).pendingGrants
    }

    /// Fulfil pending grants: for each one whose principal now has a key in the vault's signer
    /// directory and whose vault this client can open, wrap the DEK to that key (only the vaults
    /// in `vaultIds` when given). Returns the fulfilled grants.
    public func fulfilPendingGrants(vaultIds: Set<String>? = nil) async throws -> [PendingGrantInfo] {
        var done: [PendingGrantInfo] = []
        for g in try await pendingGrants() where vaultIds?.contains(g.vaultId) ?? true {
            guard let v = verifiedVaults.first(where: { $0.id == g.vaultId }) else { continue }
            let dir = try await http.getJSON(PublicKeysResponse.self, LatchRoutes.vaultPublicKeys(v.id))
            guard let entry = dir.publicKeys.first(where: { $0.principalId == g.principalId }),
                  let key = try? PrincipalPublicKey(pem: entry.publicKey), key.keyId == entry.keyId else { continue }
            try await verifyLogged(entry)
            let wrap = try VaultWriter.wrap(v.dek, vaultId: v.id, to: key, signer: privateKey)
            _ = try await http.postJSON(WrappedKeysResponse.self, LatchRoutes.wrappedKeys(v.id), body: ShareRequest(wrappedKeys: [
                WrappedKeyInput(principalId: g.principalId, recipientKeyId: key.keyId, dekVersion: wrap.dekVersion,
                                wrappedKey: wrap.wrappedKey.base64EncodedString(), statement: try Self.text(wrap.statement)),
            ]))
            done.append(g)
        }
        return done
    }

    public func auditEvents(query: String = "") async throws -> [AuditEventInfo] {
        try await http.getJSON(AuditEventsResponse.self, LatchRoutes.auditEvents + query).events
    }

    /// Remove a principal's grant on a vault (the server drops its access at once).
    public func revoke(vault: String, principal: PrincipalInfo) async throws {
        let info = try await vaultInfo(vault)
        let current = try await http.getJSON(PermissionsResponse.self, LatchRoutes.permissions("VAULT", info.id))
        let entries = current.permissions.filter { !($0.granteeId == principal.id && $0.granteeType == principal.type) }
        guard entries.count != current.permissions.count else {
            throw LatchError(.notFound, "\(principal.name) has no direct grant on vault \(info.name)")
        }
        _ = try await http.postJSON(PermissionsResponse.self, LatchRoutes.setPermissions("VAULT", info.id), body: SetPermissionsRequest(permissions: entries))
    }

    static func text<S: SignedStatement>(_ envelope: SignedEnvelope<S>) throws -> String {
        String(decoding: try envelope.canonicalJSON(), as: UTF8.self)
    }
}
