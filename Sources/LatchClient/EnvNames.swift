/// The environment-variable naming rule for secret fields.
///
/// - A name is converted to SCREAMING_SNAKE_CASE: a word boundary is placed between a lower
///   case letter or digit and a following upper case letter, and before the last upper case
///   letter of an acronym followed by a lower case one (`apiKey` → `API_KEY`,
///   `HTTPServer` → `HTTP_SERVER`); every character other than ASCII letters and digits
///   becomes `_` (so non-ASCII letters do too); runs of `_` collapse to one; leading and
///   trailing `_` are dropped; the result is upper-cased; a result starting with a digit gets
///   a leading `_`. A name with no ASCII letter or digit has no env name.
/// - An item with exactly one field is exported under the item's name alone; otherwise each
///   exported field is `{ITEM}_{FIELD}`.
/// - Exported fields: those flagged `isEnvironmentVariable`; when none of an item's fields is
///   flagged, all of them.
/// - Collisions: entries are ordered by (vault name, item name, field order, field name, ids);
///   the first entry keeps the name, the others are reported as collisions and not exported.
public enum EnvNames {
    public static func screamingSnake(_ name: String) -> String? {
        let scalars = Array(name.unicodeScalars)
        var out = ""
        func isUpper(_ s: Unicode.Scalar) -> Bool { s.value >= 65 && s.value <= 90 }
        func isLower(_ s: Unicode.Scalar) -> Bool { s.value >= 97 && s.value <= 122 }
        func isDigit(_ s: Unicode.Scalar) -> Bool { s.value >= 48 && s.value <= 57 }
        for (i, s) in scalars.enumerated() {
            if isUpper(s) || isLower(s) || isDigit(s) {
                if isUpper(s), i > 0 {
                    let prev = scalars[i - 1]
                    let nextIsLower = i + 1 < scalars.count && isLower(scalars[i + 1])
                    if isLower(prev) || isDigit(prev) || (isUpper(prev) && nextIsLower) { out.append("_") }
                }
                out.unicodeScalars.append(s)
            } else {
                out.append("_")
            }
        }
        var collapsed = ""
        for c in out {
            if c == "_" && collapsed.last == "_" { continue }
            collapsed.append(c)
        }
        // no "__" is left, so only the ends need trimming
        var trimmed = Substring(collapsed)
        while trimmed.first == "_" { trimmed.removeFirst() }
        while trimmed.last == "_" { trimmed.removeLast() }
        guard !trimmed.isEmpty else { return nil }
        let upper = String(trimmed).uppercased()
        if let first = upper.unicodeScalars.first, isDigit(first) { return "_" + upper }
        return upper
    }

    /// One field as seen by the naming rule.
    public struct Field: Sendable, Equatable {
        public var vaultId: String
        public var vaultName: String
        public var itemId: String
        public var itemName: String
        public var itemFieldCount: Int
        public var fieldId: String
        public var fieldName: String
        public var order: Int
        public var isEnvironmentVariable: Bool
        public init(vaultId: String, vaultName: String, itemId: String, itemName: String, itemFieldCount: Int,
                    fieldId: String, fieldName: String, order: Int, isEnvironmentVariable: Bool) {
            self.vaultId = vaultId; self.vaultName = vaultName; self.itemId = itemId; self.itemName = itemName
            self.itemFieldCount = itemFieldCount; self.fieldId = fieldId; self.fieldName = fieldName
            self.order = order; self.isEnvironmentVariable = isEnvironmentVariable
        }
        public var path: String { "\(vaultName)/\(itemName)/\(fieldName)" }
    }

    public struct Assignment: Sendable, Equatable {
        public var name: String
        public var field: Field
    }

    public struct Plan: Sendable, Equatable {
        /// Exported names, in order.
        public var assignments: [Assignment]
        /// Fields that lost a name to an earlier field: (name, winner, loser).
        public var collisions: [(name: String, kept: Field, dropped: Field)]
        /// Fields whose names produce no env name.
        public var unnamed: [Field]

        public static func == (a: Plan, b: Plan) -> Bool {
            a.assignments == b.assignments && a.unnamed == b.unnamed
                && a.collisions.map { "\($0.name)|\($0.kept.fieldId)|\($0.dropped.fieldId)" }
                    == b.collisions.map { "\($0.name)|\($0.kept.fieldId)|\($0.dropped.fieldId)" }
        }
    }

    /// The env name of one field, before collision handling.
    public static func name(for field: Field) -> String? {
        guard let item = screamingSnake(field.itemName) else { return nil }
        if field.itemFieldCount == 1 { return item }
        guard let f = screamingSnake(field.fieldName) else { return nil }
        return item + "_" + f
    }

    /// Apply selection, naming and collision rules to every field of every item.
    public static func plan(_ fields: [Field]) -> Plan {
        // selection: flagged fields, or all when an item has none flagged
        var flaggedItems = Set<String>()
        for f in fields where f.isEnvironmentVariable { flaggedItems.insert(f.vaultId + "/" + f.itemId) }
        let selected = fields.filter { !flaggedItems.contains($0.vaultId + "/" + $0.itemId) || $0.isEnvironmentVariable }
        let ordered = selected.sorted { a, b in
            if a.vaultName != b.vaultName { return a.vaultName.utf8.lexicographicallyPrecedes(b.vaultName.utf8) }
            if a.itemName != b.itemName { return a.itemName.utf8.lexicographicallyPrecedes(b.itemName.utf8) }
            if a.order != b.order { return a.order < b.order }
            if a.fieldName != b.fieldName { return a.fieldName.utf8.lexicographicallyPrecedes(b.fieldName.utf8) }
            if a.vaultId != b.vaultId { return a.vaultId < b.vaultId }
            if a.itemId != b.itemId { return a.itemId < b.itemId }
            return a.fieldId < b.fieldId
        }
        var plan = Plan(assignments: [], collisions: [], unnamed: [])
        var taken: [String: Field] = [:]
        for f in ordered {
            guard let n = name(for: f) else { plan.unnamed.append(f); continue }
            if let winner = taken[n] {
                plan.collisions.append((n, winner, f))
            } else {
                taken[n] = f
                plan.assignments.append(Assignment(name: n, field: f))
            }
        }
        return plan
    }
}
