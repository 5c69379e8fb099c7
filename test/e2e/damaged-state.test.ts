/**
 * End to end, issue 10 part 6 and findings 2, 5, 7 (renewal.json a directory): a home with three
 * certificates, one file of one certificate damaged at a time. `list`, `cron` and `renew --all`
 * each report that certificate with a message naming the file and a hint, exit with the documented
 * code, and still process the two others. `list` reads what cron reads (finding 5: it used to show
 * ok for a corrupt renewal.json). A broken config.json does not stop cron (finding 2: exit 2 and
 * no certificate processed): it is reported, the run goes on without notifications, the summary
 * says so.
 *
 * The certificate directory "owned by another user": as root (CI), wile runs as nobody over a home
 * that is nobody's, with b.example's directory root's and 0700; as another user, chmod 000.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import {
  chmodSync,
  cpSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { mapLimit } from "../../src/renew/run";
import { certDir, hasStackTrace, issueArgs } from "../helpers/e2e";
import { giveToNobody, isRoot, otherUserBin } from "../helpers/other-user";
import { startTestEnv, type TestEnv } from "../helpers/testenv";
import { dump, type RunResult, runWile, tempDir } from "../helpers/wile";

const NAMES = ["a.example", "b.example", "c.example"];
const DAMAGED = "b.example";
const OTHERS = NAMES.filter((n) => n !== DAMAGED);

let env: TestEnv;
let template: string;
let caDir: string;

before(async () => {
  env = await startTestEnv();
  template = join(tempDir("wile-e2e-damaged-"), "home");
  const first = await runWile(issueArgs(env, [NAMES[0] as string]), { home: template });
  assert.equal(first.code, 0, dump(first));
  const rest = await Promise.all(NAMES.slice(1).map((n) => runWile(issueArgs(env, [n]), { home: template })));
  for (const r of rest) assert.equal(r.code, 0, dump(r));
  // b.example renews with an account of its own, so that damaging it touches b only.
  caDir = join(template, "accounts", readdirSync(join(template, "accounts"))[0] as string);
  cpSync(join(caDir, "default"), join(caDir, "second"), { recursive: true });
  editJson(join(certDir(template, DAMAGED), "renewal.json"), (v) => ({ ...v, account: "second" }));
  writeFileSync(
    join(template, "config.json"),
    `${JSON.stringify({ version: 1, notifyOn: "failure", notifyCmd: "true" }, null, 2)}\n`,
    { mode: 0o600 },
  );
  const ok = await runWile(["list"], { home: template });
  assert.equal(ok.code, 0, dump(ok));
});

after(async () => {
  await env?.stop();
});

function editJson(file: string, edit: (v: Record<string, unknown>) => unknown): void {
  writeFileSync(file, JSON.stringify(edit(JSON.parse(readFileSync(file, "utf8")))));
}

/** How a file can be damaged: the file's new content, or a function that damages `path`. */
const CONTENT_DAMAGE: Record<string, (text: string) => string> = {
  truncated: (t) => t.slice(0, Math.floor(t.length / 2)),
  empty: () => "",
  invalid: () => "{ this is not json ]\n",
  array: () => "[1, 2, 3]\n",
};

interface Case {
  file: string;
  damage: string;
  /** Damages the copy of the home. */
  apply(home: string): void;
  /** The path the messages must name. */
  names(home: string): string;
  /** Exit codes of list, cron, renew --all. */
  codes: [number, number, number];
  /** b.example is still checked normally (a repaired cache), not reported as failed. */
  repaired?: boolean;
  /** Run wile as the other user (see other-user.ts). */
  otherUser?: boolean;
}

function fileCases(
  file: string,
  path: (home: string) => string,
  codes: [number, number, number],
  wrongType: (v: Record<string, unknown>) => unknown,
  extra: Partial<Case> = {},
): Case[] {
  const cases: Case[] = Object.entries(CONTENT_DAMAGE).map(([damage, f]) => ({
    file,
    damage,
    apply: (home) => writeFileSync(path(home), f(readFileSync(path(home), "utf8"))),
    names: path,
    codes,
    ...extra,
  }));
  cases.push({
    file,
    damage: "wrong-typed",
    apply: (home) => editJson(path(home), wrongType),
    names: path,
    codes,
    ...extra,
  });
  return cases;
}

