import Foundation
import LatchCrypto

// The answers a `latch get` decodes on every run (the sync answer and what it carries) read
// directly with `DocScanner` instead of JSONDecoder, whose first use of each of these types in a
// short process costs more than the reading itself. Each reader gives up (nil) on anything it
// does not fully understand (a member seen twice, a date in another ISO 8601 form, a number with
// a fraction where an integer is wanted...), and `decodeDirect` then decodes with
// `LatchJSON.decoder()`, so the value, or the error, is always JSONDecoder's.
// `DirectWireDecodingTests` holds the two equal.

/// A wire type with a direct reader.
package protocol DirectWireDecodable: Decodable {
    /// Reads one JSON object of this type; nil gives up.
    static func read(_ s: inout DocScanner) -> Self?
}

extension DirectWireDecodable {
    /// The direct reader's answer, or nil when it gives up (the caller then uses JSONDecoder).
    package static func readDirect(_ data: Data) -> Self? {
        data.withUnsafeBytes { raw in
            var s = DocScanner(raw.bindMemory(to: UInt8.self))
            guard let v = read(&s), s.atEnd else { return nil }
            return v
        }
    }

    /// Decodes `data` as `LatchJSON.decoder()` does, directly when it can.
    package static func decodeDirect(_ data: Data) throws -> Self {
        if let v = readDirect(data) { return v }
        return try LatchJSON.decoder().decode(Self.self, from: data)
    }
}

extension DocScanner {
    /// A date as `LatchJSON.encoder()` writes it (`2026-12-02T11:39:20Z`); nil for any other form.
    mutating func isoDate() -> Date? { string().flatMap(LatchJSON.utcDate) }
}

extension SyncResponse: DirectWireDecodable {
    package static func read(_ s: inout DocScanner) -> SyncResponse? {
        var cursor: String?, full: Bool?, hasMore: Bool?
        var vaults: [VaultResponse]?, items: [SyncItem]?, fields: [SyncField]?, deletedFieldIds: [String]?
        var wrappedKeys: [WrappedKeyInfo]?, removedVaultIds: [String]?
        var log: SyncLogProofs??, directories: [PublicKeysResponse]??, me: MeResponse??
        guard s.object({ s, key in
            switch key {
            case "cursor": return once(&cursor, s.string())
            case "full": return once(&full, s.bool())
            case "hasMore": return once(&hasMore, s.bool())
            case "vaults": return once(&vaults, s.array(VaultResponse.read))
            case "items": return once(&items, s.array(SyncItem.read))
            case "fields": return once(&fields, s.array(SyncField.read))
            case "deletedFieldIds": return once(&deletedFieldIds, s.stringArray())
            case "wrappedKeys": return once(&wrappedKeys, s.array(WrappedKeyInfo.read))
            case "removedVaultIds": return once(&removedVaultIds, s.stringArray())
            case "log": return once(&log, s.optional(SyncLogProofs.read))
            case "directories": return once(&directories, s.optional { $0.array(PublicKeysResponse.read) })
            case "me": return once(&me, s.optional(MeResponse.read))
            default: return s.skipValue()
            }
        }), let cursor, let full, let hasMore, let vaults, let items, let fields, let deletedFieldIds, let wrappedKeys, let removedVaultIds
        else { return nil }
        return SyncResponse(cursor: cursor, full: full, hasMore: hasMore, vaults: vaults, items: items, fields: fields,
                            deletedFieldIds: deletedFieldIds, wrappedKeys: wrappedKeys, removedVaultIds: removedVaultIds,
                            log: log ?? nil, directories: directories ?? nil, me: me ?? nil)
    }
}

