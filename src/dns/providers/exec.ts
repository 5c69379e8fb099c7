/**
 * The "exec" DNS provider: the operator's own command adds and removes the record.
 *
 * Two argument conventions, so that hooks written for other clients work unchanged:
 * - `lego` (default), lego's exec provider: `CMD present FQDN VALUE` and `CMD cleanup FQDN VALUE`,
 *   FQDN with the trailing dot lego sends (`_acme-challenge.example.com.`), VALUE the TXT value.
 * - `uacme`, uacme's hook (uacme(1), HOOK): `CMD begin dns-01 IDENT TOKEN AUTH` to add, and
 *   `CMD done dns-01 IDENT TOKEN AUTH` to remove; IDENT is the name without `*.` and AUTH is, for
 *   dns-01, already the TXT value (the hook prepends `_acme-challenge.` itself).
 *
 * CMD is a command string the operator wrote: it runs with `sh -c 'CMD "$@"'`, the arguments
 * passed as positional parameters (never spliced into the string), with a timeout. A non-zero exit
 * (uacme's "declined" included) fails, quoting the command's last output lines.
 */
import { commandEnv } from "../../util/programs";
import { command, commandTimeout, required, text, withDefault } from "../../util/settings";
import { runRecordCommand } from "../command";
import { type DnsRecord, defineDnsProvider } from "../provider";

export const EXEC_MODES = ["lego", "uacme"] as const;
export type ExecMode = (typeof EXEC_MODES)[number];

export const EXEC_TIMEOUT_S = 120;

/** The arguments after CMD for adding (`add`) or removing a record. */
export function execArgs(mode: ExecMode, add: boolean, r: DnsRecord): string[] {
  if (mode === "uacme") return [add ? "begin" : "done", "dns-01", r.identifier, r.token, r.value];
  return [add ? "present" : "cleanup", `${r.fqdn}.`, r.value];
}

export const execProvider = defineDnsProvider({
  name: "exec",
  summary: "run your own command: CMD present|cleanup FQDN VALUE (lego's exec), or uacme's hook arguments",
  example: "--dns exec --dns-exec /usr/local/bin/dns-hook",
  settings: {
    command: required(
      command({
        flag: "dns-exec",
        arg: "CMD",
        help: "exec: run this (sh -c, arguments appended) to add and remove the TXT record",
      }),
    ),
    mode: withDefault(
      text({
        flag: "dns-exec-mode",
        arg: "MODE",
        help: 'exec: the arguments: "lego" (present|cleanup FQDN. VALUE, the default) or "uacme" (begin|done dns-01 IDENT TOKEN VALUE)',
        check: (v) =>
          (EXEC_MODES as readonly string[]).includes(v) ? undefined : `must be ${EXEC_MODES.join(" or ")}`,
      }),
      "lego",
    ),
    /** Seconds. */
    timeout: commandTimeout({
      flag: "dns-exec-timeout",
      what: "exec: kill the command",
      fallback: EXEC_TIMEOUT_S,
    }),
  },
  env: { command: ["EXEC_PATH"] },
  create(c, ctx) {
    const cmd = c.command;
    const mode = c.mode as ExecMode;
    const shown = cmd.length > 60 ? `${cmd.slice(0, 57)}...` : cmd;
    const timeoutMs = c.timeout * 1000;
    const runHook = async (add: boolean, record: DnsRecord): Promise<void> => {
      const args = execArgs(mode, add, record);
      const what = `the DNS hook (${shown} ${args[0]} ${args[1]}${mode === "uacme" ? ` ${args[2]}` : ""})`;
      ctx.logger.debug(`running ${what}`);
      await runRecordCommand(["/bin/sh", "-c", `${cmd} "$@"`, "wile-dns-exec", ...args], {
        timeoutMs,
        env: commandEnv(ctx.env ?? process.env),
        what,
        add,
        record,
        addHint: `Check that the command ${mode === "uacme" ? "accepts uacme's hook arguments (begin dns-01 IDENT TOKEN VALUE)" : "takes lego's exec arguments (present FQDN. VALUE)"} and can change the zone; run it by hand to see. --dns-exec-mode picks the argument convention.`,
      });
    };
    return {
      describe: () => `exec (${shown})`,
      present: (record) => runHook(true, record),
      cleanup: (record) => runHook(false, record),
    };
  },
});
