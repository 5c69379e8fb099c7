import type { ParsedOptions } from "../cli/options";
import { parseCertificate } from "../crypto/x509";
import { CertStore } from "../store/certs";
import type { RenewalConfig } from "../store/renewal";
import { UsageError, WileError } from "../util/errors";
import type { Logger } from "../util/log";
import { isRecord } from "../util/text";
import { TARGET_KINDS, targetKind } from "./registry";
import { type DeployContext, DeployError, type Target } from "./target";

/** The deploy settings asked for on the command line (`--deploy KIND` plus that kind's options). */
export function deployConfigsFromOptions(opts: ParsedOptions, kinds: string[]): Array<{ kind: string }> {
  const seen = new Set<string>();
  const configs: Array<{ kind: string }> = [];
  for (const name of kinds) {
    const kind = targetKind(name);
    if (!kind) {
      throw new UsageError(`unknown --deploy target "${name}"`, {
        hint: `Targets: ${TARGET_KINDS.map((k) => k.kind).join(", ")}. wile deploy --help describes them.`,
      });
    }
    if (seen.has(name)) throw new UsageError(`--deploy ${name} was given twice`);
    seen.add(name);
    configs.push(kind.fromOptions(opts));
  }
  // An option of a kind that was not asked for is almost certainly a mistake: say so. (minimist
  // reports booleans that were not given as their default; options shared by kinds are fine.)
  const asked = new Set(
    TARGET_KINDS.filter((k) => seen.has(k.kind)).flatMap((k) => k.options.map((o) => o.name)),
  );
  for (const kind of TARGET_KINDS) {
    if (seen.has(kind.kind)) continue;
    const stray = kind.options.find(
      (o) =>
        opts[o.name] !== undefined &&
        !asked.has(o.name) &&
        !(o.type === "boolean" && opts[o.name] === (o.defaultTrue === true)),
    );
    if (stray) {
      throw new UsageError(
        `--${stray.name} belongs to the ${kind.kind} target, but --deploy ${kind.kind} was not given`,
        {
          hint: `Add --deploy ${kind.kind}, or drop --${stray.name}.`,
        },
      );
    }
  }
  return configs;
}

/** Every option of every target kind, for the option tables of issue and deploy. */
export function allTargetOptions() {
  const byName = new Map<string, (typeof TARGET_KINDS)[number]["options"][number]>();
  for (const k of TARGET_KINDS) for (const o of k.options) if (!byName.has(o.name)) byName.set(o.name, o);
  return [...byName.values()];
}

/** Builds the targets of renewal.json's deploy list; a broken entry is a WileError naming it. */
export function targetsFromConfig(cfg: Pick<RenewalConfig, "deploy">, where: string): Target[] {
  return cfg.deploy.map((raw, i) => {
    const at = `${where}: deploy[${i}]`;
    if (!isRecord(raw) || typeof raw.kind !== "string") {
      throw new WileError(`${at} has no "kind"`, {
        hint: "Set the deploy targets again with wile deploy NAME --deploy KIND ...",
      });
    }
    const kind = targetKind(raw.kind);
    if (!kind) {
      throw new WileError(`${at}: unknown target kind "${raw.kind}"`, {
        hint: `This wile knows: ${TARGET_KINDS.map((k) => k.kind).join(", ")}. An older wile? Upgrade it.`,
      });
    }
    return kind.create(kind.parse(raw, at));
  });
}

/** The context for deploying the current certificate of `name`. */
export async function deployContext(
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
 * long each target's verify waits for the service (CommandContext.verifyWaitMs).
 */
export async function runDeploys(
  home: string,
  name: string,
  cfg: RenewalConfig,
  logger: Logger,
  verifyWaitMs: number,
): Promise<number> {
  if (cfg.deploy.length === 0) return 0;
  const targets = targetsFromConfig(cfg, `${new CertStore(home).dir(name)}/renewal.json`);
  const ctx = await deployContext(home, name, cfg, logger, verifyWaitMs);
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
