/**
 * End to end: a hostile or broken CA (issue 10, part 1). test/helpers/hostile-ca.ts sits in front
 * of Pebble and misbehaves on one kind of request per case; each case runs against `wile issue`
 * (a fresh home), `wile renew NAME --force` and `wile cron` (copies of a home holding a certificate
 * issued cleanly, due at once by --renew-days 3650, without its account, so that every run registers
 * a fresh one).
 *
 * Every run must: exit 1 within the case's bound (wile runs with --timeout 10: the deadline of one
 * certificate operation), name the CA (host:port) and what was wrong on stderr, print no stack
 * trace and only printable text (the CA's words are untrusted), write nothing outside the webroot's
 * .well-known/acme-challenge (the webroot's parent and the home are compared before and after),
 * keep the current certificate and key byte-identical, and stay under RSS_BOUND_MB of peak RSS
 * (measured with /usr/bin/time on every run).
 *
 * Cases run SLOTS at a time, each slot with its own proxy and template home.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { chmodSync, cpSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { after, before, describe, it } from "node:test";
import { hasStackTrace, issueArgs, snapshot } from "../helpers/e2e";
import {
  type Act,
  answer,
  endlessStream,
  type HostileCa,
  halfBody,
  headersThenSilence,
  hugeBody,
  problem,
  type RequestKind,
  redirect,
  rewriteJson,
  startHostileCa,
  withHeaders,
} from "../helpers/hostile-ca";
import { freePort, startTestEnv, type TestEnv } from "../helpers/testenv";
import { dump, runWile, tempDir, wileCjs } from "../helpers/wile";

const SLOTS = 4;
const TIMEOUT_S = 10;
/** Bound of a run that fails on the CA's answer (retries of 5xx and network errors included). */
const FAST_MS = 20_000;
/** Bound of a run that can only end at the deadline (a CA that hangs or never finishes). */
const DEADLINE_MS = TIMEOUT_S * 1000 + 10_000;
/** Bound of a run that must not wait for the deadline (a Retry-After past it ends the run at once). */
const BEFORE_DEADLINE_MS = TIMEOUT_S * 1000;
const RSS_BOUND_MB = 150;
const NAME = "hostile.example";

type Json = Record<string, unknown>;

interface Case {
  name: string;
  kind: RequestKind | RequestKind[] | "*";
  act: Act;
  /** What the message must say was wrong. */
  says: RegExp;
  bound?: number;
  /** Another host:port the message may name instead of the proxy's. */
  names?: () => string;
}

const http01 = (b: Json, change: (c: Json) => void) => {
  for (const c of b.challenges as Json[]) if (c.type === "http-01") change(c);
  return b;
};
const token = (t: unknown) => rewriteJson((b) => http01(b, (c) => (c.token = t)));
const ANSI_DETAIL = `\u001b[31mred\u001b[0m\u0007 bell\r\nfake line\u0000nul ${"x".repeat(10 * 1024)}`;
let closedPort = 0;

