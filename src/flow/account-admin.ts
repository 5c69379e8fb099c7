/**
 * Account management on top of the store: what `wile account ...` and `wile revoke` need.
 * Rollover and deactivation change files only after the CA has said yes, and never lose a key
 * that works: see rollover() and deactivate().
 */
import {
  type AccountObject,
  deactivateAccount,
  fetchAccount,
  rolloverAccountKey,
  updateAccountContact,
} from "../acme/account-ops";
import { AccountSession } from "../acme/account-session";
import type { AcmeClient } from "../acme/client";
import { type AccountKey, toAccountKey } from "../acme/jws";
import { AcmeProblem } from "../acme/problem";
import { generateKey, type KeyType, keyTypeOf, privateKeyFromPem, privateKeyToPem } from "../crypto/keys";
import { type AccountRecord, AccountStore, DEFAULT_ACCOUNT } from "../store/accounts";
import { WileError } from "../util/errors";
import type { Logger } from "../util/log";

/** This home's account for one CA, as stored: `accounts/<ca>/<name>/`. */
export interface LocalAccount {
  directoryUrl: string;
  name: string;
  keyFile: string;
  key: AccountKey;
  /** Null when the key was stored but the registration never finished (crash, network). */
  record: AccountRecord | null;
}

/** The stored account, or null when this home has no key for the CA. */
export async function loadLocalAccount(
  home: string,
  directoryUrl: string,
  name = DEFAULT_ACCOUNT,
): Promise<LocalAccount | null> {
  const store = new AccountStore(home);
  const keyFile = store.keyFile(directoryUrl, name);
  const pem = await store.readKey(directoryUrl, name);
  if (pem === null) return null;
  const key = await toAccountKey(privateKeyFromPem(pem, keyFile));
  const record = await store.readRecord(directoryUrl, name);
  return { directoryUrl, name, keyFile, key, record };
}

/** A WileError for "this home has no account at that CA". */
export function noAccountError(home: string, directoryUrl: string, extraHint = ""): WileError {
  return new WileError(`this home (${home}) has no account at ${directoryUrl}`, {
    hint: `Register one with: wile account register --server ${directoryUrl}${extraHint ? `. ${extraHint}` : ""}`,
  });
}

/**
 * `local` as a session on `client`: the recorded URL, else the one the CA finds for the key
 * (onlyReturnExisting; the record is completed then). Throws when the CA knows no account for it.
 */
export async function attachAccount(
  client: AcmeClient,
  home: string,
  local: LocalAccount,
): Promise<AccountSession> {
  await settlePendingRollover(client, home, local);
  if (local.record?.url) return new AccountSession(client, local.key, local.record.url);
  const found = await client.findAccount(local.key);
  if (!found) {
    throw new WileError(`the CA at ${local.directoryUrl} knows no account for the key ${local.keyFile}`, {
      hint: "Register it with: wile account register (add --server/--ca-bundle as for issue).",
    });
  }
  await writeRecord(home, local, { url: found.url, contact: contactEmails(found.account.contact) });
  return new AccountSession(client, local.key, found.url);
}

/** "mailto:a@b" entries as plain addresses. */
export function contactEmails(contact: unknown): string[] {
  return Array.isArray(contact)
    ? contact.filter((c): c is string => typeof c === "string").map((c) => c.replace(/^mailto:/i, ""))
    : [];
}

async function writeRecord(home: string, local: LocalAccount, change: Partial<AccountRecord>): Promise<void> {
  const base: AccountRecord = local.record ?? {
    url: "",
    directoryUrl: local.directoryUrl,
    contact: [],
    createdAt: new Date().toISOString(),
    keyType: keyTypeOf(local.key.privateKey) ?? "unknown",
  };
  const record = { ...base, ...change };
  await new AccountStore(home).writeRecord(local.directoryUrl, record, local.name);
  local.record = record;
}

export interface AccountStatus {
  url: string;
  /** The URL in account.json, when it differs from the one the CA gave for the key. */
  recordedUrl?: string;
  account: AccountObject;
  thumbprint: string;
  keyType: string | null;
  keyFile: string;
}

/**
 * What the CA says about this home's account: the key is looked up with onlyReturnExisting (so
 * this proves the stored key is the account's key), then the account object is fetched.
 */
export async function showAccount(
  client: AcmeClient,
  home: string,
  local: LocalAccount,
): Promise<AccountStatus> {
  await settlePendingRollover(client, home, local);
  const found = await client.findAccount(local.key);
  if (!found) {
    throw new WileError(`the CA at ${local.directoryUrl} knows no account for the key ${local.keyFile}`, {
      hint: "If the account was rolled over or deactivated elsewhere, this key is no longer valid; register anew with: wile account register.",
    });
  }
  const account = await fetchAccount(new AccountSession(client, local.key, found.url));
  if (!local.record?.url) await writeRecord(home, local, { url: found.url });
  return {
    url: found.url,
    ...(local.record?.url && local.record.url !== found.url ? { recordedUrl: local.record.url } : {}),
    account,
    thumbprint: local.key.thumbprint,
    keyType: keyTypeOf(local.key.privateKey),
    keyFile: local.keyFile,
  };
}

/** Replaces the account's contact addresses at the CA, then in account.json. */
export async function updateEmail(
  client: AcmeClient,
  home: string,
  local: LocalAccount,
  emails: string[],
): Promise<{ url: string; account: AccountObject }> {
  const session = await attachAccount(client, home, local);
  const account = await updateAccountContact(
    session,
    emails.map((e) => `mailto:${e}`),
  );
  await writeRecord(home, local, { contact: emails });
  return { url: session.url, account };
}

