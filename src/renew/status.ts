import { readlink } from "node:fs/promises";
import { join } from "node:path";
import type { CertInfo } from "../crypto/x509";
import { AccountStore } from "../store/accounts";
import { CertStore } from "../store/certs";
import { fileError } from "../store/file-errors";
import { readFileIfExists } from "../store/fs-safe";
import { type RenewalConfig, renewalFieldError } from "../store/renewal";
import { inspectState, type RenewalState, statePath } from "../store/state";
import { WileError } from "../util/errors";
import { printable } from "../util/text";
import { fallbackRenewalTime } from "./due";

export interface CertStatus {
  /** expired beats failing beats due beats ok. */
  status: "ok" | "due" | "failing" | "expired";
  /** When it is (or was) due, from what is known offline: the cached ARI moment, else the rules. */
  renewAt: Date;
  lastError?: string;
  failures: number;
}

/**
 * What `wile list` shows, without contacting anybody: the ARI moment cached by the last cron
 * run when there is one for this certificate, else --renew-days or the 1/3-of-lifetime rule.
 */
export function certStatus(
  cert: Pick<CertInfo, "notBefore" | "notAfter" | "serialContent">,
  cfg: Pick<RenewalConfig, "renewDays"> | null,
  state: RenewalState,
  now: Date,
): CertStatus {
  const ari = state.ari;
  const ariMoment =
    cfg?.renewDays === undefined && ari?.chosen && ari.certId.endsWith(serialPart(cert.serialContent))
      ? new Date(ari.chosen)
      : null;
  const renewAt = ariMoment ?? fallbackRenewalTime(cert.notBefore, cert.notAfter, cfg?.renewDays);
  // A renewed certificate that did not reach its services is failing too, until a deploy succeeds.
  const lastError =
    state.lastError ?? (state.deployPending ? `deploy failed: ${state.deployPending.error}` : undefined);
  const base = {
    renewAt,
    failures: state.failures,
    ...(lastError ? { lastError } : {}),
  };
  if (cert.notAfter.getTime() <= now.getTime()) return { status: "expired", ...base };
  if (state.failures > 0 || state.deployPending) return { status: "failing", ...base };
  if (renewAt.getTime() <= now.getTime()) return { status: "due", ...base };
  return { status: "ok", ...base };
}

/** The serial half of an ARI CertID (base64url of the serial's DER content bytes, leading 00 included). */
function serialPart(serialContent: Buffer): string {
  return `.${serialContent.toString("base64url")}`;
}

/** What cron reads about one certificate before deciding, and `wile list` shows. */
export interface LoadedCertificate {
  cfg: RenewalConfig;
  state: RenewalState;
  /** The current version's cert.pem; null when no version was ever installed. */
  certPem: string | null;
  /** A damaged state.json, read as empty from here on (one line: what was wrong, what it costs). */
  stateDamage?: string;
}

/**
 * Reads a certificate the way cron does before deciding, offline: renewal.json (strictly), the
 * account record it names, state.json (a cache: damage is reported, and it starts afresh) and the
 * current version's cert.pem. `wile list` calls this too, so that it shows what cron will find.
 * Anything that stops a renewal is a WileError naming the file and how to repair it. With `force`
 * a lost or dangling `current` link is no error: the renewal installs a new version and relinks.
 */
export async function loadCertificate(
  home: string,
  name: string,
  opts: { force?: boolean } = {},
): Promise<LoadedCertificate> {
  const store = new CertStore(home);
  const dir = store.dir(name);
  const renewalFile = join(dir, "renewal.json");
  const cfg = await readOrExplain(
    () => store.readRenewal(name),
    renewalFile,
    `the renewal settings of ${name}`,
  );
  if (!cfg) {
    const target = await readlink(renewalFile).catch(() => null);
    if (target !== null) {
      throw new WileError(`${renewalFile} is a symbolic link to ${target}, which does not exist.`, {
        hint: `Put the file back at ${target}, or replace the link with the file; else issue ${name} again with wile issue.`,
      });
    }
    throw new WileError(`${name} has no renewal.json, so wile does not know how to renew it.`, {
      hint: `Issue it again with wile issue (which writes ${renewalFile}), or wile remove ${name}.`,
    });
  }
  if (cfg.name !== name) {
    throw renewalFieldError(
      renewalFile,
      "name",
      `is "${printable(cfg.name, 80)}", not "${name}", the name of its directory`,
    );
  }
  const accounts = new AccountStore(home);
  const accountFile = join(accounts.dir(cfg.server, cfg.account), "account.json");
  await readOrExplain(
    () => accounts.readRecord(cfg.server, cfg.account),
    accountFile,
    `the ACME account ${name} renews with`,
  );

  const stateFile = statePath(home, name);
  const { state, damage } = await readOrExplain(
    () => inspectState(home, name),
    stateFile,
    `the renewal state of ${name}`,
  );
  const certPem = await currentCert(store, name, opts.force === true);
  const loaded: LoadedCertificate = { cfg, state, certPem };
  if (damage) {
    loaded.stateDamage = `${stateFile} was damaged (${printable(damage, 200)}): read as new, so the failure count, backoff and ARI cache start afresh`;
  }
  return loaded;
}

/** The current version's cert.pem, null when none was ever installed; a broken `current` is an error. */
async function currentCert(store: CertStore, name: string, force: boolean): Promise<string | null> {
  const dir = store.dir(name);
  const link = join(dir, "current");
  const target = await readOrExplain(
    () =>
      readlink(link).catch((e: NodeJS.ErrnoException) => {
        if (e.code === "ENOENT") return null;
        if (e.code === "EINVAL") return ""; // there, but not a symbolic link
        throw e;
      }),
    link,
    `the link to ${name}'s current version`,
  );
  const versions = await store.completeVersions(name);
  const newest = versions[versions.length - 1];
  const relink = newest
    ? `Point it at the newest complete version (ln -sfn archive/${newest} ${link}), or get a new certificate with wile renew ${name} --force.`
    : `Get a new certificate with wile renew ${name} --force.`;
  if (target === null) {
    if (versions.length === 0 || force) return null;
    throw new WileError(
      `${link} is missing, so the stable paths (cert.pem, privkey.pem, ...) in ${dir} point nowhere.`,
      { hint: relink },
    );
  }
  const certFile = join(dir, target, "cert.pem");
  const pem =
    target === ""
      ? null
      : await readOrExplain(() => readFileIfExists(certFile), certFile, `${name}'s current certificate`);
  if (pem !== null || force) return pem;
  throw new WileError(
    target === ""
      ? `${link} is not a symbolic link to a version in ${join(dir, "archive")}.`
      : `${link} points to ${target}, which has no cert.pem: the stable paths in ${dir} point nowhere.`,
    { hint: target === "" ? `Move it away (mv ${link} ${link}.bad). ${relink}` : relink },
  );
}

/** Runs a read; a file system error becomes a WileError naming `file` and the fix. */
async function readOrExplain<T>(read: () => Promise<T>, file: string, what: string): Promise<T> {
  try {
    return await read();
  } catch (err) {
    throw fileError(err, file, what) ?? err;
  }
}
