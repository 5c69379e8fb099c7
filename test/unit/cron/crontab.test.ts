import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  commandOf,
  cronLine,
  findWileLines,
  isWileLine,
  parseSchedule,
  programArgv,
  randomSchedule,
  removeLines,
  shQuote,
  upsertLine,
} from "../../../src/cron/crontab";

const HOME = "/home/me/.wile";
const PROGRAM = ["/usr/bin/node", "/opt/wile/wile.cjs"];
const LINE = cronLine({ minute: 17, hours: [4, 16] }, PROGRAM, HOME);

describe("crontab line", () => {
  test("format: schedule, absolute program, cron --home, marker; no redirection", () => {
    assert.equal(
      LINE,
      "17 4,16 * * * /usr/bin/node /opt/wile/wile.cjs cron --home /home/me/.wile # wile:/home/me/.wile",
    );
    assert.equal(
      commandOf(LINE),
      "/usr/bin/node /opt/wile/wile.cjs cron --home /home/me/.wile # wile:/home/me/.wile",
    );
    assert.deepEqual(parseSchedule(LINE), { minute: 17, hours: [4, 16] });
  });

  test("odd paths are quoted for sh and % is escaped for cron", () => {
    const line = cronLine({ minute: 0, hours: [0, 12] }, ["/opt/my wile/wile"], "/srv/it's 100%");
    assert.equal(
      line,
      `0 0,12 * * * '/opt/my wile/wile' cron --home '/srv/it'\\''s 100\\%' # wile:/srv/it's 100\\%`,
    );
    assert.equal(
      commandOf(line),
      `'/opt/my wile/wile' cron --home '/srv/it'\\''s 100%' # wile:/srv/it's 100%`,
    );
    assert.ok(isWileLine(line, "/srv/it's 100%"));
    assert.equal(shQuote("/plain/path-1.2"), "/plain/path-1.2");
    assert.equal(shQuote("$(x)"), "'$(x)'");
  });

  test("a home with a newline is refused", () => {
    assert.throws(() => cronLine({ minute: 0, hours: [0, 12] }, PROGRAM, "/a\nb"), /control character/);
  });

  test("random schedules: minute 0-59, two hours 12 h apart", () => {
    for (let i = 0; i < 200; i++) {
      const s = randomSchedule();
      assert.ok(s.minute >= 0 && s.minute <= 59);
      assert.ok(s.hours[0] >= 0 && s.hours[0] <= 11);
      assert.equal(s.hours[1], s.hours[0] + 12);
    }
  });

  test("program: node + bundle, or the standalone binary alone", () => {
    assert.deepEqual(
      programArgv({ execPath: "/usr/bin/node", argv1: "/opt/wile/wile.cjs", isSea: false }),
      PROGRAM,
    );
    assert.deepEqual(
      programArgv({ execPath: "/usr/local/bin/wile", argv1: "/usr/local/bin/wile", isSea: false }),
      ["/usr/local/bin/wile"],
    );
    assert.deepEqual(programArgv({ execPath: "/usr/local/bin/wile", argv1: "whatever", isSea: true }), [
      "/usr/local/bin/wile",
    ]);
    assert.throws(
      () => programArgv({ execPath: "/usr/bin/node", argv1: "/src/cli.ts", isSea: false }),
      /built program/,
    );
  });
});

describe("crontab editing", () => {
  const other = "# my jobs\nMAILTO=me@example.com\n*/5 * * * * /usr/local/bin/backup   # nightly-ish\n";

  test("add appends one line and keeps everything else byte for byte", () => {
    const r = upsertLine(other, HOME, LINE);
    assert.equal(r.status, "added");
    assert.equal(r.text, `${other}${LINE}\n`);
    assert.equal(upsertLine("", HOME, LINE).text, `${LINE}\n`);
  });

  test("adding to a crontab without a final newline inserts one (crontab refuses a file without)", () => {
    const r = upsertLine("1 2 * * * x", HOME, LINE);
    assert.equal(r.text, `1 2 * * * x\n${LINE}\n`);
  });

  test("the same line again changes nothing", () => {
    const once = upsertLine(other, HOME, LINE).text;
    const twice = upsertLine(once, HOME, LINE);
    assert.equal(twice.status, "unchanged");
    assert.equal(twice.text, once);
    assert.equal(findWileLines(twice.text, HOME).length, 1);
  });

  test("a changed line for the same home is replaced in place; duplicates dropped", () => {
    const old = cronLine({ minute: 1, hours: [2, 14] }, ["/old/node", "/old/wile.cjs"], HOME);
    const text = `${other}${old}\n0 0 * * * after\n${old}\n`;
    const r = upsertLine(text, HOME, LINE);
    assert.equal(r.status, "replaced");
    assert.equal(r.text, `${other}${LINE}\n0 0 * * * after\n`);
  });

  test("lines for other homes and commented-out lines are not wile's", () => {
    const mine = LINE;
    const theirs = cronLine({ minute: 3, hours: [1, 13] }, PROGRAM, "/srv/other");
    const nested = cronLine({ minute: 3, hours: [1, 13] }, PROGRAM, "/x/home/me/.wile");
    const commented = `# ${mine}`;
    assert.ok(isWileLine(mine, HOME));
    assert.equal(isWileLine(theirs, HOME), false);
    assert.equal(isWileLine(nested, HOME), false);
    assert.equal(isWileLine(commented, HOME), false);
    const text = `${theirs}\n${commented}\n`;
    const r = upsertLine(text, HOME, LINE);
    assert.equal(r.text, `${text}${LINE}\n`);
    assert.equal(removeLines(r.text, HOME).text, text);
  });

  test("remove takes out exactly wile's line; comments, blank lines, CRLF and a missing final newline stay", () => {
    const before = "# top\r\n\n1 2 * * * a\n";
    const after = "\n  # indented comment\n3 4 * * * b";
    const r = removeLines(`${before}${LINE}\n${after}`, HOME);
    assert.deepEqual(r.removed, [LINE]);
    assert.equal(r.text, `${before}${after}`);
    // Our line last, without a newline.
    const r2 = removeLines(`1 2 * * * a\n${LINE}`, HOME);
    assert.equal(r2.text, "1 2 * * * a\n");
    // Nothing of ours: text unchanged.
    const r3 = removeLines(other, HOME);
    assert.deepEqual(r3.removed, []);
    assert.equal(r3.text, other);
    // Only our line: empty crontab.
    assert.equal(removeLines(`${LINE}\n`, HOME).text, "");
  });

  test("trailing spaces after the marker still identify the line", () => {
    assert.ok(isWileLine(`${LINE}   `, HOME));
    assert.ok(isWileLine(`${LINE}\r`, HOME));
  });
});
