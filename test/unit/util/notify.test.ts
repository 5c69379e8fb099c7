import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, beforeEach, describe, test } from "node:test";
import type { Logger } from "../../../src/util/log";
import {
  afterRun,
  heartbeat,
  type NotifySettings,
  notify,
  type RunReport,
  summarize,
} from "../../../src/util/notify";

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage["headers"];
  body: string;
}

let server: Server;
let base: string;
let seen: Seen[] = [];
let answer: { status: number; body?: string; hang?: boolean } = { status: 200 };

before(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      seen.push({
        method: req.method ?? "",
        url: req.url ?? "",
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
      });
      if (answer.hang) return;
      res.writeHead(answer.status, { "content-type": "text/plain" });
      res.end(answer.body ?? "ok");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(() => {
  server.closeAllConnections();
  server.close();
});

beforeEach(() => {
  seen = [];
  answer = { status: 200 };
});

function recorder(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    info: (m) => lines.push(`info ${m}`),
    warn: (m) => lines.push(`warn ${m}`),
    debug: (m) => lines.push(`debug ${m}`),
  };
}

function report(failed: RunReport["failed"], renewed: string[] = ["a.example"]): RunReport {
  const r = { checked: 12, renewed, failed, skipped: 9 };
  return {
    ...r,
    startedAt: "2026-11-23T12:00:00.000Z",
    finishedAt: "2026-11-23T12:00:05.000Z",
    summary: summarize(r),
  };
}

const cfg = (over: Partial<NotifySettings>): NotifySettings => ({ notifyOn: "failure", ...over });
const failing = () => report([{ name: "b.example", error: "connection refused" }]);

describe("notify", () => {
  test("summary line format", () => {
    assert.equal(failing().summary, "12 checked, 1 renewed, 1 failed: b.example: connection refused");
    assert.equal(report([]).summary, "12 checked, 1 renewed, 0 failed");
  });

  test("POSTs the JSON report to notifyUrl on failure", async () => {
    const log = recorder();
    await notify(cfg({ notifyUrl: `${base}/hook?token=s3cret` }), failing(), log);
    assert.equal(seen.length, 1);
    const s = seen[0] as Seen;
    assert.equal(s.method, "POST");
    assert.equal(s.url, "/hook?token=s3cret");
    assert.equal(s.headers["content-type"], "application/json");
    assert.match(s.headers["user-agent"] ?? "", /^wile\/\S+$/);
    const doc = JSON.parse(s.body);
    assert.equal(doc.event, "failure");
    assert.deepEqual(doc.failed, [{ name: "b.example", error: "connection refused" }]);
    assert.deepEqual(doc.renewed, ["a.example"]);
    assert.equal(doc.checked, 12);
    assert.equal(doc.summary, failing().summary);
    assert.deepEqual(
      log.lines.filter((l) => l.startsWith("warn")),
      [],
    );
    assert.ok(!log.lines.join("\n").includes("s3cret"), "the URL's path and query are not logged");
  });

  test("nothing is sent after a successful run unless notifyOn is always", async () => {
    await notify(cfg({ notifyUrl: `${base}/hook` }), report([]), recorder());
    assert.equal(seen.length, 0);
    await notify(cfg({ notifyUrl: `${base}/hook`, notifyOn: "always" }), report([]), recorder());
    assert.equal(seen.length, 1);
    assert.equal(JSON.parse((seen[0] as Seen).body).event, "success");
  });

  test("a non-2xx answer is a warning with the status, never a throw", async () => {
    answer = { status: 500, body: "database\non fire" };
    const log = recorder();
    await notify(cfg({ notifyUrl: `${base}/hook` }), failing(), log);
    const warn = log.lines.find((l) => l.startsWith("warn"));
    assert.match(warn ?? "", /HTTP 500: database on fire/);
  });

  test("an unreachable or silent endpoint is a warning within the timeout", async () => {
    const log = recorder();
    await notify(cfg({ notifyUrl: "http://127.0.0.1:1/hook" }), failing(), log);
    assert.match(log.lines.join("\n"), /warn notify POST to http:\/\/127\.0\.0\.1:1 failed/);
    answer = { status: 200, hang: true };
    const log2 = recorder();
    const started = Date.now();
    await notify(cfg({ notifyUrl: `${base}/slow` }), failing(), log2, { httpTimeoutMs: 300 });
    assert.ok(Date.now() - started < 3000);
    assert.match(log2.lines.join("\n"), /warn .*no answer within 0\.3 s/);
  });

  test("notifyCmd gets WILE_* variables and the JSON report on stdin", async () => {
    const dir = mkdtempSync(join(tmpdir(), "wile-notify-"));
    const cmd = `printf '%s\\n' "$WILE_EVENT" "$WILE_SUMMARY" "$WILE_FAILED" "$WILE_RENEWED" > '${dir}/env'; cat > '${dir}/stdin'`;
    const r = report(
      [
        { name: "b.example", error: "x" },
        { name: "c.example", error: "y" },
      ],
      ["a.example", "d.example"],
    );
    const log = recorder();
    await notify(cfg({ notifyCmd: cmd }), r, log);
    assert.deepEqual(readFileSync(join(dir, "env"), "utf8").split("\n"), [
      "failure",
      r.summary,
      "b.example c.example",
      "a.example d.example",
      "",
    ]);
    const doc = JSON.parse(readFileSync(join(dir, "stdin"), "utf8"));
    assert.equal(doc.event, "failure");
    assert.equal(doc.summary, r.summary);
    assert.deepEqual(
      log.lines.filter((l) => l.startsWith("warn")),
      [],
    );
  });

  test("a failing or hanging notifyCmd is a warning", async () => {
    const log = recorder();
    await notify(cfg({ notifyCmd: "echo boom >&2; exit 4" }), failing(), log);
    assert.match(log.lines.join("\n"), /warn notify command failed \(exit 4\): boom/);
    const log2 = recorder();
    await notify(cfg({ notifyCmd: "sleep 30" }), failing(), log2, { cmdTimeoutMs: 200 });
    assert.match(log2.lines.join("\n"), /warn notify command failed \(timed out/);
  });

  test("heartbeat GETs the URL; errors are warnings", async () => {
    const log = recorder();
    await heartbeat(`${base}/ping/uuid-secret`, log);
    assert.equal(seen.length, 1);
    assert.equal((seen[0] as Seen).method, "GET");
    assert.equal((seen[0] as Seen).url, "/ping/uuid-secret");
    assert.match((seen[0] as Seen).headers["user-agent"] ?? "", /^wile\//);
    assert.ok(!log.lines.join("\n").includes("uuid-secret"));
    answer = { status: 404 };
    const log2 = recorder();
    await heartbeat(`${base}/ping/x`, log2);
    assert.match(log2.lines.join("\n"), /warn heartbeat to http:\/\/127\.0\.0\.1:\d+ answered HTTP 404/);
  });

  test("afterRun: heartbeat only after a run without failures", async () => {
    const c = cfg({ heartbeatUrl: `${base}/ping`, notifyUrl: `${base}/hook` });
    await afterRun(c, report([]), recorder());
    assert.deepEqual(
      seen.map((s) => `${s.method} ${s.url}`),
      ["GET /ping"],
    );
    seen = [];
    await afterRun(c, failing(), recorder());
    assert.deepEqual(
      seen.map((s) => `${s.method} ${s.url}`),
      ["POST /hook"],
    );
  });
});
