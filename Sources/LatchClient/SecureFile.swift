import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// File helpers for key material and profile state: files are created with their final
/// mode (no window where they are readable by others) and replaced atomically.
public enum SecureFile {
    /// Create `path` (and missing parents) as a directory with `mode`; an existing directory
    /// has its mode set to `mode`.
    public static func makeDirectory(_ path: String, mode: mode_t = 0o700) throws {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir) {
            guard isDir.boolValue else { throw LatchError(.io, "\(path) exists and is not a directory") }
        } else {
            let parent = (path as NSString).deletingLastPathComponent
            if !parent.isEmpty && parent != path && !FileManager.default.fileExists(atPath: parent) {
                try makeDirectory(parent, mode: mode)
            }
            if mkdir(path, mode) != 0 && errno != EEXIST {
                throw LatchError(.io, "cannot create directory \(path): \(String(cString: strerror(errno)))")
            }
        }
        if chmod(path, mode) != 0 {
            throw LatchError(.io, "cannot set mode of \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// Write `data` to `path` with `mode`, atomically (temporary file in the same directory,
    /// fsync, rename). `sync: false` skips the fsync, for a cache whose loss or truncation in a
    /// crash costs nothing but its recomputation.
    public static func write(_ data: Data, to path: String, mode: mode_t = 0o600, sync: Bool = true) throws {
        let dir = (path as NSString).deletingLastPathComponent
        let tmp = (dir.isEmpty ? "." : dir) + "/.tmp-\(UInt64.random(in: 0...UInt64.max))-" + (path as NSString).lastPathComponent
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        guard fd >= 0 else {
            throw LatchError(.io, "cannot create \(tmp): \(String(cString: strerror(errno)))")
        }
        var ok = fchmod(fd, mode) == 0
        if ok {
            ok = data.withUnsafeBytes { raw -> Bool in
                var offset = 0
                while offset < raw.count {
                    let n = Glibc_write(fd, raw.baseAddress! + offset, raw.count - offset)
                    if n < 0 { if errno == EINTR { continue }; return false }
                    offset += n
                }
                return true
            }
        }
        if ok && sync { ok = fsync(fd) == 0 }
        let savedErrno = errno
        close(fd)
        guard ok, rename(tmp, path) == 0 else {
            let reason = String(cString: strerror(ok ? errno : savedErrno))
            unlink(tmp)
            throw LatchError(.io, "cannot write \(path): \(reason)")
        }
    }

    /// Runs `body` holding an exclusive `flock` on `path + ".lock"` (0600, empty, created with
    /// its directory when missing), so that processes of one profile take turns at `path`.
    public static func withLock<T>(_ path: String, _ body: () throws -> T) throws -> T {
        try makeDirectory((path as NSString).deletingLastPathComponent, mode: 0o700)
        let lock = open(path + ".lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard lock >= 0 else { throw LatchError(.io, "cannot open \(path).lock: \(String(cString: strerror(errno)))") }
        defer { close(lock) }
        guard flock(lock, LOCK_EX) == 0 else { throw LatchError(.io, "cannot lock \(path).lock: \(String(cString: strerror(errno)))") }
        return try body()
    }

    /// Read a whole file.
    public static func read(_ path: String) throws -> Data {
        guard let data = FileManager.default.contents(atPath: path) else {
            if !FileManager.default.fileExists(atPath: path) {
                throw LatchError(.notFound, "file not found: \(path)")
            }
            throw LatchError(.io, "cannot read \(path)")
        }
        return data
    }

    /// The permission bits of `path`, or nil when it does not exist.
    public static func mode(of path: String) -> mode_t? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return st.st_mode & 0o7777
    }
}

@inline(__always)
private func Glibc_write(_ fd: Int32, _ buf: UnsafeRawPointer, _ count: Int) -> Int {
    #if canImport(Darwin)
    return Darwin.write(fd, buf, count)
    #elseif canImport(Musl)
    return Musl.write(fd, buf, count)
    #else
    return Glibc.write(fd, buf, count)
    #endif
}
