/**
 * `wile issue --dns cloudflare|hetzner|digitalocean|desec|acme-dns` end to end: dist/wile.cjs talks
 * HTTPS (trusted through NODE_EXTRA_CA_CERTS) to a double of each API (test/helpers/dns-api-doubles.ts),
 * which writes the records into BIND9 by RFC 2136; Pebble's VA resolves through that BIND9, so the
 * validation is real. For each provider, in parallel against one Pebble + BIND9: an apex + wildcard
 * certificate (two values at one name), the records gone afterwards (acme-dns: no delete, its
 * subdomain holds the two values of this order), and a wrong token: exit 1 with the API's refusal,
 * the token in no output, log or renewal.json (the secrets audit knows every token).
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { queryTxt } from "../../src/dns/transport";
import { forgetAuthorizations } from "../helpers/authz";
import { type Bind9, bind9Unavailable, startBind9, wileDnsArgs } from "../helpers/bind9";
import { skipUnlessAvailable } from "../helpers/ci";
import {
  type AcmeDnsDouble,
  type ApiDouble,
  bindBackend,
  doubleTls,
  startAcmeDnsDouble,
  startCloudflareDouble,
  startDesecDouble,
  startDigitalOceanDouble,
  startHetznerDouble,
} from "../helpers/dns-api-doubles";
import { certFiles } from "../helpers/e2e";
import { auditSecret } from "../helpers/secrets-audit";
import { findBinary, startTestEnv, type TestEnv } from "../helpers/testenv";
import { type RunResult, runWile, tempDir } from "../helpers/wile";

const skip = skipUnlessAvailable(bind9Unavailable());

interface Case {
  provider: string;
  zone: string;
  double?: ApiDouble;
  /** Environment of a good run (token and API address). */
  env: Record<string, string>;
  /** Environment of a run with a wrong token. */
  wrongEnv: Record<string, string>;
  /** The token (acme-dns: password) of each. */
  secret: string;
  wrongSecret: string;
  /** The API's refusal as wile shows it. */
  refusal: RegExp;
  /** Where the TXT values live in BIND9 (acme-dns: the CNAME target). */
  txtName: string;
}

