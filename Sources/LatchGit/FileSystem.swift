import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The file operations the vault performs; `LocalFileSystem` is the real one.
public protocol VaultFileSystem: Sendable {
    func read(_ url: URL) throws -> Data
    /// Writes atomically, creating parent directories. `privateFile` makes it mode 0600
    /// from the moment it exists.
    func write(_ data: Data, to url: URL, privateFile: Bool) throws
    func fileExists(_ url: URL) -> Bool
    func isDirectory(_ url: URL) -> Bool
    /// Removes a file or a directory tree; no error when absent.
    func remove(_ url: URL) throws
    /// Regular files below `directory`, as `/`-separated paths relative to it, sorted.
    func regularFiles(under directory: URL) throws -> [String]
    func createDirectory(_ url: URL) throws
    /// Replaces the contents of an existing file in place (same inode and mode); writes it as
    /// `write(_:to:privateFile: false)` does when it does not exist. Used for the bulk
    /// re-encryption of a grant or revoke, whose files are all committed in HEAD, so an
    /// interrupted run is undone with `git checkout -- .agent-vault`.
    func overwrite(_ data: Data, at url: URL) throws
}

extension VaultFileSystem {
    public func overwrite(_ data: Data, at url: URL) throws { try write(data, to: url, privateFile: false) }
}

public struct LocalFileSystem: VaultFileSystem {
    public init() {}

    public func read(_ url: URL) throws -> Data {
        do { return try Data(contentsOf: url) } catch {
            throw GitVaultError.io(path: url.path, reason: Self.reason(error))
        }
    }

    public func write(_ data: Data, to url: URL, privateFile: Bool) throws {
        let directory = url.deletingLastPathComponent()
        try createDirectory(directory)
        let temporary = directory.appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())")
        let fd = open(temporary.path, O_WRONLY | O_CREAT | O_TRUNC, privateFile ? 0o600 : 0o644)
        guard fd >= 0 else { throw GitVaultError.io(path: url.path, reason: String(cString: strerror(errno))) }
        if privateFile { fchmod(fd, 0o600) }
        let failure = Self.writeAll(fd, data)
        close(fd)
        if let failure {
            unlink(temporary.path)
            throw GitVaultError.io(path: url.path, reason: failure)
        }
        if rename(temporary.path, url.path) != 0 {
            let reason = String(cString: strerror(errno))
            unlink(temporary.path)
            throw GitVaultError.io(path: url.path, reason: reason)
        }
    }

    public func overwrite(_ data: Data, at url: URL) throws {
        // No O_TRUNC: writing over the old blocks and then cutting the file to length keeps
        // the file system from freeing and reallocating them.
        let fd = open(url.path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT { return try write(data, to: url, privateFile: false) }
            throw GitVaultError.io(path: url.path, reason: String(cString: strerror(errno)))
        }
        var failure = Self.writeAll(fd, data)
        if failure == nil && ftruncate(fd, off_t(data.count)) != 0 { failure = String(cString: strerror(errno)) }
        if close(fd) != 0, failure == nil { throw GitVaultError.io(path: url.path, reason: String(cString: strerror(errno))) }
        if let failure { throw GitVaultError.io(path: url.path, reason: failure) }
    }

    static func writeAll(_ fd: Int32, _ data: Data) -> String? {
        data.withUnsafeBytes { raw -> String? in
            guard let base = raw.baseAddress else { return nil }
            var offset = 0
            while offset < raw.count {
                let written = Glibc_write(fd, base + offset, raw.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return String(cString: strerror(errno))
                }
                offset += written
            }
            return nil
        }
    }

    public func fileExists(_ url: URL) -> Bool {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) && !isDir.boolValue
    }

    public func isDirectory(_ url: URL) -> Bool {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) && isDir.boolValue
    }

    public func remove(_ url: URL) throws {
        guard FileManager.default.fileExists(atPath: url.path) else { return }
        do { try FileManager.default.removeItem(at: url) } catch {
            throw GitVaultError.io(path: url.path, reason: Self.reason(error))
        }
    }

    public func regularFiles(under directory: URL) throws -> [String] {
        guard isDirectory(directory) else { return [] }
        var result: [String] = []
        func walk(_ url: URL, _ prefix: String) throws {
            let names: [String]
            do { names = try FileManager.default.contentsOfDirectory(atPath: url.path) } catch {
                throw GitVaultError.io(path: url.path, reason: Self.reason(error))
            }
            for name in names.sorted() {
                let child = url.appendingPathComponent(name)
                let relative = prefix.isEmpty ? name : prefix + "/" + name
                if isDirectory(child) { try walk(child, relative) } else if fileExists(child) { result.append(relative) }
            }
        }
        try walk(directory, "")
        return result.sorted()
    }

    public func createDirectory(_ url: URL) throws {
        do { try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true) } catch {
            throw GitVaultError.io(path: url.path, reason: Self.reason(error))
        }
    }

    static func reason(_ error: Error) -> String {
        if let posix = (error as NSError).userInfo[NSUnderlyingErrorKey] as? NSError {
            return posix.localizedDescription
        }
        return (error as NSError).localizedDescription
    }
}

@inline(__always)
private func Glibc_write(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
    write(fd, buffer, count)
}
