import type { AcmeClient, Signer } from "../acme/client";
import { toAccountKey } from "../acme/jws";
import { AcmeProblem } from "../acme/problem";
import { type RevocationReason, revokeCertificate } from "../acme/revoke";
import { privateKeyFromPem } from "../crypto/keys";
import { type CertInfo, certMatchesKey, parseCertificate } from "../crypto/x509";
import { CertStore } from "../store/certs";
import type { RenewalConfig } from "../store/renewal";
import { UsageError, WileError } from "../util/errors";
import type { Logger } from "../util/log";
import { attachAccount, loadLocalAccount, noAccountError } from "./account-admin";

/** A stored certificate ready to be revoked: checked before anything is contacted. */
export interface RevocationTarget {
  name: string;
  dir: string;
  info: CertInfo;
  certPem: string;
  privkeyPem: string;
  /** renewal.json, when there is one (its server, caBundle and account are the defaults). */
  renewal: RenewalConfig | null;
}

/** Reads certs/<name>'s current certificate (and key); UsageError when there is none. */
export async function loadRevocationTarget(home: string, name: string): Promise<RevocationTarget> {
  const store = new CertStore(home);
  const dir = store.dir(name);
  const files = await store.readCurrent(name);
  if (!files) {
    throw new UsageError(`no certificate named "${name}" in ${home}`, {
      hint: "See the names with: wile list",
    });
  }
  const info = parseCertificate(files.certPem, `${dir}/cert.pem`);
  const renewal = await store.readRenewal(name).catch(() => null);
  return { name, dir, info, certPem: files.certPem, privkeyPem: files.privkeyPem, renewal };
}

/**
 * Asks the CA to revoke the target's certificate, signed by this home's account at that CA, or
 * with `withCertKey` by the certificate's own key (privkey.pem). A certificate the CA reports as
 * already revoked counts as done (returns "already").
 */
export async function revokeTarget(
  client: AcmeClient,
  home: string,
  target: RevocationTarget,
  opts: { reason: RevocationReason; withCertKey: boolean; account: string; logger: Logger },
): Promise<"revoked" | "already"> {
  let signer: Signer;
  if (opts.withCertKey) {
    const key = privateKeyFromPem(target.privkeyPem, `${target.dir}/privkey.pem`);
    if (!certMatchesKey(target.certPem, key)) {
      throw new WileError(`${target.dir}/privkey.pem does not belong to ${target.dir}/cert.pem`, {
        hint: "Revoke with the account key instead (leave out --with-cert-key).",
      });
    }
    signer = { key: await toAccountKey(key) };
  } else {
    const local = await loadLocalAccount(home, client.directoryUrl, opts.account);
    if (!local) {
      throw noAccountError(
        home,
        client.directoryUrl,
        "Or sign the revocation with the certificate's own key: add --with-cert-key",
      );
    }
    signer = (await attachAccount(client, home, local)).signer;
  }
  try {
    await revokeCertificate(client, target.info.der, opts.reason, signer);
    return "revoked";
  } catch (err) {
    if (err instanceof AcmeProblem && err.is("alreadyRevoked")) return "already";
    if (err instanceof AcmeProblem && err.is("unauthorized") && !opts.withCertKey) {
      throw new WileError(`${err.message}`, {
        hint: "The CA accepts revocation by the account that ordered the certificate, or by the certificate's key: try again with --with-cert-key.",
        cause: err,
      });
    }
    throw err;
  }
}