extension VaultResponse: DirectWireDecodable {
    package static func read(_ s: inout DocScanner) -> VaultResponse? {
        var vault: VaultInfo?, summaryCheckpoint: String?
        guard s.object({ s, key in
            switch key {
            case "vault": return once(&vault, VaultInfo.read(&s))
            case "summaryCheckpoint": return once(&summaryCheckpoint, s.string())
            default: return s.skipValue()
            }
        }), let vault, let summaryCheckpoint else { return nil }
        return VaultResponse(vault: vault, summaryCheckpoint: summaryCheckpoint)
    }
}

extension VaultInfo: DirectWireDecodable {
    package static func read(_ s: inout DocScanner) -> VaultInfo? {
        var id, name, dataClassification: String?, projectId: String??
        var currentDekVersion, summaryVersion: Int?, archived: Bool?, createdAt, updatedAt: Date?, summaryLogIndex: Int64??
        guard s.object({ s, key in
            switch key {
            case "id": return once(&id, s.string())
            case "name": return once(&name, s.string())
            case "dataClassification": return once(&dataClassification, s.string())
            case "projectId": return once(&projectId, s.optionalString())
            case "currentDekVersion": return once(&currentDekVersion, s.int())
            case "summaryVersion": return once(&summaryVersion, s.int())
            case "archived": return once(&archived, s.bool())
            case "createdAt": return once(&createdAt, s.isoDate())
            case "updatedAt": return once(&updatedAt, s.isoDate())
            case "summaryLogIndex": return once(&summaryLogIndex, s.optionalInt64())
            default: return s.skipValue()
            }
        }), let id, let name, let dataClassification, let currentDekVersion, let summaryVersion, let archived, let createdAt, let updatedAt
        else { return nil }
        return VaultInfo(id: id, name: name, dataClassification: dataClassification, projectId: projectId ?? nil,
                         currentDekVersion: currentDekVersion, summaryVersion: summaryVersion, archived: archived,
                         createdAt: createdAt, updatedAt: updatedAt, summaryLogIndex: summaryLogIndex ?? nil)
    }
}

extension SyncItem: DirectWireDecodable {
    package static func read(_ s: inout DocScanner) -> SyncItem? {
        var item: ItemInfo?, archived: Bool?, detailCheckpoint: String?
        guard s.object({ s, key in
            switch key {
            case "item": return once(&item, ItemInfo.read(&s))
            case "archived": return once(&archived, s.bool())
            case "detailCheckpoint": return once(&detailCheckpoint, s.string())
            default: return s.skipValue()
            }
        }), let item, let archived, let detailCheckpoint else { return nil }
        return SyncItem(item: item, archived: archived, detailCheckpoint: detailCheckpoint)
    }
}

extension ItemInfo: DirectWireDecodable {
    package static func read(_ s: inout DocScanner) -> ItemInfo? {
        var id, vaultId, name, type, detailHash: String?, websites: [String]?, groupId: String??
        var detailVersion: Int?, createdAt, updatedAt: Date?, detailLogIndex: Int64??
        guard s.object({ s, key in
            switch key {
            case "id": return once(&id, s.string())
            case "vaultId": return once(&vaultId, s.string())
            case "name": return once(&name, s.string())
            case "type": return once(&type, s.string())
            case "websites": return once(&websites, s.stringArray())
            case "groupId": return once(&groupId, s.optionalString())
            case "detailVersion": return once(&detailVersion, s.int())
            case "detailHash": return once(&detailHash, s.string())
            case "createdAt": return once(&createdAt, s.isoDate())
            case "updatedAt": return once(&updatedAt, s.isoDate())
            case "detailLogIndex": return once(&detailLogIndex, s.optionalInt64())
            default: return s.skipValue()
            }
        }), let id, let vaultId, let name, let type, let websites, let detailVersion, let detailHash, let createdAt, let updatedAt
        else { return nil }
        return ItemInfo(id: id, vaultId: vaultId, name: name, type: type, websites: websites, groupId: groupId ?? nil,
                        detailVersion: detailVersion, detailHash: detailHash, createdAt: createdAt, updatedAt: updatedAt,
                        detailLogIndex: detailLogIndex ?? nil)
    }
}