/**
 * Deactivates the account at the CA (irreversible), then moves its directory to
 * `accounts/<ca>/<name>.deactivated-<UTC stamp>` so that wile never signs with it again: the next
 * `issue` or renewal for that CA registers a new account with a new key.
 */
export async function deactivate(
  client: AcmeClient,
  home: string,
  local: LocalAccount,
  now = new Date(),
): Promise<{ url: string; movedTo: string }> {
  const session = await attachAccount(client, home, local);
  try {
    await deactivateAccount(session);
  } catch (err) {
    // Already deactivated (for example by an earlier run killed before the move): move it now.
    if (!(err instanceof AcmeProblem && err.is("unauthorized") && /deactivat/i.test(err.detail))) throw err;
  }
  const movedTo = await new AccountStore(home).moveDeactivated(local.directoryUrl, now, local.name);
  return { url: session.url, movedTo };
}

/**
 * RFC 8555 7.3.5 key rollover. The new key is stored as the pending key (account.key.next, 0600,
 * fsynced) before the CA sees it; only after the CA answered 200 is it promoted (the old key kept
 * as account.key.old-<stamp>, a hard link, and account.key.next renamed over account.key; see
 * AccountStore). Then the CA is asked to find the account by the new key, to confirm. A run
 * killed in between is settled by the next account command (settlePendingRollover).
 */
export async function rollover(
  client: AcmeClient,
  home: string,
  local: LocalAccount,
  keyType: KeyType,
  logger: Logger,
  now = new Date(),
): Promise<{ url: string; oldThumbprint: string; newThumbprint: string; oldKeyFile: string }> {
  const session = await attachAccount(client, home, local);
  const { url } = session;
  const store = new AccountStore(home);
  const newPrivate = await generateKey(keyType);
  await store.writePendingKey(local.directoryUrl, privateKeyToPem(newPrivate), local.name);
  const newKey = await toAccountKey(newPrivate);
  const oldKey = local.key;
  logger.info(
    `Changing the key of ${url} to a new ${keyType} key (kept in ${store.pendingKeyFile(local.directoryUrl, local.name)} until the CA has it)`,
  );
  try {
    await rolloverAccountKey(session, newKey);
  } catch (err) {
    // The CA said no, or its answer was lost. Ask which key it knows; only a definite "not the
    // new one" drops the pending file (it might be the account's only working key otherwise).
    let known: boolean;
    try {
      known = await caKnowsKey(client, newKey, url);
    } catch {
      throw new WileError(
        `the key rollover for ${url} failed and its outcome is unknown: ${(err as Error).message}`,
        {
          hint: `Both keys are kept (${local.keyFile} and ${store.pendingKeyFile(local.directoryUrl, local.name)}). Run 'wile account show' once the CA is reachable: it settles which one is the account's.`,
          cause: err,
        },
      );
    }
    if (!known) {
      await store.dropPendingKey(local.directoryUrl, local.name);
      throw err;
    }
    logger.warn("the CA's answer was lost, but it does know the new key: finishing the rollover");
  }
  logger.info(`The CA has the new key; the old one is kept as ${local.keyFile}.old-<UTC time>`);
  const oldKeyFile = await store.promotePendingKey(local.directoryUrl, now, local.name);
  local.key = newKey;
  await writeRecord(home, local, { keyType });
  const confirmed = await caKnowsKey(client, newKey, url);
  if (!confirmed) {
    throw new WileError(`the CA accepted the key change but does not find account ${url} by the new key`, {
      hint: `The old key is kept at ${oldKeyFile}. Check with: wile account show`,
    });
  }
  return { url, oldThumbprint: oldKey.thumbprint, newThumbprint: newKey.thumbprint, oldKeyFile };
}

/** True when onlyReturnExisting with `key` finds the account `url`. */
async function caKnowsKey(client: AcmeClient, key: AccountKey, url: string): Promise<boolean> {
  const found = await client.findAccount(key);
  return found?.url === url;
}

/**
 * A rollover killed after writing its new key (the store's pending key), settled by asking the
 * CA which key it knows (newAccount with onlyReturnExisting, signed by each: RFC 8555 7.3.1): the
 * new one, so the key change went through and the swap is finished; the old one, so the CA never
 * took it and the pending key is removed; neither, so both are kept and this is an error. Every
 * command that signs with the account settles first (ensureAccount, attachAccount).
 */
export async function settlePendingRollover(
  client: AcmeClient,
  home: string,
  local: LocalAccount,
): Promise<void> {
  const store = new AccountStore(home);
  const pem = await store.readPendingKey(local.directoryUrl, local.name);
  if (pem === null) return;
  const next = await toAccountKey(
    privateKeyFromPem(pem, store.pendingKeyFile(local.directoryUrl, local.name)),
  );
  const url = local.record?.url;
  if (url && (await caKnowsKey(client, next, url))) {
    await store.promotePendingKey(local.directoryUrl, new Date(), local.name);
    local.key = next;
    await writeRecord(home, local, { keyType: keyTypeOf(next.privateKey) ?? "unknown" });
  } else if (!url || (await caKnowsKey(client, local.key, url))) {
    await store.dropPendingKey(local.directoryUrl, local.name);
  } else {
    const pending = store.pendingKeyFile(local.directoryUrl, local.name);
    throw new WileError(
      `an interrupted key rollover of ${url} cannot be settled: the CA finds the account by neither ${local.keyFile} nor ${pending}`,
      {
        hint: "Both keys are kept. Check the account with 'wile account show' (it may have been rolled over or deactivated elsewhere); to start afresh, move both keys away and run 'wile account register'.",
      },
    );
  }
}