const CASES: Case[] = [
  // Challenge tokens: refused before anything is written.
  { name: "token-dotdot", kind: "authz", act: token("../../../evil"), says: /unsafe challenge token/ },
  { name: "token-slash", kind: "authz", act: token("a/b"), says: /unsafe challenge token/ },
  { name: "token-backslash", kind: "authz", act: token("a\\b"), says: /unsafe challenge token/ },
  { name: "token-nul", kind: "authz", act: token("abc\u0000def"), says: /unsafe challenge token/ },
  {
    name: "token-10kb",
    kind: "authz",
    act: token("A".repeat(10 * 1024)),
    says: /unsafe challenge token.*10240 characters/,
  },
  { name: "token-empty", kind: "authz", act: token(""), says: /unsafe challenge token/ },
  { name: "token-numeric", kind: "authz", act: token(12345), says: /unsafe challenge token.*not a string/ },
  // Names the CA was not asked for.
  {
    name: "order-extra-identifier",
    kind: "newOrder",
    act: rewriteJson((b) => ({
      ...b,
      identifiers: [...(b.identifiers as Json[]), { type: "dns", value: "evil.example.net" }],
    })),
    says: /answered for evil\.example\.net, which was not asked for/,
  },
  {
    name: "order-other-names",
    kind: "newOrder",
    act: rewriteJson((b) => ({ ...b, identifiers: [{ type: "dns", value: "other.example.org" }] })),
    says: /answered for other\.example\.org, which was not asked for/,
  },
  {
    name: "authz-substituted-identifier",
    kind: "authz",
    act: rewriteJson((b) => ({ ...b, identifier: { type: "dns", value: "evil.example.net" } })),
    says: /answered for evil\.example\.net, which was not asked for/,
  },
  // JSON of the wrong shape.
  {
    name: "order-array",
    kind: "newOrder",
    act: rewriteJson(() => []),
    says: /malformed order.*not a JSON object/,
  },
  {
    name: "order-status-number",
    kind: "newOrder",
    act: rewriteJson((b) => ({ ...b, status: 5 })),
    says: /malformed order.*no valid status/,
  },
  {
    name: "authz-missing-fields",
    kind: "authz",
    act: rewriteJson(() => ({ status: "pending" })),
    says: /malformed authorization.*no valid identifier/,
  },
  {
    name: "authz-challenges-object",
    kind: "authz",
    act: rewriteJson((b) => ({ ...b, challenges: { "http-01": b.challenges } })),
    says: /malformed authorization.*no list of challenges/,
  },
  {
    name: "directory-number-url",
    kind: "directory",
    act: rewriteJson((b) => ({ ...b, newOrder: 42 })),
    says: /not an ACME directory/,
  },
  // Sizes, streams and broken bodies.
  {
    name: "directory-50mb",
    kind: "directory",
    act: hugeBody(50 * 1024 * 1024),
    says: /larger than 1048576 bytes/,
  },
  {
    name: "certificate-50mb",
    kind: "certificate",
    act: hugeBody(50 * 1024 * 1024),
    says: /larger than 1048576 bytes/,
  },
  { name: "order-endless", kind: "newOrder", act: endlessStream(), says: /larger than 1048576 bytes/ },
  {
    name: "directory-slowloris",
    kind: "directory",
    act: headersThenSilence(),
    says: /gave up at the deadline of 10 s: no complete answer from https:\/\/127\.0\.0\.1:\d+\/dir/,
    bound: DEADLINE_MS,
  },
  {
    name: "nonce-missing",
    kind: "newNonce",
    act: withHeaders({ "replay-nonce": null }),
    says: /newNonce \(https:\/\/127\.0\.0\.1:\d+\/nonce-plz\) gave no Replay-Nonce header/,
  },
  { name: "finalize-half-body", kind: "finalize", act: halfBody(), says: /cannot reach .*finalize-order/ },
  {
    name: "order-invalid-json",
    kind: "order",
    act: rewriteJson(() => '{"status": "valid", '),
    says: /invalid JSON from .*my-order/,
  },
  {
    name: "authz-text-plain",
    kind: "authz",
    act: withHeaders({ "content-type": "text/plain" }),
    says: /answered .*authZ.* with text\/plain instead of JSON/,
  },
  {
    name: "account-html-502",
    kind: "newAccount",
    act: answer(502, "<html><body><h1>502 Bad Gateway</h1>nginx</body></html>", {
      "content-type": "text/html",
    }),
    says: /answered HTTP 502: unexpected text\/html: <html><body><h1>502 Bad Gateway/,
  },
  {
    name: "account-no-location",
    kind: "newAccount",
    act: withHeaders({ location: null }),
    says: /newAccount answer \(https:\/\/127\.0\.0\.1:\d+\/sign-me-up\) has no Location header/,
  },
  {
    name: "challenge-html-200",
    kind: "challenge",
    act: answer(200, "<html>Please log in to the hotel Wi-Fi</html>", { "content-type": "text/html" }),
    says: /answered .*chalZ.* with text\/html instead of JSON: <html>Please log in/,
  },
  {
    name: "order-invalid-ansi-detail",
    kind: "order",
    act: rewriteJson((b) => ({ ...b, status: "invalid", error: { type: "x", detail: ANSI_DETAIL } })),
    says: /did not issue the certificate \(https:\/\/127\.0\.0\.1:\d+\/my-order\/\S+\): \[31mred \[0m bell/,
  },
  // URLs the client must not follow.
  {
    name: "directory-http-url",
    kind: "directory",
    act: rewriteJson((b) => ({ ...b, newOrder: String(b.newOrder).replace("https:", "http:") })),
    says: /gives the directory's newOrder as http:\/\/.*not an https:\/\/ URL/,
  },
  {
    name: "finalize-other-host",
    kind: ["newOrder", "order"],
    act: rewriteJson((b) => ({ ...b, finalize: `https://127.0.0.1:${closedPort}/finalize` })),
    says: /cannot reach https:\/\/127\.0\.0\.1:\d+\/finalize/,
    names: () => `127.0.0.1:${closedPort}`,
  },
  {
    name: "directory-redirect-301",
    kind: "directory",
    act: redirect(301, "https://ca.example.net/acme/directory"),
    says: /redirect \(HTTP 301\) to https:\/\/ca\.example\.net\/acme\/directory/,
  },
  {
    name: "order-redirect-302",
    kind: "newOrder",
    act: redirect(302, "/elsewhere/order"),
    says: /redirect \(HTTP 302\) to https:\/\/127\.0\.0\.1:\d+\/elsewhere\/order/,
  },
  {
    name: "certificate-redirect-307",
    kind: "certificate",
    act: redirect(307, "https://cdn.example.net/cert.pem"),
    says: /redirect \(HTTP 307\) to https:\/\/cdn\.example\.net\/cert\.pem/,
  },
  {
    name: "authz-file-url",
    kind: "newOrder",
    act: rewriteJson((b) => ({ ...b, authorizations: ["file:///etc/passwd"] })),
    says: /gives an authorization URL as file:\/\/\/etc\/passwd/,
  },
  {
    name: "certificate-data-url",
    kind: ["order", "finalize"],
    act: rewriteJson((b) => (b.certificate ? { ...b, certificate: "data:text/plain,hello" } : b)),
    says: /gives the certificate URL as data:text\/plain,hello/,
  },
  {
    name: "directory-404",
    kind: "directory",
    act: answer(404, "<html>Not Found</html>", { "content-type": "text/html" }),
    says: /there is no ACME directory at https:\/\/127\.0\.0\.1:\d+\/dir \(HTTP 404\)/,
  },
  {
    name: "certificate-leaf-only",
    kind: "certificate",
    act: async (c) => {
      const up = await c.forward();
      const leaf = up.body.toString("utf8").split(/(?<=-----END CERTIFICATE-----\n)/)[0] ?? "";
      c.reply({ ...up, body: Buffer.from(leaf) });
    },
    says: /only the leaf certificate, without the certificate of its issuer/,
  },
  // Waits.
  {
    name: "order-processing-forever",
    kind: ["order", "finalize"],
    act: rewriteJson((b) => {
      const { certificate: _, ...rest } = b;
      return b.status === "valid" ? { ...rest, status: "processing" } : b;
    }),
    says: /gave up waiting for the CA to issue the certificate: .*my-order.* still says "processing" at the deadline/,
    bound: DEADLINE_MS,
  },
  {
    name: "authz-pending-forever",
    kind: "order",
    act: rewriteJson((b) => ({ ...b, status: "pending" })),
    says: /gave up waiting for the CA to validate: .*my-order.* still says "pending" at the deadline/,
    bound: DEADLINE_MS,
  },
  {
    name: "poll-retry-after-86400",
    kind: ["order", "finalize"],
    act: async (c) => {
      const up = await c.forward();
      const b = JSON.parse(up.body.toString("utf8")) as Json;
      const { certificate: _, ...rest } = b;
      const body = b.status === "valid" ? { ...rest, status: "processing" } : b;
      c.reply({
        ...up,
        headers: { ...up.headers, "retry-after": "86400" },
        body: Buffer.from(JSON.stringify(body)),
      });
    },
    says: /asks to come back after \d{4}-\d\d-\d\dT[\d:.]+Z \(Retry-After\), past the deadline/,
    bound: BEFORE_DEADLINE_MS,
  },
  {
    name: "rate-limited-429",
    kind: "newOrder",
    act: problem(429, "rateLimited", "too many certificates for this name", { "retry-after": "3600" }),
    says: /refused the request \(rateLimited, HTTP 429\): too many certificates[\s\S]*try again after \d{4}-/,
  },
  {
    name: "storm-503",
    kind: "*",
    act: problem(503, "serverInternal", "down for maintenance", { "retry-after": "1" }),
    says: /refused the request \(serverInternal, HTTP 503\): down for maintenance/,
  },
  {
    name: "storm-503-retry-after-86400",
    kind: "newOrder",
    act: problem(503, "serverInternal", "back tomorrow", { "retry-after": "86400" }),
    says: /back tomorrow\nThe CA asks to try again after \d{4}-.*past the deadline/,
    bound: BEFORE_DEADLINE_MS,
  },
  {
    name: "detail-ansi-10kb",
    kind: "newOrder",
    act: problem(400, "malformed", ANSI_DETAIL),
    says: /refused the request \(malformed, HTTP 400\): \[31mred \[0m bell fake line nul x{300,400}\.\.\.\n/,
  },
];

let env: TestEnv;
const slots: Array<{ ca: HostileCa; template: string; busy: boolean }> = [];
const waiting: Array<() => void> = [];
const figures: Array<{ name: string; command: string; ms: number; rss: number; code: number }> = [];
let timedWile = "";

before(async () => {
  env = await startTestEnv({ env: { PEBBLE_AUTHZREUSE: "0" } });
  closedPort = await freePort();
  const dir = tempDir("wile-e2e-hostile-");
  timedWile = join(dir, "wile-timed");
  writeFileSync(
    timedWile,
    `#!/bin/sh\nexec /usr/bin/time -f %M -o "$WILE_RSS_FILE" "${process.execPath}" "${wileCjs}" "$@"\n`,
  );
  chmodSync(timedWile, 0o755);
  await Promise.all(
    Array.from({ length: SLOTS }, async (_, i) => {
      const ca = await startHostileCa(env);
      const template = join(dir, `template-${i}`);
      const r = await runWile(issueArgs(via(ca), [NAME], ["--renew-days", "3650"]), { home: template });
      assert.equal(r.code, 0, dump(r));
      // Every run registers a fresh account: misbehaving at newAccount is met by all three commands,
      // and no authorization validated by an earlier run can make a case's order "ready" at once.
      rmSync(join(template, "accounts"), { recursive: true });
      slots.push({ ca, template, busy: false });
    }),
  );
});

after(async () => {
  if (figures.length > 0) {
    const worst = Math.max(...figures.map((f) => f.rss));
    const exit1 = figures.filter((f) => f.code === 1).length;
    console.log(
      `reliability: hostile summary cases=${CASES.length} runs=${figures.length} exit1=${exit1} other=${figures.length - exit1} ` +
        `max-ms=${Math.max(...figures.map((f) => f.ms))} max-rss=${worst}MB (bound ${RSS_BOUND_MB}MB)`,
    );
  }
  await Promise.all(slots.map((s) => s.ca.stop()));
  await env?.stop();
});

const via = (ca: HostileCa): TestEnv => ({ ...env, directoryUrl: ca.directoryUrl, caBundle: ca.caBundle });

async function takeSlot(): Promise<(typeof slots)[number]> {
  for (;;) {
    const free = slots.find((s) => !s.busy);
    if (free) {
      free.busy = true;
      return free;
    }
    await new Promise<void>((r) => waiting.push(r));
  }
}

function giveBack(slot: (typeof slots)[number]): void {
  slot.busy = false;
  waiting.shift()?.();
}

/** Files under dir (relative paths), recursively. */
function walk(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => !e.isDirectory())
    .map((e) => relative(dir, join(e.parentPath ?? e.path, e.name)));
}

/** path -> sha256 of the files under dir, leaving out those `skip` matches. */
function tree(dir: string, skip: RegExp): Map<string, string> {
  const out = new Map<string, string>();
  for (const f of walk(dir)) {
    if (skip.test(f)) continue;
    let hash = "(unreadable)";
    try {
      hash = createHash("sha256")
        .update(readFileSync(join(dir, f)))
        .digest("hex");
    } catch {}
    out.set(f, hash);
  }
  return out;
}

/**
 * What a run may change: logs, accounts (looked up again), state.json (the failure), locks, and the
 * loader's compile cache (cache/: the first run of a command writes its code cache).
 */
const HOME_SKIP = /^logs\/|^accounts\/|\/state\.json$|\.lock$|^cache\//;
/** The webroot's parent: Pebble's and nginx's logs change, challenge files come and go. */
const WEBROOT_PARENT_SKIP = /\.log$|^webroot\/\.well-known\/acme-challenge\//;

function changes(before: Map<string, string>, after: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [f, h] of after) if (before.get(f) !== h) out.push(before.has(f) ? `changed ${f}` : `new ${f}`);
  for (const f of before.keys()) if (!after.has(f)) out.push(`removed ${f}`);
  return out;
}

async function runCase(c: Case, command: "issue" | "renew" | "cron", slot: (typeof slots)[number]) {
  const home = join(tempDir("wile-e2e-hostile-run-"), "wile");
  if (command !== "issue") cpSync(slot.template, home, { recursive: true, verbatimSymlinks: true });
  const args =
    command === "issue"
      ? issueArgs(via(slot.ca), [NAME])
      : command === "renew"
        ? ["renew", NAME, "--force"]
        : ["cron"];
  const homeBefore = tree(home, HOME_SKIP);
  const certBefore = command === "issue" ? undefined : snapshot(home, NAME);
  const parentBefore = tree(env.tmp, WEBROOT_PARENT_SKIP);
  const rssFile = join(home, "..", "rss");
  slot.ca.set(c.kind, c.act);
  let acted = 0;
  let r: Awaited<ReturnType<typeof runWile>>;
  try {
    r = await runWile([...args, "--timeout", String(TIMEOUT_S)], {
      home,
      bin: timedWile,
      env: { WILE_RSS_FILE: rssFile },
      timeoutMs: 90_000,
    });
  } finally {
    acted = slot.ca.clear();
  }
  const rss = Math.round(Number(readFileSync(rssFile, "utf8").trim().split("\n").pop()) / 1024);
  const bound = c.bound ?? FAST_MS;
  figures.push({ name: c.name, command, ms: r.ms, rss, code: r.code });
  console.log(
    `reliability: hostile ${c.name} ${command} exit=${r.code} ms=${r.ms} rss=${rss}MB bound=${bound}ms`,
  );
  const ctx = `${c.name} ${command}:\n${dump(r)}`;
  assert.ok(acted > 0, `the misbehaviour was never met: ${ctx}`);
  assert.equal(r.code, 1, ctx);
  assert.ok(r.ms < bound, `${r.ms} ms, bound ${bound} ms: ${ctx}`);
  assert.match(r.stderr, c.says, ctx);
  const caHost = new URL(slot.ca.origin).host;
  const other = c.names?.();
  assert.ok(
    r.stderr.includes(caHost) || (other !== undefined && r.stderr.includes(other)),
    `CA not named: ${ctx}`,
  );
  assert.ok(!hasStackTrace(r.stderr), `stack trace: ${ctx}`);
  const control = [...r.stderr].filter((ch) => (ch < " " && ch !== "\n") || ch === "\u007f");
  assert.deepEqual(control, [], `control characters: ${ctx}`);
  assert.ok(r.stderr.length < 4000, `${r.stderr.length} characters on stderr: ${ctx}`);
  assert.doesNotMatch(r.stderr, /^error: internal error|bug in wile/m, ctx);
  assert.deepEqual(changes(homeBefore, tree(home, HOME_SKIP)), [], `home changed: ${ctx}`);
  assert.deepEqual(changes(parentBefore, tree(env.tmp, WEBROOT_PARENT_SKIP)), [], `written outside: ${ctx}`);
  if (certBefore) assert.deepEqual(snapshot(home, NAME), certBefore, `certificate or key changed: ${ctx}`);
  assert.ok(rss < RSS_BOUND_MB, `peak RSS ${rss} MB: ${ctx}`);
}

describe("a hostile or broken CA: exit 1 in bounded time, a clear message, nothing harmed", {
  concurrency: SLOTS,
}, () => {
  for (const c of CASES) {
    it(c.name, async () => {
      const slot = await takeSlot();
      try {
        for (const command of ["issue", "renew", "cron"] as const) await runCase(c, command, slot);
      } finally {
        giveBack(slot);
      }
    });
  }
});

describe("after every case", () => {
  it("no challenge file is left in the webroot", () => {
    assert.deepEqual(walk(join(env.webroot, ".well-known", "acme-challenge")), []);
  });
});
