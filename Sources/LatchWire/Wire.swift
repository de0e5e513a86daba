import Foundation
import LatchCrypto

// The machine API's wire types, shared by the server and the client. Foundation only.
// Signed envelopes (checkpoints, wrapped-key statements) travel as JSON *strings* holding the
// envelope's exact JSON text, so no re-encoding can disturb what was signed. Field values
// travel as their envelope string (`{"v":3,"iv":…,"t":…,"d":…}`).

/// Route paths. Everything under `machine` is authenticated.
public enum LatchRoutes {
    public static let healthz = "/healthz"
    public static let bootstrap = "/api/v1/bootstrap"
    public static let machine = "/api/v1/machine"
    public static let me = "/api/v1/machine/me"
    public static let tenantContext = "/api/v1/machine/tenant-context"
    public static let publicKey = "/api/v1/machine/vault/public-key"
    public static let vaults = "/api/v1/machine/vault"
    public static let sync = "/api/v1/machine/vault/sync"
    public static let search = "/api/v1/machine/search"
    public static let agents = "/api/v1/machine/agents"
    public static let users = "/api/v1/machine/users"
    public static let groups = "/api/v1/machine/groups"
    public static let projects = "/api/v1/machine/projects"
    public static let pendingGrants = "/api/v1/machine/permissions/pending"
    public static let feedback = "/api/v1/machine/feedback"
    public static let auditEvents = "/api/v1/machine/monitoring/audit-events"
    public static let logCheckpoint = "/api/v1/machine/transparency/checkpoint"
    public static func logInclusion(leafIndex: Int64, treeSize: Int64) -> String {
        "\(machine)/transparency/proof/inclusion?leafIndex=\(leafIndex)&treeSize=\(treeSize)"
    }
    /// `POST` with `LogInclusionBatchRequest`: many inclusion proofs in one response.
    public static let logInclusionBatch = "/api/v1/machine/transparency/proof/inclusion"
    public static func logConsistency(from: Int64, to: Int64) -> String {
        "\(machine)/transparency/proof/consistency?from=\(from)&to=\(to)"
    }
    public static func vault(_ id: String) -> String { "\(vaults)/\(id)" }
    public static func vaultItems(_ id: String) -> String { "\(vaults)/\(id)/items" }
    public static func vaultItem(_ id: String, _ itemId: String) -> String { "\(vaults)/\(id)/items/\(itemId)" }
    public static func updateVault(_ id: String) -> String { "\(vaults)/\(id)/update" }
    public static func updateItem(_ itemId: String) -> String { "\(machine)/vault-item/\(itemId)/update" }
    public static func field(_ id: String, _ fieldId: String) -> String { "\(vaults)/\(id)/fields/\(fieldId)" }
    public static func environmentFields(_ id: String) -> String { "\(vaults)/\(id)/environment-fields" }
    public static func wrappedKey(_ id: String) -> String { "\(vaults)/\(id)/wrapped-key" }
    public static func wrappedKeys(_ id: String) -> String { "\(vaults)/\(id)/wrapped-keys" }
    public static func vaultPublicKeys(_ id: String) -> String { "\(vaults)/\(id)/public-keys" }
    /// `POST`: the next version of a vault's signed writer set.
    public static func vaultWriters(_ id: String) -> String { "\(vaults)/\(id)/writers" }
    public static func agentPublicKey(_ id: String) -> String { "\(agents)/\(id)/public-key" }
    public static func agent(_ id: String) -> String { "\(agents)/\(id)" }
    /// `GET` with an ORG key: the organisation and its tenants.
    public static let organisation = "/api/v1/machine/organisation"
    /// `POST` with an ORG key: a new tenant and its first admin.
    public static let organisationTenants = "/api/v1/machine/organisation/tenants"
    /// `POST` (issue), `GET` (list; `?principalId=`), `DELETE /api-keys/:accessKey` (revoke).
    public static let apiKeys = "/api/v1/machine/api-keys"
    public static func apiKey(_ accessKey: String) -> String { "\(apiKeys)/\(accessKey)" }
    /// `POST`: rotate a vault's DEK (revocation): all or nothing.
    public static func dekRotation(_ id: String) -> String { "\(vaults)/\(id)/dek-rotation" }
    public static func setPermissions(_ assetType: String, _ id: String) -> String {
        "\(machine)/permissions/\(assetType)/\(id)/set-permissions"
    }
    public static func permissions(_ assetType: String, _ id: String) -> String { "\(machine)/permissions/\(assetType)/\(id)" }
    public static func groupMembers(_ id: String) -> String { "\(groups)/\(id)/members" }
}

/// Stable error codes of `{"error":{"code","message"}}`.
public enum WireErrorCode {
    public static let malformedJSON = "malformed_json"
    public static let invalidRequest = "invalid_request"
    public static let invalidId = "invalid_id"
    public static let bodyTooLarge = "body_too_large"
    public static let unauthenticated = "unauthenticated"
    public static let invalidAPIKey = "invalid_api_key"
    public static let forbidden = "forbidden"
    public static let missingPermission = "missing_permission"
    public static let notFound = "not_found"
    public static let rateLimitExceeded = "rate_limit_exceeded"
    public static let badSignature = "bad_signature"
    public static let unknownSigner = "unknown_signer"
    public static let staleVersion = "stale_version"
    public static let checkpointMismatch = "checkpoint_mismatch"
    public static let conflict = "conflict"
    public static let keyRotationUnsupported = "key_rotation_required"
    public static let rotationBatchIncomplete = "rotation_batch_incomplete"
    public static let rotationBatchInvalid = "rotation_batch_invalid"
    public static let rotationSignatureInvalid = "rotation_signature_invalid"
    public static let rotationOrphansSignatures = "rotation_orphans_signatures"
    public static let noPublicKey = "no_public_key"
    public static let invalidPublicKey = "invalid_public_key"
    public static let invalidEnvelope = "invalid_envelope"
    public static let bootstrapInvalid = "bootstrap_token_invalid"
    public static let alreadyBootstrapped = "already_bootstrapped"
    public static let archived = "archived"
    public static let invalidCursor = "invalid_cursor"
    public static let internalError = "internal_error"
}

