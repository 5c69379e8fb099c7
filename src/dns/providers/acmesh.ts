/**
 * The "acmesh" DNS provider: `--dns acmesh:dns_cf` runs acme.sh's own dnsapi script dns_cf.sh,
 * unchanged, the way acme.sh runs it: `dns_cf_add FQDN VALUE` to add, `dns_cf_rm FQDN VALUE` to
 * remove (FQDN `_acme-challenge.example.com`, no trailing dot), in a shell where acme.sh's functions
 * (_info, _err, _get, _post, _saveaccountconf_mutable, ...) are defined.
 *
 * How: DRIVER below, run with /bin/sh, sources acme.sh itself. acme.sh ends with `main "$@"`, and
 * main runs "$@" as a command when the first argument is not an option (that is how `acme.sh
 * _some_function` works), so with `true` as the only argument sourcing it defines its functions and
 * does nothing else. The driver then calls acme.sh's `_initpath` (what acme.sh does before it runs a
 * hook: sets its paths, sources account.conf), sources the dnsapi script and calls the function.
 * Paths, FQDN and VALUE are the driver's positional parameters, never part of its text.
 *
 * Where things are:
 * ```
 * acme.sh           --acmesh PATH (the script or its directory), else $LE_WORKING_DIR (acme.sh.env
 *                   sets it), else ~/.acme.sh/acme.sh
 * dnsapi script     <acme.sh's directory>/dnsapi/dns_x.sh
 * <home>/dns/acmesh/               LE_CONFIG_HOME for the script (0700): acme.sh writes nothing
 *   account.conf                  ACCOUNT_CONF_PATH (0600): what _saveaccountconf_mutable saves
 *   domains/<identifier>.conf     DOMAIN_CONF, for the few scripts that use _savedomainconf
 * ```
 * Credentials are acme.sh's: the variables its wiki names for the script (CF_Token, ...), passed
 * through the environment; the script saves them in account.conf (SAVED_CF_Token='...') and reads
 * them from there when the environment lacks them, so renewals from cron need no environment.
 * Fallback for operators moving from acme.sh: SAVED_* values of acme.sh's own account.conf
 * ($ACCOUNT_CONF_PATH, else in $LE_CONFIG_HOME, else in acme.sh's directory) that wile's file lacks
 * are copied into it before each run; acme.sh's file is only read.
 *
 * Runs are one at a time in this process (acme.sh runs its hooks one after the other, and they
 * rewrite account.conf in place).
 */
