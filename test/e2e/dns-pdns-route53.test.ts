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
import { type Bind9, bind9Unavailable, startBind9, wileDnsArgs } from "../helpers/bind9";
import { sanNames, verifyChain } from "../helpers/certs";
import { skipUnlessAvailable } from "../helpers/ci";
import { certFiles, hasStackTrace } from "../helpers/e2e";
import { type Pdns, pdnsUnavailable, startPdns, wilePdnsArgs } from "../helpers/pdns";
import { type Route53Double, startRoute53Double } from "../helpers/route53-double";
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

/** argv of `wile issue -d ZONE -d '*.ZONE' --dns PROVIDER` against env. */
function wildcardIssue(env: TestEnv, zone: string, provider: string, extra: string[]): string[] {
  return [
    "issue",
    "-d",
    zone,
    "-d",
    `*.${zone}`,
    "--dns",
    provider,
    "--server",
    env.directoryUrl,
    "--ca-bundle",
    env.caBundle,
    ...extra,
  ];
}

const pdnsSkip = skipUnlessAvailable(pdnsUnavailable());
const bindSkip = skipUnlessAvailable(bind9Unavailable());

// The two halves share nothing (own DNS server, own Pebble): they run at the same time.
describe("dns-01 through PowerDNS and Route 53", { concurrency: true }, () => {
  describe("--dns powerdns against a real PowerDNS", { skip: pdnsSkip }, () => {
    const zone = "pdns.test";
    let pdns: Pdns;
    let env: TestEnv;

    before(async () => {
      const started = performance.now();
      // A primary zone: wile asks PowerDNS to NOTIFY after each change (no secondary here to hear it).
      pdns = await startPdns([zone], "Master");
      env = await startTestEnv({ dnsServer: pdns.serverArg, env: { PEBBLE_AUTHZREUSE: "0" } });
      auditSecret(pdns.apiKey);
      console.log(`dns-pdns: PowerDNS and Pebble ready in ${Math.round(performance.now() - started)} ms`);
    });
    after(async () => {
      await env?.stop();
      await pdns?.stop();
    });

    const issue = (home: string, key: string, extra: string[] = []) =>
      runWile(wildcardIssue(env, zone, "powerdns", [...wilePdnsArgs(pdns), ...extra]), {
        home,
        env: { PDNS_API_URL: pdns.apiUrl, PDNS_API_KEY: key },
        timeoutMs: 30_000,
      });

    // The cases of this half in order (the two halves run at the same time).
    it("PowerDNS: issuance, then a wrong key", async (t) => {
      await t.test(
        "issues *.NAME + NAME: both values in one TXT rrset next to a value already there, which stays",
        async () => {
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
          assert.equal(r.stderr.match(/PowerDNS: NOTIFY of zone pdns\.test\. queued/g)?.length, 4, dump(r));
          assert.match(
            r.stderr,
            /PowerDNS: REPLACE of TXT at _acme-challenge\.pdns\.test\. \(3 value\(s\) after\)/,
            dump(r),
          );
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
          assert.equal(
            JSON.stringify(renewal).includes(pdns.apiKey),
            false,
            "the API key is in renewal.json",
          );
          assert.match(JSON.stringify(renewal), /"provider":"powerdns"/);
          // Then the last value goes with a DELETE of the set (the PowerDNS side of cleanup's two cases).
          await pdns.api(`/zones/${zone}.`, "PATCH", {
            rrsets: [{ name, type: "TXT", changetype: "DELETE" }],
          });
        },
      );

      await t.test("a wrong API key: exit 1 with PowerDNS's answer, no record, the key nowhere", async () => {
        const home = join(tempDir("wile-e2e-pdns-"), "wile");
        const wrong = `wrong-${pdns.apiKey.slice(0, 6)}-key-value`;
        auditSecret(wrong);
        const r = await issue(home, wrong);
        assert.equal(r.code, 1, dump(r));
        assert.match(
          r.stderr,
          /PowerDNS refused to list zones named .* \(HTTP 401\): Unauthorized\nhint: Check the API key/,
          dump(r),
        );
        assert.ok(!hasStackTrace(r.stderr), dump(r));
        assertNoSecret(r, [wrong, pdns.apiKey]);
        assert.deepEqual(await queryTxt(pdns.server, `_acme-challenge.${zone}`), []);
      });
    });
  });

  describe("--dns route53 against the Route 53 double (SigV4 checked, records in BIND9)", {
    skip: bindSkip,
  }, () => {
    const zone = "r53.test";
    let bind: Bind9;
    let env: TestEnv;
    let r53: Route53Double;

    before(async () => {
      const started = performance.now();
      bind = await startBind9({ zones: [zone, "other.test"] });
      [env, r53] = await Promise.all([
        startTestEnv({ dnsServer: bind.serverArg, env: { PEBBLE_AUTHZREUSE: "0" } }),
        startRoute53Double({
          bind,
          dir: tempDir("wile-e2e-r53-double-"),
          // Sorted by name, then id: the private zone comes first, and with one zone per page the
          // public one is on the second page of ListHostedZonesByName.
          zones: [
            { name: zone, id: "ZPRIVATE0001", private: true },
            { name: zone, id: "ZPUBLIC0002" },
            { name: "other.test", id: "ZOTHER0003" },
          ],
          pageSize: 1,
          // A TXT set after _acme-challenge in Route 53's order: what ListResourceRecordSets gives
          // for a name that has no set yet.
          seed: { ZPUBLIC0002: { [`zz.${zone}`]: ['"unrelated"'] } },
          sessionToken: true,
        }),
      ]);
      for (const s of [r53.secretAccessKey, r53.sessionToken as string, r53.accessKeyId]) auditSecret(s);
      console.log(
        `dns-route53: BIND9, Pebble and the double ready in ${Math.round(performance.now() - started)} ms`,
      );
    });
    after(async () => {
      await r53?.close();
      await env?.stop();
      await bind?.stop();
    });

    const issue = (home: string, secret: string, extra: string[] = []) =>
      runWile(wildcardIssue(env, zone, "route53", [...wileDnsArgs(bind), ...extra]), {
        home,
        env: {
          AWS_ACCESS_KEY_ID: r53.accessKeyId,
          AWS_SECRET_ACCESS_KEY: secret,
          AWS_SESSION_TOKEN: r53.sessionToken as string,
          AWS_ENDPOINT_URL_ROUTE_53: r53.endpoint,
          NODE_EXTRA_CA_CERTS: r53.caFile,
        },
        timeoutMs: 30_000,
      });

    // The cases of this half in order (the two halves run at the same time).
    it("Route 53: issuance, then a wrong secret", async (t) => {
      await t.test(
        "issues *.NAME + NAME: zone found past a private zone on page 2, UPSERTs of the whole set, DELETE of the last value",
        async () => {
          const home = join(tempDir("wile-e2e-r53-"), "wile");
          const logStart = r53.log.length;
          const r = await issue(home, r53.secretAccessKey, ["-v"]);
          assert.equal(r.code, 0, dump(r));
          assert.deepEqual(r53.rejected, [], "every request's signature checked out");
          await checkIssued(env, home, zone);
          assertNoSecret(r, [r53.secretAccessKey, r53.sessionToken as string, r53.accessKeyId]);
          const log = r53.log.slice(logStart);
          assert.deepEqual(
            log.filter((l) => l.startsWith("GET hostedzonesbyname")),
            [
              `GET hostedzonesbyname dnsname=_acme-challenge.${zone}. hostedzoneid=`,
              `GET hostedzonesbyname dnsname=${zone}. hostedzoneid=`,
              `GET hostedzonesbyname dnsname=${zone}. hostedzoneid=ZPUBLIC0002`,
            ],
            log.join("\n"),
          );
          const name = `_acme-challenge.${zone}.`;
          assert.deepEqual(
            log.filter((l) => l.startsWith("POST")),
            [
              `POST rrset UPSERT ${name} 1`,
              `POST rrset UPSERT ${name} 2`,
              `POST rrset UPSERT ${name} 1`,
              `POST rrset DELETE ${name} 1`,
            ],
            log.join("\n"),
          );
          assert.ok(log.includes("GET change INSYNC"), "GetChange was polled until INSYNC");
          // Gone from Route 53's view and from the DNS server Pebble asked; the unrelated set stays.
          assert.deepEqual(r53.txt("ZPUBLIC0002"), { [`zz.${zone}.`]: ['"unrelated"'] });
          assert.deepEqual(await queryTxt(bind.server, name), []);
          assert.deepEqual(await queryTxt(bind.server, `zz.${zone}`), ["unrelated"]);
          const renewal = readFileSync(certFiles(home, zone).renewal, "utf8");
          for (const s of [r53.secretAccessKey, r53.sessionToken as string, r53.accessKeyId])
            assert.equal(renewal.includes(s), false, "a credential is in renewal.json");
        },
      );

      await t.test(
        "a wrong secret: exit 1 with Route 53's SignatureDoesNotMatch, nothing changed, no credential shown",
        async () => {
          const home = join(tempDir("wile-e2e-r53-"), "wile");
          const wrong = `${r53.secretAccessKey.slice(0, 10)}WRONGwrongWRONG`;
          auditSecret(wrong);
          const posts = r53.log.filter((l) => l.startsWith("POST")).length;
          const r = await issue(home, wrong);
          assert.equal(r.code, 1, dump(r));
          assert.match(
            r.stderr,
            /Route 53 refused to list hosted zones \(HTTP 403\): SignatureDoesNotMatch: The request signature we calculated does not match.*\nhint: Check the secret access key \(AWS_SECRET_ACCESS_KEY\)/,
            dump(r),
          );
          assert.ok(!hasStackTrace(r.stderr), dump(r));
          assertNoSecret(r, [wrong, r53.secretAccessKey, r53.sessionToken as string]);
          assert.equal(r53.log.filter((l) => l.startsWith("POST")).length, posts, "no change was made");
          assert.match(r53.rejected.at(-1) ?? "", /SignatureDoesNotMatch/);
        },
      );
    });
  });
});