public struct WireError: Codable, Sendable, Equatable {
    public struct Detail: Codable, Sendable, Equatable {
        public var code: String
        public var message: String
        public init(code: String, message: String) { self.code = code; self.message = message }
    }
    public var error: Detail
    public init(code: String, message: String) { error = Detail(code: code, message: message) }
}

// MARK: - Bootstrap, identity

public struct BootstrapRequest: Codable, Sendable {
    public var token: String
    public var publicKey: String
    public var organisationName: String
    public var tenantName: String
    public var userName: String
    public init(token: String, publicKey: String, organisationName: String, tenantName: String, userName: String) {
        self.token = token; self.publicKey = publicKey; self.organisationName = organisationName
        self.tenantName = tenantName; self.userName = userName
    }
}

public struct BootstrapResponse: Codable, Sendable {
    public var organisationId: String
    public var tenantId: String
    public var userId: String
    public var keyId: String
    /// `{accessKey}.{secret}`, shown once.
    public var apiKey: String
    public var accessKey: String
    public init(organisationId: String, tenantId: String, userId: String, keyId: String, apiKey: String, accessKey: String) {
        self.organisationId = organisationId; self.tenantId = tenantId; self.userId = userId
        self.keyId = keyId; self.apiKey = apiKey; self.accessKey = accessKey
    }
}

public struct PublicKeyInfo: Codable, Sendable, Equatable {
    public var keyId: String
    public var publicKey: String
    public var principalId: String
    public var status: String
    public var createdAt: Date
    /// Index of the key's registration leaf in the transparency log (nil from servers older than issue 5).
    public var logIndex: Int64?
    public init(keyId: String, publicKey: String, principalId: String, status: String, createdAt: Date, logIndex: Int64? = nil) {
        self.keyId = keyId; self.publicKey = publicKey; self.principalId = principalId; self.status = status; self.createdAt = createdAt
        self.logIndex = logIndex
    }
}

public struct PrincipalInfo: Codable, Sendable, Equatable {
    public var id: String
    public var type: String          // USER | AGENT
    public var name: String
    public var role: String
    public var tenantId: String
    public var activeKeyId: String?
    public var createdAt: Date
    public init(id: String, type: String, name: String, role: String, tenantId: String, activeKeyId: String?, createdAt: Date) {
        self.id = id; self.type = type; self.name = name; self.role = role; self.tenantId = tenantId
        self.activeKeyId = activeKeyId; self.createdAt = createdAt
    }
}

public struct MeResponse: Codable, Sendable {
    public var principal: PrincipalInfo
    public var accessKey: String
    public var scope: String
    public var permissions: [String]
    public var publicKey: PublicKeyInfo?
    /// When the API key in use stops working (absent: never).
    public var expiresAt: Date?
    public init(principal: PrincipalInfo, accessKey: String, scope: String, permissions: [String], publicKey: PublicKeyInfo?,
                expiresAt: Date? = nil) {
        self.principal = principal; self.accessKey = accessKey; self.scope = scope; self.permissions = permissions; self.publicKey = publicKey
        self.expiresAt = expiresAt
    }
}

public struct NamedRef: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public init(id: String, name: String) { self.id = id; self.name = name }
}

public struct TenantContextResponse: Codable, Sendable {
    public var organisation: NamedRef
    public var tenant: NamedRef
    public var principal: PrincipalInfo
    public init(organisation: NamedRef, tenant: NamedRef, principal: PrincipalInfo) {
        self.organisation = organisation; self.tenant = tenant; self.principal = principal
    }
}

public struct RegisterPublicKeyRequest: Codable, Sendable {
    public var publicKey: String
    /// Rotation (issue 5): the key id of the caller's current active key. All three rotation
    /// fields go together; without them, a key different from the active one is refused.
    public var previousEncryptionKeyId: String?
    /// The `SignedEnvelope<KeyRotationStatement>` JSON text, signed by the previous key.
    public var rotationSignature: String?
    /// One re-wrap per vault whose current DEK the previous key opens: `vaultId`,
    /// `recipientKeyId` = the new key id, `dekVersion` = the vault's current one, and the
    /// wrapped-key statement signed by the new key.
    public var rewrappedVaultKeys: [WrappedKeyInput]?
    public init(publicKey: String, previousEncryptionKeyId: String? = nil, rotationSignature: String? = nil,
                rewrappedVaultKeys: [WrappedKeyInput]? = nil) {
        self.publicKey = publicKey; self.previousEncryptionKeyId = previousEncryptionKeyId; self.rotationSignature = rotationSignature
        self.rewrappedVaultKeys = rewrappedVaultKeys
    }
}

/// The answer to an accepted rotation (`POST /vault/public-key` with the rotation fields):
/// the new key's info plus what changed.
public struct KeyRotationResponse: Codable, Sendable {
    public var keyId: String
    public var publicKey: String
    public var principalId: String
    public var status: String
    public var createdAt: Date
    public var logIndex: Int64?
    public var previousKeyId: String
    public var rewrappedVaultIds: [String]
    public init(keyId: String, publicKey: String, principalId: String, status: String, createdAt: Date, logIndex: Int64?,
                previousKeyId: String, rewrappedVaultIds: [String]) {
        self.keyId = keyId; self.publicKey = publicKey; self.principalId = principalId; self.status = status
        self.createdAt = createdAt; self.logIndex = logIndex; self.previousKeyId = previousKeyId; self.rewrappedVaultIds = rewrappedVaultIds
    }
}

// MARK: - Vault DEK rotation (revocation)

/// One item of a DEK rotation: its next detail checkpoint and every field's new envelope.
public struct DekRotationItem: Codable, Sendable {
    public var itemId: String
    public var detailCheckpoint: String
    public var fields: [FieldValueInput]
    public init(itemId: String, detailCheckpoint: String, fields: [FieldValueInput]) {
        self.itemId = itemId; self.detailCheckpoint = detailCheckpoint; self.fields = fields
    }
}

