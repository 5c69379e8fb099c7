import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import type { Logger } from "../../../src/util/log";
import { formatLine, logFilePath, openFileLog, redact, teeLogger } from "../../../src/util/logfile";

const tmp = () => mkdtempSync(join(tmpdir(), "wile-logfile-"));
const at = new Date("2026-11-23T12:00:00.000Z");

describe("log file", () => {
  test("one line per event: ISO time, level, [pid], message", () => {
    const home = tmp();
    const log = openFileLog(home, { now: () => at });
    log.info("renewed a.example");
    log.warn("ARI answer malformed");
    log.error("b.example: CA down");
    log.debug("not written without verbose");
    const text = readFileSync(logFilePath(home), "utf8");
    assert.equal(
      text,
      [
        `2026-11-23T12:00:00.000Z INFO [${process.pid}] renewed a.example`,
        `2026-11-23T12:00:00.000Z WARN [${process.pid}] ARI answer malformed`,
        `2026-11-23T12:00:00.000Z ERROR [${process.pid}] b.example: CA down`,
        "",
      ].join("\n"),
    );
    const verbose = openFileLog(home, { verbose: true, now: () => at });
    verbose.debug("detail");
    assert.match(readFileSync(logFilePath(home), "utf8"), /DEBUG \[\d+\] detail\n$/);
  });

  test("multi-line messages stay on one line, control characters are replaced", () => {
    assert.equal(
      formatLine(at, "INFO", 7, "a\nb\r\nc\x1b[31m"),
      "2026-11-23T12:00:00.000Z INFO [7] a | b | c?[31m\n",
    );
  });

  test("the directory is 0700 and the file 0600 whatever the umask", () => {
    const home = join(tmp(), "new-home");
    const saved = process.umask(0);
    try {
      openFileLog(home).info("x");
    } finally {
      process.umask(saved);
    }
    assert.equal(statSync(home).mode & 0o777, 0o700);
    assert.equal(statSync(join(home, "logs")).mode & 0o777, 0o700);
    assert.equal(statSync(logFilePath(home)).mode & 0o777, 0o600);
  });

  test("an existing too-open log file is tightened to 0600", () => {
    const home = tmp();
    openFileLog(home).info("first");
    chmodSync(logFilePath(home), 0o644);
    openFileLog(home).info("second");
    assert.equal(statSync(logFilePath(home)).mode & 0o777, 0o600);
  });

  test("rotates at the size: wile.log.1 newest .. wile.log.3 oldest, nothing beyond", () => {
    const home = tmp();
    const maxBytes = 1000;
    const log = openFileLog(home, { maxBytes, now: () => at });
    const path = logFilePath(home);
    // Each line is ~100 bytes; 60 lines = about 6 files' worth.
    for (let i = 0; i < 60; i++) log.info(`line ${String(i).padStart(3, "0")} ${"x".repeat(60)}`);
    for (const p of [path, `${path}.1`, `${path}.2`, `${path}.3`]) {
      assert.ok(existsSync(p), p);
      assert.ok(statSync(p).size <= maxBytes, `${p} is ${statSync(p).size} bytes`);
      assert.equal(statSync(p).mode & 0o777, 0o600);
    }
    assert.equal(existsSync(`${path}.4`), false);
    const current = readFileSync(path, "utf8");
    assert.match(current, /line 059/);
    const one = readFileSync(`${path}.1`, "utf8");
    const three = readFileSync(`${path}.3`, "utf8");
    const firstOf = (t: string) => Number(/line (\d+)/.exec(t)?.[1]);
    assert.ok(firstOf(three) < firstOf(one), "wile.log.3 is older than wile.log.1");
    assert.ok(firstOf(one) < firstOf(current));
    // No line was cut in two.
    for (const t of [current, one, three]) for (const l of t.trimEnd().split("\n")) assert.match(l, /x{60}$/);
  });

  test("redacts EAB HMAC keys, private keys, Authorization and URL passwords", () => {
    const cases: Array<[string, string]> = [
      ["wile issue --eab-kid kid1 --eab-hmac-key c2VjcmV0LWtleQ -d a", "c2VjcmV0LWtleQ"],
      ["argv: --eab-hmac-key=c2VjcmV0LWtleQ", "c2VjcmV0LWtleQ"],
      ['{"eabHmacKey":"c2VjcmV0LWtleQ"}', "c2VjcmV0LWtleQ"],
      ["eab-hmac-key: c2VjcmV0LWtleQ", "c2VjcmV0LWtleQ"],
      ["hmac_key=c2VjcmV0LWtleQ,", "c2VjcmV0LWtleQ"],
      ["Authorization: Bearer tok123456", "tok123456"],
      ["posting to https://user:hunter2@hooks.example.com/x", "hunter2"],
      ["-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIB\n-----END EC PRIVATE KEY-----", "MHcCAQEEIB"],
    ];
    for (const [input, secret] of cases) {
      const out = redact(input);
      assert.ok(!out.includes(secret), `${input} -> ${out}`);
      assert.match(out, /redacted/);
    }
    assert.equal(redact("renewed a.example (eab: kid1)"), "renewed a.example (eab: kid1)");
    const home = tmp();
    openFileLog(home).info("retrying with --eab-hmac-key c2VjcmV0LWtleQ");
    assert.ok(!readFileSync(logFilePath(home), "utf8").includes("c2VjcmV0LWtleQ"));
  });

  test("a write failure never throws; onError is called once", () => {
    const dir = tmp();
    const home = join(dir, "file-not-dir");
    writeFileSync(home, "");
    const errors: Error[] = [];
    const log = openFileLog(home, { onError: (e) => errors.push(e) });
    log.info("a");
    log.warn("b");
    assert.equal(errors.length, 1);
  });

  test("teeLogger sends info/warn/debug to the terminal logger and the file", () => {
    const home = tmp();
    const seen: string[] = [];
    const base: Logger = {
      info: (m) => seen.push(`info ${m}`),
      warn: (m) => seen.push(`warn ${m}`),
      debug: (m) => seen.push(`debug ${m}`),
    };
    const logger = teeLogger(base, openFileLog(home, { verbose: false }));
    logger.info("i");
    logger.warn("w");
    logger.debug("d");
    assert.deepEqual(seen, ["info i", "warn w", "debug d"]);
    const text = readFileSync(logFilePath(home), "utf8");
    assert.match(text, /INFO \[\d+\] i\n/);
    assert.match(text, /WARN \[\d+\] w\n/);
    assert.doesNotMatch(text, /DEBUG/);
  });
});
