import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import type { ChallengeContext } from "../../../src/acme/solver";
import { StatelessSolver, statelessSnippet } from "../../../src/challenges/http-01-stateless";
import { parseResolve } from "../../../src/challenges/resolve";
import { parseFormat } from "../../../src/cli/commands/stateless";
import { pairNamesWithWebroots } from "../../../src/cli/options";
import { solversFor } from "../../../src/flow/solvers";
import { parseRenewalConfig, type RenewalConfig, serializeRenewalConfig } from "../../../src/store/renewal";
import { UsageError, WileError } from "../../../src/util/errors";
import { type Logger, silentLogger } from "../../../src/util/log";
import { renewalConfig } from "../../helpers/renewal";

/** RFC 8555 8.1's key authorization needs a real-looking thumbprint: 43 base64url characters. */
const THUMB = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0";
const OTHER = "9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI";

describe("statelessSnippet: the configuration wile stateless prints", () => {
  test("nginx: a regex location answering $1.THUMBPRINT as text/plain", () => {
    assert.equal(
      statelessSnippet("nginx", THUMB),
      [
        "# nginx: inside the server block that listens on port 80 (every server block that does).",
        "location ~ ^/\\.well-known/acme-challenge/([-_a-zA-Z0-9]+)$ {",
        "    default_type text/plain;",
        `    return 200 "$1.${THUMB}";`,
        "}",
      ].join("\n"),
    );
  });

  test("Apache: LocationMatch with a named group, Redirect 200 and an ErrorDocument expression (mod_alias only)", () => {
    const s = statelessSnippet("apache", THUMB);
    assert.match(
      s,
      /^<LocationMatch "\^\/\\\.well-known\/acme-challenge\/\(\?<acmetoken>\[-_a-zA-Z0-9\]\+\)\$">$/m,
    );
    assert.match(s, /^ {4}Redirect 200$/m);
    assert.ok(s.includes(`    ErrorDocument 200 "%{env:MATCH_ACMETOKEN}.${THUMB}"\n</LocationMatch>`));
    assert.doesNotMatch(s, /Rewrite/, "no mod_rewrite: Debian does not enable it by default");
  });

  test("HAProxy: one http-request return line building the body from the path's fourth field", () => {
    assert.equal(
      statelessSnippet("haproxy", THUMB).split("\n")[1],
      `http-request return status 200 content-type text/plain lf-string "%[path,field(4,/)].${THUMB}" if { path_reg ^/\\.well-known/acme-challenge/[-_A-Za-z0-9]+$ }`,
    );
  });

  test("only a base64url SHA-256 thumbprint goes into a configuration", () => {
    for (const bad of ["", "x", `${THUMB}"; evil`, `${THUMB.slice(1)}$`]) {
      assert.throws(() => statelessSnippet("nginx", bad), /not a base64url SHA-256 thumbprint/);
    }
  });

  test("--format: one server or all; anything else is a usage error", () => {
    assert.deepEqual(parseFormat(undefined), ["nginx", "apache", "haproxy"]);
    assert.deepEqual(parseFormat("all"), ["nginx", "apache", "haproxy"]);
    assert.deepEqual(parseFormat("haproxy"), ["haproxy"]);
    assert.throws(() => parseFormat("caddy"), UsageError);
  });
});

