import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  command,
  flag,
  integer,
  kebab,
  path,
  port,
  readSettings,
  required,
  type Setting,
  SettingError,
  text,
  texts,
  type Values,
  withDefault,
} from "../../../src/util/settings";

/** How renewal.json's reader names a setting. */
const field = (key: string) => `"${key}"`;

const decl = {
  name: required(text({ help: "" })),
  dir: path({ help: "" }),
  count: withDefault(integer({ help: "", min: 1, max: 9 }), 3),
  tags: texts({ help: "" }),
  force: flag({ help: "" }),
  cert: path({ help: "", needs: "key" }),
  key: path({ help: "", needs: "cert" }),
};

/** The SettingError `fn` throws. */
function settingError(fn: () => unknown): SettingError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof SettingError, String(err));
    return err;
  }
  assert.fail("no SettingError was thrown");
}

describe("readSettings", () => {
  test("fallbacks fill the values; stored keeps only what was given, in normal form", () => {
    const r = readSettings(decl, { name: "a", count: "4" }, field);
    assert.deepEqual(r.values, { name: "a", count: 4, tags: [], force: false });
    assert.deepEqual(r.stored, { name: "a", count: 4 });
    const d = readSettings(decl, { name: "a" }, field);
    assert.deepEqual(d.values, { name: "a", count: 3, tags: [], force: false });
    assert.deepEqual(d.stored, { name: "a" });
  });

  test("the values' type: required and defaulted settings are always there", () => {
    const v: Values<typeof decl> = readSettings(decl, { name: "a" }, field).values;
    const always: { name: string; count: number; tags: string[]; force: boolean } = v;
    const maybe: string | undefined = v.dir;
    assert.equal(always.name, "a");
    assert.equal(maybe, undefined);
  });

  test("keys that are not declared are ignored and not stored", () => {
    const r = readSettings(decl, { name: "a", newer: { x: 1 }, kind: "k" }, field);
    assert.deepEqual(r.stored, { name: "a" });
    assert.ok(!("newer" in r.values));
  });

  test("a missing required setting is an error on its key", () => {
    const e = settingError(() => readSettings(decl, {}, field));
    assert.equal(e.key, "name");
    assert.equal(e.message, "is missing");
  });

  test("a value parse() refuses is an error on its key, with parse's reason", () => {
    const e = settingError(() => readSettings(decl, { name: "a", count: 10 }, field));
    assert.equal(e.key, "count");
    assert.equal(e.message, "must be a whole number from 1 to 9");
    assert.equal(settingError(() => readSettings(decl, { name: "a", dir: "rel" }, field)).key, "dir");
    assert.equal(settingError(() => readSettings(decl, { name: 7 }, field)).key, "name");
  });

  test("needs: a setting given without its partner is an error on no key, naming both with `name`", () => {
    const e = settingError(() => readSettings(decl, { name: "a", cert: "/c" }, field));
    assert.equal(e.key, undefined);
    assert.equal(e.message, '"cert" goes with "key"');
    const flagged = settingError(() => readSettings(decl, { name: "a", key: "/k" }, (k) => `--x-${k}`));
    assert.equal(flagged.message, "--x-key goes with --x-cert");
    assert.deepEqual(readSettings(decl, { name: "a", cert: "/c", key: "/k" }, field).stored, {
      name: "a",
      cert: "/c",
      key: "/k",
    });
  });

  test("a fallback does not satisfy needs: only a given partner does", () => {
    const d = {
      mode: path({ help: "", needs: "file" }),
      file: withDefault(path({ help: "" }), "/default"),
    };
    assert.equal(
      settingError(() => readSettings(d, { mode: "/m" }, field)).message,
      '"mode" goes with "file"',
    );
  });
});

/** parse() of `s` on each of `good` gives the paired value; on each of `bad` throws a reason matching `why`. */
function accepts<T>(s: Setting<T>, good: Array<[unknown, T]>, bad: unknown[], why: RegExp): void {
  for (const [input, want] of good) assert.deepEqual(s.parse(input), want, JSON.stringify(input));
  for (const input of bad) {
    assert.throws(
      () => s.parse(input),
      (e: unknown) => e instanceof Error && why.test(e.message),
      JSON.stringify(input),
    );
  }
}