import { realpathSync, statSync } from "node:fs";
import { appendFile, mkdir, readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { WileError } from "../../util/errors";
import { commandEnv } from "../../util/programs";
import { commandTimeout, path, required, SettingError, text } from "../../util/settings";
import { printable } from "../../util/text";
import { oneAtATime } from "../api-common";
import { runRecordCommand } from "../command";
import { type DnsRecord, defineDnsProvider } from "../provider";

export const ACMESH_TIMEOUT_S = 300;

/** A dnsapi script's name, as acme.sh's --dns takes it. */
export const SCRIPT_NAME = /^dns_[a-z0-9_]+$/;

const GET_ACMESH =
  "install it (curl https://get.acme.sh | sh -s email=you@example.com, see https://github.com/acmesh-official/acme.sh#1-how-to-install) or fetch it (git clone --depth 1 https://github.com/acmesh-official/acme.sh) and name it with --acmesh PATH";

/**
 * The driver (sh). $1 acme.sh, $2 the dnsapi script, $3 the function (dns_x_add or dns_x_rm),
 * $4 FQDN, $5 VALUE. Exit status: the function's; 3 when the script cannot be loaded.
 */
export const DRIVER = `umask 077
_wile_acmesh=$1 _wile_api=$2 _wile_fn=$3 _wile_fqdn=$4 _wile_value=$5
set -- true
. "$_wile_acmesh" || exit 3
_initpath
if ! . "$_wile_api"; then
  _err "Cannot load $_wile_api."
  exit 3
fi
if ! _exists "$_wile_fn"; then
  _err "$_wile_api has no function named $_wile_fn."
  exit 3
fi
"$_wile_fn" "$_wile_fqdn" "$_wile_value"
`;

/** acme.sh and the dnsapi script, from the settings; throws SettingError naming what is missing. */
export function locateAcmesh(
  c: { script: string; acmesh?: string },
  home: string = homedir(),
): { acmesh: string; api: string } {
  const given = c.acmesh;
  let acmesh = given ?? join(home, ".acme.sh", "acme.sh");
  try {
    if (given !== undefined && statSync(given).isDirectory()) acmesh = join(given, "acme.sh");
  } catch {
    // reported below
  }
  if (!isFile(acmesh)) {
    const where = printable(acmesh, 200);
    if (given !== undefined)
      throw new SettingError("acmesh", `has no acme.sh (${where} is not a file): ${GET_ACMESH}`);
    throw new SettingError(undefined, `acme.sh is not at ${where} (the default place): ${GET_ACMESH}`);
  }
  // Through a symlink (/usr/local/bin/acme.sh) to where its dnsapi/ is, as acme.sh finds its home.
  acmesh = realpathSync(acmesh);
  const api = join(dirname(acmesh), "dnsapi", `${c.script}.sh`);
  if (!isFile(api)) {
    throw new SettingError(
      "script",
      `is not one of acme.sh's dnsapi scripts: there is no ${printable(api, 200)} (check the name in https://github.com/acmesh-official/acme.sh/wiki/dnsapi, or update acme.sh: acme.sh --upgrade, or git pull in its clone)`,
    );
  }
  return { acmesh, api };
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

/** A line acme.sh's _saveaccountconf_mutable writes: `SAVED_KEY='value'`. */
const SAVED_LINE = /^(SAVED_[A-Za-z0-9_]+)='[^'\n]*'$/;

/**
 * Makes `file` (wile's account.conf, 0600) exist and copies into it the SAVED_* lines of acme.sh's
 * account.conf `from` whose keys it lacks. Returns the keys copied.
 */
export async function importSavedValues(file: string, from: string): Promise<string[]> {
  const ours = await readFile(file, "utf8").catch(missingAs(""));
  const theirs = await readFile(from, "utf8").catch(() => "");
  const have = new Set(ours.split("\n").flatMap((l) => SAVED_LINE.exec(l)?.[1] ?? []));
  const add: string[] = [];
  for (const line of theirs.split("\n")) {
    const key = SAVED_LINE.exec(line)?.[1];
    if (!key || have.has(key)) continue;
    have.add(key);
    add.push(line);
  }
  // Appended, as acme.sh's _setopt appends a new key; the mode applies when the file is made.
  const sep = ours === "" || ours.endsWith("\n") || add.length === 0 ? "" : "\n";
  await appendFile(file, `${sep}${add.map((l) => `${l}\n`).join("")}`, { mode: 0o600 });
  return add.map((l) => l.slice(0, l.indexOf("=")));
}

/** For a read's catch: `value` when the file does not exist, the error otherwise. */
function missingAs<T>(value: T): (err: NodeJS.ErrnoException) => T {
  return (err) => {
    if (err.code === "ENOENT") return value;
    throw err;
  };
}

/**
 * acme.sh's own debugging and logging switches, left out of the scripts' environment: its debug
 * output and log show request bodies and headers (API keys), and its log file is acme.sh's, not
 * wile's. A failing script's message shows its _err and _info lines only.
 */
const QUIET = ["DEBUG", "OUTPUT_INSECURE", "LOG_FILE", "LOG_LEVEL", "SYS_LOG"];

function scriptEnv(env: Record<string, string | undefined>): Record<string, string | undefined> {
  const out = commandEnv(env);
  for (const name of QUIET) delete out[name];
  return out;
}

/** One acme.sh run at a time in this process. */
const serially = oneAtATime();

export const acmeshProvider = defineDnsProvider({
  name: "acmesh",
  qualifier: { key: "script", arg: "dns_x" },
  summary:
    "run one of acme.sh's dnsapi scripts unchanged: --dns acmesh:dns_cf (CF_Token etc. as acme.sh takes them)",
  example: "--dns acmesh:dns_cf (with CF_Token set as for acme.sh)",
  settings: {
    script: required(
      text({
        arg: "dns_x",
        help: "acmesh: the dnsapi script's name, given as --dns acmesh:dns_x",
        check: (v) =>
          SCRIPT_NAME.test(v)
            ? undefined
            : "must be a dnsapi script's name like dns_cf (dns_ and a-z, 0-9, _)",
      }),
    ),
    acmesh: path({
      flag: "acmesh",
      arg: "PATH",
      help: "acmesh: acme.sh (the script or its directory, whose dnsapi/ holds the scripts); default $LE_WORKING_DIR, else ~/.acme.sh",
    }),
    /** Seconds. */
    timeout: commandTimeout({ what: "acmesh: stop the script", fallback: ACMESH_TIMEOUT_S }),
  },
  env: { acmesh: ["LE_WORKING_DIR"] },
  check(c) {
    locateAcmesh(c);
  },
  create(c, ctx) {
    const { acmesh, api } = locateAcmesh(c);
    if (ctx.home === undefined) throw new Error("the acmesh DNS provider needs the wile home");
    const confHome = join(ctx.home, "dns", "acmesh");
    const accountConf = join(confHome, "account.conf");
    const timeoutMs = c.timeout * 1000;
    const baseEnv = ctx.env ?? process.env;
    const theirConf =
      baseEnv.ACCOUNT_CONF_PATH || join(baseEnv.LE_CONFIG_HOME || dirname(acmesh), "account.conf");

    const runHook = async (add: boolean, record: DnsRecord): Promise<void> => {
      const fn = `${c.script}_${add ? "add" : "rm"}`;
      const what = `acme.sh's ${fn} ${record.fqdn}`;
      let copied: string[];
      try {
        await mkdir(join(confHome, "domains"), { recursive: true, mode: 0o700 });
        copied = await importSavedValues(accountConf, theirConf);
      } catch (err) {
        throw new WileError(`could not prepare ${confHome} for ${what}: ${(err as Error).message}`, {
          hint: "wile keeps the values acme.sh's scripts save in that directory of its home: check that it is writable.",
        });
      }
      if (copied.length > 0) {
        ctx.logger.info(
          `Copied ${copied.join(", ")} from ${theirConf} (acme.sh's saved values) into ${accountConf}`,
        );
      }
      ctx.logger.debug(`running ${what} (${api})`);
      await runRecordCommand(
        ["/bin/sh", "-c", DRIVER, "wile-acmesh", acmesh, api, fn, record.fqdn, record.value],
        {
          timeoutMs,
          env: {
            ...scriptEnv(baseEnv),
            _SCRIPT_HOME: dirname(acmesh),
            LE_WORKING_DIR: dirname(acmesh),
            LE_CONFIG_HOME: confHome,
            ACCOUNT_CONF_PATH: accountConf,
            DOMAIN_CONF: join(confHome, "domains", `${record.identifier}.conf`),
            NO_TIMESTAMP: "1",
          },
          what,
          add,
          record,
          addHint: `The script's credentials are the variables acme.sh's wiki names for ${c.script} (https://github.com/acmesh-official/acme.sh/wiki/dnsapi), from the environment or saved in ${accountConf}; try the same with acme.sh --issue --dns ${c.script} --debug to see more.`,
        },
      );
    };
    return {
      describe: () => `acmesh:${c.script}`,
      present: (record) => serially(() => runHook(true, record)),
      cleanup: (record) => serially(() => runHook(false, record)),
    };
  },
});
