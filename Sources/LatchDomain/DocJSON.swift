import Foundation
import LatchCrypto

// The documents a field read decodes (its field, its item, its vault's access members) read
// directly, without JSONDecoder's generic machinery: they are flat JSON objects the stores wrote
// with `JSONEncoder`, and decoding them was the largest cost of a field read after the store.
//
// The direct reader accepts only what it fully understands; on anything else (a malformed
// document, a duplicate member, a number with a fraction where an Int is wanted, an unpaired
// surrogate escape...) it gives up and the caller decodes with JSONDecoder as before, so the
// result, or the error, is the same. `DocJSONTests` holds the two equal.

/// A type the stores' documents can be read into directly; nil means "use JSONDecoder".
protocol DirectDocDecodable {
    static func directDecode(_ doc: String) -> Self?
}

extension Field: DirectDocDecodable {
    static func directDecode(_ doc: String) -> Field? {
        var id, itemId, vaultId, tenantId, name, type, envelope: String?
        var order: Int?
        var env: Bool?
        var updatedAt: Date?
        guard DocScanner.read(doc, { s, key in
            switch key {
            case "id": return once(&id, s.string())
            case "itemId": return once(&itemId, s.string())
            case "vaultId": return once(&vaultId, s.string())
            case "tenantId": return once(&tenantId, s.string())
            case "name": return once(&name, s.string())
            case "type": return once(&type, s.string())
            case "order": return once(&order, s.int())
            case "isEnvironmentVariable": return once(&env, s.bool())
            case "envelope": return once(&envelope, s.string())
            case "updatedAt": return once(&updatedAt, s.date())
            default: return s.skipValue()
            }
        }), let id, let itemId, let vaultId, let tenantId, let name, let type, let order, let env, let envelope, let updatedAt
        else { return nil }
        return Field(id: id, itemId: itemId, vaultId: vaultId, tenantId: tenantId, name: name, type: type, order: order,
                     isEnvironmentVariable: env, envelope: envelope, updatedAt: updatedAt)
    }
}

extension Item: DirectDocDecodable {
    static func directDecode(_ doc: String) -> Item? {
        var id, vaultId, tenantId, name, type, detailHash, detailCheckpoint: String?
        var websites: [String]?
        var groupId: String??
        var detailLogIndex: Int64??
        var detailVersion: Int?
        var createdAt, updatedAt: Date?
        var archived: Bool?
        guard DocScanner.read(doc, { s, key in
            switch key {
            case "id": return once(&id, s.string())
            case "vaultId": return once(&vaultId, s.string())
            case "tenantId": return once(&tenantId, s.string())
            case "name": return once(&name, s.string())
            case "type": return once(&type, s.string())
            case "websites": return once(&websites, s.stringArray())
            case "groupId": return once(&groupId, s.optionalString())
            case "detailVersion": return once(&detailVersion, s.int())
            case "detailHash": return once(&detailHash, s.string())
            case "detailCheckpoint": return once(&detailCheckpoint, s.string())
            case "detailLogIndex": return once(&detailLogIndex, s.optionalInt64())
            case "createdAt": return once(&createdAt, s.date())
            case "updatedAt": return once(&updatedAt, s.date())
            case "archived": return once(&archived, s.bool())
            default: return s.skipValue()
            }
        }), let id, let vaultId, let tenantId, let name, let type, let websites, let detailVersion, let detailHash,
           let detailCheckpoint, let createdAt, let updatedAt, let archived
        else { return nil }
        var item = Item(id: id, vaultId: vaultId, tenantId: tenantId, name: name, type: type, websites: websites,
                        groupId: groupId ?? nil, detailVersion: detailVersion, detailHash: detailHash,
                        detailCheckpoint: detailCheckpoint, createdAt: createdAt, updatedAt: updatedAt, archived: archived)
        item.detailLogIndex = detailLogIndex ?? nil
        return item
    }
}

extension VaultAccessView: DirectDocDecodable {
    init(id: String, tenantId: String, projectId: String?, archived: Bool) {
        self.id = id; self.tenantId = tenantId; self.projectId = projectId; self.archived = archived
    }

    static func directDecode(_ doc: String) -> VaultAccessView? {
        var id, tenantId: String?
        var projectId: String??
        var archived: Bool?
        guard DocScanner.read(doc, { s, key in
            switch key {
            case "id": return once(&id, s.string())
            case "tenantId": return once(&tenantId, s.string())
            case "projectId": return once(&projectId, s.optionalString())
            case "archived": return once(&archived, s.bool())
            default: return s.skipValue()
            }
        }), let id, let tenantId, let archived
        else { return nil }
        return VaultAccessView(id: id, tenantId: tenantId, projectId: projectId ?? nil, archived: archived)
    }
}