/// `POST /vault/:id/dek-rotation`: the next summary (DEK version + 1), every live item
/// re-encrypted, and the new DEK wrapped to every remaining member with a key (`principalId` set).
public struct DekRotationRequest: Codable, Sendable {
    public var summaryCheckpoint: String
    public var items: [DekRotationItem]
    public var wrappedKeys: [WrappedKeyInput]
    /// Optional: the vault's next signed writer set, applied atomically with the rotation.
    public var writersStatement: String?
    public init(summaryCheckpoint: String, items: [DekRotationItem], wrappedKeys: [WrappedKeyInput], writersStatement: String? = nil) {
        self.summaryCheckpoint = summaryCheckpoint; self.items = items; self.wrappedKeys = wrappedKeys; self.writersStatement = writersStatement
    }
}

public struct DekRotationResponse: Codable, Sendable {
    public var vault: VaultInfo
    public var summaryCheckpoint: String
    public var currentDekVersion: Int
    public var rewrappedPrincipalIds: [String]
    public var pendingPrincipalIds: [String]
    /// Principals that held a wrap of an earlier DEK version and got none of the new one.
    public var droppedPrincipalIds: [String]
    public init(vault: VaultInfo, summaryCheckpoint: String, currentDekVersion: Int, rewrappedPrincipalIds: [String],
                pendingPrincipalIds: [String], droppedPrincipalIds: [String]) {
        self.vault = vault; self.summaryCheckpoint = summaryCheckpoint; self.currentDekVersion = currentDekVersion
        self.rewrappedPrincipalIds = rewrappedPrincipalIds; self.pendingPrincipalIds = pendingPrincipalIds
        self.droppedPrincipalIds = droppedPrincipalIds
    }
}

/// `POST /api-keys`: a key for `principalId` (default: the caller). `scope` defaults to the
/// principal's type (USER or AGENT); TENANT makes a tenant administration key for a
/// TENANT_ADMIN user. `permissions` default: an agent's defaults, for a user the calling key's,
/// for TENANT the administration permissions the calling key holds.
public struct CreateAPIKeyRequest: Codable, Sendable {
    public var principalId: String?
    public var scope: String?
    public var permissions: [String]?
    /// When the key stops working by itself (absent: never). Must be in the future.
    public var expiresAt: Date?
    public init(principalId: String? = nil, scope: String? = nil, permissions: [String]? = nil, expiresAt: Date? = nil) {
        self.principalId = principalId; self.scope = scope; self.permissions = permissions; self.expiresAt = expiresAt
    }
}

/// An API key's record as the API shows it: never its secret or the secret's hash. `apiKey`
/// (`{accessKey}.{secret}`) only in the answer that issued it.
public struct APIKeyInfo: Codable, Sendable, Equatable {
    public var accessKey: String
    public var principalId: String
    public var scope: String
    public var permissions: [String]
    public var createdAt: Date
    public var revoked: Bool
    public var expiresAt: Date?
    public var apiKey: String?
    public init(accessKey: String, principalId: String, scope: String, permissions: [String], createdAt: Date, revoked: Bool,
                expiresAt: Date? = nil, apiKey: String? = nil) {
        self.accessKey = accessKey; self.principalId = principalId; self.scope = scope; self.permissions = permissions
        self.createdAt = createdAt; self.revoked = revoked; self.expiresAt = expiresAt; self.apiKey = apiKey
    }
}

/// A tenant as the organisation routes show it.
public struct TenantInfo: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var createdAt: Date
    public init(id: String, name: String, createdAt: Date) { self.id = id; self.name = name; self.createdAt = createdAt }
}

/// `GET /organisation` (ORG key): the organisation and its tenants, oldest first.
public struct OrganisationResponse: Codable, Sendable {
    public var organisation: NamedRef
    public var tenants: [TenantInfo]
    public init(organisation: NamedRef, tenants: [TenantInfo]) { self.organisation = organisation; self.tenants = tenants }
}

/// `POST /organisation/tenants` (ORG key): a tenant and its first TENANT_ADMIN, whose public
/// key (SPKI PEM) was made on that admin's host. Answered with `BootstrapResponse` (201).
public struct CreateTenantRequest: Codable, Sendable {
    public var name: String
    public var adminName: String
    public var adminPublicKey: String
    public init(name: String, adminName: String, adminPublicKey: String) {
        self.name = name; self.adminName = adminName; self.adminPublicKey = adminPublicKey
    }
}

/// `GET /api-keys`: a principal's keys, newest first.
public struct APIKeyListResponse: Codable, Sendable {
    public var apiKeys: [APIKeyInfo]
    public init(apiKeys: [APIKeyInfo]) { self.apiKeys = apiKeys }
}

/// `DELETE /agents/:id`: the agent is archived, its API keys revoked and its wraps deleted.
public struct AgentRemovalResponse: Codable, Sendable {
    public var agentId: String
    public var vaultIds: [String]
    public init(agentId: String, vaultIds: [String]) { self.agentId = agentId; self.vaultIds = vaultIds }
}

// MARK: - Vaults, items, fields

/// A wrapped DEK for one recipient, with the signed `WrappedKeyStatement` envelope (JSON text).
public struct WrappedKeyInput: Codable, Sendable {
    public var principalId: String?
    /// Which vault the wrap is for; needed in a rotation batch (elsewhere the route names it).
    public var vaultId: String?
    public var recipientKeyId: String
    public var dekVersion: Int
    public var wrappedKey: String      // base64 of the RSA-OAEP ciphertext
    public var statement: String       // SignedEnvelope<WrappedKeyStatement> JSON text
    public init(principalId: String? = nil, vaultId: String? = nil, recipientKeyId: String, dekVersion: Int, wrappedKey: String,
                statement: String) {
        self.principalId = principalId; self.vaultId = vaultId; self.recipientKeyId = recipientKeyId; self.dekVersion = dekVersion
        self.wrappedKey = wrappedKey; self.statement = statement
    }
}

