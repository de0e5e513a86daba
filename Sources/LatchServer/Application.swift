import Foundation
import Hummingbird
import LatchDomain
import LatchLog
import LatchWire
import Logging

/// Builds the server application. Used by `latch serve` and by the tests alike; it never names
/// a concrete store.
public func buildApplication(
    configuration: ServerConfiguration, store: any LatchStore, clock: any LatchDomain.Clock = SystemClock(),
    random: any RandomSource = SystemRandomSource(), logger: Logger? = nil, logSigner: NoteSigner? = nil,
    onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) -> some ApplicationProtocol {
    var log = logger ?? Logger(label: "latch.serve", factory: ServerLogHandler.init)
    if logger == nil { log.logLevel = .info }
    let service = LatchService(store: store, clock: clock, random: random)
    let router = buildRouter(configuration: configuration, service: service, logger: log, logSigner: logSigner)
    return Application(
        router: router,
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "latch"),
        onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? configuration.port) },
        logger: log)
}

/// The router alone (what router tests drive).
public func buildRouter(configuration: ServerConfiguration, service: LatchService, logger: Logger,
                        logSigner: NoteSigner? = nil) -> PathRouter<LatchRequestContext> {
    let router = PathRouter(context: LatchRequestContext.self)
    addRoutes(to: router, configuration: configuration, service: service, logger: logger, logSigner: logSigner)
    return router
}

/// Registers every route, with its middleware, on `router`: the server's `PathRouter`, or any
/// other `RouterMethods` (the router tests record the routes this way and hold `PathRouter`'s
/// matching to Hummingbird's `Router` over them).
public func addRoutes(to router: some RouterMethods<LatchRequestContext>, configuration: ServerConfiguration,
                      service: LatchService, logger: Logger, logSigner: NoteSigner? = nil) {
    _ = router.add(middleware: ErrorMiddleware(logger: logger))
    let limit = configuration.maxBodySize

    router.get("healthz") { _, _ in try jsonResponse(HealthResponse(status: "ok")) }

    let keyLimiter = RateLimiter(perMinute: configuration.rateLimitPerMinute, burst: configuration.rateLimitBurst)
    let failLimiter = RateLimiter(perMinute: configuration.failedAuthPerMinute, burst: configuration.failedAuthPerMinute)

    router.post("api/v1/bootstrap") { request, context in
        let source = context.sourceAddress
        if let retry = failLimiter.check(source, now: service.clock.now()) {
            throw AuthMiddleware.limited(retry, "too many failed attempts from this address")
        }
        let req = try await decodeBody(BootstrapRequest.self, request, limit: limit)
        let r: LatchService.BootstrapResult
        do {
            r = try await service.bootstrap(token: req.token, publicKeyPEM: req.publicKey, organisationName: req.organisationName,
                                            tenantName: req.tenantName, userName: req.userName, source: source)
        } catch let e as DomainError where e.code == WireErrorCode.bootstrapInvalid {
            _ = failLimiter.take(source, now: service.clock.now())
            throw e
        }
        return try jsonResponse(BootstrapResponse(organisationId: r.organisation.id, tenantId: r.tenant.id, userId: r.user.id,
                                                  keyId: r.key.keyId, apiKey: r.apiKey.apiKey, accessKey: r.apiKey.record.accessKey),
                                status: .created)
    }

    let m = router.group("api/v1/machine").add(middleware: AuthMiddleware(service: service, keyLimiter: keyLimiter, failLimiter: failLimiter))
    MachineRoutes(service: service, limit: limit, logSigner: logSigner).add(to: m)
}

struct MachineRoutes: Sendable {
    let service: LatchService
    let limit: Int
    let logSigner: NoteSigner?

    /// A required non-negative integer query parameter.
    func count(_ value: String?, _ name: String) throws -> Int64 {
        guard let value, let n = Int64(value), n >= 0 else {
            throw APIError(status: .badRequest, code: WireErrorCode.invalidRequest, message: "\(name) must be a non-negative integer")
        }
        return n
    }

