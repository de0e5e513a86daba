import Foundation

/// The local clock against the server's `Date` response header (HTTP-date, 1 s resolution).
/// Checkpoint and audit times are only as good as the clocks that make them, so `latch doctor`
/// reports the skew and warns over `warnThreshold`.
public struct ClockSkew: Sendable, Equatable {
    /// Local clock minus server clock, in seconds (positive: the local clock is ahead).
    public var seconds: Double
    /// How far off the estimate can be: half the round trip plus half the header's resolution.
    public var uncertainty: Double
    public var threshold: Double

    public static let warnThreshold: Double = 60

    /// True when the clocks differ by more than the threshold.
    public var warn: Bool { abs(seconds) > threshold }

    /// Compare the server's `Date` header, received for a request sent at `sent` and answered
    /// at `received` (local clock), with the local clock. Nil when the header is not an HTTP-date.
    public static func measure(serverDate header: String, sent: Date, received: Date,
                               threshold: Double = warnThreshold) -> ClockSkew? {
        guard let server = parseHTTPDate(header) else { return nil }
        let roundTrip = max(0, received.timeIntervalSince(sent))
        let local = sent.addingTimeInterval(roundTrip / 2)
        // The header truncates to the second: the server's time was in [server, server + 1).
        let skew = local.timeIntervalSince(server.addingTimeInterval(0.5))
        return ClockSkew(seconds: skew, uncertainty: roundTrip / 2 + 0.5, threshold: threshold)
    }

    /// One line for `latch doctor`, e.g. "local clock 3 s ahead of the server (±1 s)".
    public var summary: String {
        let s = Int(abs(seconds).rounded())
        let u = max(1, Int(uncertainty.rounded(.up)))
        let side = s == 0 ? "in step with" : seconds > 0 ? "\(s) s ahead of" : "\(s) s behind"
        return "local clock \(side) the server (±\(u) s, from its Date header)"
            + (warn ? "; over \(Int(threshold)) s: transparency log checkpoints and audit times depend on sane clocks, fix the clock (NTP)" : "")
    }

    /// Parses an HTTP-date (RFC 9110 5.6.7): IMF-fixdate, and the obsolete RFC 850 and asctime forms.
    public static func parseHTTPDate(_ text: String) -> Date? {
        let s = text.trimmingCharacters(in: .whitespaces)
        for format in ["EEE, dd MMM yyyy HH:mm:ss 'GMT'", "EEEE, dd-MMM-yy HH:mm:ss 'GMT'", "EEE MMM d HH:mm:ss yyyy"] {
            let f = DateFormatter()
            f.locale = Locale(identifier: "en_US_POSIX")
            f.timeZone = TimeZone(identifier: "GMT")
            f.dateFormat = format
            if format.hasPrefix("EEEE") { f.twoDigitStartDate = Date(timeIntervalSince1970: 0) }
            let input = format.hasPrefix("EEE MMM") ? s.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ") : s
            if let d = f.date(from: input) { return d }
        }
        return nil
    }
}

extension LatchHTTPClient {
    /// `GET path` (default `/healthz`, no authentication needed) and the clock skew from its
    /// `Date` header (nil when the server sent none). Fails like `send` when the server cannot
    /// be reached or answers with an error.
    public func clockSkew(path: String = "/healthz", threshold: Double = ClockSkew.warnThreshold) async throws -> ClockSkew? {
        guard let url = URL(string: baseURL.absoluteString + path) else { throw LatchError(.usage, "invalid request path \(path)") }
        let request = HTTPRequest(method: "GET", url: url, headers: ["User-Agent": userAgent])
        let sent = Date()
        let response = try await exchange(request)
        let received = Date()
        guard (200..<300).contains(response.status) else {
            throw Self.error(status: response.status, body: response.body, method: "GET", path: path)
        }
        guard let header = response.header("Date") else { return nil }
        return ClockSkew.measure(serverDate: header, sent: sent, received: received, threshold: threshold)
    }
}