const token = (p: string) =>
  `${p}-Tok-${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;

describe("wile issue with the HTTP API DNS providers (doubles writing to BIND9, Pebble validating)", {
  skip,
}, () => {
  let bind: Bind9;
  let env: TestEnv;
  let acmeDns: AcmeDnsDouble;
  const cases: Case[] = [];
  const doubles: ApiDouble[] = [];
  /** The home of each provider's successful issuance. */
  const homes = new Map<string, string>();

  before(async () => {
    const started = performance.now();
    bind = await startBind9({
      zones: ["cf.test", "hz.test", "do.test", "desec.test", "acmedns.test"],
    });
    // No reuse of valid authorizations (Pebble's default is 50%): the renewal must ask the provider.
    env = await startTestEnv({ dnsServer: bind.serverArg, env: { PEBBLE_AUTHZREUSE: "0" } });
    const tls = doubleTls(tempDir("wile-dns-api-tls-"));
    const backend = bindBackend(bind);
    const ca = { NODE_EXTRA_CA_CERTS: tls.caFile };
    const tokenApis: Array<[string, string, string, string, RegExp, typeof startCloudflareDouble]> = [
      [
        "cloudflare",
        "cf.test",
        "CLOUDFLARE_DNS_API_TOKEN",
        "CLOUDFLARE_BASE_URL",
        /Cloudflare refused to find the zone of .*\(HTTP 403\): Invalid access token \(9109\)/,
        startCloudflareDouble,
      ],
      [
        "hetzner",
        "hz.test",
        "HETZNER_API_TOKEN",
        "HETZNER_API",
        /Hetzner refused to find the zone of .*\(HTTP 401\): unable to authenticate \(unauthorized\)/,
        startHetznerDouble,
      ],
      [
        "digitalocean",
        "do.test",
        "DO_AUTH_TOKEN",
        "DO_API_URL",
        /DigitalOcean refused to find the domain of .*\(HTTP 401\): Unable to authenticate you/,
        startDigitalOceanDouble,
      ],
      [
        "desec",
        "desec.test",
        "DESEC_TOKEN",
        "DESEC_API_URL",
        /deSEC refused to find the domain of .*\(HTTP 401\): Invalid token\./,
        startDesecDouble,
      ],
    ];
    for (const [provider, zone, tokenVar, apiVar, refusal, start] of tokenApis) {
      const good = token(provider);
      const wrong = token(`${provider}-wrong`);
      auditSecret(good);
      auditSecret(wrong);
      const double = await start({ token: good, zones: [zone], backend, tls });
      doubles.push(double);
      cases.push({
        provider,
        zone,
        double,
        env: { ...ca, [tokenVar]: good, [apiVar]: double.base },
        wrongEnv: { ...ca, [tokenVar]: wrong, [apiVar]: double.base },
        secret: good,
        wrongSecret: wrong,
        refusal,
        txtName: `_acme-challenge.${zone}`,
      });
    }
    // acme-dns: register once, then the CNAME the operator creates in the real zone. The acme-dns
    // domain is inside that zone here: BIND9 (not recursive, and Pebble asks it directly) follows a
    // CNAME only within a zone.
    acmeDns = await startAcmeDnsDouble({ zones: ["auth.acmedns.test"], backend, tls });
    doubles.push(acmeDns);
    const reg = await acmeDns.register();
    auditSecret(reg.password);
    const wrongPassword = token("acme-dns-wrong");
    auditSecret(wrongPassword);
    const keyFile = bind.keyFiles["wile-test"] as string;
    execFileSync(findBinary("nsupdate"), ["-k", keyFile], {
      input: `server 127.0.0.1 ${bind.port}\nupdate add _acme-challenge.acmedns.test 60 CNAME ${reg.fulldomain}.\nsend\n`,
    });
    const acmeEnv = {
      ...ca,
      ACMEDNS_BASE_URL: acmeDns.base,
      ACMEDNS_USERNAME: reg.username,
      ACMEDNS_SUBDOMAIN: reg.subdomain,
    };
    cases.push({
      provider: "acme-dns",
      zone: "acmedns.test",
      env: { ...acmeEnv, ACMEDNS_PASSWORD: reg.password },
      wrongEnv: { ...acmeEnv, ACMEDNS_PASSWORD: wrongPassword },
      secret: reg.password,
      wrongSecret: wrongPassword,
      refusal: /acme-dns refused to update the TXT record of subdomain .*\(HTTP 401\): forbidden/,
      txtName: reg.fulldomain,
    });
    console.log(
      `dns-api: BIND9, Pebble and 5 API doubles ready in ${Math.round(performance.now() - started)} ms`,
    );
  });

  after(async () => {
    for (const d of doubles) await d.close();
    await env?.stop();
    await bind?.stop();
  });

  const issue = (
    c: Case,
    names: string[],
    runEnv: Record<string, string>,
    home: string,
  ): Promise<RunResult> => {
    const args = ["issue", ...names.flatMap((n) => ["-d", n]), "--dns", c.provider];
    args.push("--server", env.directoryUrl, "--ca-bundle", env.caBundle, ...wileDnsArgs(bind));
    return runWile(args, { home, env: runEnv, timeoutMs: 45_000 });
  };

  it("issues apex + wildcard through each provider (in parallel); records removed; no token stored", async () => {
    const started = performance.now();
    const runs = await Promise.all(
      cases.map(async (c) => {
        const home = tempDir(`wile-dns-api-${c.provider}-`);
        homes.set(c.provider, home);
        const r = await issue(c, [c.zone, `*.${c.zone}`], c.env, home);
        return { c, home, r };
      }),
    );
    console.log(`dns-api: ${runs.length} issuances in ${Math.round(performance.now() - started)} ms`);
    for (const { c, home, r } of runs) {
      assert.equal(r.code, 0, `${c.provider}: ${r.stderr}`);
      const files = certFiles(home, c.zone);
      const cert = new X509Certificate(readFileSync(files.cert));
      assert.deepEqual(
        cert.subjectAltName?.split(", ").sort(),
        [`DNS:${c.zone}`, `DNS:*.${c.zone}`].sort(),
        c.provider,
      );
      const stored = readFileSync(files.renewal, "utf8");
      assert.match(stored, new RegExp(`"provider": ?"${c.provider}"`));
      const log = readFileSync(join(home, "logs", "wile.log"), "utf8");
      for (const text of [r.stdout, r.stderr, log, stored])
        assert.ok(!text.includes(c.secret), `${c.provider} leaked its token`);
      const left = await queryTxt(bind.server, c.txtName);
      if (c.provider === "acme-dns") {
        // No delete in acme-dns: its subdomain serves the order's two values until the next updates.
        assert.equal(left.length, 2, `acme-dns subdomain holds ${left.join(", ")}`);
      } else {
        assert.deepEqual(left, [], `${c.provider}: TXT left at ${c.txtName}`);
        assert.deepEqual(c.double?.txt(c.txtName), [], `${c.provider}: the API still holds records`);
      }
    }
  });

  it("renew replays the provider with the token from the environment; without it, a message naming the variables", async () => {
    const c = cases.find((x) => x.provider === "cloudflare") as Case;
    const home = homes.get("cloudflare") as string;
    // A fresh challenge, certainly: PEBBLE_AUTHZREUSE=0 still reuses 1 in 100 (test/helpers/authz.ts).
    await forgetAuthorizations(env, home, [c.zone]);
    const renewed = await runWile(["renew", c.zone, "--force"], { home, env: c.env });
    assert.equal(renewed.code, 0, renewed.stderr);
    assert.match(renewed.stderr, /Adding TXT _acme-challenge\.cf\.test \(cloudflare/);
    assert.deepEqual(await queryTxt(bind.server, c.txtName), []);
    const { CLOUDFLARE_DNS_API_TOKEN: _, ...noToken } = c.env;
    const failed = await runWile(["renew", c.zone, "--force"], { home, env: noToken });
    assert.equal(failed.code, 1, failed.stderr);
    assert.match(failed.stderr, /the cloudflare DNS provider's token is missing \(for cf\.test\)/);
    assert.match(
      failed.stderr,
      /set CLOUDFLARE_DNS_API_TOKEN or CF_DNS_API_TOKEN or CF_Token in the environment of every renewal/,
    );
  });

  it("a wrong token: exit 1 with the API's refusal, no token in output, log or renewal.json", async () => {
    const runs = await Promise.all(
      cases.map(async (c) => {
        const home = tempDir(`wile-dns-api-wrong-${c.provider}-`);
        const r = await issue(c, [`bad.${c.zone}`], c.wrongEnv, home);
        return { c, home, r };
      }),
    );
    for (const { c, home, r } of runs) {
      assert.equal(r.code, 1, `${c.provider}: ${r.stderr}`);
      assert.match(r.stderr, c.refusal, c.provider);
      assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
      let log = "";
      try {
        log = readFileSync(join(home, "logs", "wile.log"), "utf8");
      } catch {}
      for (const text of [r.stdout, r.stderr, log])
        assert.ok(!text.includes(c.wrongSecret), `${c.provider} leaked its token`);
      assert.deepEqual(await queryTxt(bind.server, `_acme-challenge.bad.${c.zone}`), []);
    }
  });
});