    func add(to m: RouterGroup<LatchRequestContext>) {
        m.get("me") { _, c in
            try jsonResponse(meResponse(try await service.me(try c.caller())))
        }
        m.get("transparency/checkpoint") { _, c in
            let head = try await service.logTreeHead(try c.caller(), signer: logSigner)
            return try jsonResponse(LogCheckpointResponse(treeSize: head.size, rootHash: head.root.base64, checkpoint: head.signedNote,
                                                          logKey: head.verifierKey))
        }
        m.get("transparency/proof/inclusion") { r, c in
            let q = r.uri.queryParameters
            let proof = try await service.logInclusionProof(try c.caller(), leafIndex: try count(q.get("leafIndex"), "leafIndex"),
                                                            treeSize: try count(q.get("treeSize"), "treeSize"))
            return try jsonResponse(LogProofResponse(proof: proof.map(\.base64)))
        }
        m.post("transparency/proof/inclusion") { r, c in
            let req = try await decodeBody(LogInclusionBatchRequest.self, r, limit: limit)
            let proofs = try await service.logInclusionProofs(try c.caller(), leafIndexes: req.leafIndexes, treeSize: req.treeSize)
            return try jsonResponse(LogInclusionBatchResponse(treeSize: req.treeSize,
                                                              proofs: zip(req.leafIndexes, proofs).map { ($0, $1.map(\.base64)) }))
        }
        m.get("transparency/proof/consistency") { r, c in
            let q = r.uri.queryParameters
            let proof = try await service.logConsistencyProof(try c.caller(), from: try count(q.get("from"), "from"),
                                                              to: try count(q.get("to"), "to"))
            return try jsonResponse(LogProofResponse(proof: proof.map(\.base64)))
        }
        m.get("tenant-context") { _, c in
            let me = try await service.me(try c.caller())
            return try jsonResponse(TenantContextResponse(
                organisation: NamedRef(id: me.tenant.organisationId, name: me.organisation?.name ?? ""),
                tenant: NamedRef(id: me.tenant.id, name: me.tenant.name), principal: info(me.principal, me.activeKey)))
        }
        m.post("vault/public-key") { r, c in
            let req = try await decodeBody(RegisterPublicKeyRequest.self, r, limit: limit)
            let rotation = KeyRotationInput(publicKey: req.publicKey, previousKeyId: req.previousEncryptionKeyId,
                                            rotationSignature: req.rotationSignature, rewraps: req.rewrappedVaultKeys?.map(value))
            if rotation.isRotation {
                let r = try await service.rotatePublicKey(try c.caller(), rotation)
                return try jsonResponse(KeyRotationResponse(keyId: r.key.keyId, publicKey: r.key.pem, principalId: r.key.principalId,
                                                            status: r.key.status.rawValue, createdAt: r.key.createdAt, logIndex: r.key.logIndex,
                                                            previousKeyId: r.previous.keyId, rewrappedVaultIds: r.rewrappedVaultIds),
                                        status: .created)
            }
            let (rec, created) = try await service.registerPublicKey(try c.caller(), pem: req.publicKey)
            return try jsonResponse(info(rec), status: created ? .created : .ok)
        }

        for base in ["vault", "vaults"] {
            m.get("\(base)") { r, c in
                let project = r.uri.queryParameters.get("projectId")
                let vs = try await service.listVaults(try c.caller(), projectId: project)
                return try jsonResponse(VaultListResponse(vaults: vs.map(info)))
            }
            m.get("\(base)/sync") { r, c in try await syncRoute(r, c) }
            m.get("\(base)/:id") { _, c in
                let v = try await service.getVault(try c.caller(), id: try c.param("id"))
                return try jsonResponse(VaultResponse(vault: info(v), summaryCheckpoint: v.summaryCheckpoint))
            }
            m.get("\(base)/:id/items") { _, c in
                let (v, items) = try await service.listItems(try c.caller(), vaultId: try c.param("id"))
                return try jsonResponse(VaultItemsResponse(vaultId: v.id, items: items.map(info), summaryCheckpoint: v.summaryCheckpoint,
                                                          summaryLogIndex: v.summaryLogIndex))
            }
            m.get("\(base)/:id/items/:itemId") { _, c in
                let (i, fs, memo) = try await service.getItem(try c.caller(), vaultId: try c.param("id"), itemId: try c.param("itemId"))
                return jsonResponse(body: try memo.value { ByteBuffer(data: try wireEncoder.encode(detail(i, fs))) })
            }
            m.get("\(base)/:id/fields/:fieldId") { _, c in
                let (i, f, memo) = try await service.getField(try c.caller(), vaultId: try c.param("id"), fieldId: try c.param("fieldId"))
                return jsonResponse(body: memo.value {
                    ByteBuffer(data: FieldResponse(vaultId: i.vaultId, itemId: i.id, itemName: i.name, field: info(f),
                                                   detailCheckpoint: i.detailCheckpoint).jsonData())
                })
            }
            m.get("\(base)/:id/environment-fields") { _, c in
                let (v, items) = try await service.environmentFields(try c.caller(), vaultId: try c.param("id"))
                return try jsonResponse(EnvironmentFieldsResponse(vaultId: v.id, summaryCheckpoint: v.summaryCheckpoint,
                                                                  items: items.map { detail($0.0, $0.1) }))
            }
            m.get("\(base)/:id/wrapped-key") { _, c in
                let (v, ws) = try await service.wrappedKeys(try c.caller(), vaultId: try c.param("id"))
                return try jsonResponse(WrappedKeysResponse(vaultId: v.id, currentDekVersion: v.currentDekVersion, wrappedKeys: ws.map(info)))
            }
            m.get("\(base)/:id/public-keys") { _, c in
                let id = try c.param("id")
                return try jsonResponse(publicKeysResponse(id, try await service.memberKeys(try c.caller(), vaultId: id)))
            }
        }

        m.post("vault") { r, c in
            let req = try await decodeBody(CreateVaultRequest.self, r, limit: limit)
            let v = try await service.createVault(try c.caller(), id: req.id, projectId: req.projectId,
                                                  summaryCheckpoint: req.summaryCheckpoint, wrappedKey: value(req.wrappedKey),
                                                  writersStatement: req.writersStatement)
            return try jsonResponse(VaultResponse(vault: info(v), summaryCheckpoint: v.summaryCheckpoint), status: .created)
        }
        m.post("vault/:id/writers") { r, c in
            let req = try await decodeBody(UpdateWritersRequest.self, r, limit: limit)
            let v = try await service.updateWriters(try c.caller(), vaultId: try c.param("id"), statement: req.statement)
            return try jsonResponse(VaultResponse(vault: info(v), summaryCheckpoint: v.summaryCheckpoint))
        }
        m.patch("vault/:id/update") { r, c in
            let req = try await decodeBody(UpdateVaultRequest.self, r, limit: limit)
            let v = try await service.updateVault(try c.caller(), id: try c.param("id"), summaryCheckpoint: req.summaryCheckpoint)
            return try jsonResponse(VaultResponse(vault: info(v), summaryCheckpoint: v.summaryCheckpoint))
        }
        m.delete("vault/:id") { _, c in
            let v = try await service.archiveVault(try c.caller(), id: try c.param("id"))
            return try jsonResponse(VaultResponse(vault: info(v), summaryCheckpoint: v.summaryCheckpoint))
        }
        m.post("vault/:id/items") { r, c in
            let req = try await decodeBody(CreateItemRequest.self, r, limit: limit)
            let (i, fs) = try await service.createItem(try c.caller(), vaultId: try c.param("id"), detailCheckpoint: req.detailCheckpoint,
                                                       summaryCheckpoint: req.summaryCheckpoint, values: req.fields.map { ($0.id, $0.value) })
            return try jsonResponse(detail(i, fs), status: .created)
        }
        m.patch("vault-item/:id/update") { r, c in
            let req = try await decodeBody(UpdateItemRequest.self, r, limit: limit)
            let (i, fs) = try await service.updateItem(try c.caller(), itemId: try c.param("id"), detailCheckpoint: req.detailCheckpoint,
                                                       summaryCheckpoint: req.summaryCheckpoint, values: req.fields.map { ($0.id, $0.value) })
            return try jsonResponse(detail(i, fs))
        }
        m.delete("vault/:id/items/:itemId") { r, c in
            let req = try await decodeBody(ArchiveItemRequest.self, r, limit: limit)
            let i = try await service.archiveItem(try c.caller(), vaultId: try c.param("id"), itemId: try c.param("itemId"),
                                                  summaryCheckpoint: req.summaryCheckpoint)
            return try jsonResponse(info(i))
        }
        m.post("vault/:id/wrapped-keys") { r, c in
            let req = try await decodeBody(ShareRequest.self, r, limit: limit)
            let ws = try await service.share(try c.caller(), vaultId: try c.param("id"), wraps: req.wrappedKeys.map(value))
            let v = ws.first?.dekVersion ?? 0
            return try jsonResponse(WrappedKeysResponse(vaultId: try c.param("id"), currentDekVersion: v, wrappedKeys: ws.map(info)), status: .created)
        }

        m.post("vault/:id/dek-rotation") { r, c in
            let req = try await decodeBody(DekRotationRequest.self, r, limit: limit)
            let input = DekRotationInput(summaryCheckpoint: req.summaryCheckpoint,
                                         items: req.items.map { .init(itemId: $0.itemId, detailCheckpoint: $0.detailCheckpoint, fields: $0.fields.map { ($0.id, $0.value) }) },
                                         wraps: req.wrappedKeys.map(value), writersStatement: req.writersStatement)
            let out = try await service.rotateVaultKey(try c.caller(), vaultId: try c.param("id"), input)
            return try jsonResponse(DekRotationResponse(vault: info(out.vault), summaryCheckpoint: out.vault.summaryCheckpoint,
                                                        currentDekVersion: out.vault.currentDekVersion,
                                                        rewrappedPrincipalIds: out.wraps.map(\.principalId).sorted(),
                                                        pendingPrincipalIds: out.pendingGrants.map(\.principalId).sorted(),
                                                        droppedPrincipalIds: out.droppedPrincipalIds))
        }

        // Principals
        m.delete("agents/:id") { _, c in
            let out = try await service.removeAgent(try c.caller(), agentId: try c.param("id"))
            return try jsonResponse(AgentRemovalResponse(agentId: out.agent.id, vaultIds: out.vaultIds))
        }
        m.get("organisation") { _, c in
            let (org, tenants) = try await service.organisation(try c.caller())
            return try jsonResponse(OrganisationResponse(organisation: NamedRef(id: org.id, name: org.name),
                                                         tenants: tenants.map { TenantInfo(id: $0.id, name: $0.name, createdAt: $0.createdAt) }))
        }
        m.post("organisation/tenants") { r, c in
            let req = try await decodeBody(CreateTenantRequest.self, r, limit: limit)
            let t = try await service.createTenant(try c.caller(), name: req.name, adminName: req.adminName, adminPublicKeyPEM: req.adminPublicKey)
            return try jsonResponse(BootstrapResponse(organisationId: t.organisation.id, tenantId: t.tenant.id, userId: t.user.id, keyId: t.key.keyId,
                                                      apiKey: t.apiKey.apiKey, accessKey: t.apiKey.record.accessKey), status: .created)
        }
        m.post("api-keys") { r, c in
            let req = try await decodeBody(CreateAPIKeyRequest.self, r, limit: limit)
            let k = try await service.issueAPIKey(try c.caller(), principalId: req.principalId, scope: req.scope, permissions: req.permissions,
                                                  expiresAt: req.expiresAt)
            var out = info(k.record)
            out.apiKey = k.apiKey
            return try jsonResponse(out, status: .created)
        }
        m.get("api-keys") { r, c in
            let q = r.uri.queryParameters
            guard [nil, "true", "false"].contains(q.get("all")) else {
                throw APIError(status: .badRequest, code: WireErrorCode.invalidRequest, message: "all must be true or false")
            }
            let keys = try await service.listAPIKeys(try c.caller(), principalId: q.get("principalId"), wholeTenant: q.get("all") == "true")
            return try jsonResponse(APIKeyListResponse(apiKeys: keys.map(info)))
        }
        m.delete("api-keys/:accessKey") { _, c in
            try jsonResponse(info(try await service.revokeAPIKey(try c.caller(), accessKey: try c.param("accessKey"))))
        }
        m.post("agents") { r, c in
            let req = try await decodeBody(CreateAgentRequest.self, r, limit: limit)
            let (a, k, pk) = try await service.createAgent(try c.caller(), name: req.name, permissions: req.permissions, role: req.role,
                                                           publicKeyPEM: req.publicKey)
            return try jsonResponse(CreatePrincipalResponse(principal: info(a, pk), accessKey: k.record.accessKey, apiKey: k.apiKey,
                                                            permissions: k.record.permissions), status: .created)
        }
        m.get("agents") { _, c in
            let ps = try await service.listPrincipals(try c.caller(), type: .agent)
            return try jsonResponse(PrincipalListResponse(principals: ps.map { info($0.0, $0.1) }))
        }
        m.get("agents/:id") { _, c in
            let (p, k) = try await service.getPrincipal(try c.caller(), id: try c.param("id"))
            return try jsonResponse(info(p, k))
        }
        m.post("agents/:id/public-key") { r, c in
            let req = try await decodeBody(RegisterAgentKeyRequest.self, r, limit: limit)
            let (rec, created) = try await service.registerAgentKey(try c.caller(), agentId: try c.param("id"), pem: req.publicKey)
            return try jsonResponse(info(rec), status: created ? .created : .ok)
        }
        m.post("users") { r, c in
            let req = try await decodeBody(CreateUserRequest.self, r, limit: limit)
            let (u, k) = try await service.createUser(try c.caller(), name: req.name, role: req.role, permissions: req.permissions)
            return try jsonResponse(CreatePrincipalResponse(principal: info(u, nil), accessKey: k.record.accessKey, apiKey: k.apiKey,
                                                            permissions: k.record.permissions), status: .created)
        }
        m.get("users") { _, c in
            let ps = try await service.listPrincipals(try c.caller(), type: .user)
            return try jsonResponse(PrincipalListResponse(principals: ps.map { info($0.0, $0.1) }))
        }

        // Permissions
        m.post("permissions/:assetType/:id/set-permissions") { r, c in
            let req = try await decodeBody(SetPermissionsRequest.self, r, limit: limit)
            let type = try c.param("assetType"), id = try c.param("id")
            let (gs, ps) = try await service.setPermissions(try c.caller(), assetType: type, assetId: id,
                                                            entries: req.permissions.map { ($0.granteeType, $0.granteeId, $0.level) })
            return try jsonResponse(PermissionsResponse(assetType: type.uppercased(), assetId: id, permissions: gs.map(info),
                                                        pendingGrants: ps.map { info($0, nil) }))
        }
        m.get("permissions/pending") { _, c in
            let ps = try await service.pendingGrants(try c.caller())
            return try jsonResponse(PendingGrantsResponse(pendingGrants: ps.map { g, p, has in
                PendingGrantInfo(id: g.id, vaultId: g.vaultId, principalId: g.principalId, principalType: p.type.rawValue,
                                 level: g.level.rawValue, hasPublicKey: has, createdAt: g.createdAt)
            }))
        }
        m.get("permissions/:assetType/:id") { _, c in
            let type = try c.param("assetType"), id = try c.param("id")
            let (gs, ps) = try await service.permissions(try c.caller(), assetType: type, assetId: id)
            return try jsonResponse(PermissionsResponse(assetType: type.uppercased(), assetId: id, permissions: gs.map(info),
                                                        pendingGrants: ps.map { info($0, nil) }))
        }
        addP3(to: m)
    }

