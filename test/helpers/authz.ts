/**
 * Pebble's PEBBLE_AUTHZREUSE=0 does not quite mean "never": Pebble 2.4.0 creates a fresh
 * authorization when `rand.Intn(100) > percent`, so with 0 it still reuses a valid one when the
 * draw is 0, for 1 identifier in 100. A test whose point is that a re-order of a name meets a
 * challenge again (a renewal replaying its way of proving control, a run killed mid-validation)
 * then sees the order ready at once and fails for a reason that has nothing to do with wile: a CI
 * run did (leftovers, "no challenge file was written").
 *
 * forgetAuthorizations(env, home) makes the next order certain to get fresh authorizations: as the
 * home's account, it walks the account's orders (RFC 8555 7.1.2.1, following Link rel="next") and
 * deactivates every valid authorization (7.5.2), which Pebble then never reuses. It uses wile's own
 * ACME client from the sources; the CA sees ordinary signed requests.
 */
import { createPrivateKey } from "node:crypto";
import { readFileSync } from "node:fs";
import { AccountSession } from "../../src/acme/account-session";
import { AcmeClient, type AcmeResponse } from "../../src/acme/client";
import { linksWithRel, parseLinks } from "../../src/acme/headers";
import { toAccountKey } from "../../src/acme/jws";
import { AccountStore } from "../../src/store/accounts";
import type { TestEnv } from "./testenv";

/**
 * Deactivates the valid authorizations of `home`'s default account at env's Pebble, those of
 * `names` only when given (a wildcard's authorization has its base name as identifier, with
 * `wildcard: true`); returns how many. Tests that run at the same time in one home name theirs:
 * an order of another test between validation and finalization must keep its authorizations.
 */
export async function forgetAuthorizations(env: TestEnv, home: string, names?: string[]): Promise<number> {
  const wanted = names && new Set(names.map((n) => n.replace(/^\*\./, "").toLowerCase()));
  const store = new AccountStore(home);
  const record = await store.readRecord(env.directoryUrl);
  const pem = await store.readKey(env.directoryUrl);
  if (!record || !pem) throw new Error(`forgetAuthorizations: ${home} has no account at ${env.directoryUrl}`);
  const client = new AcmeClient({
    directoryUrl: env.directoryUrl,
    userAgent: "wile-test/forget-authorizations",
    extraCa: readFileSync(env.caBundle, "utf8"),
  });
  try {
    const account = new AccountSession(client, await toAccountKey(createPrivateKey(pem)), record.url);
    const accountObject = (await account.post<{ orders?: string }>(account.url, "")).json;
    if (!accountObject.orders) throw new Error("forgetAuthorizations: the account object has no orders URL");
    const authzUrls = new Set<string>();
    const seen = new Set<string>();
    for (let page: string | undefined = accountObject.orders; page && !seen.has(page); ) {
      seen.add(page);
      const res: AcmeResponse<{ orders?: string[] }> = await account.post(page, "");
      for (const orderUrl of res.json.orders ?? []) {
        // Raw: Pebble shows an order with a deactivated authorization as "deactivated", which
        // wile's order check rightly refuses (not an order status in RFC 8555 7.1.6).
        const order = await account.post<{ authorizations?: string[] }>(orderUrl, "");
        for (const a of order.json.authorizations ?? []) authzUrls.add(a);
      }
      page = linksWithRel(parseLinks(res.headers.link, page), "next")[0];
    }
    let deactivated = 0;
    for (const url of authzUrls) {
      const authz = await account.post<{ status: string; identifier: { value: string } }>(url, "");
      if (authz.json.status !== "valid") continue;
      if (wanted && !wanted.has(authz.json.identifier.value.toLowerCase())) continue;
      const res = await account.post<{ status: string }>(url, { status: "deactivated" });
      if (res.json.status !== "deactivated") {
        throw new Error(`forgetAuthorizations: ${url} is ${res.json.status} after deactivation`);
      }
      deactivated++;
    }
    return deactivated;
  } finally {
    client.close();
  }
}
