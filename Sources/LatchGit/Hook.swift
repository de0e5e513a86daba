import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The pre-commit hook `init` installs: it refuses a commit whose staged files contain an
/// unencrypted private key (age `AGE-SECRET-KEY-`, PKCS#8 `BEGIN PRIVATE KEY`, PKCS#1
/// `BEGIN RSA PRIVATE KEY`, SEC 1 `BEGIN EC PRIVATE KEY`, `BEGIN OPENSSH PRIVATE KEY`).
/// A hook that was already there is kept under `pre-commit.pre-agent-vault` and run first.
public enum PreCommitHook {
    /// Marks a hook as ours, so installing twice changes nothing.
    public static let marker = "agent-vault pre-commit hook"
    public static let chainedName = "pre-commit.pre-agent-vault"

    /// Extended regular expression for `git grep -E`.
    public static let pattern =
        "AGE-SECRET-KEY-|-----BEGIN (RSA |EC |OPENSSH )?PRIVATE KEY-----"

    public static let script = """
        #!/bin/sh
        # \(marker) (installed by latchkey): blocks commits of unencrypted private keys.
        hook_dir=$(dirname "$0")
        if [ -x "$hook_dir/\(chainedName)" ]; then
          "$hook_dir/\(chainedName)" "$@" || exit $?
        fi
        # The staged contents: their blob ids (the fourth field of the raw diff).
        blobs=$(git diff --cached --no-renames --diff-filter=ACMR --raw --no-abbrev | awk '{ print $4 }')
        [ -n "$blobs" ] || exit 0
        # One pass over all of them (cat-file's output to grep) ends the hook when grep finds
        # nothing (status 1); the files are named only after a match or an error (git grep
        # with one pathspec per staged file is quadratic: 0.1 s for the 2,000 of a grant).
        printf '%s\\n' "$blobs" | git cat-file --batch | grep -a -q -E -e '\(pattern)'
        [ $? -eq 1 ] && exit 0
        found=$(git diff --cached --name-only -z --diff-filter=ACMR |
          xargs -0 git grep --cached -l -E -e '\(pattern)' -- 2>/dev/null)
        if [ -n "$found" ]; then
          echo "agent-vault: commit blocked: staged files contain an unencrypted private key:" >&2
          printf '%s\\n' "$found" | sed 's/^/  /' >&2
          echo "Unstage them (git restore --staged <file>) and keep private keys out of the repository." >&2
          exit 1
        fi
        exit 0

        """

    /// Installs the hook into `hooksDirectory`. Returns false when our hook was already there.
    @discardableResult
    public static func install(into hooksDirectory: URL, fileSystem: any VaultFileSystem) throws -> Bool {
        let hook = hooksDirectory.appendingPathComponent("pre-commit")
        if fileSystem.fileExists(hook) {
            let existing = String(decoding: try fileSystem.read(hook), as: UTF8.self)
            if existing.contains(marker) { return false }
            let chained = hooksDirectory.appendingPathComponent(chainedName)
            if rename(hook.path, chained.path) != 0 {
                throw GitVaultError.io(path: hook.path, reason: "cannot move the existing hook to \(chainedName)")
            }
        }
        try fileSystem.write(Data(script.utf8), to: hook, privateFile: false)
        if chmod(hook.path, 0o755) != 0 {
            throw GitVaultError.io(path: hook.path, reason: "cannot make the hook executable")
        }
        return true
    }
}
