import Foundation

/// The time source. Pass one in; never read the time deep inside.
public protocol Clock: Sendable {
    func now() -> Date
    /// Suspends the caller for about `nanoseconds` (the audit batcher's hold on a read batch).
    func sleep(nanoseconds: UInt64) async
}

extension Clock {
    public func sleep(nanoseconds: UInt64) async { try? await Task.sleep(nanoseconds: nanoseconds) }
}

public struct SystemClock: Clock {
    public init() {}
    public func now() -> Date { Date() }
}

/// Randomness for ids, tokens and API-key secrets. Sendable so a long-lived service can hold it.
public protocol RandomSource: Sendable {
    func bytes(_ count: Int) -> [UInt8]
}

public struct SystemRandomSource: RandomSource {
    public init() {}
    public func bytes(_ count: Int) -> [UInt8] {
        var rng = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
    }
}

extension RandomSource {
    /// A lowercase RFC 4122 version-4 UUID string.
    public func uuid() -> String {
        var b = bytes(16)
        b[6] = (b[6] & 0x0f) | 0x40
        b[8] = (b[8] & 0x3f) | 0x80
        let h = b.map { String(format: "%02x", $0) }.joined()
        let c = Array(h)
        return String(c[0..<8]) + "-" + String(c[8..<12]) + "-" + String(c[12..<16]) + "-" + String(c[16..<20]) + "-" + String(c[20..<32])
    }
}

public enum PrincipalType: String, Codable, Sendable, CaseIterable { case user = "USER", agent = "AGENT" }

public enum TenantRole: String, Codable, Sendable, CaseIterable {
    case tenantAdmin = "TENANT_ADMIN"
    case tenantAgentManager = "TENANT_AGENT_MANAGER"
    case tenantMember = "TENANT_MEMBER"
}

public enum APIKeyScope: String, Codable, Sendable, CaseIterable { case org = "ORG", tenant = "TENANT", user = "USER", agent = "AGENT" }

public enum AccessLevel: String, Codable, Sendable, CaseIterable, Comparable {
    case read = "READ", write = "WRITE", admin = "ADMIN"
    var rank: Int { switch self { case .read: 1; case .write: 2; case .admin: 3 } }
    public static func < (a: AccessLevel, b: AccessLevel) -> Bool { a.rank < b.rank }
}

public enum AssetType: String, Codable, Sendable, CaseIterable { case project = "PROJECT", vault = "VAULT", vaultItem = "VAULT_ITEM" }

public enum GranteeType: String, Codable, Sendable, CaseIterable { case user = "USER", agent = "AGENT", group = "GROUP", project = "PROJECT" }

public enum ItemType: String, Codable, Sendable, CaseIterable {
    case login = "LOGIN", apiKey = "API_KEY", database = "DATABASE", sshKey = "SSH_KEY", server = "SERVER"
    case secureNote = "SECURE_NOTE", creditCard = "CREDIT_CARD", custom = "CUSTOM"
}

public enum FieldType: String, Codable, Sendable, CaseIterable {
    case text = "TEXT", password = "PASSWORD", secret = "SECRET", url = "URL", number = "NUMBER", totp = "TOTP"
}

public enum DataClassification: String, Codable, Sendable, CaseIterable {
    case `public` = "PUBLIC", `internal` = "INTERNAL", confidential = "CONFIDENTIAL", cui = "CUI"
}

/// Machine permissions carried by an API key. The `.all` forms expand when the key is made.
public enum MachinePermission {
    public static let all: [String] = [
        "machine.vault.read", "machine.vault.secret.read", "machine.vault.write",
        "machine.agent.read", "machine.agent.write", "machine.permissions.read", "machine.permissions.write",
        "machine.project.read", "machine.project.write", "machine.feedback.write", "machine.monitoring.read",
    ]
    public static let agentDefault = ["machine.vault.read", "machine.vault.secret.read", "machine.feedback.write"]

    /// Expands `machine.X.all` (and `machine.*.all`) into the concrete permissions; refuses unknown names.
    public static func expand(_ requested: [String]) throws(DomainError) -> [String] {
        var out = Set<String>()
        for p in requested {
            if p == "machine.*.all" || p == "machine.all" { out.formUnion(all); continue }
            if p.hasSuffix(".all") {
                let prefix = String(p.dropLast(3))   // "machine.vault."
                let matches = all.filter { $0.hasPrefix(prefix) }
                guard !matches.isEmpty else { throw .invalid("unknown machine permission \(p)") }
                out.formUnion(matches)
                continue
            }
            guard all.contains(p) else { throw .invalid("unknown machine permission \(p); known: \(all.joined(separator: ", "))") }
            out.insert(p)
        }
        return out.sorted()
    }
}