extension SyncField: DirectWireDecodable {
    package static func read(_ s: inout DocScanner) -> SyncField? {
        var vaultId: String?, field: FieldInfo?
        guard s.object({ s, key in
            switch key {
            case "vaultId": return once(&vaultId, s.string())
            case "field": return once(&field, FieldInfo.read(&s))
            default: return s.skipValue()
            }
        }), let vaultId, let field else { return nil }
        return SyncField(vaultId: vaultId, field: field)
    }
}

extension FieldInfo: DirectWireDecodable {
    package static func read(_ s: inout DocScanner) -> FieldInfo? {
        var id, itemId, name, type, value: String?, order: Int?, env: Bool?
        guard s.object({ s, key in
            switch key {
            case "id": return once(&id, s.string())
            case "itemId": return once(&itemId, s.string())
            case "name": return once(&name, s.string())
            case "type": return once(&type, s.string())
            case "order": return once(&order, s.int())
            case "isEnvironmentVariable": return once(&env, s.bool())
            case "value": return once(&value, s.string())
            default: return s.skipValue()
            }
        }), let id, let itemId, let name, let type, let order, let env, let value else { return nil }
        return FieldInfo(id: id, itemId: itemId, name: name, type: type, order: order, isEnvironmentVariable: env, value: value)
    }
}

extension WrappedKeyInfo: DirectWireDecodable {
    package static func read(_ s: inout DocScanner) -> WrappedKeyInfo? {
        var vaultId, principalId, recipientKeyId, wrappedKey, statement, signerPrincipalId: String?
        var dekVersion: Int?, createdAt: Date?
        guard s.object({ s, key in
            switch key {
            case "vaultId": return once(&vaultId, s.string())
            case "principalId": return once(&principalId, s.string())
            case "recipientKeyId": return once(&recipientKeyId, s.string())
            case "dekVersion": return once(&dekVersion, s.int())
            case "wrappedKey": return once(&wrappedKey, s.string())
            case "statement": return once(&statement, s.string())
            case "signerPrincipalId": return once(&signerPrincipalId, s.string())
            case "createdAt": return once(&createdAt, s.isoDate())
            default: return s.skipValue()
            }
        }), let vaultId, let principalId, let recipientKeyId, let dekVersion, let wrappedKey, let statement, let signerPrincipalId, let createdAt
        else { return nil }
        return WrappedKeyInfo(vaultId: vaultId, principalId: principalId, recipientKeyId: recipientKeyId, dekVersion: dekVersion,
                              wrappedKey: wrappedKey, statement: statement, signerPrincipalId: signerPrincipalId, createdAt: createdAt)
    }
}

extension SyncLogProofs: DirectWireDecodable {
    package static func read(_ s: inout DocScanner) -> SyncLogProofs? {
        var head: LogCheckpointResponse?, consistencyFrom: Int64?, consistency: [String]?, inclusion: LogInclusionBatchResponse?
        guard s.object({ s, key in
            switch key {
            case "head": return once(&head, LogCheckpointResponse.read(&s))
            case "consistencyFrom": return once(&consistencyFrom, s.int64())
            case "consistency": return once(&consistency, s.stringArray())
            case "inclusion": return once(&inclusion, LogInclusionBatchResponse.read(&s))
            default: return s.skipValue()
            }
        }), let head, let consistencyFrom, let consistency, let inclusion else { return nil }
        return SyncLogProofs(head: head, consistencyFrom: consistencyFrom, consistency: consistency, inclusion: inclusion)
    }
}

extension LogCheckpointResponse: DirectWireDecodable {
    package static func read(_ s: inout DocScanner) -> LogCheckpointResponse? {
        var treeSize: Int64?, rootHash, checkpoint, logKey: String?
        guard s.object({ s, key in
            switch key {
            case "treeSize": return once(&treeSize, s.int64())
            case "rootHash": return once(&rootHash, s.string())
            case "checkpoint": return once(&checkpoint, s.string())
            case "logKey": return once(&logKey, s.string())
            default: return s.skipValue()
            }
        }), let treeSize, let rootHash, let checkpoint, let logKey else { return nil }
        return LogCheckpointResponse(treeSize: treeSize, rootHash: rootHash, checkpoint: checkpoint, logKey: logKey)
    }
}