// The documents a sync answer and the listings read besides those (vaults, keys, wraps,
// grants, group members, principals), the same way: JSONDecoder on them was a fifth of the
// server's CPU for a sync.

extension DocScanner {
    /// A date as `JSONEncoder`'s default strategy writes it (seconds since 2001 as a number).
    mutating func date() -> Date? { double().map { Date(timeIntervalSinceReferenceDate: $0) } }

    /// A string that is the raw value of `T`; nil for any other value.
    mutating func raw<T: RawRepresentable>(_: T.Type) -> T? where T.RawValue == String { string().flatMap(T.init(rawValue:)) }

    mutating func optionalDate() -> Date?? { null() ? .some(nil) : date().map { .some($0) } }
}

extension Vault: DirectDocDecodable {
    static func directDecode(_ doc: String) -> Vault? {
        var id, tenantId, name, dataClassification, summaryCheckpoint, createdBy: String?
        var projectId: String??
        var currentDekVersion, summaryVersion: Int?
        var summaryLogIndex, writersLogIndex: Int64??
        var writers: [WritersLink]??
        var createdAt, updatedAt: Date?
        var archived: Bool?
        guard DocScanner.read(doc, { s, key in
            switch key {
            case "id": return once(&id, s.string())
            case "tenantId": return once(&tenantId, s.string())
            case "projectId": return once(&projectId, s.optionalString())
            case "name": return once(&name, s.string())
            case "dataClassification": return once(&dataClassification, s.string())
            case "currentDekVersion": return once(&currentDekVersion, s.int())
            case "summaryVersion": return once(&summaryVersion, s.int())
            case "summaryCheckpoint": return once(&summaryCheckpoint, s.string())
            case "summaryLogIndex": return once(&summaryLogIndex, s.optionalInt64())
            case "writers": return once(&writers, s.null() ? .some(nil) : s.array(WritersLink.read).map { .some($0) })
            case "writersLogIndex": return once(&writersLogIndex, s.optionalInt64())
            case "createdBy": return once(&createdBy, s.string())
            case "createdAt": return once(&createdAt, s.date())
            case "updatedAt": return once(&updatedAt, s.date())
            case "archived": return once(&archived, s.bool())
            default: return s.skipValue()
            }
        }), let id, let tenantId, let name, let dataClassification, let currentDekVersion, let summaryVersion,
           let summaryCheckpoint, let createdBy, let createdAt, let updatedAt, let archived
        else { return nil }
        var v = Vault(id: id, tenantId: tenantId, projectId: projectId ?? nil, name: name, dataClassification: dataClassification,
                      currentDekVersion: currentDekVersion, summaryVersion: summaryVersion, summaryCheckpoint: summaryCheckpoint,
                      createdBy: createdBy, createdAt: createdAt, updatedAt: updatedAt, archived: archived)
        v.summaryLogIndex = summaryLogIndex ?? nil
        v.writers = writers ?? nil
        v.writersLogIndex = writersLogIndex ?? nil
        return v
    }
}

extension WritersLink {
    static func read(_ s: inout DocScanner) -> WritersLink? {
        var statement, signerId, signerKeyId: String?
        guard s.object({ s, key in
            switch key {
            case "statement": return once(&statement, s.string())
            case "signerId": return once(&signerId, s.string())
            case "signerKeyId": return once(&signerKeyId, s.string())
            default: return s.skipValue()
            }
        }), let statement, let signerId, let signerKeyId
        else { return nil }
        return WritersLink(statement: statement, signerId: signerId, signerKeyId: signerKeyId)
    }
}

extension PublicKeyRecord: DirectDocDecodable {
    static func directDecode(_ doc: String) -> PublicKeyRecord? {
        var keyId, principalId, tenantId, pem: String?
        var status: Status?
        var createdAt: Date?
        var retiredAt: Date??
        var logIndex: Int64??
        var rotationStatement: String??
        guard DocScanner.read(doc, { s, key in
            switch key {
            case "keyId": return once(&keyId, s.string())
            case "principalId": return once(&principalId, s.string())
            case "tenantId": return once(&tenantId, s.string())
            case "pem": return once(&pem, s.string())
            case "status": return once(&status, s.raw(Status.self))
            case "createdAt": return once(&createdAt, s.date())
            case "retiredAt": return once(&retiredAt, s.optionalDate())
            case "logIndex": return once(&logIndex, s.optionalInt64())
            case "rotationStatement": return once(&rotationStatement, s.optionalString())
            default: return s.skipValue()
            }
        }), let keyId, let principalId, let tenantId, let pem, let status, let createdAt
        else { return nil }
        return PublicKeyRecord(keyId: keyId, principalId: principalId, tenantId: tenantId, pem: pem, status: status, createdAt: createdAt,
                               retiredAt: retiredAt ?? nil, logIndex: logIndex ?? nil, rotationStatement: rotationStatement ?? nil)
    }
}

