import Foundation

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

/// A cursor over the UTF-8 of one JSON document.
struct DocScanner {
    let p: UnsafeBufferPointer<UInt8>
    var i = 0

    init(_ p: UnsafeBufferPointer<UInt8>) { self.p = p }

    mutating func skipSpace() {
        while i < p.count {
            let c = p[i]
            guard c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 else { return }
            i += 1
        }
    }

    /// Consumes `c` (after white space) when it is next.
    mutating func take(_ c: UInt8) -> Bool {
        skipSpace()
        guard i < p.count, p[i] == c else { return false }
        i += 1
        return true
    }

    var atEnd: Bool { mutating get { skipSpace(); return i == p.count } }

    /// Reads each member of an object: `member` is called with the key and must consume the
    /// value (returning false to give up). False when the document is not such an object.
    mutating func object(_ member: (inout DocScanner, String) -> Bool) -> Bool {
        guard take(0x7B) else { return false }   // {
        if take(0x7D) { return true }             // }
        while true {
            guard let key = string(), take(0x3A), member(&self, key) else { return false }   // :
            if take(0x2C) { continue }   // ,
            return take(0x7D)
        }
    }

    /// A JSON string, unescaped.
    mutating func string() -> String? {
        skipSpace()
        guard i < p.count, p[i] == 0x22 else { return nil }
        i += 1
        let start = i
        while i < p.count {
            let c = p[i]
            if c == 0x22 {
                let s = String(decoding: UnsafeBufferPointer(rebasing: p[start..<i]), as: UTF8.self)
                i += 1
                return s
            }
            if c == 0x5C { break }
            if c < 0x20 { return nil }
            i += 1
        }
        // With escapes.
        var out: [UInt8] = []
        out.reserveCapacity(p.count - start)
        out.append(contentsOf: UnsafeBufferPointer(rebasing: p[start..<i]))
        while i < p.count {
            let c = p[i]
            if c == 0x22 { i += 1; return String(decoding: out, as: UTF8.self) }
            if c < 0x20 { return nil }
            if c != 0x5C {
                // The run up to the next quote, backslash or control byte, copied whole.
                var j = i + 1
                while j < p.count, p[j] != 0x22, p[j] != 0x5C, p[j] >= 0x20 { j += 1 }
                out.append(contentsOf: UnsafeBufferPointer(rebasing: p[i..<j]))
                i = j
                continue
            }
            i += 1
            guard i < p.count else { return nil }
            let e = p[i]
            i += 1
            switch e {
            case 0x22, 0x5C, 0x2F: out.append(e)   // " \ /
            case 0x62: out.append(0x08)   // b
            case 0x66: out.append(0x0C)   // f
            case 0x6E: out.append(0x0A)   // n
            case 0x72: out.append(0x0D)   // r
            case 0x74: out.append(0x09)   // t
            case 0x75:                     // u
                guard var u = hex4() else { return nil }
                if u >= 0xD800 && u < 0xDC00 {
                    guard i + 1 < p.count, p[i] == 0x5C, p[i + 1] == 0x75 else { return nil }
                    i += 2
                    guard let low = hex4(), low >= 0xDC00 && low < 0xE000 else { return nil }
                    u = 0x10000 + ((u - 0xD800) << 10) + (low - 0xDC00)
                } else if u >= 0xDC00 && u < 0xE000 {
                    return nil
                }
                guard let scalar = Unicode.Scalar(u) else { return nil }
                out.append(contentsOf: UTF8.encode(scalar)!)
            default: return nil
            }
        }
        return nil
    }