public struct Organisation: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var createdAt: Date
    /// The tenant bootstrap made with it, whose TENANT_ADMINs own the organisation (nil in
    /// stores bootstrapped before it was recorded: then the earliest tenant).
    public var foundingTenantId: String? = nil
}

public struct Tenant: Codable, Sendable, Equatable {
    public var id: String
    public var organisationId: String
    public var name: String
    public var createdAt: Date
}

/// A user or an agent.
public struct Principal: Codable, Sendable, Equatable {
    public var id: String
    public var tenantId: String
    public var type: PrincipalType
    public var name: String
    public var role: TenantRole
    public var createdAt: Date
    public var createdBy: String?
    public var archived: Bool
}

public struct PublicKeyRecord: Codable, Sendable, Equatable {
    public enum Status: String, Codable, Sendable { case active, retired }
    public var keyId: String
    public var principalId: String
    public var tenantId: String
    public var pem: String
    public var status: Status
    public var createdAt: Date
    public var retiredAt: Date?
    /// Where the registration is in the transparency log.
    public var logIndex: Int64?
    /// For a key registered by rotation: the `SignedEnvelope<KeyRotationStatement>` JSON text
    /// (signed by the previous key), kept as the continuity evidence.
    public var rotationStatement: String?
}

public struct APIKeyRecord: Codable, Sendable, Equatable {
    public var accessKey: String
    public var principalId: String
    public var tenantId: String
    public var scope: APIKeyScope
    /// Lowercase hex SHA-256 of the secret's bytes. The secret itself is never stored.
    public var secretHash: String
    public var permissions: [String]
    public var createdAt: Date
    public var revoked: Bool
    /// When the key stops working by itself (nil: never).
    public var expiresAt: Date? = nil

    /// Whether the key signs in at `now`: not revoked and not expired.
    public func isLive(at now: Date) -> Bool { !revoked && expiresAt.map { now < $0 } ?? true }
}

public struct SecurityGroup: Codable, Sendable, Equatable {
    public var id: String
    public var tenantId: String
    public var name: String
    public var createdAt: Date
}

public struct GroupMembership: Codable, Sendable, Equatable {
    public var groupId: String
    public var principalId: String
    public var tenantId: String
}

public struct Project: Codable, Sendable, Equatable {
    public var id: String
    public var tenantId: String
    public var name: String
    public var description: String?
    public var createdAt: Date
}

public struct Vault: Codable, Sendable, Equatable {
    public var id: String
    public var tenantId: String
    public var projectId: String?
    public var name: String
    public var dataClassification: String
    public var currentDekVersion: Int
    public var summaryVersion: Int
    /// The signed summary checkpoint envelope, exactly as received.
    public var summaryCheckpoint: String
    /// Where the current summary checkpoint is in the transparency log.
    public var summaryLogIndex: Int64?
    /// The signed writer set (`latchkey.vault-writers.v1`), every version oldest first; nil
    /// for a vault made before writer sets existed (an ADMIN may then post a version 1).
    public var writers: [WritersLink]?
    /// Where the newest writer set is in the transparency log.
    public var writersLogIndex: Int64?
    public var createdBy: String
    public var createdAt: Date
    public var updatedAt: Date
    public var archived: Bool
    public init(id: String, tenantId: String, projectId: String?, name: String, dataClassification: String, currentDekVersion: Int,
                summaryVersion: Int, summaryCheckpoint: String, createdBy: String, createdAt: Date, updatedAt: Date, archived: Bool) {
        self.id = id; self.tenantId = tenantId; self.projectId = projectId; self.name = name
        self.dataClassification = dataClassification; self.currentDekVersion = currentDekVersion; self.summaryVersion = summaryVersion
        self.summaryCheckpoint = summaryCheckpoint; self.createdBy = createdBy; self.createdAt = createdAt; self.updatedAt = updatedAt
        self.archived = archived
    }
}

/// One version of a vault's writer set: the envelope exactly as received, and who signed it
/// with which key (so a client can check a link whose signer has since left or rotated).
public struct WritersLink: Codable, Sendable, Equatable {
    public var statement: String
    public var signerId: String
    public var signerKeyId: String
    public init(statement: String, signerId: String, signerKeyId: String) {
        self.statement = statement; self.signerId = signerId; self.signerKeyId = signerKeyId
    }
}