extension WrappedKey: DirectDocDecodable {
    static func directDecode(_ doc: String) -> WrappedKey? {
        var vaultId, tenantId, principalId, recipientKeyId, wrappedKey, statement, signerPrincipalId: String?
        var dekVersion: Int?
        var createdAt: Date?
        guard DocScanner.read(doc, { s, key in
            switch key {
            case "vaultId": return once(&vaultId, s.string())
            case "tenantId": return once(&tenantId, s.string())
            case "principalId": return once(&principalId, s.string())
            case "recipientKeyId": return once(&recipientKeyId, s.string())
            case "dekVersion": return once(&dekVersion, s.int())
            case "wrappedKey": return once(&wrappedKey, s.string())
            case "statement": return once(&statement, s.string())
            case "signerPrincipalId": return once(&signerPrincipalId, s.string())
            case "createdAt": return once(&createdAt, s.date())
            default: return s.skipValue()
            }
        }), let vaultId, let tenantId, let principalId, let recipientKeyId, let dekVersion, let wrappedKey, let statement,
           let signerPrincipalId, let createdAt
        else { return nil }
        return WrappedKey(vaultId: vaultId, tenantId: tenantId, principalId: principalId, recipientKeyId: recipientKeyId, dekVersion: dekVersion,
                          wrappedKey: wrappedKey, statement: statement, signerPrincipalId: signerPrincipalId, createdAt: createdAt)
    }
}

extension PermissionGrant: DirectDocDecodable {
    static func directDecode(_ doc: String) -> PermissionGrant? {
        var tenantId, assetId, granteeId: String?
        var assetType: AssetType?
        var granteeType: GranteeType?
        var level: AccessLevel?
        var createdAt: Date?
        guard DocScanner.read(doc, { s, key in
            switch key {
            case "tenantId": return once(&tenantId, s.string())
            case "assetType": return once(&assetType, s.raw(AssetType.self))
            case "assetId": return once(&assetId, s.string())
            case "granteeType": return once(&granteeType, s.raw(GranteeType.self))
            case "granteeId": return once(&granteeId, s.string())
            case "level": return once(&level, s.raw(AccessLevel.self))
            case "createdAt": return once(&createdAt, s.date())
            default: return s.skipValue()
            }
        }), let tenantId, let assetType, let assetId, let granteeType, let granteeId, let level, let createdAt
        else { return nil }
        return PermissionGrant(tenantId: tenantId, assetType: assetType, assetId: assetId, granteeType: granteeType,
                               granteeId: granteeId, level: level, createdAt: createdAt)
    }
}

extension GroupMembership: DirectDocDecodable {
    static func directDecode(_ doc: String) -> GroupMembership? {
        var groupId, principalId, tenantId: String?
        guard DocScanner.read(doc, { s, key in
            switch key {
            case "groupId": return once(&groupId, s.string())
            case "principalId": return once(&principalId, s.string())
            case "tenantId": return once(&tenantId, s.string())
            default: return s.skipValue()
            }
        }), let groupId, let principalId, let tenantId
        else { return nil }
        return GroupMembership(groupId: groupId, principalId: principalId, tenantId: tenantId)
    }
}

extension Principal: DirectDocDecodable {
    static func directDecode(_ doc: String) -> Principal? {
        var id, tenantId, name: String?
        var type: PrincipalType?
        var role: TenantRole?
        var createdAt: Date?
        var createdBy: String??
        var archived: Bool?
        guard DocScanner.read(doc, { s, key in
            switch key {
            case "id": return once(&id, s.string())
            case "tenantId": return once(&tenantId, s.string())
            case "type": return once(&type, s.raw(PrincipalType.self))
            case "name": return once(&name, s.string())
            case "role": return once(&role, s.raw(TenantRole.self))
            case "createdAt": return once(&createdAt, s.date())
            case "createdBy": return once(&createdBy, s.optionalString())
            case "archived": return once(&archived, s.bool())
            default: return s.skipValue()
            }
        }), let id, let tenantId, let type, let name, let role, let createdAt, let archived
        else { return nil }
        return Principal(id: id, tenantId: tenantId, type: type, name: name, role: role, createdAt: createdAt,
                         createdBy: createdBy ?? nil, archived: archived)
    }
}