public struct CreateVaultRequest: Codable, Sendable {
    public var id: String
    public var projectId: String?
    /// SignedEnvelope<VaultSummaryCheckpoint> JSON text, version 1, no items.
    public var summaryCheckpoint: String
    public var wrappedKey: WrappedKeyInput
    /// SignedEnvelope<VaultWritersStatement> JSON text: version 1, the creator as ADMIN.
    public var writersStatement: String?
    public init(id: String, projectId: String? = nil, summaryCheckpoint: String, wrappedKey: WrappedKeyInput, writersStatement: String? = nil) {
        self.id = id; self.projectId = projectId; self.summaryCheckpoint = summaryCheckpoint; self.wrappedKey = wrappedKey
        self.writersStatement = writersStatement
    }
}

public struct UpdateVaultRequest: Codable, Sendable {
    public var summaryCheckpoint: String
    public init(summaryCheckpoint: String) { self.summaryCheckpoint = summaryCheckpoint }
}

public struct VaultInfo: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var dataClassification: String
    public var projectId: String?
    public var currentDekVersion: Int
    public var summaryVersion: Int
    public var archived: Bool
    public var createdAt: Date
    public var updatedAt: Date
    /// Index of the current summary checkpoint's leaf in the transparency log.
    public var summaryLogIndex: Int64?
    public init(id: String, name: String, dataClassification: String, projectId: String?, currentDekVersion: Int,
                summaryVersion: Int, archived: Bool, createdAt: Date, updatedAt: Date, summaryLogIndex: Int64? = nil) {
        self.id = id; self.name = name; self.dataClassification = dataClassification; self.projectId = projectId
        self.currentDekVersion = currentDekVersion; self.summaryVersion = summaryVersion; self.archived = archived
        self.createdAt = createdAt; self.updatedAt = updatedAt; self.summaryLogIndex = summaryLogIndex
    }
}

public struct VaultListResponse: Codable, Sendable {
    public var vaults: [VaultInfo]
    public init(vaults: [VaultInfo]) { self.vaults = vaults }
}

public struct VaultResponse: Codable, Sendable {
    public var vault: VaultInfo
    public var summaryCheckpoint: String
    public init(vault: VaultInfo, summaryCheckpoint: String) { self.vault = vault; self.summaryCheckpoint = summaryCheckpoint }
}

public struct ItemInfo: Codable, Sendable, Equatable {
    public var id: String
    public var vaultId: String
    public var name: String
    public var type: String
    public var websites: [String]
    public var groupId: String?
    public var detailVersion: Int
    public var detailHash: String
    public var createdAt: Date
    public var updatedAt: Date
    /// Index of the current detail checkpoint's leaf in the transparency log.
    public var detailLogIndex: Int64?
    public init(id: String, vaultId: String, name: String, type: String, websites: [String], groupId: String?,
                detailVersion: Int, detailHash: String, createdAt: Date, updatedAt: Date, detailLogIndex: Int64? = nil) {
        self.id = id; self.vaultId = vaultId; self.name = name; self.type = type; self.websites = websites
        self.groupId = groupId; self.detailVersion = detailVersion; self.detailHash = detailHash
        self.createdAt = createdAt; self.updatedAt = updatedAt; self.detailLogIndex = detailLogIndex
    }
}

public struct VaultItemsResponse: Codable, Sendable {
    public var vaultId: String
    public var items: [ItemInfo]
    public var summaryCheckpoint: String
    /// Index of `summaryCheckpoint`'s leaf in the transparency log.
    public var summaryLogIndex: Int64?
    public init(vaultId: String, items: [ItemInfo], summaryCheckpoint: String, summaryLogIndex: Int64? = nil) {
        self.vaultId = vaultId; self.items = items; self.summaryCheckpoint = summaryCheckpoint; self.summaryLogIndex = summaryLogIndex
    }
}

public struct FieldInfo: Codable, Sendable, Equatable {
    public var id: String
    public var itemId: String
    public var name: String
    public var type: String
    public var order: Int
    public var isEnvironmentVariable: Bool
    /// The field's envelope string.
    public var value: String
    public init(id: String, itemId: String, name: String, type: String, order: Int, isEnvironmentVariable: Bool, value: String) {
        self.id = id; self.itemId = itemId; self.name = name; self.type = type; self.order = order
        self.isEnvironmentVariable = isEnvironmentVariable; self.value = value
    }
}

public struct ItemDetailResponse: Codable, Sendable {
    public var id: String
    public var vaultId: String
    public var name: String
    public var type: String
    public var websites: [String]
    public var groupId: String?
    public var fields: [FieldInfo]
    public var detailCheckpoint: String
    /// Index of `detailCheckpoint`'s leaf in the transparency log.
    public var detailLogIndex: Int64?
    public init(id: String, vaultId: String, name: String, type: String, websites: [String], groupId: String?,
                fields: [FieldInfo], detailCheckpoint: String, detailLogIndex: Int64? = nil) {
        self.id = id; self.vaultId = vaultId; self.name = name; self.type = type; self.websites = websites
        self.groupId = groupId; self.fields = fields; self.detailCheckpoint = detailCheckpoint; self.detailLogIndex = detailLogIndex
    }
}

public struct FieldResponse: Codable, Sendable {
    public var vaultId: String
    public var itemId: String
    public var itemName: String
    public var field: FieldInfo
    public var detailCheckpoint: String
    public init(vaultId: String, itemId: String, itemName: String, field: FieldInfo, detailCheckpoint: String) {
        self.vaultId = vaultId; self.itemId = itemId; self.itemName = itemName; self.field = field; self.detailCheckpoint = detailCheckpoint
    }
}