    @Sendable func syncRoute(_ r: Request, _ c: LatchRequestContext) async throws -> Response {
        let cursor = r.uri.queryParameters.get("cursor").flatMap { $0.isEmpty ? nil : $0 }
        let logFrom = try r.uri.queryParameters.get("logFrom").map { try count($0, "logFrom") }
        // `include=me,directories` (names this server does not know are ignored, so a newer
        // client can ask for more and fall back to separate requests for what is missing).
        let include = Set((r.uri.queryParameters.get("include") ?? "").split(separator: ","))
        var extras: LatchService.SyncExtras = []
        if include.contains("me") { extras.insert(.me) }
        if include.contains("directories") { extras.insert(.directories) }
        let s = try await service.sync(try c.caller(), cursor: cursor, logFrom: logFrom, logSigner: logSigner, extras: extras)
        let log = s.log.map { l in
            SyncLogProofs(head: LogCheckpointResponse(treeSize: l.head.size, rootHash: l.head.root.base64, checkpoint: l.head.signedNote,
                                                      logKey: l.head.verifierKey),
                          consistencyFrom: l.consistencyFrom, consistency: l.consistency.map(\.base64),
                          inclusion: LogInclusionBatchResponse(treeSize: l.head.size, proofs: l.inclusion.map { ($0.index, $0.proof.map(\.base64)) }))
        }
        return jsonResponse(data: SyncResponse(
            cursor: s.cursor, full: s.full, hasMore: s.hasMore,
            vaults: s.vaults.map { VaultResponse(vault: info($0), summaryCheckpoint: $0.summaryCheckpoint) },
            items: s.items.map { SyncItem(item: info($0), archived: $0.archived, detailCheckpoint: $0.detailCheckpoint) },
            fields: s.fields.map { SyncField(vaultId: $0.vaultId, field: info($0)) },
            deletedFieldIds: s.deletedFieldIds, wrappedKeys: s.wrappedKeys.map(info), removedVaultIds: s.removedVaultIds, log: log,
            directories: extras.contains(.directories) ? s.directories.sorted { $0.key < $1.key }.map { publicKeysResponse($0.key, $0.value) } : nil,
            me: s.me.map(meResponse)).jsonData())
    }

