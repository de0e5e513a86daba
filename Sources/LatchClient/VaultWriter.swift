import Foundation
import LatchCrypto

/// Builds the signed material an authorised writer sends: a new vault's first summary and
/// wrap, a DEK wrap for another member, and a new item version (envelopes, detail and
/// summary checkpoints). Pure: randomness comes in, no I/O.
public enum VaultWriter {
    public struct Wrap: Sendable {
        public var dekVersion: Int
        public var wrappedKey: Data
        public var statement: SignedEnvelope<WrappedKeyStatement>
    }

    public struct NewVault: Sendable {
        public var dek: DataEncryptionKey
        public var summary: SignedEnvelope<VaultSummaryCheckpoint>
        public var creatorWrap: Wrap
        /// Writer set version 1: the creator as ADMIN.
        public var writers: SignedEnvelope<VaultWritersStatement>
    }

    /// A field to write. `id` is kept when updating an existing field.
    public struct FieldInput: Sendable {
        public var id: String
        public var name: String
        public var type: String
        public var order: Int
        public var isEnvironmentVariable: Bool
        public var value: String
        public init(id: String, name: String, type: String = "SECRET", order: Int = 0, isEnvironmentVariable: Bool = true, value: String) {
            self.id = id; self.name = name; self.type = type; self.order = order
            self.isEnvironmentVariable = isEnvironmentVariable; self.value = value
        }
    }

    public struct ItemWrite: Sendable {
        /// field id → envelope string
        public var envelopes: [String: String]
        public var detail: SignedEnvelope<ItemDetailCheckpoint>
        public var summary: SignedEnvelope<VaultSummaryCheckpoint>
    }

    public static func wrap(_ dek: DataEncryptionKey, vaultId: String, to recipient: PrincipalPublicKey,
                            signer: PrincipalPrivateKey) throws -> Wrap {
        let wrapped = try recipient.wrap(dek)
        let statement = WrappedKeyStatement(vaultId: vaultId, dekVersion: dek.version, recipientKeyId: recipient.keyId, wrappedKey: wrapped)
        return Wrap(dekVersion: dek.version, wrappedKey: wrapped, statement: try .sign(statement, with: signer))
    }

    public static func newVault(id: String, name: String, dataClassification: String = "CONFIDENTIAL",
                                creator: PrincipalPrivateKey, creatorId: String, using rng: inout some RandomNumberGenerator) throws -> NewVault {
        let dek = DataEncryptionKey.generate(version: 1, using: &rng)
        let summary = VaultSummaryCheckpoint(vaultId: id, version: 1, name: name, dataClassification: dataClassification,
                                             currentDekVersion: 1, items: [])
        return NewVault(dek: dek, summary: try .sign(summary, with: creator),
                        creatorWrap: try wrap(dek, vaultId: id, to: creator.publicKey, signer: creator),
                        writers: try .sign(.genesis(vaultId: id, creatorId: creatorId), with: creator))
    }

    public static func newVault(id: String, name: String, dataClassification: String = "CONFIDENTIAL",
                                creator: PrincipalPrivateKey, creatorId: String) throws -> NewVault {
        var rng = SystemRandomNumberGenerator()
        return try newVault(id: id, name: name, dataClassification: dataClassification, creator: creator, creatorId: creatorId, using: &rng)
    }

    /// Write an item (new, or a new version of `previousDetail`'s item) with exactly `fields`,
    /// and the next summary version after `summary`.
    public static func writeItem(summary: VaultSummaryCheckpoint, previousDetail: ItemDetailCheckpoint?,
                                 itemId: String, name: String, type: String, fields: [FieldInput],
                                 dek: DataEncryptionKey, signer: PrincipalPrivateKey,
                                 using rng: inout some RandomNumberGenerator) throws -> ItemWrite {
        guard dek.version == summary.currentDekVersion else {
            throw LatchError(.verification, "vault \(summary.vaultId): DEK v\(dek.version) is not the current v\(summary.currentDekVersion)")
        }
        var envelopes: [String: String] = [:]
        var signedFields: [ItemDetailCheckpoint.Field] = []
        for f in fields {
            let env = try FieldEnvelope.seal(Data(f.value.utf8), key: dek,
                                             context: EnvelopeContext(vaultId: summary.vaultId, itemId: itemId, fieldId: f.id, dekVersion: dek.version),
                                             using: &rng)
            envelopes[f.id] = env.string
            signedFields.append(.init(id: f.id, name: f.name, type: f.type, order: f.order,
                                      isEnvironmentVariable: f.isEnvironmentVariable, envelopeHash: env.sha256Hex))
        }
        let detail = ItemDetailCheckpoint(vaultItemId: itemId, vaultId: summary.vaultId, version: (previousDetail?.version ?? 0) + 1,
                                          name: name, type: type, websites: previousDetail?.websites ?? [],
                                          groupId: previousDetail?.groupId, fields: signedFields)
        try detail.checkFollows(previousDetail)
        var items = summary.items.filter { $0.id != itemId }
        let entry = VaultSummaryCheckpoint.Item(id: itemId, name: name, type: type, websites: detail.websites,
                                                groupId: detail.groupId, detailHash: detail.hash)
        if let index = summary.items.firstIndex(where: { $0.id == itemId }) {
            items.insert(entry, at: index)
        } else {
            items.append(entry)
        }
        var next = summary
        next.version = summary.version + 1
        next.items = items
        try next.checkFollows(summary)
        return ItemWrite(envelopes: envelopes, detail: try .sign(detail, with: signer), summary: try .sign(next, with: signer))
    }

    public static func writeItem(summary: VaultSummaryCheckpoint, previousDetail: ItemDetailCheckpoint?,
                                 itemId: String, name: String, type: String, fields: [FieldInput],
                                 dek: DataEncryptionKey, signer: PrincipalPrivateKey) throws -> ItemWrite {
        var rng = SystemRandomNumberGenerator()
        return try writeItem(summary: summary, previousDetail: previousDetail, itemId: itemId, name: name, type: type,
                             fields: fields, dek: dek, signer: signer, using: &rng)
    }
}
