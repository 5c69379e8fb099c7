import assert from "node:assert/strict";
import { createPublicKey, generateKeyPairSync, type KeyObject } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import type { ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type FlattenedJWS, flattenedVerify } from "jose";
import { privateKeyToPem } from "../../../src/crypto/keys";
import { ensureAccount } from "../../../src/flow/account";
import { ClientPool } from "../../../src/flow/client";
import { AccountStore } from "../../../src/store/accounts";
import { silentLogger } from "../../../src/util/log";
import { type HttpsDouble, startHttpsDouble } from "../../helpers/https-double";

/**
 * `wile cron` renews several certificates in parallel through one pooled client per CA. Two
 * certificates on the same CA under different accounts (renewal.json "account") must each sign
 * with their own key and account URL, however their requests interleave.
 */
let double: HttpsDouble;
let tmp: string;
let nonce = 0;

function send(res: ServerResponse, body: unknown) {
  res.writeHead(200, { "content-type": "application/json", "replay-nonce": `n${++nonce}` });
  res.end(JSON.stringify(body));
}

before(async () => {
  double = await startHttpsDouble();
  tmp = mkdtempSync(join(tmpdir(), "wile-pool-"));
  const { base } = double;
  double.route = (req, _body, res) => {
    if (req.url === "/dir")
      return send(res, { newNonce: `${base}/nonce`, newAccount: `${base}/acct`, newOrder: `${base}/order` });
    if (req.url === "/nonce") {
      res.writeHead(200, { "replay-nonce": `n${++nonce}` });
      return res.end();
    }
    // Answer late, so that the requests of both accounts are in flight together.
    setTimeout(
      () =>
        send(res, {
          status: "pending",
          identifiers: [{ type: "dns", value: "a.example" }],
          authorizations: [],
          finalize: `${base}/finalize`,
        }),
      5,
    );
  };
});

after(async () => {
  await double.close();
  rmSync(tmp, { recursive: true, force: true });
});

/** An account stored in `home` as `name`, registered at the double as /acct/<name>. */
async function storedAccount(home: string, directoryUrl: string, name: string): Promise<KeyObject> {
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const store = new AccountStore(home);
  await store.writeKey(directoryUrl, privateKeyToPem(privateKey), name);
  await store.writeRecord(
    directoryUrl,
    {
      url: `${double.base}/acct/${name}`,
      directoryUrl,
      contact: [],
      createdAt: new Date().toISOString(),
      keyType: "ec-256",
    },
    name,
  );
  return createPublicKey(privateKey);
}

describe("ClientPool: one client per CA, shared by accounts", () => {
  test("two accounts on one pooled client sign with their own key and kid when interleaved", async () => {
    const directoryUrl = `${double.base}/dir`;
    const caFile = join(tmp, "ca.pem");
    writeFileSync(caFile, double.ca);
    const home = join(tmp, "home");
    const pub = {
      one: await storedAccount(home, directoryUrl, "one"),
      two: await storedAccount(home, directoryUrl, "two"),
    };

    const pool = new ClientPool(silentLogger);
    const client = await pool.get(directoryUrl, caFile);
    assert.equal(await pool.get(directoryUrl, caFile), client, "the same client for the same CA");
    const settings = (account: string) => ({ home, directoryUrl, account, email: [] });
    // As two parallel renewals do: both accounts are set up before either orders.
    const [one, two] = await Promise.all([
      ensureAccount(client, settings("one"), silentLogger),
      ensureAccount(await pool.get(directoryUrl, caFile), settings("two"), silentLogger),
    ]);
    assert.equal(one.client, two.client);

    double.requests.length = 0;
    const calls = [];
    for (let i = 0; i < 4; i++) {
      calls.push(one.getOrder(`${double.base}/order/one-${i}`));
      calls.push(two.getOrder(`${double.base}/order/two-${i}`));
    }
    await Promise.all(calls);
    await pool.close();

    const orders = double.requests.filter((r) => r.url.startsWith("/order/"));
    assert.equal(orders.length, 8);
    for (const r of orders) {
      const who = r.url.startsWith("/order/one-") ? "one" : "two";
      const other = who === "one" ? "two" : "one";
      const jws = JSON.parse(r.body) as FlattenedJWS;
      const header = JSON.parse(Buffer.from(jws.protected ?? "", "base64url").toString());
      assert.equal(header.kid, `${double.base}/acct/${who}`, `${r.url} is signed as account ${who}`);
      await flattenedVerify(jws, pub[who]);
      await assert.rejects(flattenedVerify(jws, pub[other]), `${r.url} is not signed with ${other}'s key`);
    }
  });
});