extension FieldResponse {
    /// The JSON `LatchJSON.encoder()` would write for this response (members sorted, slashes
    /// unescaped), written directly: a field read is the hottest route of `latch serve`.
    public func jsonData() -> Data {
        var out: [UInt8] = []
        out.reserveCapacity(detailCheckpoint.utf8.count + field.value.utf8.count + 512)
        func key(_ k: String, _ first: Bool = false) {
            if !first { out.append(UInt8(ascii: ",")) }
            LatchJSON.appendString(k, to: &out)
            out.append(UInt8(ascii: ":"))
        }
        out.append(UInt8(ascii: "{"))
        key("detailCheckpoint", true); LatchJSON.appendString(detailCheckpoint, to: &out)
        key("field"); out.append(UInt8(ascii: "{"))
        key("id", true); LatchJSON.appendString(field.id, to: &out)
        key("isEnvironmentVariable"); out += (field.isEnvironmentVariable ? "true" : "false").utf8
        key("itemId"); LatchJSON.appendString(field.itemId, to: &out)
        key("name"); LatchJSON.appendString(field.name, to: &out)
        key("order"); out += String(field.order).utf8
        key("type"); LatchJSON.appendString(field.type, to: &out)
        key("value"); LatchJSON.appendString(field.value, to: &out)
        out.append(UInt8(ascii: "}"))
        key("itemId"); LatchJSON.appendString(itemId, to: &out)
        key("itemName"); LatchJSON.appendString(itemName, to: &out)
        key("vaultId"); LatchJSON.appendString(vaultId, to: &out)
        out.append(UInt8(ascii: "}"))
        return Data(out)
    }
}

public struct EnvironmentFieldsResponse: Codable, Sendable {
    public var vaultId: String
    public var summaryCheckpoint: String
    /// Items with only their environment fields (all value fields when none is flagged);
    /// each item's `detailCheckpoint` still covers every field.
    public var items: [ItemDetailResponse]
    public init(vaultId: String, summaryCheckpoint: String, items: [ItemDetailResponse]) {
        self.vaultId = vaultId; self.summaryCheckpoint = summaryCheckpoint; self.items = items
    }
}

/// A new field value for a create or update: the envelope for a field of the detail checkpoint.
public struct FieldValueInput: Codable, Sendable {
    public var id: String
    public var value: String
    public init(id: String, value: String) { self.id = id; self.value = value }
}

/// Create an item: metadata comes from the signed checkpoints; `fields` carries every envelope.
public struct CreateItemRequest: Codable, Sendable {
    public var detailCheckpoint: String
    public var summaryCheckpoint: String
    public var fields: [FieldValueInput]
    public init(detailCheckpoint: String, summaryCheckpoint: String, fields: [FieldValueInput]) {
        self.detailCheckpoint = detailCheckpoint; self.summaryCheckpoint = summaryCheckpoint; self.fields = fields
    }
}

/// Update an item: the detail checkpoint lists the complete new field set. Fields absent from it
/// are deleted; new fields and fields whose envelope changed carry their `value` here; unchanged
/// fields may be omitted.
public typealias UpdateItemRequest = CreateItemRequest

/// Archive an item: the vault's next summary checkpoint, without the item.
public struct ArchiveItemRequest: Codable, Sendable {
    public var summaryCheckpoint: String
    public init(summaryCheckpoint: String) { self.summaryCheckpoint = summaryCheckpoint }
}

public struct WrappedKeyInfo: Codable, Sendable, Equatable {
    public var vaultId: String
    public var principalId: String
    public var recipientKeyId: String
    public var dekVersion: Int
    public var wrappedKey: String
    public var statement: String
    public var signerPrincipalId: String
    public var createdAt: Date
    public init(vaultId: String, principalId: String, recipientKeyId: String, dekVersion: Int, wrappedKey: String,
                statement: String, signerPrincipalId: String, createdAt: Date) {
        self.vaultId = vaultId; self.principalId = principalId; self.recipientKeyId = recipientKeyId
        self.dekVersion = dekVersion; self.wrappedKey = wrappedKey; self.statement = statement
        self.signerPrincipalId = signerPrincipalId; self.createdAt = createdAt
    }
}

public struct WrappedKeysResponse: Codable, Sendable {
    public var vaultId: String
    public var currentDekVersion: Int
    public var wrappedKeys: [WrappedKeyInfo]
    public init(vaultId: String, currentDekVersion: Int, wrappedKeys: [WrappedKeyInfo]) {
        self.vaultId = vaultId; self.currentDekVersion = currentDekVersion; self.wrappedKeys = wrappedKeys
    }
}

public struct ShareRequest: Codable, Sendable {
    public var wrappedKeys: [WrappedKeyInput]
    public init(wrappedKeys: [WrappedKeyInput]) { self.wrappedKeys = wrappedKeys }
}

public struct MemberKey: Codable, Sendable, Equatable {
    public var principalId: String
    public var principalType: String
    public var name: String
    public var level: String
    public var keyId: String
    public var publicKey: String
    /// Index of the key's registration leaf in the transparency log.
    public var logIndex: Int64?
    /// For a rotated key: the continuity chain from the member's first key to `keyId`, oldest
    /// first (absent when the key was never rotated).
    public var rotations: [KeyRotationLink]?
    public init(principalId: String, principalType: String, name: String, level: String, keyId: String, publicKey: String,
                logIndex: Int64? = nil, rotations: [KeyRotationLink]? = nil) {
        self.principalId = principalId; self.principalType = principalType; self.name = name; self.level = level
        self.keyId = keyId; self.publicKey = publicKey; self.logIndex = logIndex; self.rotations = rotations
    }
}

/// One rotation step: the retired key (SPKI PEM) and the `SignedEnvelope<KeyRotationStatement>`
/// JSON text it signed, naming the next key.
public struct KeyRotationLink: Codable, Sendable, Equatable {
    public var previousPublicKey: String
    public var statement: String
    public init(previousPublicKey: String, statement: String) { self.previousPublicKey = previousPublicKey; self.statement = statement }
}

