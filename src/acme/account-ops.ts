import { WileError } from "../util/errors";
import { isRecord } from "../util/text";
import { AccountSession } from "./account-session";
import { type AccountKey, type FlattenedJWS, flattenedSign, type JWK } from "./jws";
import { AcmeProblem } from "./problem";

/** RFC 8555 7.1.2, the fields wile shows. */
export interface AccountObject {
  status: string;
  contact: string[];
  orders?: string;
  [field: string]: unknown;
}

function checkAccount(v: unknown, url: string): AccountObject {
  if (!isRecord(v) || typeof v.status !== "string") {
    throw new WileError(`the CA sent a malformed account object from ${url}`);
  }
  const contact = Array.isArray(v.contact) ? v.contact.filter((c): c is string => typeof c === "string") : [];
  return { ...v, status: v.status, contact };
}

/** RFC 8555 7.3: POST-as-GET of the account URL returns the account object. */
export async function fetchAccount(account: AccountSession): Promise<AccountObject> {
  const res = await account.post(account.url, "");
  return checkAccount(res.json, account.url);
}

/** RFC 8555 7.3.2: replaces the account's contact list (e.g. ["mailto:a@example.com"]). */
export async function updateAccountContact(
  account: AccountSession,
  contact: string[],
): Promise<AccountObject> {
  const res = await account.post(account.url, { contact });
  return checkAccount(res.json, account.url);
}

/** RFC 8555 7.3.6: deactivates the account. Irreversible: the CA refuses the key from then on. */
export async function deactivateAccount(account: AccountSession): Promise<AccountObject> {
  const res = await account.post(account.url, { status: "deactivated" });
  if (res.json === undefined) return { status: "deactivated", contact: [] };
  return checkAccount(res.json, account.url);
}

/**
 * RFC 8555 7.3.5 inner JWS of a key change: protected {alg, jwk: new public key, url: keyChange
 * URL} (no nonce, no kid) over {account, oldKey}, signed with the new key.
 */
export async function keyChangeInnerJws(
  newKey: AccountKey,
  oldPublicJwk: JWK,
  accountUrl: string,
  keyChangeUrl: string,
): Promise<FlattenedJWS> {
  const payload = { account: accountUrl, oldKey: oldPublicJwk };
  return flattenedSign(
    { alg: newKey.alg, jwk: newKey.publicJwk, url: keyChangeUrl },
    JSON.stringify(payload),
    newKey.privateKey,
  );
}

/**
 * RFC 8555 7.3.5: replaces the account key. The outer request is signed by the session's (old) key
 * with kid = account URL; on success the returned session signs as the same account with `newKey`.
 * Throws when the CA refuses; then the old key is still the account's key.
 */
export async function rolloverAccountKey(
  account: AccountSession,
  newKey: AccountKey,
): Promise<AccountSession> {
  const { client, url, key: oldKey } = account;
  const dir = await client.directory();
  if (!dir.keyChange) {
    throw new WileError(`the CA at ${client.directoryUrl} offers no keyChange in its directory`, {
      hint: "This CA does not support account key rollover; keep the current key.",
    });
  }
  if (oldKey.thumbprint === newKey.thumbprint)
    throw new Error("rolloverAccountKey: the new key is the old key");
  const inner = await keyChangeInnerJws(newKey, oldKey.publicJwk, url, dir.keyChange);
  try {
    await account.post(dir.keyChange, inner);
  } catch (err) {
    // RFC 8555 7.3.5: 409 Conflict, Location = the account that already has the new key.
    if (err instanceof AcmeProblem && err.status === 409) {
      throw new WileError("the CA refused the new key: it already belongs to another account", {
        hint: "Nothing changed; the old key is still the account key. Run the rollover again (it makes a fresh key).",
        cause: err,
      });
    }
    throw err;
  }
  return new AccountSession(client, newKey, url);
}
