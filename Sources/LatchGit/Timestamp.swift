import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A UTC instant with nanosecond precision, written the way agent-vault writes it in `.meta`
/// files: RFC 3339 with a `Z`, and 0, 3, 6 or 9 fractional digits (the fewest of those that
/// represent the nanoseconds exactly).
public struct VaultTimestamp: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var seconds: Int64            // since 1970-01-01T00:00:00Z
    public var nanoseconds: Int32        // 0..<1_000_000_000

    public init(seconds: Int64, nanoseconds: Int32 = 0) {
        self.seconds = seconds
        self.nanoseconds = nanoseconds
    }

    public init(date: Date) {
        let interval = date.timeIntervalSince1970
        let whole = interval.rounded(.down)
        self.seconds = Int64(whole)
        self.nanoseconds = Int32(min(999_999_999, max(0, ((interval - whole) * 1e9).rounded())))
    }

    public var date: Date { Date(timeIntervalSince1970: Double(seconds) + Double(nanoseconds) / 1e9) }

    public static func < (a: Self, b: Self) -> Bool {
        (a.seconds, a.nanoseconds) < (b.seconds, b.nanoseconds)
    }

    /// Whole days from `self` to `other`, truncated toward zero (negative when `other` is earlier).
    public func wholeDays(until other: VaultTimestamp) -> Int64 {
        var secs = other.seconds - seconds
        let nanos = Int64(other.nanoseconds) - Int64(nanoseconds)
        if secs < 0 && nanos > 0 { secs += 1 } else if secs > 0 && nanos < 0 { secs -= 1 }
        return secs / 86_400
    }

    /// `YYYY-MM-DD`.
    public var dateString: String {
        let (y, m, d, _, _, _) = Self.civil(from: seconds)
        return String(format: "%04d-%02d-%02d", y, m, d)
    }

    /// RFC 3339, UTC, `Z`, with 0/3/6/9 fractional digits.
    public var description: String {
        // Built by hand: `String(format:)` took about 15 µs a call, twice per `.meta` of a grant.
        let (y, m, d, hh, mm, ss) = Self.civil(from: seconds)
        let p = Self.zeroPadded
        var text = p(y, 4) + "-" + p(m, 2) + "-" + p(d, 2) + "T" + p(hh, 2) + ":" + p(mm, 2) + ":" + p(ss, 2)
        if nanoseconds != 0 {
            let n = Int(nanoseconds)
            if n % 1_000_000 == 0 {
                text += "." + p(n / 1_000_000, 3)
            } else if n % 1_000 == 0 {
                text += "." + p(n / 1_000, 6)
            } else {
                text += "." + p(n, 9)
            }
        }
        return text + "Z"
    }

    /// Parses RFC 3339 (`T`, `t` or a space between date and time; `Z`, `z` or `±hh:mm`),
    /// with any number of fractional digits (beyond nine are truncated). Returns nil otherwise.
    public init?(rfc3339 text: String) {
        let b = Array(text.utf8)
        func num(_ range: Range<Int>) -> Int? {
            guard range.upperBound <= b.count else { return nil }
            var v = 0
            for i in range {
                guard b[i] >= 0x30 && b[i] <= 0x39 else { return nil }
                v = v * 10 + Int(b[i] - 0x30)
            }
            return v
        }
        guard b.count >= 20, let y = num(0..<4), b[4] == 0x2D, let mo = num(5..<7), b[7] == 0x2D,
              let d = num(8..<10), [0x54, 0x74, 0x20].contains(b[10]), let h = num(11..<13), b[13] == 0x3A,
              let mi = num(14..<16), b[16] == 0x3A, let s = num(17..<19)
        else { return nil }
        guard (1...12).contains(mo), d >= 1, d <= Self.daysIn(month: mo, year: y), h < 24, mi < 60, s < 61
        else { return nil }
        var i = 19
        var nanos = 0
        if i < b.count && b[i] == 0x2E {
            i += 1
            var digits = 0
            while i < b.count, b[i] >= 0x30, b[i] <= 0x39 {
                if digits < 9 { nanos = nanos * 10 + Int(b[i] - 0x30) }
                digits += 1
                i += 1
            }
            guard digits > 0 else { return nil }
            if digits < 9 { for _ in digits..<9 { nanos *= 10 } }
        }
        guard i < b.count else { return nil }
        var offset = 0
        if b[i] == 0x5A || b[i] == 0x7A {
            i += 1
        } else if b[i] == 0x2B || b[i] == 0x2D {
            guard let oh = num((i + 1)..<(i + 3)), i + 3 < b.count, b[i + 3] == 0x3A,
                  let om = num((i + 4)..<(i + 6)), oh < 24, om < 60 else { return nil }
            offset = (oh * 3600 + om * 60) * (b[i] == 0x2B ? 1 : -1)
            i += 6
        } else {
            return nil
        }
        guard i == b.count else { return nil }
        let days = Self.daysFromCivil(y, mo, d)
        self.seconds = Int64(days) * 86_400 + Int64(h * 3600 + mi * 60 + min(s, 59)) - Int64(offset)
        self.nanoseconds = Int32(nanos)
    }

    /// Accepts what `--expires` takes: RFC 3339, or a bare `YYYY-MM-DD` meaning midnight UTC.
    public init?(userInput text: String) {
        if let full = VaultTimestamp(rfc3339: text) {
            self = full
        } else if text.utf8.count == 10, let full = VaultTimestamp(rfc3339: text + "T00:00:00Z") {
            self = full
        } else {
            return nil
        }
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    // Howard Hinnant's civil-date algorithms (public domain).
    static func daysFromCivil(_ year: Int, _ month: Int, _ day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// `value` in decimal, zero-padded to `width` characters as printf's `%0<width>d` does
    /// (a minus sign counts toward the width).
    static func zeroPadded(_ value: Int, _ width: Int) -> String {
        let digits = String(value.magnitude)
        let sign = value < 0 ? "-" : ""
        let padding = max(0, width - sign.count - digits.count)
        return sign + String(repeating: "0", count: padding) + digits
    }

    static func civil(from seconds: Int64) -> (Int, Int, Int, Int, Int, Int) {
        var days = seconds / 86_400
        var rem = seconds % 86_400
        if rem < 0 { rem += 86_400; days -= 1 }
        let z = Int(days) + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        let y = yoe + era * 400 + (m <= 2 ? 1 : 0)
        let r = Int(rem)
        return (y, m, d, r / 3600, (r % 3600) / 60, r % 60)
    }
}

/// Where "now" comes from. Pass a fixed clock in tests.
public protocol VaultClock: Sendable {
    func now() -> VaultTimestamp
}

/// The system's real-time clock, with nanoseconds.
public struct SystemVaultClock: VaultClock {
    public init() {}
    public func now() -> VaultTimestamp {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return VaultTimestamp(seconds: Int64(spec.tv_sec), nanoseconds: Int32(spec.tv_nsec))
    }
}

/// A clock that always returns the same instant.
public struct FixedVaultClock: VaultClock {
    public var instant: VaultTimestamp
    public init(_ instant: VaultTimestamp) { self.instant = instant }
    public func now() -> VaultTimestamp { instant }
}