const renewalFile = (home: string) => join(certDir(home, DAMAGED), "renewal.json");
const stateFile = (home: string) => join(certDir(home, DAMAGED), "state.json");
const configFile = (home: string) => join(home, "config.json");
const accountFile = (home: string) =>
  join(home, "accounts", readdirSync(join(home, "accounts"))[0] as string, "second", "account.json");
const currentLink = (home: string) => join(certDir(home, DAMAGED), "current");

const asDirectory = (path: (home: string) => string) => (home: string) => {
  rmSync(path(home));
  mkdirSync(path(home));
  writeFileSync(join(path(home), "x"), "");
};

const CASES: Case[] = [
  ...fileCases("renewal.json", renewalFile, [1, 1, 1], (v) => ({ ...v, identifiers: "b.example" })),
  {
    file: "renewal.json",
    damage: "directory",
    apply: asDirectory(renewalFile),
    names: renewalFile,
    codes: [1, 1, 1],
  },
  {
    file: "renewal.json",
    damage: "dangling-symlink",
    apply: (home) => {
      rmSync(renewalFile(home));
      symlinkSync("renewal.json.gone", renewalFile(home));
    },
    names: renewalFile,
    codes: [1, 1, 1],
  },
  // state.json is a cache: reported, read as new, and rewritten by cron.
  ...fileCases("state.json", stateFile, [0, 0, 0], (v) => ({ ...v, failures: "three" }), {
    repaired: true,
  }),
  {
    file: "state.json",
    damage: "directory",
    apply: asDirectory(stateFile),
    names: stateFile,
    codes: [1, 1, 1],
  },
  // config.json holds notification settings only: renew --all does not read it.
  ...fileCases("config.json", configFile, [1, 1, 0], (v) => ({ ...v, notifyOn: 7 }), { repaired: true }),
  ...fileCases("account.json", accountFile, [1, 1, 1], (v) => ({ ...v, url: 5 })),
  {
    file: "account.json",
    damage: "directory",
    apply: asDirectory(accountFile),
    names: accountFile,
    codes: [1, 1, 1],
  },
  {
    file: "current",
    damage: "missing",
    apply: (home) => unlinkSync(currentLink(home)),
    names: currentLink,
    codes: [1, 1, 1],
  },
  {
    file: "current",
    damage: "dangling-symlink",
    apply: (home) => {
      unlinkSync(currentLink(home));
      symlinkSync("archive/20000101T000000Z", currentLink(home));
    },
    names: currentLink,
    codes: [1, 1, 1],
  },
  {
    file: "certificate-directory",
    damage: isRoot ? "owned-by-root-run-as-nobody" : "chmod-000",
    apply: (home) => {
      giveToNobody(home);
      if (isRoot) {
        execFileSync("chown", ["-R", "0:0", certDir(home, DAMAGED)]);
        chmodSync(certDir(home, DAMAGED), 0o700);
      } else chmodSync(certDir(home, DAMAGED), 0o000);
    },
    names: (home) => certDir(home, DAMAGED),
    codes: [1, 1, 1],
    otherUser: true,
  },
];

const COMMANDS: [string, string[]][] = [
  ["list", ["list", "--json"]],
  ["cron", ["cron", "--json"]],
  ["renew --all", ["renew", "--all", "--json"]],
];

interface Result {
  c: Case;
  command: string;
  r: RunResult;
  home: string;
}

/** Each case in a fresh copy of the template home (cp -a keeps the relative links). */
async function runCase(c: Case, command: string, args: string[]): Promise<Result> {
  const base = tempDir("wile-e2e-damaged-case-");
  chmodSync(base, 0o755);
  const home = join(base, "home");
  execFileSync("cp", ["-a", template, home]);
  c.apply(home);
  const bin = c.otherUser ? otherUserBin() : undefined;
  const r = await runWile(args, { home, ...(bin ? { bin } : {}), timeoutMs: 30_000 });
  if (c.otherUser && !isRoot) chmodSync(certDir(home, DAMAGED), 0o700);
  return { c, command, r, home };
}