public struct PublicKeysResponse: Codable, Sendable {
    public var vaultId: String
    public var publicKeys: [MemberKey]
    /// The vault's signed writer set, every version oldest first (absent for a vault made
    /// before writer sets; clients refuse such a vault until an ADMIN signs a version 1).
    public var writers: [WritersLinkInfo]?
    /// Index of the newest writer set's leaf in the transparency log.
    public var writersLogIndex: Int64?
    public init(vaultId: String, publicKeys: [MemberKey], writers: [WritersLinkInfo]? = nil, writersLogIndex: Int64? = nil) {
        self.vaultId = vaultId; self.publicKeys = publicKeys; self.writers = writers; self.writersLogIndex = writersLogIndex
    }
}

/// One version of a vault's writer set: the `SignedEnvelope<VaultWritersStatement>` JSON text,
/// its signer, and the signer's key (SPKI PEM; perhaps retired since) with its log index.
public struct WritersLinkInfo: Codable, Sendable, Equatable {
    public var statement: String
    public var signerId: String
    public var signerPublicKey: String
    public var signerKeyLogIndex: Int64?
    public init(statement: String, signerId: String, signerPublicKey: String, signerKeyLogIndex: Int64?) {
        self.statement = statement; self.signerId = signerId; self.signerPublicKey = signerPublicKey; self.signerKeyLogIndex = signerKeyLogIndex
    }
}

/// `POST /vault/:id/writers`: the next version of the vault's writer set.
public struct UpdateWritersRequest: Codable, Sendable {
    /// `SignedEnvelope<VaultWritersStatement>` JSON text, signed by the caller's active key.
    public var statement: String
    public init(statement: String) { self.statement = statement }
}

// MARK: - Principals, permissions

public struct CreateAgentRequest: Codable, Sendable {
    public var name: String
    /// Machine permissions for the agent's key; `machine.*.all` forms are expanded. Default:
    /// `machine.vault.read`, `machine.vault.secret.read`, `machine.feedback.write`.
    public var permissions: [String]?
    /// TENANT_MEMBER (default) or TENANT_AGENT_MANAGER.
    public var role: String?
    public var publicKey: String?
    public init(name: String, permissions: [String]? = nil, role: String? = nil, publicKey: String? = nil) {
        self.name = name; self.permissions = permissions; self.role = role; self.publicKey = publicKey
    }
}

public struct CreatePrincipalResponse: Codable, Sendable {
    public var principal: PrincipalInfo
    public var accessKey: String
    /// `{accessKey}.{secret}`, shown once.
    public var apiKey: String
    public var permissions: [String]
    public init(principal: PrincipalInfo, accessKey: String, apiKey: String, permissions: [String]) {
        self.principal = principal; self.accessKey = accessKey; self.apiKey = apiKey; self.permissions = permissions
    }
}

public struct CreateUserRequest: Codable, Sendable {
    public var name: String
    public var role: String?
    public var permissions: [String]?
    public init(name: String, role: String? = nil, permissions: [String]? = nil) {
        self.name = name; self.role = role; self.permissions = permissions
    }
}

public struct PrincipalListResponse: Codable, Sendable {
    public var principals: [PrincipalInfo]
    public init(principals: [PrincipalInfo]) { self.principals = principals }
}

public struct RegisterAgentKeyRequest: Codable, Sendable {
    public var publicKey: String
    public init(publicKey: String) { self.publicKey = publicKey }
}

public struct PermissionEntry: Codable, Sendable, Equatable {
    public var granteeType: String   // USER | AGENT | GROUP | PROJECT
    public var granteeId: String
    public var level: String         // READ | WRITE | ADMIN
    public init(granteeType: String, granteeId: String, level: String) {
        self.granteeType = granteeType; self.granteeId = granteeId; self.level = level
    }
}

public struct SetPermissionsRequest: Codable, Sendable {
    public var permissions: [PermissionEntry]
    public init(permissions: [PermissionEntry]) { self.permissions = permissions }
}

public struct PendingGrantInfo: Codable, Sendable, Equatable {
    public var id: String
    public var vaultId: String
    public var principalId: String
    public var principalType: String
    public var level: String
    public var hasPublicKey: Bool
    public var createdAt: Date
    public init(id: String, vaultId: String, principalId: String, principalType: String, level: String, hasPublicKey: Bool, createdAt: Date) {
        self.id = id; self.vaultId = vaultId; self.principalId = principalId; self.principalType = principalType
        self.level = level; self.hasPublicKey = hasPublicKey; self.createdAt = createdAt
    }
}

public struct PermissionsResponse: Codable, Sendable {
    public var assetType: String
    public var assetId: String
    public var permissions: [PermissionEntry]
    public var pendingGrants: [PendingGrantInfo]
    public init(assetType: String, assetId: String, permissions: [PermissionEntry], pendingGrants: [PendingGrantInfo]) {
        self.assetType = assetType; self.assetId = assetId; self.permissions = permissions; self.pendingGrants = pendingGrants
    }
}

public struct PendingGrantsResponse: Codable, Sendable {
    public var pendingGrants: [PendingGrantInfo]
    public init(pendingGrants: [PendingGrantInfo]) { self.pendingGrants = pendingGrants }
}

// MARK: - Audit

public struct AuditEventInfo: Codable, Sendable, Equatable {
    public var seq: Int64
    public var time: Date
    public var action: String
    public var outcome: String
    public var principalId: String?
    public var accessKey: String?
    public var assetType: String?
    public var assetId: String?
    public var source: String?
    public var detail: String?
    public var hash: String
    public init(seq: Int64, time: Date, action: String, outcome: String, principalId: String?, accessKey: String?,
                assetType: String?, assetId: String?, source: String?, detail: String?, hash: String) {
        self.seq = seq; self.time = time; self.action = action; self.outcome = outcome; self.principalId = principalId
        self.accessKey = accessKey; self.assetType = assetType; self.assetId = assetId; self.source = source
        self.detail = detail; self.hash = hash
    }
}

public struct AuditEventsResponse: Codable, Sendable {
    public var events: [AuditEventInfo]
    public init(events: [AuditEventInfo]) { self.events = events }
}

public struct HealthResponse: Codable, Sendable {
    public var status: String
    public init(status: String) { self.status = status }
}