extension LogInclusionBatchResponse: DirectWireDecodable {
    package static func read(_ s: inout DocScanner) -> LogInclusionBatchResponse? {
        var treeSize: Int64?, hashes: [String]?, proofs: [Proof]?
        guard s.object({ s, key in
            switch key {
            case "treeSize": return once(&treeSize, s.int64())
            case "hashes": return once(&hashes, s.stringArray())
            case "proofs": return once(&proofs, s.array(Proof.read))
            default: return s.skipValue()
            }
        }), let treeSize, let hashes, let proofs else { return nil }
        return LogInclusionBatchResponse(treeSize: treeSize, hashes: hashes, proofs: proofs)
    }
}

extension LogInclusionBatchResponse.Proof: DirectWireDecodable {
    package static func read(_ s: inout DocScanner) -> Self? {
        var leafIndex: Int64?, path: [Int]?
        guard s.object({ s, key in
            switch key {
            case "leafIndex": return once(&leafIndex, s.int64())
            case "path": return once(&path, s.array { $0.int() })
            default: return s.skipValue()
            }
        }), let leafIndex, let path else { return nil }
        return Self(leafIndex: leafIndex, path: path)
    }
}

extension PublicKeysResponse: DirectWireDecodable {
    package static func read(_ s: inout DocScanner) -> PublicKeysResponse? {
        var vaultId: String?, publicKeys: [MemberKey]?, writers: [WritersLinkInfo]??, writersLogIndex: Int64??
        guard s.object({ s, key in
            switch key {
            case "vaultId": return once(&vaultId, s.string())
            case "publicKeys": return once(&publicKeys, s.array(MemberKey.read))
            case "writers": return once(&writers, s.optional { $0.array(WritersLinkInfo.read) })
            case "writersLogIndex": return once(&writersLogIndex, s.optionalInt64())
            default: return s.skipValue()
            }
        }), let vaultId, let publicKeys else { return nil }
        return PublicKeysResponse(vaultId: vaultId, publicKeys: publicKeys, writers: writers ?? nil, writersLogIndex: writersLogIndex ?? nil)
    }
}

extension MemberKey: DirectWireDecodable {
    package static func read(_ s: inout DocScanner) -> MemberKey? {
        var principalId, principalType, name, level, keyId, publicKey: String?
        var logIndex: Int64??, rotations: [KeyRotationLink]??
        guard s.object({ s, key in
            switch key {
            case "principalId": return once(&principalId, s.string())
            case "principalType": return once(&principalType, s.string())
            case "name": return once(&name, s.string())
            case "level": return once(&level, s.string())
            case "keyId": return once(&keyId, s.string())
            case "publicKey": return once(&publicKey, s.string())
            case "logIndex": return once(&logIndex, s.optionalInt64())
            case "rotations": return once(&rotations, s.optional { $0.array(KeyRotationLink.read) })
            default: return s.skipValue()
            }
        }), let principalId, let principalType, let name, let level, let keyId, let publicKey else { return nil }
        return MemberKey(principalId: principalId, principalType: principalType, name: name, level: level, keyId: keyId,
                         publicKey: publicKey, logIndex: logIndex ?? nil, rotations: rotations ?? nil)
    }
}

extension KeyRotationLink: DirectWireDecodable {
    package static func read(_ s: inout DocScanner) -> KeyRotationLink? {
        var previousPublicKey, statement: String?
        guard s.object({ s, key in
            switch key {
            case "previousPublicKey": return once(&previousPublicKey, s.string())
            case "statement": return once(&statement, s.string())
            default: return s.skipValue()
            }
        }), let previousPublicKey, let statement else { return nil }
        return KeyRotationLink(previousPublicKey: previousPublicKey, statement: statement)
    }
}