// A stand-in for the operator's web server: /ok/ answers this account's key authorization, /old/
// another account's (a snippet from before a key rollover), anything else 404.
let server: Server;
let port: number;
before(async () => {
  server = createServer((req, res) => {
    const m = /^\/\.well-known\/acme-challenge\/([-_A-Za-z0-9]+)$/.exec(req.url ?? "");
    const host = req.headers.host ?? "";
    if (m && host.startsWith("ok.")) res.end(`${m[1]}.${THUMB}\n`);
    else if (m && host.startsWith("old.")) res.end(`${m[1]}.${OTHER}`);
    else res.writeHead(404).end("not here");
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  port = (server.address() as AddressInfo).port;
});
after(() => {
  server.closeAllConnections();
  server.close();
});

const ctx = (name: string, token = "tok_EN-1"): ChallengeContext => ({
  identifier: { type: "dns", value: name },
  token,
  keyAuthorization: `${token}.${THUMB}`,
});
function recorder(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  return { warnings, info() {}, debug() {}, warn: (m) => warnings.push(m) };
}
const solver = (name: string, logger: Logger = silentLogger) =>
  new StatelessSolver({ logger, preflight: { resolve: [parseResolve(`${name}:${port}:127.0.0.1`)] } });

describe("StatelessSolver", () => {
  test("writes nothing; the preflight passes when the server answers TOKEN.THUMBPRINT", async () => {
    const s = solver("ok.example");
    assert.equal(s.type, "http-01");
    await s.present();
    await s.preflight(ctx("ok.example"));
    await s.cleanup();
  });

  test("a server that does not answer: fails before the CA is asked, with the nginx lines to paste", async () => {
    await assert.rejects(solver("none.example").preflight(ctx("none.example")), (e: unknown) => {
      assert.ok(e instanceof WileError);
      assert.match(
        e.message,
        /Preflight for none\.example failed: http:\/\/none\.example\/\.well-known\/acme-challenge\/tok_EN-1 answered HTTP 404 "not here" instead of tok_EN-1\.Loq/,
      );
      assert.ok(e.message.endsWith(statelessSnippet("nginx", THUMB)), e.message);
      assert.match(
        e.hint ?? "",
        /The CA was not asked to validate none\.example.*wile stateless --format apache\|haproxy/,
      );
      return true;
    });
  });

  test("a server set up for another account key: says whose thumbprint it serves", async () => {
    await assert.rejects(solver("old.example").preflight(ctx("old.example")), (e: unknown) => {
      assert.ok(e instanceof WileError);
      assert.match(
        e.message,
        new RegExp(`answers with the thumbprint ${OTHER}, not this account's ${THUMB}`),
      );
      return true;
    });
  });

  test("unreachable: a warning (NAT without hairpinning), going on; --no-preflight fetches nothing", async () => {
    const logger = recorder();
    const closed = new StatelessSolver({
      logger,
      preflight: { resolve: [parseResolve("x.example:1:127.0.0.1")], timeoutMs: 2000 },
    });
    await closed.preflight(ctx("x.example"));
    assert.match(logger.warnings.join("\n"), /could not fetch http:\/\/x\.example\/.*going on/);
    await new StatelessSolver({ logger: silentLogger, preflight: false }).preflight(ctx("none.example"));
  });
});

describe("--stateless on the command line and in renewal.json", () => {
  test("per name like -w, in certbot's and acme.sh's orders", () => {
    assert.deepEqual(
      pairNamesWithWebroots(["--stateless", "-d", "a.example", "-w", "/srv", "-d", "b.example"]),
      [
        { name: "a.example", webroot: undefined, stateless: true },
        { name: "b.example", webroot: "/srv" },
      ],
    );
    assert.deepEqual(
      pairNamesWithWebroots(["-d", "a.example", "-w", "/srv", "-d", "b.example", "--stateless"]),
      [
        { name: "a.example", webroot: "/srv" },
        { name: "b.example", webroot: undefined, stateless: true },
      ],
    );
  });

  const base: RenewalConfig = {
    ...renewalConfig("a.example"),
    identifiers: [
      { type: "dns", value: "a.example" },
      { type: "ip", value: "192.0.2.1" },
      { type: "dns", value: "b.example" },
    ],
    challenge: { type: "http-01", webroots: { "b.example": "/srv" }, stateless: ["a.example", "192.0.2.1"] },
  };
  const FILE = "/h/certs/a.example/renewal.json";

  test("renewal.json challenge.stateless round-trips; a name proved two ways or a wildcard is refused", () => {
    assert.deepEqual(parseRenewalConfig(serializeRenewalConfig(base), FILE), base);
    const bad = (stateless: unknown, why: RegExp) => {
      const c = structuredClone(base) as unknown as { challenge: Record<string, unknown> };
      c.challenge.stateless = stateless;
      assert.throws(
        () => parseRenewalConfig(JSON.stringify(c), FILE),
        (e: unknown) => {
          assert.ok(e instanceof WileError);
          assert.match(e.message, /"challenge\.stateless"/);
          assert.match(e.message, why);
          return true;
        },
      );
    };
    bad("a.example", /array of strings/);
    bad(["a.example", "192.0.2.1", "b.example"], /b\.example, which is proved another way/);
    bad(["a.example", "192.0.2.1", "*.a.example"], /wildcard/);
    const missing = structuredClone(base);
    missing.challenge.stateless = ["a.example"];
    assert.throws(
      () => parseRenewalConfig(JSON.stringify(missing), FILE),
      /challenge\.webroots\.192\.0\.2\.1/,
    );
  });

  test("solversFor: the stateless names share one StatelessSolver, the webroot name gets the webroot's", () => {
    const webroot = { type: "http-01" as const, present: async () => {}, cleanup: async () => {} };
    const stateless = new StatelessSolver({ logger: silentLogger, preflight: false });
    let made = 0;
    const solverFor = solversFor(base, FILE, {
      logger: silentLogger,
      env: {},
      check: async () => {},
      webroot: () => webroot,
      stateless: () => {
        made++;
        return stateless;
      },
    });
    assert.equal(solverFor({ type: "dns", value: "a.example" }, false), stateless);
    assert.equal(solverFor({ type: "ip", value: "192.0.2.1" }, false), stateless);
    assert.equal(solverFor({ type: "dns", value: "b.example" }, false), webroot);
    assert.equal(made, 1);
  });
});