/// The JSON coders both sides use: ISO 8601 dates, sorted keys.
public enum LatchJSON {
    public static func encoder() -> JSONEncoder {
        let e = JSONEncoder()
        e.dateEncodingStrategy = .iso8601
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }
    public static func decoder() -> JSONDecoder {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            if let date = utcDate(text) { return date }
            if let date = try? Date.ISO8601FormatStyle().parse(text) { return date }
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "Expected date string to be ISO8601-formatted.")
        }
        return d
    }

    /// The date of `text` when it is exactly the form `.iso8601` writes (`2026-12-02T11:39:20Z`)
    /// and names a real day after 1582 (before it Foundation's calendar is Julian); nil for
    /// anything else, which Foundation's ISO 8601 parser then reads. Foundation's parser builds a calendar on its first use, a large part of a short
    /// process's decoding (`latch get`), for the same answer on this form.
    public static func utcDate(_ text: String) -> Date? {
        var utf8 = text.utf8
        return utf8.withContiguousStorageIfAvailable { b -> Date? in
            guard b.count == 20, b[4] == UInt8(ascii: "-"), b[7] == UInt8(ascii: "-"), b[10] == UInt8(ascii: "T"),
                  b[13] == UInt8(ascii: ":"), b[16] == UInt8(ascii: ":"), b[19] == UInt8(ascii: "Z") else { return nil }
            func number(_ from: Int, _ count: Int) -> Int? {
                var n = 0
                for i in from..<from + count {
                    let d = Int(b[i]) - 48
                    guard d >= 0, d <= 9 else { return nil }
                    n = n * 10 + d
                }
                return n
            }
            guard let y = number(0, 4), let m = number(5, 2), let d = number(8, 2),
                  let hh = number(11, 2), let mm = number(14, 2), let ss = number(17, 2),
                  y >= 1583, (1...12).contains(m), hh <= 23, mm <= 59, ss <= 59 else { return nil }
            let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
            let monthDays = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1]
            guard (1...monthDays).contains(d) else { return nil }
            // Days since 1970-01-01 in the proleptic Gregorian calendar (eras of 400 years).
            let yy = m <= 2 ? y - 1 : y
            let era = (yy >= 0 ? yy : yy - 399) / 400
            let yearOfEra = yy - era * 400
            let dayOfYear = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1
            let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
            let days = era * 146_097 + dayOfEra - 719_468
            return Date(timeIntervalSince1970: TimeInterval(days * 86_400 + hh * 3_600 + mm * 60 + ss))
        } ?? nil
    }

    /// Appends `s` as a JSON string, escaped as the canonical form escapes it (JCS: quote,
    /// backslash and control characters; everything else verbatim UTF-8).
    public static func appendString(_ s: String, to out: inout [UInt8]) { CanonicalJSON.appendString(s, to: &out) }
}

// MARK: - Sync, search, groups, projects, feedback

public struct SyncItem: Codable, Sendable {
    public var item: ItemInfo
    public var archived: Bool
    public var detailCheckpoint: String
    public init(item: ItemInfo, archived: Bool, detailCheckpoint: String) {
        self.item = item; self.archived = archived; self.detailCheckpoint = detailCheckpoint
    }
}

public struct SyncField: Codable, Sendable {
    public var vaultId: String
    public var field: FieldInfo
    public init(vaultId: String, field: FieldInfo) { self.vaultId = vaultId; self.field = field }
}

/// `GET /vault/sync[?cursor=]`. `full` is true when no cursor was given (everything visible).
/// With a cursor, only changed entities; `hasMore` asks the client to call again with `cursor`.
public struct SyncResponse: Codable, Sendable {
    public var cursor: String
    public var full: Bool
    public var hasMore: Bool
    public var vaults: [VaultResponse]
    public var items: [SyncItem]
    public var fields: [SyncField]
    public var deletedFieldIds: [String]
    public var wrappedKeys: [WrappedKeyInfo]
    public var removedVaultIds: [String]
    /// Asked with `logFrom=N`: what verifies this answer against the transparency log.
    public var log: SyncLogProofs?
    /// Asked with `include=directories`: the signer directory (as `GET /vault/:id/public-keys`)
    /// of each vault whose rows this answer carries, read in the same transaction.
    public var directories: [PublicKeysResponse]?
    /// Asked with `include=me`: the caller (as `GET /me`).
    public var me: MeResponse?
    public init(cursor: String, full: Bool, hasMore: Bool, vaults: [VaultResponse], items: [SyncItem], fields: [SyncField],
                deletedFieldIds: [String], wrappedKeys: [WrappedKeyInfo], removedVaultIds: [String], log: SyncLogProofs? = nil,
                directories: [PublicKeysResponse]? = nil, me: MeResponse? = nil) {
        self.cursor = cursor; self.full = full; self.hasMore = hasMore; self.vaults = vaults; self.items = items
        self.fields = fields; self.deletedFieldIds = deletedFieldIds; self.wrappedKeys = wrappedKeys; self.removedVaultIds = removedVaultIds
        self.log = log; self.directories = directories; self.me = me
    }
}

/// The log material of one sync answer, read in the sync's transaction: the signed tree head
/// (as `GET /transparency/checkpoint`), the consistency proof from `consistencyFrom` (the
/// client's `logFrom`; empty when it is 0 or not below the tree size), and the inclusion
/// proofs of every summary and detail checkpoint in the answer (as the batch route gives them).
public struct SyncLogProofs: Codable, Sendable {
    public var head: LogCheckpointResponse
    public var consistencyFrom: Int64
    public var consistency: [String]
    public var inclusion: LogInclusionBatchResponse
    public init(head: LogCheckpointResponse, consistencyFrom: Int64, consistency: [String], inclusion: LogInclusionBatchResponse) {
        self.head = head; self.consistencyFrom = consistencyFrom; self.consistency = consistency; self.inclusion = inclusion
    }
}

public struct SearchRequest: Codable, Sendable {
    public var query: String
    public init(query: String) { self.query = query }
}

