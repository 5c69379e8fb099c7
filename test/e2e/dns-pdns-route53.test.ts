/**
 * End to end: dist/wile.cjs issues a wildcard + apex certificate from a real Pebble through
 *   - `--dns powerdns` against a real PowerDNS Authoritative Server (test/helpers/pdns.ts), Pebble's
 *     VA resolving through that PowerDNS, so it validates the TXT records PowerDNS serves;
 *   - `--dns route53` against the Route 53 double (test/helpers/route53-double.ts), which checks
 *     every request's SigV4 signature and writes the records into BIND9 by RFC 2136, Pebble's VA
 *     resolving through that BIND9.
 * Each half has its own TestEnv (Pebble asks one DNS server); both start at once. Afterwards the
 * records are gone (asked of the DNS server itself); a wrong key or secret fails with exit 1 and
 * the API's own message, and no credential shows in any output, log or file (secrets audit).
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { queryTxt } from "../../src/dns/transport";
import { sanNames, verifyChain } from "../helpers/certs";
import { skipUnlessAvailable } from "../helpers/ci";
import { certFiles, hasStackTrace } from "../helpers/e2e";
import { type Pdns, pdnsUnavailable, startPdns, wilePdnsArgs } from "../helpers/pdns";
import { auditSecret } from "../helpers/secrets-audit";
import { startTestEnv, type TestEnv } from "../helpers/testenv";
import { dump, runWile, tempDir } from "../helpers/wile";

/** The checks of an issued wildcard + apex certificate, with openssl. */
async function checkIssued(env: TestEnv, home: string, zone: string): Promise<void> {
  const f = certFiles(home, zone);
  assert.deepEqual(sanNames(f.cert), [`*.${zone}`, zone].sort(), "SANs (openssl x509 -text)");
  assert.match(verifyChain(await env.pebbleRoot(0), f.chain, f.cert, env.tmp), /: OK$/, "openssl verify");
}

function assertNoSecret(r: { stdout: string; stderr: string }, secrets: string[]): void {
  for (const s of secrets) {
    assert.ok(!r.stdout.includes(s) && !r.stderr.includes(s), "a credential shows in wile's output");
  }
}

const pdnsSkip = skipUnlessAvailable(pdnsUnavailable());

describe("--dns powerdns against a real PowerDNS", { skip: pdnsSkip }, () => {
  const zone = "pdns.test";
  let pdns: Pdns;
  let env: TestEnv;

  before(async () => {
    const started = performance.now();
    pdns = await startPdns([zone]);
    env = await startTestEnv({ dnsServer: pdns.serverArg, env: { PEBBLE_AUTHZREUSE: "0" } });
    auditSecret(pdns.apiKey);
    console.log(`dns-pdns: PowerDNS and Pebble ready in ${Math.round(performance.now() - started)} ms`);
  });
  after(async () => {
    await env?.stop();
    await pdns?.stop();
  });

  const issue = (home: string, key: string, extra: string[] = []) =>
    runWile(
      [
        "issue",
        "-d",
        zone,
        "-d",
        `*.${zone}`,
        "--dns",
        "powerdns",
        "--server",
        env.directoryUrl,
        "--ca-bundle",
        env.caBundle,
        ...wilePdnsArgs(pdns),
        ...extra,
      ],
      { home, env: { PDNS_API_URL: pdns.apiUrl, PDNS_API_KEY: key }, timeoutMs: 30_000 },
    );

  it("issues *.NAME + NAME: both values in one TXT rrset next to a value already there, which stays", async () => {
    const name = `_acme-challenge.${zone}.`;
    await pdns.api(`/zones/${zone}.`, "PATCH", {
      rrsets: [
        {
          name,
          type: "TXT",
          ttl: 300,
          changetype: "REPLACE",
          records: [{ content: '"someone-elses-value"', disabled: false }],
        },
      ],
    });
    const home = join(tempDir("wile-e2e-pdns-"), "wile");
    const r = await issue(home, pdns.apiKey, ["-v"]);
    assert.equal(r.code, 0, dump(r));
    await checkIssued(env, home, zone);
    assertNoSecret(r, [pdns.apiKey]);
    assert.match(r.stderr, /PowerDNS: REPLACE of TXT at _acme-challenge\.pdns\.test\. \(3 values\)/, dump(r));
    // Cleanup removed exactly wile's two values: what the DNS side serves and what the API holds.
    assert.deepEqual(await queryTxt(pdns.server, name), ["someone-elses-value"]);
    const z = (await pdns.api(`/zones/${zone}.`)) as {
      rrsets: { name: string; type: string; ttl: number }[];
    };
    const txt = z.rrsets.filter((s) => s.type === "TXT");
    assert.deepEqual(
      txt.map((s) => [s.name, s.ttl]),
      [[name, 300]],
      "the TXT set keeps its TTL",
    );
    const renewal = JSON.parse(readFileSync(certFiles(home, zone).renewal, "utf8"));
    assert.equal(JSON.stringify(renewal).includes(pdns.apiKey), false, "the API key is in renewal.json");
    assert.match(JSON.stringify(renewal), /"provider":"powerdns"/);
    // Then the last value goes with a DELETE of the set (the PowerDNS side of cleanup's two cases).
    await pdns.api(`/zones/${zone}.`, "PATCH", { rrsets: [{ name, type: "TXT", changetype: "DELETE" }] });
  });

  it("a wrong API key: exit 1 with PowerDNS's answer, no record, the key nowhere", async () => {
    const home = join(tempDir("wile-e2e-pdns-"), "wile");
    const wrong = `wrong-${pdns.apiKey.slice(0, 6)}-key-value`;
    auditSecret(wrong);
    const r = await issue(home, wrong);
    assert.equal(r.code, 1, dump(r));
    assert.match(r.stderr, /PowerDNS refused to list zones named .* \(HTTP 401\): Unauthorized/, dump(r));
    assert.ok(!hasStackTrace(r.stderr), dump(r));
    assertNoSecret(r, [wrong, pdns.apiKey]);
    assert.deepEqual(await queryTxt(pdns.server, `_acme-challenge.${zone}`), []);
  });
});