extension WritersLinkInfo: DirectWireDecodable {
    package static func read(_ s: inout DocScanner) -> WritersLinkInfo? {
        var statement, signerId, signerPublicKey: String?, signerKeyLogIndex: Int64??
        guard s.object({ s, key in
            switch key {
            case "statement": return once(&statement, s.string())
            case "signerId": return once(&signerId, s.string())
            case "signerPublicKey": return once(&signerPublicKey, s.string())
            case "signerKeyLogIndex": return once(&signerKeyLogIndex, s.optionalInt64())
            default: return s.skipValue()
            }
        }), let statement, let signerId, let signerPublicKey else { return nil }
        return WritersLinkInfo(statement: statement, signerId: signerId, signerPublicKey: signerPublicKey, signerKeyLogIndex: signerKeyLogIndex ?? nil)
    }
}

extension MeResponse: DirectWireDecodable {
    package static func read(_ s: inout DocScanner) -> MeResponse? {
        var principal: PrincipalInfo?, accessKey, scope: String?, permissions: [String]?, publicKey: PublicKeyInfo??, expiresAt: Date??
        guard s.object({ s, key in
            switch key {
            case "expiresAt": return once(&expiresAt, s.optional { $0.isoDate() })
            case "principal": return once(&principal, PrincipalInfo.read(&s))
            case "accessKey": return once(&accessKey, s.string())
            case "scope": return once(&scope, s.string())
            case "permissions": return once(&permissions, s.stringArray())
            case "publicKey": return once(&publicKey, s.optional(PublicKeyInfo.read))
            default: return s.skipValue()
            }
        }), let principal, let accessKey, let scope, let permissions else { return nil }
        return MeResponse(principal: principal, accessKey: accessKey, scope: scope, permissions: permissions, publicKey: publicKey ?? nil,
                          expiresAt: expiresAt ?? nil)
    }
}

extension PrincipalInfo: DirectWireDecodable {
    package static func read(_ s: inout DocScanner) -> PrincipalInfo? {
        var id, type, name, role, tenantId: String?, activeKeyId: String??, createdAt: Date?
        guard s.object({ s, key in
            switch key {
            case "id": return once(&id, s.string())
            case "type": return once(&type, s.string())
            case "name": return once(&name, s.string())
            case "role": return once(&role, s.string())
            case "tenantId": return once(&tenantId, s.string())
            case "activeKeyId": return once(&activeKeyId, s.optionalString())
            case "createdAt": return once(&createdAt, s.isoDate())
            default: return s.skipValue()
            }
        }), let id, let type, let name, let role, let tenantId, let createdAt else { return nil }
        return PrincipalInfo(id: id, type: type, name: name, role: role, tenantId: tenantId, activeKeyId: activeKeyId ?? nil, createdAt: createdAt)
    }
}

extension PublicKeyInfo: DirectWireDecodable {
    package static func read(_ s: inout DocScanner) -> PublicKeyInfo? {
        var keyId, publicKey, principalId, status: String?, createdAt: Date?, logIndex: Int64??
        guard s.object({ s, key in
            switch key {
            case "keyId": return once(&keyId, s.string())
            case "publicKey": return once(&publicKey, s.string())
            case "principalId": return once(&principalId, s.string())
            case "status": return once(&status, s.string())
            case "createdAt": return once(&createdAt, s.isoDate())
            case "logIndex": return once(&logIndex, s.optionalInt64())
            default: return s.skipValue()
            }
        }), let keyId, let publicKey, let principalId, let status, let createdAt else { return nil }
        return PublicKeyInfo(keyId: keyId, publicKey: publicKey, principalId: principalId, status: status, createdAt: createdAt, logIndex: logIndex ?? nil)
    }
}
