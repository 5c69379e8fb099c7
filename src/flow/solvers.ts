/**
 * The solvers of one order, from renewal.json's `challenge`: one WebrootSolver for the names with
 * a webroot, the standalone listener for the names in `challenge.standalone`, one Dns01Solver per
 * distinct DNS provider entry (so that a name and its wildcard,
 * proved by the same provider, share one solver and both values are in place at once), one
 * DnsPersistSolver for the names in `challenge.persist`, one StatelessSolver for those in
 * `challenge.stateless`, the tls-alpn-01 listener for those in `challenge.alpn.names`.
 */
import type { Solver } from "../acme/solver";
import type { Identifier } from "../acme/types";
import { Dns01Solver, type PropagationCheck } from "../challenges/dns-01";
import { type DnsProvider, type DnsRecord, readProviderSettings } from "../dns/provider";
import { DNS_PROVIDERS, dnsProvider } from "../dns/registry";
import { type DnsConfig, type RenewalConfig, renewalFieldError } from "../store/renewal";
import { WileError } from "../util/errors";
import type { Logger } from "../util/log";
import { SettingError } from "../util/settings";

export interface SolverDeps {
  logger: Logger;
  /** Where provider credentials come from besides renewal.json. */
  env: Record<string, string | undefined>;
  /** wile's home, for providers that keep state there (acmesh). */
  home?: string;
  /** The home config's `dns` section: provider name -> settings (credentials). */
  dnsConfig?: Record<string, Record<string, unknown>>;
  check: PropagationCheck;
  /** Wraps each provider made, e.g. to note its records (src/flow/dns-leftovers.ts journaled). */
  wrapProvider?: (provider: DnsProvider, entry: DnsConfig) => DnsProvider;
  /** Where each dns-01 record is written (CNAME / --dns-alias); default `_acme-challenge.NAME`. */
  locate?: (record: DnsRecord) => Promise<string>;
  /** The http-01 solver, made only when a name uses a webroot. */
  webroot: () => Solver;
  /** The http-01 listener (--standalone), for the names in challenge.standalone; opened by the caller before the CA is contacted. */
  standalone?: Solver;
  /** The dns-persist-01 solver, made only when a name uses it (it needs the account, set up by then). */
  persist?: () => Solver;
  /** The stateless http-01 solver, made only when a name uses it. */
  stateless?: () => Solver;
  /** The tls-alpn-01 solver, listening already (it is made and its port taken before the CA is contacted). */
  alpn?: Solver;
}

/**
 * The provider a renewal.json entry (`{provider, ...settings}`, no secrets) names, its settings
 * completed from the environment and the home's config and checked: a WileError naming `field` of
 * `file` when it cannot be made, a UsageError when its key or credentials are unusable.
 */
export function providerFor(
  entry: DnsConfig,
  file: string,
  field: string,
  deps: Pick<SolverDeps, "logger" | "env" | "dnsConfig" | "home">,
  /** For messages: whose provider this is ("for example.com"). */
  owner = `for ${field}`,
): DnsProvider {
  const kind = dnsProvider(entry.provider);
  if (!kind) {
    throw renewalFieldError(
      file,
      `${field}.provider`,
      `is "${entry.provider}", a DNS provider this wile does not know (it knows ${DNS_PROVIDERS.map((k) => k.name).join(", ")}; an older wile? upgrade it)`,
    );
  }
  let values: Record<string, unknown>;
  try {
    ({ values } = readProviderSettings(
      kind,
      entry,
      { env: deps.env, config: deps.dnsConfig?.[kind.name] ?? {} },
      (key) => `"${key}"`,
    ));
  } catch (err) {
    if (!(err instanceof SettingError)) throw err;
    // Secrets are never in renewal.json: they come from the environment or the home's config.
    const secrets = Object.entries(kind.settings).filter(([, s]) => s.secret);
    const where = secrets.map(([k]) => {
      const vars = kind.env?.[k] ?? [];
      return `${vars.length > 0 ? `${vars.join(" or ")} in the environment of every renewal (the cron job too), or ` : ""}wile config --dns-credential ${kind.name}.${k}`;
    });
    const secretHint = `Secrets are not stored in ${file}: set ${where.join("; ")}.`;
    const setting = err.key !== undefined ? kind.settings[err.key] : undefined;
    if (setting?.secret && entry[err.key as string] === undefined) {
      throw new WileError(`the ${kind.name} DNS provider's ${err.key} ${err.message} (${owner})`, {
        hint: secretHint,
      });
    }
    const e =
      err.key === undefined
        ? renewalFieldError(file, field, `(${kind.name}) is inconsistent: ${err.message}`)
        : renewalFieldError(file, `${field}.${err.key}`, err.message);
    if (err.key !== undefined || secrets.length === 0) throw e;
    throw new WileError(e.message, { hint: `${secretHint} Otherwise: ${e.hint ?? ""}` });
  }
  return kind.create(values as never, { logger: deps.logger, env: deps.env, home: deps.home });
}

/** solverFor(identifier, wildcard) for obtainCertificate. Provider settings are checked here, before the CA is contacted. */
export function solversFor(
  cfg: Pick<RenewalConfig, "name" | "challenge">,
  file: string,
  deps: SolverDeps,
): (identifier: Identifier, wildcard: boolean) => Solver {
  const byEntry = new Map<string, Solver>();
  const byName = new Map<string, Solver>();
  for (const [name, entry] of Object.entries(cfg.challenge.dns ?? {})) {
    const json = JSON.stringify(entry);
    let solver = byEntry.get(json);
    if (!solver) {
      let provider = providerFor(entry, file, `challenge.dns.${name}`, deps, `for ${cfg.name}`);
      if (deps.wrapProvider) provider = deps.wrapProvider(provider, entry);
      solver = new Dns01Solver({
        provider,
        check: deps.check,
        ...(deps.locate ? { locate: deps.locate } : {}),
        logger: deps.logger,
      });
      byEntry.set(json, solver);
    }
    byName.set(name, solver);
  }
  let webroot: Solver | undefined;
  let persist: Solver | undefined;
  let stateless: Solver | undefined;
  return (identifier, wildcard) => {
    const name = wildcard ? `*.${identifier.value}` : identifier.value;
    const dns = byName.get(name);
    if (dns) return dns;
    if (deps.persist && cfg.challenge.persist?.includes(name)) {
      persist ??= deps.persist();
      return persist;
    }
    if (deps.standalone && cfg.challenge.standalone?.names.includes(name)) return deps.standalone;
    if (deps.stateless && cfg.challenge.stateless?.includes(name)) {
      stateless ??= deps.stateless();
      return stateless;
    }
    if (deps.alpn && cfg.challenge.alpn?.names.includes(name)) return deps.alpn;
    if (Object.hasOwn(cfg.challenge.webroots, name)) {
      webroot ??= deps.webroot();
      return webroot;
    }
    throw new WileError(`the CA asked to validate ${name}, for which ${file} names no way to prove control`, {
      hint: "Issue the certificate again with -w, --standalone, --stateless, --alpn, --dns or --challenge dns-persist-01 for every name.",
    });
  };
}
