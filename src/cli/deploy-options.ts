/**
 * `--deploy KIND` and the targets' own options on the command line (issue, deploy): the option
 * table and help from each kind's declaration, and the flags turned into renewal.json's `deploy`
 * entries through the same check that reads them back.
 */
import { TARGET_KINDS } from "../deploy/registry";
import { readTarget } from "../deploy/run";
import type { TargetKind } from "../deploy/target";
import type { DeployConfig } from "../store/renewal";
import { UsageError } from "../util/errors";
import { type Setting, SettingError } from "../util/settings";
import type { OptionSpec, ParsedOptions } from "./options";
import {
  flagName,
  flagNamer,
  givenSettings,
  isGiven,
  settingOptions,
  settingUsageError,
} from "./setting-options";

export const DEPLOY_OPTION: OptionSpec = {
  name: "deploy",
  type: "string",
  repeat: true,
  arg: "KIND",
  help: "after issuing (and every renewal), put the certificate where a service reads it, reload and verify: files, command, dovecot, postfix, haproxy, nginx, apache, exchange, ssh (see wile deploy --help)",
};

/** One kind's options, in the order of its declaration. */
export function targetOptions(kind: TargetKind): OptionSpec[] {
  return settingOptions(kind.kind, kind.settings);
}

/** Every option of every target kind (an option two kinds share, once), for issue and deploy. */
export function allTargetOptions(kinds: readonly TargetKind[] = TARGET_KINDS): OptionSpec[] {
  const byName = new Map<string, OptionSpec>();
  for (const k of kinds) for (const o of targetOptions(k)) if (!byName.has(o.name)) byName.set(o.name, o);
  return [...byName.values()];
}

/** Every (kind, setting) the command line gave a flag for. */
function givenFlags(opts: ParsedOptions, kinds: readonly TargetKind[]) {
  return kinds.flatMap((kind) =>
    Object.entries(kind.settings)
      .filter(([key, s]) => isGiven(opts, kind.kind, key, s))
      .map(([key, s]) => ({ kind, key, flag: flagName(kind.kind, key, s), needs: s.needs })),
  );
}

/**
 * renewal.json's deploy entries for `--deploy` `asked` (in order) and the flags given. A flag two
 * kinds share (--pfx-password) goes to each asked kind that can use it; a flag no asked kind
 * declares, or none can use, is a UsageError, as is anything the kinds' checks refuse.
 */
export function deployConfigsFromOptions(
  opts: ParsedOptions,
  asked: string[],
  kinds: readonly TargetKind[] = TARGET_KINDS,
): DeployConfig[] {
  const chosen: TargetKind[] = [];
  for (const name of asked) {
    const kind = kinds.find((k) => k.kind === name);
    if (!kind) {
      throw new UsageError(`unknown --deploy target "${name}"`, {
        hint: `Targets: ${kinds.map((k) => k.kind).join(", ")}. wile deploy --help describes them.`,
      });
    }
    if (chosen.includes(kind)) throw new UsageError(`--deploy ${name} was given twice`);
    chosen.push(kind);
  }
  const given = givenFlags(opts, kinds);
  const stray = given.find((g) => !given.some((h) => h.flag === g.flag && chosen.includes(h.kind)));
  if (stray) {
    throw new UsageError(
      `--${stray.flag} belongs to the ${stray.kind.kind} target, but --deploy ${stray.kind.kind} was not given`,
      { hint: `Add --deploy ${stray.kind.kind}, or drop --${stray.flag}.` },
    );
  }
  // A shared flag that only makes sense with another setting (files' --pfx-password needs
  // --pfx-file) is left out where that setting is absent, as long as another asked kind takes it.
  const usable = (g: (typeof given)[number]) => {
    if (g.needs === undefined) return true;
    const needs = g.kind.settings[g.needs];
    return needs !== undefined && isGiven(opts, g.kind.kind, g.needs, needs);
  };
  return chosen.map((kind) => {
    const raw = givenSettings(kind.kind, kind.settings, opts);
    for (const g of given.filter((x) => x.kind === kind && !usable(x))) {
      const others = given.filter((x) => x.flag === g.flag && x.kind !== kind);
      if (others.some((x) => chosen.includes(x.kind) && usable(x))) {
        delete raw[g.key];
      } else if (others.length > 0) {
        const needs = kind.settings[g.needs as string] as Setting;
        throw new UsageError(
          `--${g.flag} goes with --${flagName(kind.kind, g.needs as string, needs)} (or with --deploy ${others.map((x) => x.kind.kind).join(" or ")})`,
          { hint: `wile deploy ${kind.kind} --help lists its options.` },
        );
      }
    }
    try {
      return readTarget(kind, raw, flagNamer(kind.kind, kind.settings)).stored as DeployConfig;
    } catch (err) {
      if (!(err instanceof SettingError)) throw err;
      throw settingUsageError(
        err,
        `--deploy ${kind.kind}`,
        kind.kind,
        kind.settings,
        raw,
        `For example: ${kind.example}. wile deploy ${kind.kind} --help lists its options.`,
      );
    }
  });
}