public struct Item: Codable, Sendable, Equatable {
    public var id: String
    public var vaultId: String
    public var tenantId: String
    public var name: String
    public var type: String
    public var websites: [String]
    public var groupId: String?
    public var detailVersion: Int
    public var detailHash: String
    /// The signed detail checkpoint envelope, exactly as received.
    public var detailCheckpoint: String
    /// Where the current detail checkpoint is in the transparency log.
    public var detailLogIndex: Int64?
    public var createdAt: Date
    public var updatedAt: Date
    public var archived: Bool
    public init(id: String, vaultId: String, tenantId: String, name: String, type: String, websites: [String], groupId: String?,
                detailVersion: Int, detailHash: String, detailCheckpoint: String, createdAt: Date, updatedAt: Date, archived: Bool) {
        self.id = id; self.vaultId = vaultId; self.tenantId = tenantId; self.name = name; self.type = type; self.websites = websites
        self.groupId = groupId; self.detailVersion = detailVersion; self.detailHash = detailHash; self.detailCheckpoint = detailCheckpoint
        self.createdAt = createdAt; self.updatedAt = updatedAt; self.archived = archived
    }
}

public struct Field: Codable, Sendable, Equatable {
    public var id: String
    public var itemId: String
    public var vaultId: String
    public var tenantId: String
    public var name: String
    public var type: String
    public var order: Int
    public var isEnvironmentVariable: Bool
    /// The field's envelope string (ciphertext), exactly as received.
    public var envelope: String
    public var updatedAt: Date
    public init(id: String, itemId: String, vaultId: String, tenantId: String, name: String, type: String, order: Int,
                isEnvironmentVariable: Bool, envelope: String, updatedAt: Date) {
        self.id = id; self.itemId = itemId; self.vaultId = vaultId; self.tenantId = tenantId; self.name = name; self.type = type
        self.order = order; self.isEnvironmentVariable = isEnvironmentVariable; self.envelope = envelope; self.updatedAt = updatedAt
    }
}

public struct WrappedKey: Codable, Sendable, Equatable {
    public var vaultId: String
    public var tenantId: String
    public var principalId: String
    public var recipientKeyId: String
    public var dekVersion: Int
    public var wrappedKey: String
    /// SignedEnvelope<WrappedKeyStatement> JSON text, exactly as received.
    public var statement: String
    public var signerPrincipalId: String
    public var createdAt: Date
    public var id: String { "\(vaultId):\(principalId):\(recipientKeyId):\(dekVersion)" }
}

public struct PermissionGrant: Codable, Sendable, Equatable {
    public var tenantId: String
    public var assetType: AssetType
    public var assetId: String
    public var granteeType: GranteeType
    public var granteeId: String
    public var level: AccessLevel
    public var createdAt: Date
    public var id: String { "\(assetType.rawValue):\(assetId):\(granteeType.rawValue):\(granteeId)" }
}

public struct PendingGrant: Codable, Sendable, Equatable {
    public var vaultId: String
    public var tenantId: String
    public var principalId: String
    public var level: AccessLevel
    public var createdAt: Date
    public var id: String { "\(vaultId):\(principalId)" }
}

public struct Feedback: Codable, Sendable, Equatable {
    public var id: String
    public var tenantId: String
    public var agentId: String
    public var surface: String
    public var summary: String
    public var details: String?
    public var desiredOutcome: String?
    public var createdAt: Date
}

/// One audit event. `hash` = SHA-256 over `prevHash` and the event's canonical JSON (see AuditChain).
public struct AuditEvent: Codable, Sendable, Equatable {
    public var seq: Int64
    public var tenantId: String?
    public var time: Date
    public var action: String
    public var outcome: String
    public var principalId: String?
    public var accessKey: String?
    public var assetType: String?
    public var assetId: String?
    public var source: String?
    public var detail: String?
    public var prevHash: String
    public var hash: String
    public init(seq: Int64, tenantId: String?, time: Date, action: String, outcome: String, principalId: String?, accessKey: String?,
                assetType: String?, assetId: String?, source: String?, detail: String?, prevHash: String, hash: String) {
        self.seq = seq; self.tenantId = tenantId; self.time = time; self.action = action; self.outcome = outcome
        self.principalId = principalId; self.accessKey = accessKey; self.assetType = assetType; self.assetId = assetId
        self.source = source; self.detail = detail; self.prevHash = prevHash; self.hash = hash
    }
}

/// One row of the change log: what changed, in which tenant, at which sequence number.
public struct ChangeRecord: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        case vault, item, field, fieldDeleted, wrappedKey, grant, principal, publicKey, group, project
    }
    public var seq: Int64
    public var tenantId: String
    public var kind: Kind
    public var entityId: String
    public var vaultId: String?
    public init(seq: Int64, tenantId: String, kind: Kind, entityId: String, vaultId: String?) {
        self.seq = seq; self.tenantId = tenantId; self.kind = kind; self.entityId = entityId; self.vaultId = vaultId
    }
}
