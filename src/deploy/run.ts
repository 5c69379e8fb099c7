import { parseCertificate } from "../crypto/x509";
import { CertStore } from "../store/certs";
import { type RenewalConfig, renewalFieldError } from "../store/renewal";
import { WileError } from "../util/errors";
import type { Logger } from "../util/log";
import { type Namer, readChecked, SettingError } from "../util/settings";
import { isRecord } from "../util/text";
import { TARGET_KINDS } from "./registry";
import { type DeployContext, DeployError, type Target, type TargetKind } from "./target";

/**
 * One target's settings checked against its kind's declaration, the same way for the command line
 * and for renewal.json: the values its create() takes, and the normal form renewal.json keeps.
 * Throws SettingError; the caller says where the settings came from.
 */
export function readTarget(
  kind: TargetKind,
  raw: Record<string, unknown>,
  name: Namer,
): { values: Record<string, unknown>; stored: Record<string, unknown> } {
  const r = readChecked(kind.settings, kind.check?.bind(kind), raw, name);
  return { values: r.values, stored: { kind: kind.kind, ...r.stored } };
}

/**
 * Reads entry `i` of renewal.json's deploy list (`file` and `name`, the certificate's, go into
 * messages): its kind, checked settings and normal form. A broken entry is a WileError in
 * renewal.json's one format, naming the field.
 */
export function readDeployEntry(
  raw: unknown,
  i: number,
  where: { file: string; name: string },
  kinds: readonly TargetKind[] = TARGET_KINDS,
): { kind: TargetKind; values: Record<string, unknown>; stored: Record<string, unknown> } {
  const at = `deploy[${i}]`;
  const fix = `set the targets again: wile deploy ${where.name} --deploy KIND ...`;
  if (!isRecord(raw) || typeof raw.kind !== "string")
    throw renewalFieldError(where.file, at, "has no kind", fix);
  const kind = kinds.find((k) => k.kind === raw.kind);
  if (!kind) {
    throw renewalFieldError(
      where.file,
      `${at}.kind`,
      `is "${raw.kind}", a target this wile does not know (it knows ${kinds.map((k) => k.kind).join(", ")}; an older wile? upgrade it)`,
      fix,
    );
  }
  try {
    return { kind, ...readTarget(kind, raw, (key) => `"${key}"`) };
  } catch (err) {
    if (!(err instanceof SettingError)) throw err;
    throw err.key === undefined
      ? renewalFieldError(where.file, at, `(${kind.kind}) is inconsistent: ${err.message}`, fix)
      : renewalFieldError(where.file, `${at}.${err.key}`, err.message, fix);
  }
}

/** The targets of renewal.json's deploy list, in order. */
export function targetsFromConfig(
  cfg: Pick<RenewalConfig, "name" | "deploy">,
  file: string,
  kinds: readonly TargetKind[] = TARGET_KINDS,
): Target[] {
  return cfg.deploy.map((raw, i) => {
    const { kind, values } = readDeployEntry(raw, i, { file, name: cfg.name }, kinds);
    return kind.create(values);
  });
}

/** The context for deploying the current certificate of `name`. */
async function deployContext(
  home: string,
  name: string,
  cfg: RenewalConfig,
  logger: Logger,
  verifyWaitMs: number,
): Promise<DeployContext> {
  const store = new CertStore(home);
  const files = await store.readCurrent(name);
  if (!files) throw new WileError(`${name} has no certificate to deploy yet`, { hint: `wile issue first.` });
  const info = parseCertificate(files.certPem, `${store.dir(name)}/cert.pem`);
  const dir = store.dir(name);
  const dns = cfg.identifiers.find((i) => i.type === "dns");
  return {
    name,
    identifiers: cfg.identifiers,
    serverName: (dns ?? cfg.identifiers[0])?.value ?? name,
    paths: {
      dir,
      privkey: `${dir}/privkey.pem`,
      cert: `${dir}/cert.pem`,
      chain: `${dir}/chain.pem`,
      fullchain: `${dir}/fullchain.pem`,
    },
    files,
    serialHex: info.serialHex,
    notAfter: info.notAfter,
    leafDer: info.der,
    home,
    logger,
    verifyWaitMs,
  };
}

/**
 * Runs the deploy targets of `cfg` for the current certificate: first every target's check (so an
 * unwritable target fails before any file anywhere changed), then each deploy in order. Every
 * target is tried; the failures come back as one DeployError listing each. `verifyWaitMs`: how
 * long each target's verify waits for the service (CommandContext.verifyWaitMs); `kinds`: the
 * known target kinds (tests pass their own).
 */
export async function runDeploys(
  home: string,
  name: string,
  cfg: RenewalConfig,
  logger: Logger,
  o: { verifyWaitMs: number; kinds?: readonly TargetKind[] },
): Promise<number> {
  if (cfg.deploy.length === 0) return 0;
  const targets = targetsFromConfig(cfg, `${new CertStore(home).dir(name)}/renewal.json`, o.kinds);
  const ctx = await deployContext(home, name, cfg, logger, o.verifyWaitMs);
  for (const t of targets) {
    try {
      await t.check(ctx);
    } catch (err) {
      throw asDeployError(err, t, "nothing was deployed");
    }
  }
  const failures: string[] = [];
  let hint: string | undefined;
  for (const t of targets) {
    logger.info(`${name}: deploying to ${t.describe()}`);
    try {
      await t.deploy(ctx);
    } catch (err) {
      const e = asDeployError(err, t);
      failures.push(e.message);
      hint ??= e.hint;
    }
  }
  if (failures.length > 0) {
    throw new DeployError(
      failures.length === 1
        ? (failures[0] as string)
        : `${failures.length} of ${targets.length} deploy targets failed:\n  ${failures.join("\n  ")}`,
      { hint: hint ?? `The certificate is stored; after fixing, run: wile deploy ${name}` },
    );
  }
  return targets.length;
}

function asDeployError(err: unknown, t: Target, note?: string): DeployError {
  const message = err instanceof Error ? err.message : String(err);
  const full = `deploy to ${t.describe()} failed: ${message}${note ? ` (${note})` : ""}`;
  return new DeployError(full, err instanceof WileError && err.hint ? { hint: err.hint } : {});
}