    private mutating func hex4() -> UInt32? {
        guard i + 4 <= p.count else { return nil }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = p[i]
            let d: UInt8
            switch c {
            case 0x30...0x39: d = c - 0x30
            case 0x41...0x46: d = c - 0x41 + 10
            case 0x61...0x66: d = c - 0x61 + 10
            default: return nil
            }
            v = v << 4 | UInt32(d)
            i += 1
        }
        return v
    }

    /// A JSON number's text (validated against the JSON grammar).
    private mutating func numberToken() -> UnsafeBufferPointer<UInt8>? {
        skipSpace()
        let start = i
        func digit(_ k: Int) -> Bool { k < p.count && p[k] >= 0x30 && p[k] <= 0x39 }
        if i < p.count, p[i] == 0x2D { i += 1 }   // -
        guard digit(i) else { return nil }
        if p[i] == 0x30 { i += 1 } else { while digit(i) { i += 1 } }
        if i < p.count, p[i] == 0x2E {   // .
            i += 1
            guard digit(i) else { return nil }
            while digit(i) { i += 1 }
        }
        if i < p.count, p[i] == 0x65 || p[i] == 0x45 {   // e E
            i += 1
            if i < p.count, p[i] == 0x2B || p[i] == 0x2D { i += 1 }
            guard digit(i) else { return nil }
            while digit(i) { i += 1 }
        }
        return UnsafeBufferPointer(rebasing: p[start..<i])
    }

    /// A JSON integer (no fraction, no exponent) that fits `Int64`.
    mutating func int64() -> Int64? {
        guard let t = numberToken() else { return nil }
        var k = 0
        let negative = t[0] == 0x2D
        if negative { k = 1 }
        var v: Int64 = 0
        while k < t.count {
            let c = t[k]
            guard c >= 0x30 && c <= 0x39 else { return nil }   // a fraction or an exponent
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (s, o2) = negative ? m.subtractingReportingOverflow(Int64(c - 0x30)) : m.addingReportingOverflow(Int64(c - 0x30))
            guard !o1, !o2 else { return nil }
            v = s
            k += 1
        }
        return v
    }

    mutating func int() -> Int? { int64().flatMap { Int(exactly: $0) } }

    /// A JSON number as Double (correctly rounded, as JSONDecoder reads it).
    mutating func double() -> Double? {
        guard let t = numberToken() else { return nil }
        return Double(String(decoding: t, as: UTF8.self)).flatMap { $0.isFinite ? $0 : nil }
    }

    /// A date as `JSONEncoder`'s default strategy writes it (seconds since 2001 as a number).
    mutating func date() -> Date? { double().map { Date(timeIntervalSinceReferenceDate: $0) } }

    mutating func bool() -> Bool? {
        skipSpace()
        if literal("true") { return true }
        if literal("false") { return false }
        return nil
    }

    /// Consumes `null` when it is next.
    mutating func null() -> Bool { skipSpace(); return literal("null") }

    private mutating func literal(_ s: StaticString) -> Bool {
        let n = s.utf8CodeUnitCount
        guard i + n <= p.count else { return false }
        let b = s.utf8Start
        for k in 0..<n where p[i + k] != b[k] { return false }
        i += n
        return true
    }

    mutating func optionalString() -> String?? { null() ? .some(nil) : string().map { .some($0) } }
    mutating func optionalInt64() -> Int64?? { null() ? .some(nil) : int64().map { .some($0) } }

    mutating func stringArray() -> [String]? { array { $0.string() } }

    /// Skips any JSON value (members the reader does not want).
    mutating func skipValue(depth: Int = 0) -> Bool {
        guard depth < 64 else { return false }
        skipSpace()
        guard i < p.count else { return false }
        switch p[i] {
        case 0x22: return string() != nil
        case 0x7B:
            return object { s, _ in s.skipValue(depth: depth + 1) }
        case 0x5B:
            i += 1
            if take(0x5D) { return true }
            while true {
                guard skipValue(depth: depth + 1) else { return false }
                if take(0x2C) { continue }
                return take(0x5D)
            }
        case 0x74, 0x66: return bool() != nil
        case 0x6E: return null()
        default: return numberToken() != nil
        }
    }

    /// Reads a whole document: `read` gets the members; nil unless the document is one object
    /// and nothing follows it.
    static func read(_ doc: String, _ member: (inout DocScanner, String) -> Bool) -> Bool {
        var doc = doc
        return doc.withUTF8 { b in
            var s = DocScanner(b)
            return s.object(member) && s.atEnd
        }
    }
}

/// A member seen twice makes the reader give up (JSONDecoder's choice then stands).
private func once<T>(_ slot: inout T?, _ v: T?) -> Bool {
    guard slot == nil, let v else { return false }
    slot = v
    return true
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
    /// A JSON array whose every element `element` reads; nil gives up.
    mutating func array<T>(_ element: (inout DocScanner) -> T?) -> [T]? {
        guard take(0x5B) else { return nil }   // [
        var out: [T] = []
        if take(0x5D) { return out }            // ]
        while true {
            guard let e = element(&self) else { return nil }
            out.append(e)
            if take(0x2C) { continue }
            return take(0x5D) ? out : nil
        }
    }

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
