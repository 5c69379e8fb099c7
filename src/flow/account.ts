import { AccountSession } from "../acme/account-session";
import type { AcmeClient } from "../acme/client";
import { toAccountKey } from "../acme/jws";
import { generateKey, privateKeyFromPem, privateKeyToPem } from "../crypto/keys";
import { AccountStore } from "../store/accounts";
import { WileError } from "../util/errors";
import type { Logger } from "../util/log";
import { loadLocalAccount, settlePendingRollover } from "./account-admin";

export interface AccountSettings {
  home: string;
  directoryUrl: string;
  account: string;
  email: string[];
  eab?: { kid: string; hmacKey: Uint8Array } | undefined;
}

/**
 * This home's account at the CA, as a session on `client`: the stored key and URL when there are
 * both; otherwise the key is looked up at the CA (onlyReturnExisting) or registered. A new key is
 * stored before the CA ever sees it, so a crash after registration cannot lose the account.
 */
export async function ensureAccount(
  client: AcmeClient,
  s: AccountSettings,
  logger: Logger,
): Promise<AccountSession> {
  const store = new AccountStore(s.home);
  let pem = await store.readKey(s.directoryUrl, s.account);
  const keyFile = store.keyFile(s.directoryUrl, s.account);
  if (pem === null) {
    pem = privateKeyToPem(await generateKey("ec-256"));
    await store.writeKey(s.directoryUrl, pem, s.account);
  }
  if ((await store.readPendingKey(s.directoryUrl, s.account)) !== null) {
    // A key rollover was interrupted: settle which key is the account's before using either.
    const local = await loadLocalAccount(s.home, s.directoryUrl, s.account);
    if (local) await settlePendingRollover(client, s.home, local);
    pem = (await store.readKey(s.directoryUrl, s.account)) ?? pem;
  }
  const key = await toAccountKey(privateKeyFromPem(pem, keyFile));
  const record = await store.readRecord(s.directoryUrl, s.account);
  if (record?.url) return new AccountSession(client, key, record.url);

  const dir = await client.directory();
  const found = await client.findAccount(key);
  let url: string;
  if (found) {
    url = found.url;
    logger.info(`Found the existing account ${url}`);
  } else {
    if (dir.meta?.externalAccountRequired && !s.eab) {
      throw new WileError(`${s.directoryUrl} requires external account binding to register an account`, {
        hint: "Get an EAB key id and HMAC key from the CA's dashboard and pass --eab-kid and --eab-hmac-key.",
      });
    }
    const terms = dir.meta?.termsOfService;
    const created = await client.newAccount(key, {
      contact: s.email.map((e) => `mailto:${e}`),
      termsOfServiceAgreed: true,
      ...(s.eab ? { eab: s.eab } : {}),
    });
    url = created.url;
    logger.info(`Registered account ${url}${terms ? ` (agreeing to the CA's terms: ${terms})` : ""}`);
  }
  await store.writeRecord(
    s.directoryUrl,
    {
      url,
      directoryUrl: s.directoryUrl,
      contact: s.email,
      createdAt: new Date().toISOString(),
      keyType: "ec-256",
      ...(s.eab ? { eabKid: s.eab.kid } : {}),
    },
    s.account,
  );
  return new AccountSession(client, key, url);
}
