/**
 * Deploy target kinds driven the two ways wile drives them, for unit tests: from command-line
 * flags (through the same adapter `wile issue/deploy` use) and from renewal.json entries (through
 * the same reader renewals use). Only the kinds passed in are known, so a test's fake kind never
 * touches the global registry.
 */
import assert from "node:assert/strict";
import { allTargetOptions, DEPLOY_OPTION, deployConfigsFromOptions } from "../../src/cli/deploy-options";
import { parseOptions } from "../../src/cli/options";
import { readDeployEntry } from "../../src/deploy/run";
import type { Target, TargetKind } from "../../src/deploy/target";
import type { DeployConfig } from "../../src/store/renewal";
import { UsageError, WileError } from "../../src/util/errors";

/** The renewal.json entry `--deploy <kind> ...argv` makes (UsageError for bad flags). */
export function configFromArgv(kind: TargetKind, argv: string[], kinds: TargetKind[] = [kind]): DeployConfig {
  const opts = parseOptions(argv, [DEPLOY_OPTION, ...allTargetOptions(kinds)]);
  return deployConfigsFromOptions(opts, [kind.kind], kinds)[0] as DeployConfig;
}

/** The checked values of a renewal.json entry (WileError naming `file` and the field when broken). */
export function valuesFromEntry(
  kind: TargetKind,
  raw: Record<string, unknown>,
  file = "renewal.json",
): Record<string, unknown> {
  return readDeployEntry({ kind: kind.kind, ...raw }, 0, { file, name: "example.com" }, [kind]).values;
}

/** The normal form of a renewal.json entry, as it would be stored again. */
export function storedFromEntry(kind: TargetKind, raw: Record<string, unknown>, file = "renewal.json") {
  return readDeployEntry({ kind: kind.kind, ...raw }, 0, { file, name: "example.com" }, [kind]).stored;
}

/** The target a renewal.json entry makes. */
export function targetFromEntry(
  kind: TargetKind,
  raw: Record<string, unknown>,
  file = "renewal.json",
): Target {
  return kind.create(valuesFromEntry(kind, raw, file));
}

/** The target the command line `--deploy <kind> ...argv` makes, read back as renewals read it. */
export function targetFromArgv(kind: TargetKind, argv: string[]): Target {
  return targetFromEntry(kind, configFromArgv(kind, argv));
}

/** For assert.throws: a UsageError (exit 2, nothing contacted) whose message matches `re`. */
export function usageError(re: RegExp): (e: unknown) => boolean {
  return (e) => {
    assert.ok(e instanceof UsageError, String(e));
    assert.match(e.message, re);
    return true;
  };
}

/**
 * For assert.throws: an error about a renewal.json entry of certificate `name` (valuesFromEntry & co.
 * read them as example.com's), in renewal.json's one format `<file>: "<field>" <problem>.`, with the
 * hint naming the field and how to fix it.
 */
export function entryError(
  file: string,
  field: string,
  problem: RegExp,
  name = "example.com",
): (e: unknown) => boolean {
  return (e) => {
    assert.ok(e instanceof WileError && !(e instanceof UsageError), String(e));
    const head = `${file}: "${field}" `;
    assert.ok(e.message.startsWith(head), `${e.message} should start with ${head}`);
    assert.match(e.message.slice(head.length), problem);
    assert.equal(
      e.hint,
      `Fix "${field}" in ${file} (or set the targets again: wile deploy ${name} --deploy KIND ...).`,
    );
    return true;
  };
}
