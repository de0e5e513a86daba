import ArgumentParser
import Foundation

/// PowerShell and Elvish completion scripts (clap offers both; swift-argument-parser only
/// bash, zsh and fish). Built from the command tree ArgumentParser describes, so they follow
/// the commands: the subcommand names first, then that subcommand's options (and the shell
/// names after `completions`).
enum ExtraCompletions {
    static let shells = ["bash", "zsh", "fish", "powershell", "elvish"]

    /// (subcommand, its long and short options) in declaration order.
    static func commandTable() -> [(name: String, options: [String])] {
        guard let data = AgentVaultCommand._dumpHelp().data(using: .utf8),
              let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let command = root["command"] as? [String: Any],
              let subcommands = command["subcommands"] as? [[String: Any]]
        else { return [] }
        return subcommands.compactMap { sub in
            guard let name = sub["commandName"] as? String, sub["shouldDisplay"] as? Bool != false else { return nil }
            var options: [String] = []
            for argument in sub["arguments"] as? [[String: Any]] ?? [] where argument["shouldDisplay"] as? Bool != false {
                for spelling in argument["names"] as? [[String: Any]] ?? [] {
                    guard let kind = spelling["kind"] as? String, let text = spelling["name"] as? String else { continue }
                    options.append(kind == "short" ? "-" + text : "--" + text)
                }
            }
            if name == "completions" { options = shells + options }
            return (name, options)
        }
    }

    static func powershell(command: String) -> String {
        let table = commandTable()
        func list(_ items: [String]) -> String { "@(" + items.map { "'\($0)'" }.joined(separator: ", ") + ")" }
        var cases = ""
        for entry in table { cases += "        '\(entry.name)' { \(list(entry.options)) }\n" }
        return """
            # PowerShell completion for \(command). Load it with: \(command) completions powershell | Out-String | Invoke-Expression
            Register-ArgumentCompleter -Native -CommandName '\(command)' -ScriptBlock {
                param($wordToComplete, $commandAst, $cursorPosition)
                $words = @($commandAst.CommandElements | ForEach-Object { $_.ToString() })
                if ($wordToComplete -ne '') { $words = @($words | Select-Object -First ($words.Count - 1)) }
                $candidates = if ($words.Count -le 1) { \(list(table.map(\.name) + ["--help", "--version"])) } else {
                    switch ($words[1]) {
            \(cases)        default { @() }
                    }
                }
                $candidates | Where-Object { $_ -like "$wordToComplete*" } | ForEach-Object {
                    [System.Management.Automation.CompletionResult]::new($_, $_, 'ParameterValue', $_)
                }
            }
            """
    }

    static func elvish(command: String) -> String {
        let table = commandTable()
        let entries = table.map { "  &\($0.name)=[\($0.options.map { "'\($0)'" }.joined(separator: " "))]" }.joined(separator: "\n")
        return """
            # Elvish completion for \(command). Load it with: eval (\(command) completions elvish | slurp)
            set edit:completion:arg-completer[\(command)] = {|@words|
              var options = [
            \(entries)
              ]
              if (<= (count $words) 2) {
                put \(table.map { "'\($0.name)'" }.joined(separator: " ")) '--help' '--version'
              } elif (has-key $options $words[1]) {
                all $options[$words[1]]
              }
            }
            """
    }
}