    func addP3(to m: RouterGroup<LatchRequestContext>) {
        m.post("search") { r, c in
            let req = try await decodeBody(SearchRequest.self, r, limit: limit)
            let hits = try await service.search(try c.caller(), query: req.query)
            return try jsonResponse(SearchResponse(results: hits.map {
                SearchResult(vaultId: $0.vault.id, vaultName: $0.vault.name, itemId: $0.item?.id, itemName: $0.item?.name,
                             itemType: $0.item?.type, fieldNames: $0.fieldNames)
            }))
        }
        m.post("groups") { r, c in
            let req = try await decodeBody(CreateGroupRequest.self, r, limit: limit)
            let g = try await service.createGroup(try c.caller(), name: req.name)
            return try jsonResponse(GroupInfo(id: g.id, name: g.name, members: []), status: .created)
        }
        m.get("groups") { _, c in
            let gs = try await service.listGroups(try c.caller())
            return try jsonResponse(GroupListResponse(groups: gs.map { GroupInfo(id: $0.0.id, name: $0.0.name, members: $0.1) }))
        }
        m.put("groups/:id/members") { r, c in
            let req = try await decodeBody(SetGroupMembersRequest.self, r, limit: limit)
            let (g, ms, ps) = try await service.setGroupMembers(try c.caller(), groupId: try c.param("id"), members: req.members)
            return try jsonResponse(GroupMembersResponse(group: GroupInfo(id: g.id, name: g.name, members: ms), pendingGrants: ps.map { info($0, nil) }))
        }
        m.post("projects") { r, c in
            let req = try await decodeBody(CreateProjectRequest.self, r, limit: limit)
            let p = try await service.createProject(try c.caller(), name: req.name, description: req.description)
            return try jsonResponse(ProjectInfo(id: p.id, name: p.name, description: p.description, level: "ADMIN", createdAt: p.createdAt), status: .created)
        }
        m.get("projects") { _, c in
            let ps = try await service.listProjects(try c.caller())
            return try jsonResponse(ProjectListResponse(projects: ps.map {
                ProjectInfo(id: $0.0.id, name: $0.0.name, description: $0.0.description, level: $0.1.rawValue, createdAt: $0.0.createdAt)
            }))
        }
        m.get("projects/:id") { _, c in
            let (p, l, vs) = try await service.getProject(try c.caller(), id: try c.param("id"))
            return try jsonResponse(ProjectResponse(project: ProjectInfo(id: p.id, name: p.name, description: p.description, level: l.rawValue,
                                                                         createdAt: p.createdAt), vaults: vs.map(info)))
        }
        m.post("feedback") { r, c in
            let req = try await decodeBody(FeedbackRequest.self, r, limit: limit)
            let f = try await service.submitFeedback(try c.caller(), surface: req.surface, summary: req.summary, details: req.details,
                                                     desiredOutcome: req.desiredOutcome)
            return try jsonResponse(FeedbackResponse(id: f.id, createdAt: f.createdAt), status: .created)
        }
        m.get("monitoring/audit-events") { r, c in
            let q = r.uri.queryParameters
            func opt(_ n: String) -> String? { q.get(n).flatMap { $0.isEmpty ? nil : $0 } }
            var f = AuditFilter(action: opt("action"), principalId: opt("principalId"), assetId: opt("assetId"), outcome: opt("outcome"))
            if let a = opt("after") {
                guard let n = Int64(a), n >= 0 else { throw APIError(status: .badRequest, code: WireErrorCode.invalidRequest, message: "after must be a sequence number") }
                f.afterSeq = n
            }
            if let l = opt("limit") {
                guard let n = Int(l), n > 0 else { throw APIError(status: .badRequest, code: WireErrorCode.invalidRequest, message: "limit must be a positive integer") }
                f.limit = n
            }
            if let s = opt("since") {
                guard let d = ISO8601DateFormatter().date(from: s) else {
                    throw APIError(status: .badRequest, code: WireErrorCode.invalidRequest, message: "since must be an ISO 8601 time like 2026-01-02T03:04:05Z")
                }
                f.since = d
            }
            let es = try await service.auditEvents(try c.caller(), filter: f)
            return try jsonResponse(AuditEventsResponse(events: es.map {
                AuditEventInfo(seq: $0.seq, time: $0.time, action: $0.action, outcome: $0.outcome, principalId: $0.principalId,
                               accessKey: $0.accessKey, assetType: $0.assetType, assetId: $0.assetId, source: $0.source,
                               detail: $0.detail, hash: $0.hash)
            }))
        }
    }
}