public struct SearchResult: Codable, Sendable, Equatable {
    public var vaultId: String
    public var vaultName: String
    public var itemId: String?
    public var itemName: String?
    public var itemType: String?
    public var fieldNames: [String]
    public init(vaultId: String, vaultName: String, itemId: String?, itemName: String?, itemType: String?, fieldNames: [String]) {
        self.vaultId = vaultId; self.vaultName = vaultName; self.itemId = itemId; self.itemName = itemName
        self.itemType = itemType; self.fieldNames = fieldNames
    }
}

public struct SearchResponse: Codable, Sendable {
    public var results: [SearchResult]
    public init(results: [SearchResult]) { self.results = results }
}

public struct CreateGroupRequest: Codable, Sendable {
    public var name: String
    public init(name: String) { self.name = name }
}

public struct GroupInfo: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var members: [String]
    public init(id: String, name: String, members: [String]) { self.id = id; self.name = name; self.members = members }
}

public struct GroupListResponse: Codable, Sendable {
    public var groups: [GroupInfo]
    public init(groups: [GroupInfo]) { self.groups = groups }
}

public struct SetGroupMembersRequest: Codable, Sendable {
    public var members: [String]
    public init(members: [String]) { self.members = members }
}

public struct GroupMembersResponse: Codable, Sendable {
    public var group: GroupInfo
    public var pendingGrants: [PendingGrantInfo]
    public init(group: GroupInfo, pendingGrants: [PendingGrantInfo]) { self.group = group; self.pendingGrants = pendingGrants }
}

public struct CreateProjectRequest: Codable, Sendable {
    public var name: String
    public var description: String?
    public init(name: String, description: String? = nil) { self.name = name; self.description = description }
}

public struct ProjectInfo: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var description: String?
    public var level: String
    public var createdAt: Date
    public init(id: String, name: String, description: String?, level: String, createdAt: Date) {
        self.id = id; self.name = name; self.description = description; self.level = level; self.createdAt = createdAt
    }
}

public struct ProjectListResponse: Codable, Sendable {
    public var projects: [ProjectInfo]
    public init(projects: [ProjectInfo]) { self.projects = projects }
}

public struct ProjectResponse: Codable, Sendable {
    public var project: ProjectInfo
    public var vaults: [VaultInfo]
    public init(project: ProjectInfo, vaults: [VaultInfo]) { self.project = project; self.vaults = vaults }
}

public struct FeedbackRequest: Codable, Sendable {
    public var surface: String          // CLI | SDK | MCP | MACHINE_API | OTHER
    public var summary: String
    public var details: String?
    public var desiredOutcome: String?
    public init(surface: String, summary: String, details: String? = nil, desiredOutcome: String? = nil) {
        self.surface = surface; self.summary = summary; self.details = details; self.desiredOutcome = desiredOutcome
    }
}

public struct FeedbackResponse: Codable, Sendable {
    public var id: String
    public var createdAt: Date
    public init(id: String, createdAt: Date) { self.id = id; self.createdAt = createdAt }
}

// MARK: - Transparency log

/// `GET /api/v1/machine/transparency/checkpoint`: the latest signed tree head.
public struct LogCheckpointResponse: Codable, Sendable {
    public var treeSize: Int64
    /// Base64 root hash (also in the note's third line).
    public var rootHash: String
    /// The C2SP tlog checkpoint as a signed note: origin, size, root, blank line, signature line.
    public var checkpoint: String
    /// The log's Ed25519 note verifier key (`name+keyid+base64`); clients pin it.
    public var logKey: String
    public init(treeSize: Int64, rootHash: String, checkpoint: String, logKey: String) {
        self.treeSize = treeSize; self.rootHash = rootHash; self.checkpoint = checkpoint; self.logKey = logKey
    }
}

/// `GET …/transparency/proof/inclusion?leafIndex=&treeSize=` and
/// `GET …/transparency/proof/consistency?from=&to=`: RFC 9162 proofs, base64 hashes in order.
public struct LogProofResponse: Codable, Sendable {
    public var proof: [String]
    public init(proof: [String]) { self.proof = proof }
}

/// `POST …/transparency/proof/inclusion`: the inclusion proofs of up to `maxLeaves` leaves of
/// the tree of `treeSize` leaves, in one request.
public struct LogInclusionBatchRequest: Codable, Sendable {
    /// The most leaf indexes one request may name (more is `400 invalid_request`).
    public static let maxLeaves = 2048
    public var treeSize: Int64
    public var leafIndexes: [Int64]
    public init(treeSize: Int64, leafIndexes: [Int64]) { self.treeSize = treeSize; self.leafIndexes = leafIndexes }
}

/// The answer: every distinct hash once (`hashes`, base64), and per requested leaf, in request
/// order, its RFC 9162 proof as positions in `hashes` (proofs of nearby leaves share most of
/// their hashes, so this is several times smaller than the proofs written out).
public struct LogInclusionBatchResponse: Codable, Sendable {
    /// Writes proofs as positions in one list of distinct hashes.
    public init(treeSize: Int64, proofs: [(leafIndex: Int64, path: [String])]) {
        var hashes: [String] = [], position: [String: Int] = [:]
        let out = proofs.map { p in
            Proof(leafIndex: p.leafIndex, path: p.path.map { h in
                if let i = position[h] { return i }
                position[h] = hashes.count
                hashes.append(h)
                return hashes.count - 1
            })
        }
        self.init(treeSize: treeSize, hashes: hashes, proofs: out)
    }

    public struct Proof: Codable, Sendable, Equatable {
        public var leafIndex: Int64
        public var path: [Int]
        public init(leafIndex: Int64, path: [Int]) { self.leafIndex = leafIndex; self.path = path }
    }
    public var treeSize: Int64
    public var hashes: [String]
    public var proofs: [Proof]
    public init(treeSize: Int64, hashes: [String], proofs: [Proof]) { self.treeSize = treeSize; self.hashes = hashes; self.proofs = proofs }
}
