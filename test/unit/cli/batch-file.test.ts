/**
 * The lines of `wile issue --batch FILE` (src/cli/batch-file.ts): words, quotes, comments, names
 * as -d, and how a line's options replace the command line's.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { BatchLineError, commonArgv, lineArgv, parseBatchFile } from "../../../src/cli/batch-file";
import { issueCommand } from "../../../src/cli/commands/issue";
import { UsageError } from "../../../src/util/errors";

const specs = issueCommand.options;
const one = (text: string) => parseBatchFile(text)[0] ?? assert.fail("no line");

describe("parseBatchFile", () => {
  test("drops comments and blank lines, keeps line numbers, reads quotes and CRLF", () => {
    const lines = parseBatchFile(
      "# header\n\n  a.example b.example -w /srv/a  # trailing\r\n\t\nc.example -w '/srv/with space' --reload-cmd \"systemctl reload nginx\"\n",
    );
    assert.deepEqual(lines, [
      { line: 3, words: ["a.example", "b.example", "-w", "/srv/a"] },
      { line: 5, words: ["c.example", "-w", "/srv/with space", "--reload-cmd", "systemctl reload nginx"] },
    ]);
  });

  test("a quote that is not closed is an error of that line, the others are read", () => {
    const lines = parseBatchFile("a.example\nb.example -w '/srv/b\nc.example\n");
    assert.deepEqual(
      lines.map((l) => [l.line, l.words]),
      [
        [1, ["a.example"]],
        [2, []],
        [3, ["c.example"]],
      ],
    );
    assert.ok(lines[1]?.error instanceof BatchLineError);
    assert.match(lines[1]?.error?.message ?? "", /^line 2: the quote ' is not closed/);
  });

  test("a # inside a word is part of it", () => {
    assert.deepEqual(one("a.example -w /srv/a#1").words, ["a.example", "-w", "/srv/a#1"]);
  });
});

describe("lineArgv", () => {
  const common = commonArgv(
    [
      "--batch",
      "f",
      "-w",
      "/srv/default",
      "--key-type",
      "ec-384",
      "--resolve",
      "x:80:127.0.0.1",
      "--parallel",
      "4",
    ],
    specs,
  );

  test("the command line's options apply to a line without its own; names become -d", () => {
    assert.deepEqual(lineArgv(common, one("a.example www.a.example"), specs), [
      "-w",
      "/srv/default",
      "--key-type",
      "ec-384",
      "--resolve",
      "x:80:127.0.0.1",
      "-d",
      "a.example",
      "-d",
      "www.a.example",
    ]);
  });

  test("a line's option replaces the command line's, all its values for a repeatable one", () => {
    assert.deepEqual(
      lineArgv(common, one("a.example --key-type=rsa-2048 --resolve a.example:80:127.0.0.2"), specs),
      ["-w", "/srv/default", "-d", "a.example", "--key-type=rsa-2048", "--resolve", "a.example:80:127.0.0.2"],
    );
  });

  test("a line that says how its names are proved replaces every such option of the command line", () => {
    const argv = lineArgv(common, one("a.example --dns exec --dns-exec /bin/hook"), specs);
    assert.equal(argv.includes("/srv/default"), false);
    assert.deepEqual(argv.slice(-6), ["-d", "a.example", "--dns", "exec", "--dns-exec", "/bin/hook"]);
  });

  test("--no-preflight on a line replaces the command line's --preflight", () => {
    const argv = lineArgv(
      commonArgv(["--preflight", "-w", "/srv"], specs),
      one("a.example --no-preflight"),
      specs,
    );
    assert.deepEqual(argv, ["-w", "/srv", "-d", "a.example", "--no-preflight"]);
  });

  test("what applies to the whole run is refused on a line, with the line's number", () => {
    for (const opt of ["--server", "--email", "--timeout", "--ca-bundle", "--eab-kid", "--parallel"]) {
      assert.throws(
        () => lineArgv(common, { line: 12, words: ["a.example", opt, "x"] }, specs),
        (e: unknown) =>
          e instanceof BatchLineError && /^line 12: --[a-z-]+ applies to the whole batch/.test(e.message),
      );
    }
  });

  test("names on the command line, or stray words, are refused with --batch", () => {
    assert.throws(() => commonArgv(["--batch", "f", "-d", "a.example"], specs), UsageError);
    assert.throws(() => commonArgv(["--batch", "f", "a.example"], specs), /unexpected argument "a.example"/);
  });
});