// MARK: - domain → wire

func meResponse(_ me: LatchService.Me) -> MeResponse {
    MeResponse(principal: info(me.principal, me.activeKey), accessKey: me.apiKey.accessKey, scope: me.apiKey.scope.rawValue,
               permissions: me.apiKey.permissions, publicKey: me.activeKey.map(info), expiresAt: me.apiKey.expiresAt)
}

func publicKeysResponse(_ vaultId: String, _ d: LatchService.VaultDirectory) -> PublicKeysResponse {
    PublicKeysResponse(vaultId: vaultId, publicKeys: d.members.map {
        MemberKey(principalId: $0.principal.id, principalType: $0.principal.type.rawValue, name: $0.principal.name,
                  level: $0.level.rawValue, keyId: $0.key.keyId, publicKey: $0.key.pem, logIndex: $0.key.logIndex,
                  rotations: $0.rotations.isEmpty ? nil : $0.rotations.map { KeyRotationLink(previousPublicKey: $0.previous.pem, statement: $0.statement) })
    }, writers: d.writers.isEmpty ? nil : d.writers.map {
        WritersLinkInfo(statement: $0.link.statement, signerId: $0.link.signerId, signerPublicKey: $0.signerKey.pem,
                        signerKeyLogIndex: $0.signerKey.logIndex)
    }, writersLogIndex: d.writersLogIndex)
}

