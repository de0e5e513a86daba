import Foundation

// The sync answer written directly, as `LatchJSON.encoder()` writes it (members sorted by name,
// dates in the `.iso8601` form, slashes unescaped, strings escaped as the canonical form escapes
// them): `JSONEncoder` was a sixth of the server's CPU for a sync, which every `latch get` waits on.
// `DirectWireEncodingTests` holds the two equal once decoded.

/// A JSON object or array being written into `out`.
struct WireJSONWriter {
    var out: [UInt8] = []
    private var first = true

    /// `{ … }`, members written by `body` in the order given (callers list them sorted).
    mutating func object(_ body: (inout WireJSONWriter) -> Void) {
        out.append(UInt8(ascii: "{")); first = true
        body(&self)
        out.append(UInt8(ascii: "}")); first = false
    }

    mutating func array<T>(_ items: [T], _ element: (inout WireJSONWriter, T) -> Void) {
        out.append(UInt8(ascii: "[")); first = true
        for item in items {
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
            element(&self, item)
        }
        out.append(UInt8(ascii: "]")); first = false
    }

    private mutating func key(_ name: StaticString) {
        if !first { out.append(UInt8(ascii: ",")) }
        first = false
        out.append(UInt8(ascii: "\""))
        out.append(contentsOf: UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
        out.append(contentsOf: [UInt8(ascii: "\""), UInt8(ascii: ":")])
    }

    mutating func string(_ name: StaticString, _ value: String) { key(name); LatchJSON.appendString(value, to: &out) }
    mutating func int(_ name: StaticString, _ value: some BinaryInteger) { key(name); out.append(contentsOf: String(value).utf8) }
    mutating func bool(_ name: StaticString, _ value: Bool) { key(name); out.append(contentsOf: (value ? "true" : "false").utf8) }
    /// JSONEncoder leaves an absent optional out altogether.
    mutating func optionalString(_ name: StaticString, _ value: String?) { if let value { string(name, value) } }
    mutating func optionalInt(_ name: StaticString, _ value: Int64?) { if let value { int(name, value) } }
    mutating func strings(_ name: StaticString, _ values: [String]) { key(name); array(values) { $0.value($1) } }
    mutating func value(_ s: String) { LatchJSON.appendString(s, to: &out) }
    mutating func date(_ name: StaticString, _ value: Date) { key(name); LatchJSON.appendString(LatchJSON.utcString(value), to: &out) }
    mutating func member(_ name: StaticString, _ body: (inout WireJSONWriter) -> Void) { key(name); body(&self) }
}

extension LatchJSON {
    /// `date` as `.iso8601` writes it (`2026-12-02T11:39:20Z`: UTC, whole seconds, the fraction
    /// dropped), for the years `utcDate` reads back; any other date in Foundation's own form.
    public static func utcString(_ date: Date) -> String {
        let t = date.timeIntervalSince1970.rounded(.down)
        guard t >= -12_212_553_600, t < 253_402_300_800 else {   // 1583-01-01 ..< 10000-01-01
            return date.formatted(Date.ISO8601FormatStyle())
        }
        let seconds = Int(t)
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = seconds - days * 86_400
        // Civil date from days since 1970-01-01 (proleptic Gregorian, eras of 400 years).
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1_460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        func pad(_ n: Int, _ width: Int) -> String {
            let s = String(n)
            return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
        }
        return pad(year, 4) + "-" + pad(month, 2) + "-" + pad(day, 2) + "T" + pad(secondOfDay / 3_600, 2) + ":"
            + pad(secondOfDay / 60 % 60, 2) + ":" + pad(secondOfDay % 60, 2) + "Z"
    }
}

extension SyncResponse {
    /// The JSON `LatchJSON.encoder()` would write for this answer, written directly.
    public func jsonData() -> Data {
        var w = WireJSONWriter()
        w.out.reserveCapacity(4096)
        w.object { w in
            w.string("cursor", cursor)
            w.strings("deletedFieldIds", deletedFieldIds)
            if let directories { w.member("directories") { $0.array(directories) { $1.write(&$0) } } }
            w.member("fields") { $0.array(fields) { w, f in
                w.object { w in
                    w.member("field") { f.field.write(&$0) }
                    w.string("vaultId", f.vaultId)
                }
            } }
            w.bool("full", full)
            w.bool("hasMore", hasMore)
            w.member("items") { $0.array(items) { w, i in
                w.object { w in
                    w.bool("archived", i.archived)
                    w.string("detailCheckpoint", i.detailCheckpoint)
                    w.member("item") { i.item.write(&$0) }
                }
            } }
            if let log { w.member("log") { log.write(&$0) } }
            if let me { w.member("me") { me.write(&$0) } }
            w.strings("removedVaultIds", removedVaultIds)
            w.member("vaults") { $0.array(vaults) { w, v in
                w.object { w in
                    w.string("summaryCheckpoint", v.summaryCheckpoint)
                    w.member("vault") { v.vault.write(&$0) }
                }
            } }
            w.member("wrappedKeys") { $0.array(wrappedKeys) { $1.write(&$0) } }
        }
        return Data(w.out)
    }
}

extension VaultInfo {
    func write(_ w: inout WireJSONWriter) {
        w.object { w in
            w.bool("archived", archived)
            w.date("createdAt", createdAt)
            w.int("currentDekVersion", currentDekVersion)
            w.string("dataClassification", dataClassification)
            w.string("id", id)
            w.string("name", name)
            w.optionalString("projectId", projectId)
            w.optionalInt("summaryLogIndex", summaryLogIndex)
            w.int("summaryVersion", summaryVersion)
            w.date("updatedAt", updatedAt)
        }
    }
}

extension ItemInfo {
    func write(_ w: inout WireJSONWriter) {
        w.object { w in
            w.date("createdAt", createdAt)
            w.string("detailHash", detailHash)
            w.optionalInt("detailLogIndex", detailLogIndex)
            w.int("detailVersion", detailVersion)
            w.optionalString("groupId", groupId)
            w.string("id", id)
            w.string("name", name)
            w.string("type", type)
            w.date("updatedAt", updatedAt)
            w.string("vaultId", vaultId)
            w.strings("websites", websites)
        }
    }
}

extension FieldInfo {
    func write(_ w: inout WireJSONWriter) {
        w.object { w in
            w.string("id", id)
            w.bool("isEnvironmentVariable", isEnvironmentVariable)
            w.string("itemId", itemId)
            w.string("name", name)
            w.int("order", order)
            w.string("type", type)
            w.string("value", value)
        }
    }
}

extension WrappedKeyInfo {
    func write(_ w: inout WireJSONWriter) {
        w.object { w in
            w.date("createdAt", createdAt)
            w.int("dekVersion", dekVersion)
            w.string("principalId", principalId)
            w.string("recipientKeyId", recipientKeyId)
            w.string("signerPrincipalId", signerPrincipalId)
            w.string("statement", statement)
            w.string("vaultId", vaultId)
            w.string("wrappedKey", wrappedKey)
        }
    }
}

extension SyncLogProofs {
    func write(_ w: inout WireJSONWriter) {
        w.object { w in
            w.strings("consistency", consistency)
            w.int("consistencyFrom", consistencyFrom)
            w.member("head") { w in
                w.object { w in
                    w.string("checkpoint", head.checkpoint)
                    w.string("logKey", head.logKey)
                    w.string("rootHash", head.rootHash)
                    w.int("treeSize", head.treeSize)
                }
            }
            w.member("inclusion") { w in
                w.object { w in
                    w.strings("hashes", inclusion.hashes)
                    w.member("proofs") { $0.array(inclusion.proofs) { w, p in
                        w.object { w in
                            w.int("leafIndex", p.leafIndex)
                            w.member("path") { $0.array(p.path) { w, n in w.out.append(contentsOf: String(n).utf8) } }
                        }
                    } }
                    w.int("treeSize", inclusion.treeSize)
                }
            }
        }
    }
}

extension PublicKeysResponse {
    func write(_ w: inout WireJSONWriter) {
        w.object { w in
            w.member("publicKeys") { $0.array(publicKeys) { w, k in
                w.object { w in
                    w.string("keyId", k.keyId)
                    w.string("level", k.level)
                    w.optionalInt("logIndex", k.logIndex)
                    w.string("name", k.name)
                    w.string("principalId", k.principalId)
                    w.string("principalType", k.principalType)
                    w.string("publicKey", k.publicKey)
                    if let rotations = k.rotations {
                        w.member("rotations") { $0.array(rotations) { w, r in
                            w.object { w in
                                w.string("previousPublicKey", r.previousPublicKey)
                                w.string("statement", r.statement)
                            }
                        } }
                    }
                }
            } }
            w.string("vaultId", vaultId)
            if let writers {
                w.member("writers") { $0.array(writers) { w, l in
                    w.object { w in
                        w.string("signerId", l.signerId)
                        w.optionalInt("signerKeyLogIndex", l.signerKeyLogIndex)
                        w.string("signerPublicKey", l.signerPublicKey)
                        w.string("statement", l.statement)
                    }
                } }
            }
            w.optionalInt("writersLogIndex", writersLogIndex)
        }
    }
}

extension MeResponse {
    func write(_ w: inout WireJSONWriter) {
        w.object { w in
            w.string("accessKey", accessKey)
            if let expiresAt { w.date("expiresAt", expiresAt) }
            w.strings("permissions", permissions)
            w.member("principal") { w in
                w.object { w in
                    w.optionalString("activeKeyId", principal.activeKeyId)
                    w.date("createdAt", principal.createdAt)
                    w.string("id", principal.id)
                    w.string("name", principal.name)
                    w.string("role", principal.role)
                    w.string("tenantId", principal.tenantId)
                    w.string("type", principal.type)
                }
            }
            if let k = publicKey {
                w.member("publicKey") { w in
                    w.object { w in
                        w.date("createdAt", k.createdAt)
                        w.string("keyId", k.keyId)
                        w.optionalInt("logIndex", k.logIndex)
                        w.string("principalId", k.principalId)
                        w.string("publicKey", k.publicKey)
                        w.string("status", k.status)
                    }
                }
            }
            w.string("scope", scope)
        }
    }
}
