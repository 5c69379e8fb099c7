/**
 * RFC 8555 section 6.5: a badNonce error is retried with a fresh nonce. Pebble started with
 * PEBBLE_WFE_NONCEREJECT rejects that share of the good nonces it receives, each request on its own
 * roll; the test counts the retries in wile's -v output ("badNonce from <url>; signing again").
 *
 * The odds of a false failure, per issuance of N signed requests (about 105 here, at least 100) at
 * a rejection rate of 15%:
 * - no request rejected at all (nothing retried, nothing proved): 0.85^N <= 0.85^100 = 8.7e-8;
 * - one request rejected 11 times in a row (wile gives up after 10 retries): N * 0.15^11 = 9.1e-8.
 * Two issuances: below 4e-7. (At 50% the second risk alone is N/2048, 5% for N = 100; and 10
 * requests at 50% leave no rejection at all with odds 0.5^10 = 1e-3.) Hence many names per order,
 * each adding two signed requests (its authorization and its challenge), and a check that Pebble
 * really received at least 100.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { keyMatchesCert, sanNames, verifyChain } from "../helpers/certs";
import { certFiles, issueArgs } from "../helpers/e2e";
import { startTestEnv, type TestEnv } from "../helpers/testenv";
import { dump, runWile, tempDir } from "../helpers/wile";

const REJECT_PERCENT = 15;
const NAMES = 50;
const MIN_REQUESTS = 100;

let env: TestEnv;
let home: string;

before(async () => {
  env = await startTestEnv({ env: { PEBBLE_WFE_NONCEREJECT: String(REJECT_PERCENT) } });
  home = join(tempDir("wile-e2e-nonce-"), "wile");
});

after(async () => {
  await env?.stop();
});

/** POST requests in Pebble's log (every signed request, rejected or not). */
const pebblePosts = () =>
  (readFileSync(env.pebbleLog, "utf8").match(/ POST \/\S* -> calling handler\(\)$/gm) ?? []).length;

async function issueAndCheck(names: string[]): Promise<void> {
  const postsBefore = pebblePosts();
  const r = await runWile([...issueArgs(env, names), "-v"], { home, timeoutMs: 120_000 });
  assert.equal(r.code, 0, dump(r));
  const badNonces = (
    r.stderr.match(/^badNonce from https:\/\/\S+; signing again with a fresh nonce$/gm) ?? []
  ).length;
  const requests = pebblePosts() - postsBefore - badNonces;
  assert.ok(requests >= MIN_REQUESTS, `${requests} signed requests, fewer than the odds above assume`);
  assert.ok(badNonces >= 1, `no badNonce retry in ${requests} requests at ${REJECT_PERCENT}%:\n${r.stderr}`);
  const f = certFiles(home, names[0] as string);
  assert.deepEqual(sanNames(f.cert), [...names].sort());
  assert.ok(keyMatchesCert(f.privkey, f.cert).match, "key matches certificate");
  assert.match(verifyChain(await env.pebbleRoot(), f.chain, f.cert, env.tmp), /: OK$/);
}

const names = (base: string) => [base, ...Array.from({ length: NAMES - 1 }, (_, i) => `n${i}.${base}`)];

describe(`issuance with PEBBLE_WFE_NONCEREJECT=${REJECT_PERCENT} (badNonce retried, section 6.5)`, () => {
  it(`issues for ${NAMES} names while registering a new account, retrying badNonce`, async () => {
    await issueAndCheck(names("nonce.example"));
  });

  it(`issues for ${NAMES} names with the existing account, retrying badNonce`, async () => {
    await issueAndCheck(names("nonce2.example"));
  });
});
