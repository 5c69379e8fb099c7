/**
 * Writing the files a service reads (the files, nginx/apache, dovecot and postfix targets): where,
 * with which owner and mode, checked before anything changes. Each file is replaced atomically by
 * installFile (install-file.ts).
 */
import { readFile } from "node:fs/promises";
import { type Setting, text } from "../util/settings";
import { run } from "../util/spawn";
import { checkWritable, installFile, type Owner } from "./install-file";
import { type DeployContext, DeployError } from "./target";

/** One file a target writes: where, what for messages, its content, and whether it holds the key. */
export interface OutputFile {
  path: string;
  /** "key file", "fullchain file": for messages. */
  what: string;
  secret: boolean;
  content(ctx: DeployContext): string | Uint8Array;
}

const OWNER_RE = /^([A-Za-z0-9_.][A-Za-z0-9_.-]*\$?)?(?::([A-Za-z0-9_.][A-Za-z0-9_.-]*\$?))?$/;

/** `USER`, `USER:GROUP`, `:GROUP` (names or numeric ids); undefined when malformed. */
function ownerParts(spec: string): { user?: string; group?: string } | undefined {
  const m = OWNER_RE.exec(spec);
  return m && (m[1] || m[2]) ? { user: m[1], group: m[2] } : undefined;
}

/** The owner setting: `USER`, `USER:GROUP` or `:GROUP`. */
export function ownerSetting(o: Pick<Setting, "flag" | "help">): Setting<string> {
  return text({
    ...o,
    arg: "USER[:GROUP]",
    check: (v) =>
      ownerParts(v) ? undefined : "must be USER, USER:GROUP or :GROUP (for example root:ssl-cert)",
  });
}

/** The mode setting: `0640`, `640`, `0o640`, kept as `0640`. */
export function modeSetting(o: Pick<Setting, "flag" | "help">): Setting<string> {
  return {
    ...o,
    arg: "OCTAL",
    input: "value",
    parse(v) {
      const m = typeof v === "string" ? /^(?:0o?)?([0-7]{3,4})$/.exec(v.trim()) : null;
      if (!m) throw new Error("must be an octal mode such as 0600 or 0640");
      return `0${(m[1] as string).replace(/^0(?=[0-7]{3}$)/, "")}`;
    },
  };
}

/** Reads a passwd/group style file: name -> id (third field). */
async function idTable(file: string): Promise<Map<string, number>> {
  const text = await readFile(file, "utf8").catch(() => "");
  const map = new Map<string, number>();
  for (const line of text.split("\n")) {
    const f = line.split(":");
    if (f.length >= 3 && f[0] && /^\d+$/.test(f[2] ?? "")) map.set(f[0], Number(f[2]));
  }
  return map;
}

async function lookupId(name: string, db: "passwd" | "group"): Promise<number | undefined> {
  if (/^\d+$/.test(name)) return Number(name);
  const local = (await idTable(`/etc/${db}`)).get(name);
  if (local !== undefined) return local;
  // Users from LDAP, sssd and the like: ask NSS through getent when it is there.
  try {
    const r = await run(["getent", db, name], { timeoutMs: 5000 });
    const f = r.stdout.split("\n")[0]?.split(":") ?? [];
    if (r.code === 0 && /^\d+$/.test(f[2] ?? "")) return Number(f[2]);
  } catch {
    // no getent
  }
  return undefined;
}

/** The uid/gid of an owner spec; DeployError naming the unknown user or group. */
export async function resolveOwner(spec: string): Promise<Owner> {
  const { user, group } = ownerParts(spec) ?? {};
  const owner: Owner = {};
  if (user) {
    owner.uid = await lookupId(user, "passwd");
    if (owner.uid === undefined)
      throw new DeployError(`owner ${spec}: there is no user ${user} on this host`);
  }
  if (group) {
    owner.gid = await lookupId(group, "group");
    if (owner.gid === undefined)
      throw new DeployError(`owner ${spec}: there is no group ${group} on this host`);
  }
  return owner;
}

/** Every output path can be written, and the owner exists: nothing is changed. */
export async function checkOutputs(
  label: string,
  outputs: OutputFile[],
  owner: string | undefined,
): Promise<void> {
  for (const o of outputs) await checkWritable(o.path, `${label} ${o.what}`);
  if (owner !== undefined) await resolveOwner(owner);
}

/** Writes each output atomically; `mode` applies to the files holding the key. */
export async function writeOutputs(
  ctx: DeployContext,
  label: string,
  outputs: OutputFile[],
  settings: { owner?: string; mode?: string },
): Promise<void> {
  const owner = settings.owner !== undefined ? await resolveOwner(settings.owner) : undefined;
  for (const o of outputs) {
    await installFile(o.path, o.content(ctx), {
      secret: o.secret,
      owner,
      mode: o.secret && settings.mode !== undefined ? Number.parseInt(settings.mode, 8) : undefined,
    });
    ctx.logger.debug(`${ctx.name}: ${label}: wrote ${o.path}`);
  }
}
