import Foundation
import Testing
@testable import LatchClient

@Suite struct EnvNameTests {
    @Test(arguments: [
        ("database", "DATABASE"), ("apiKey", "API_KEY"), ("HTTPServer", "HTTP_SERVER"), ("my-db url", "MY_DB_URL"),
        ("  stripe__secret--key ", "STRIPE_SECRET_KEY"), ("2fa code", "_2FA_CODE"), ("café-key", "CAF_KEY"),
        ("OpenAI API", "OPEN_AI_API"), ("aws.s3/bucket", "AWS_S3_BUCKET"), ("v2Token", "V2_TOKEN"),
        ("ALREADY_SNAKE", "ALREADY_SNAKE"),
    ])
    func screamingSnake(input: String, expected: String) {
        #expect(EnvNames.screamingSnake(input) == expected)
    }

    @Test func namesWithoutLettersOrDigitsHaveNoEnvName() {
        #expect(EnvNames.screamingSnake("") == nil)
        #expect(EnvNames.screamingSnake("---") == nil)
        #expect(EnvNames.screamingSnake("日本") == nil)
    }

    func field(_ item: String, _ name: String, count: Int, order: Int = 0, flag: Bool = false,
               vault: String = "prod", itemId: String? = nil) -> EnvNames.Field {
        EnvNames.Field(vaultId: "v-" + vault, vaultName: vault, itemId: itemId ?? "i-" + item, itemName: item,
                       itemFieldCount: count, fieldId: "f-\(item)-\(name)", fieldName: name, order: order,
                       isEnvironmentVariable: flag)
    }

    @Test func singleFieldItemsUseTheItemName() {
        let plan = EnvNames.plan([
            field("openai", "api key", count: 1),
            field("database", "username", count: 2, order: 0),
            field("database", "password", count: 2, order: 1),
        ])
        #expect(plan.assignments.map(\.name) == ["DATABASE_USERNAME", "DATABASE_PASSWORD", "OPENAI"])
    }

    @Test func onlyFlaggedFieldsWhenAnyIsFlagged() {
        let plan = EnvNames.plan([
            field("github", "username", count: 2, order: 0),
            field("github", "token", count: 2, order: 1, flag: true),
            field("stripe", "key", count: 2, order: 0),
            field("stripe", "note", count: 2, order: 1),
        ])
        #expect(plan.assignments.map(\.name) == ["GITHUB_TOKEN", "STRIPE_KEY", "STRIPE_NOTE"])
    }

    @Test func collisionsKeepTheFirstAndReportTheRest() {
        let plan = EnvNames.plan([
            field("api-key", "x", count: 1, vault: "b"),
            field("API key", "y", count: 1, vault: "a"),
            field("db", "pass", count: 2, order: 1),
            field("db", "Pass", count: 2, order: 2),
            field("???", "x", count: 1),
        ])
        #expect(plan.assignments.map(\.name) == ["API_KEY", "DB_PASS"])
        #expect(plan.assignments[0].field.vaultName == "a")
        #expect(plan.collisions.count == 2)
        #expect(plan.collisions.map(\.name) == ["API_KEY", "DB_PASS"])
        #expect(plan.collisions[0].dropped.vaultName == "b")
        #expect(plan.collisions[1].dropped.fieldName == "Pass")
        #expect(plan.unnamed.map(\.itemName) == ["???"])
    }
}

@Suite struct EnvFormatTests {
    let env = ["PLAIN": "abc123", "QUOTE": "it's \"q\"", "NEWLINE": "line1\nline2", "DOLLAR": "$HOME `x` \\n",
               "EMPTY": "", "UNICODE": "pässwörd ✓", "TAB": "a\tb"]

    @Test func shellRoundTripsThroughSh() throws {
        let dir = try temporaryDirectory()
        let file = dir + "/env.sh"
        try EnvFormat.shell.render(env).write(toFile: file, atomically: true, encoding: .utf8)
        for (name, value) in env {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/sh")
            p.arguments = ["-c", ". \"$1\"; printf %s \"$" + name + "\"", "sh", file]
            p.environment = [:]
            let out = Pipe()
            p.standardOutput = out
            try p.run()
            let data = out.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            #expect(String(decoding: data, as: UTF8.self) == value, "\(name)")
        }
    }

    @Test func dotenvQuoting() {
        #expect(EnvFormat.dotenvQuote("abc $X") == "'abc $X'")
        #expect(EnvFormat.dotenvQuote("it's") == #""it's""#)
        #expect(EnvFormat.dotenvQuote("a\nb\"c\\") == #""a\nb\"c\\""#)
        let text = EnvFormat.dotenv.render(["B": "x", "A": "y'z"])
        #expect(text == "A=\"y'z\"\nB='x'\n")
    }

    @Test func jsonRoundTrips() throws {
        let text = EnvFormat.json.render(env)
        let back = try JSONDecoder().decode([String: String].self, from: Data(text.utf8))
        #expect(back == env)
        #expect(text.hasSuffix("}\n"))
    }
}