/** The outcome per certificate name: list rows' status, or cron/renew outcomes' status. */
function statuses(r: RunResult): Record<string, string> {
  const doc = JSON.parse(r.stdout) as { certificates: { name: string; status: string }[] };
  return Object.fromEntries(doc.certificates.map((x) => [x.name, x.status]));
}

/** What list (row error) or cron (outcome reason) says about the damaged certificate, home as <home>. */
function saysAboutDamaged(r: RunResult, home: string): string | undefined {
  const doc = JSON.parse(r.stdout) as { certificates: { name: string; error?: string; reason?: string }[] };
  const row = doc.certificates.find((x) => x.name === DAMAGED);
  return (row?.error ?? row?.reason)?.split(home).join("<home>");
}

describe("damaged state: list, cron and renew --all", () => {
  it("report the damaged certificate with the file and a fix, and process every other one", async () => {
    const started = Date.now();
    const jobs = CASES.flatMap((c) => COMMANDS.map(([command, args]) => ({ c, command, args })));
    const results = await mapLimit(jobs, 4, (j) => runCase(j.c, j.command, j.args));
    const problems: string[] = [];
    let ok = 0;
    /** Finding 5: list must say what cron says. case -> command -> message. */
    const said = new Map<Case, Record<string, string | undefined>>();
    for (const { c, command, r, home } of results) {
      const label = `${c.file}:${c.damage} ${command}`;
      const want = c.codes[COMMANDS.findIndex(([n]) => n === command)];
      const why: string[] = [];
      if (r.code !== want) why.push(`exit ${r.code}, expected ${want}`);
      if (/internal error|bug in wile/i.test(r.stderr + r.stdout) || hasStackTrace(r.stderr)) {
        why.push("an internal error or a stack trace");
      }
      let st: Record<string, string> = {};
      try {
        st = statuses(r);
        said.set(c, { ...said.get(c), [command]: saysAboutDamaged(r, home) });
      } catch {
        why.push("no JSON document on stdout");
      }
      const othersOk = OTHERS.every((n) => (command === "list" ? st[n] === "ok" : st[n] === "not-due"));
      if (!othersOk) why.push(`the other certificates were not processed: ${JSON.stringify(st)}`);
      const reportsFile = c.file !== "config.json" || command !== "renew --all";
      if (reportsFile) {
        const text = r.stderr + r.stdout;
        if (!text.includes(c.names(home))) why.push(`${c.names(home)} is not named`);
        if (!/hint|rewritten|rewrites/i.test(text)) why.push("no repair hint");
      }
      if (c.repaired) {
        const expected = command === "list" ? "ok" : "not-due";
        if (c.file === "state.json" && st[DAMAGED] !== expected) {
          why.push(`${DAMAGED} is ${st[DAMAGED]}, expected ${expected} (state.json is a cache)`);
        }
        if (c.file === "state.json" && command !== "list") {
          try {
            JSON.parse(readFileSync(stateFile(home), "utf8"));
          } catch {
            why.push("state.json was not rewritten");
          }
        }
        if (c.file === "config.json" && command === "cron" && !/no notifications/.test(r.stderr + r.stdout)) {
          why.push("the summary does not say that no notifications were sent");
        }
      } else if (st[DAMAGED] !== (command === "list" ? "error" : "failed")) {
        why.push(`${DAMAGED} is ${st[DAMAGED] ?? "missing"} in the output`);
      }
      console.log(
        `reliability: damaged ${label} exit=${r.code} others-processed=${othersOk ? "yes" : "no"}${why.length ? " FAIL" : ""}`,
      );
      if (why.length > 0) problems.push(`${label}: ${why.join("; ")}\n${dump(r)}`);
      else ok++;
    }
    for (const [c, by] of said) {
      if (c.repaired) continue;
      if (by.list === undefined || by.list !== by.cron) {
        problems.push(
          `${c.file}:${c.damage}: list says ${JSON.stringify(by.list)}, cron ${JSON.stringify(by.cron)}`,
        );
      }
    }
    console.log(
      `reliability: damaged-state cases=${CASES.length} runs=${results.length} ok=${ok} other=${problems.length} ms=${Date.now() - started}`,
    );
    assert.deepEqual(problems, []);
  });
});