func info(_ p: Principal, _ k: PublicKeyRecord?) -> PrincipalInfo {
    PrincipalInfo(id: p.id, type: p.type.rawValue, name: p.name, role: p.role.rawValue, tenantId: p.tenantId,
                  activeKeyId: k?.keyId, createdAt: p.createdAt)
}
func info(_ k: APIKeyRecord) -> APIKeyInfo {
    APIKeyInfo(accessKey: k.accessKey, principalId: k.principalId, scope: k.scope.rawValue, permissions: k.permissions,
               createdAt: k.createdAt, revoked: k.revoked, expiresAt: k.expiresAt)
}
func info(_ k: PublicKeyRecord) -> PublicKeyInfo {
    PublicKeyInfo(keyId: k.keyId, publicKey: k.pem, principalId: k.principalId, status: k.status.rawValue, createdAt: k.createdAt,
                  logIndex: k.logIndex)
}
func info(_ v: Vault) -> VaultInfo {
    VaultInfo(id: v.id, name: v.name, dataClassification: v.dataClassification, projectId: v.projectId,
              currentDekVersion: v.currentDekVersion, summaryVersion: v.summaryVersion, archived: v.archived,
              createdAt: v.createdAt, updatedAt: v.updatedAt, summaryLogIndex: v.summaryLogIndex)
}
func info(_ i: Item) -> ItemInfo {
    ItemInfo(id: i.id, vaultId: i.vaultId, name: i.name, type: i.type, websites: i.websites, groupId: i.groupId,
             detailVersion: i.detailVersion, detailHash: i.detailHash, createdAt: i.createdAt, updatedAt: i.updatedAt,
             detailLogIndex: i.detailLogIndex)
}
func info(_ f: Field) -> FieldInfo {
    FieldInfo(id: f.id, itemId: f.itemId, name: f.name, type: f.type, order: f.order, isEnvironmentVariable: f.isEnvironmentVariable,
              value: f.envelope)
}
func info(_ w: WrappedKey) -> WrappedKeyInfo {
    WrappedKeyInfo(vaultId: w.vaultId, principalId: w.principalId, recipientKeyId: w.recipientKeyId, dekVersion: w.dekVersion,
                   wrappedKey: w.wrappedKey, statement: w.statement, signerPrincipalId: w.signerPrincipalId, createdAt: w.createdAt)
}
func info(_ g: PermissionGrant) -> PermissionEntry {
    PermissionEntry(granteeType: g.granteeType.rawValue, granteeId: g.granteeId, level: g.level.rawValue)
}
func info(_ g: PendingGrant, _ p: Principal?) -> PendingGrantInfo {
    PendingGrantInfo(id: g.id, vaultId: g.vaultId, principalId: g.principalId, principalType: p?.type.rawValue ?? "",
                     level: g.level.rawValue, hasPublicKey: false, createdAt: g.createdAt)
}
func detail(_ i: Item, _ fs: [Field]) -> ItemDetailResponse {
    ItemDetailResponse(id: i.id, vaultId: i.vaultId, name: i.name, type: i.type, websites: i.websites, groupId: i.groupId,
                       fields: fs.map(info), detailCheckpoint: i.detailCheckpoint, detailLogIndex: i.detailLogIndex)
}
func value(_ w: WrappedKeyInput) -> WrappedKeyInputValue {
    WrappedKeyInputValue(principalId: w.principalId, vaultId: w.vaultId, recipientKeyId: w.recipientKeyId, dekVersion: w.dekVersion,
                         wrappedKey: w.wrappedKey, statement: w.statement)
}