describe("setting builders", () => {
  test("text: a non-empty string without NUL; check's reason", () => {
    accepts(text({ help: "" }), [["a b", "a b"]], ["", "  ", 3, null, ["a"]], /^must be a non-empty string$/);
    accepts(text({ help: "" }), [], ["a\0b"], /^must not contain a NUL byte$/);
    const upper = text({
      help: "",
      check: (v) => (v === v.toUpperCase() ? undefined : "must be upper case"),
    });
    accepts(upper, [["AB", "AB"]], ["ab"], /^must be upper case$/);
    assert.equal(text({ help: "h", arg: "X" }).input, "value");
  });

  test("command: as text", () => {
    accepts(command({ help: "" }), [["nginx -s reload", "nginx -s reload"]], ["", " "], /non-empty string/);
  });

  test("path: absolute only (the command line makes it so first), marked as a path", () => {
    const p = path({ help: "" });
    assert.equal(p.path, true);
    accepts(p, [["/etc/x.pem", "/etc/x.pem"]], ["x.pem", "./x", "~/x"], /^must be an absolute path$/);
    accepts(p, [], ["", 1], /^must be a non-empty string$/);
  });

  test("texts: one string or a list of non-empty strings, each checked; absent is []", () => {
    const t = texts({ help: "", check: (v) => (v.includes(":") ? undefined : "must be HOST:DIR") });
    assert.deepEqual(t.fallback, []);
    assert.equal(t.input, "list");
    accepts(
      t,
      [
        ["a:/x", ["a:/x"]],
        [
          ["a:/x", "b:/y"],
          ["a:/x", "b:/y"],
        ],
        [[], []],
      ],
      [],
      /./,
    );
    accepts(t, [], [3, { a: 1 }, true], /^must be a list of strings$/);
    accepts(
      t,
      [],
      [
        ["a:/x", ""],
        ["a:/x", 3],
      ],
      /^must be a list of non-empty strings$/,
    );
    accepts(t, [], [["a:/x", "b"]], /^"b" must be HOST:DIR$/);
  });

  test("flag: true or false; absent is false", () => {
    const f = flag({ help: "" });
    assert.equal(f.fallback, false);
    assert.equal(f.input, "switch");
    accepts(
      f,
      [
        [true, true],
        [false, false],
      ],
      ["true", 1, "yes"],
      /^must be true or false$/,
    );
  });

  test("integer: a whole number in range, as a number or as digits; `what` names it", () => {
    const n = integer({ help: "", min: 1, max: 3600, what: "whole seconds" });
    accepts(
      n,
      [
        [1, 1],
        [3600, 3600],
        ["60", 60],
        [" 5 ", 5],
      ],
      [0, 3601, 1.5, "1.5", "-1", "", "5s", "0x10", true, null],
      /^must be whole seconds from 1 to 3600$/,
    );
    accepts(integer({ help: "", min: 0, max: 2 }), [[0, 0]], [3], /^must be a whole number from 0 to 2$/);
  });

  test("port: 1 to 65535", () => {
    accepts(
      port({ help: "" }),
      [
        [22, 22],
        ["65535", 65535],
      ],
      [0, 65536, "http"],
      /^must be a port number from 1 to 65535$/,
    );
  });

  test("withDefault and required keep the setting and add the fallback or the requirement", () => {
    const base = text({ help: "h", flag: "f", arg: "A", secret: true, needs: "n" });
    const d = withDefault(base, "x");
    assert.equal(d.fallback, "x");
    const r = required(base);
    assert.equal(r.required, true);
    for (const s of [d, r]) {
      assert.deepEqual(
        [s.help, s.flag, s.arg, s.secret, s.needs, s.input],
        ["h", "f", "A", true, "n", "value"],
      );
      assert.equal(s.parse("v"), "v");
    }
    assert.equal(base.fallback, undefined);
    assert.equal(base.required, undefined);
  });

  test("kebab: a key as an option name", () => {
    assert.equal(kebab("reloadCmd"), "reload-cmd");
    assert.equal(kebab("pfxPassword"), "pfx-password");
    assert.equal(kebab("port"), "port");
  });
});
