import Foundation
import Logging

/// The server's log handler: one line per event on standard error, as
/// `2026-12-02T07:40:00Z error latch.serve: store failure error=… hb.request.id=…`.
///
/// swift-log's `StreamLogHandler` formats its metadata whenever it changes; Hummingbird sets a
/// request id on a copy of the logger for every request, so that formatting ran once per request
/// for lines that are almost never written. This handler formats only what it writes.
public struct ServerLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    let label: String

    public init(label: String) { self.label = label }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var all = metadata
        if let provided = metadataProvider?.get() { all.merge(provided) { _, new in new } }
        if let own = event.metadata { all.merge(own) { _, new in new } }
        var line = "\(Date.now.formatted(.iso8601)) \(event.level) \(label): \(event.message)"
        for (k, v) in all.sorted(by: { $0.key < $1.key }) { line += " \(k)=\(v)" }
        line += "\n"
        FileHandle.standardError.write(Data(line.utf8))
    }
}
