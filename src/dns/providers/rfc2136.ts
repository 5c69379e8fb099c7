/**
 * The "rfc2136" DNS provider: dynamic DNS UPDATE (RFC 2136) of the zone's primary server, signed
 * with a TSIG key (src/dns/rfc2136.ts, src/dns/tsig.ts), so no nsupdate is needed at run time.
 *
 * The key comes from a key file in BIND's format (`--rfc2136-tsig-key FILE`, as tsig-keygen
 * writes it), or, as lego's rfc2136 provider takes it, as name + secret + algorithm from the
 * environment (RFC2136_TSIG_KEY, RFC2136_TSIG_SECRET, RFC2136_TSIG_ALGORITHM) or the home's config
 * (`dns.rfc2136.tsigSecret`). The secret has no command-line option (argv is visible in ps), is
 * never written to renewal.json and never shown; the key file's path is stored, its content is
 * read on every run. Without any key the updates go unsigned (servers that allow updates by
 * address). A key file that cannot be read, does not parse, or that every user of the host may
 * read is a UsageError before anything is contacted.
 */
import { statSync } from "node:fs";
import { UsageError } from "../../util/errors";
import { integer, path, required, type Setting, text, withDefault } from "../../util/settings";
import { defineDnsProvider } from "../provider";
import { addTxt, deleteTxt, type UpdateTarget } from "../rfc2136";
import { parseServer, serverLabel } from "../transport";
import { readTsigKeyFile, type TsigAlgorithm, type TsigKey } from "../tsig";

/** lego's RFC2136_DNS_TIMEOUT default, in seconds: per exchange with the server. */
export const RFC2136_TIMEOUT_S = 10;
/** TTL of the records added: short, they live for minutes. */
export const RFC2136_TTL = 60;

const ALGORITHMS: readonly TsigAlgorithm[] = ["hmac-sha256", "hmac-sha512"];

/** `hmac-sha256`, also as lego writes it (`hmac-sha256.`, any case); normal form without the dot. */
function algorithm(o: { arg: string; help: string }): Setting<TsigAlgorithm> {
  return {
    ...o,
    input: "value",
    parse(v) {
      const a = typeof v === "string" ? v.trim().toLowerCase().replace(/\.$/, "") : "";
      if (!(ALGORITHMS as readonly string[]).includes(a))
        throw new Error(`must be ${ALGORITHMS.join(" or ")}`);
      return a as TsigAlgorithm;
    },
  };
}

function checkServer(v: string): string | undefined {
  try {
    parseServer(v);
    return undefined;
  } catch {
    return "must be HOST or HOST:PORT (e.g. ns1.example.com or 192.0.2.53:53)";
  }
}

/**
 * The key in a BIND key file, refused when every user of the host may read it (anyone there
 * could then change the zone): the operator fixes the mode once, at issue time.
 */
export function readKeyFile(file: string, name?: string): TsigKey {
  let mode: number | undefined;
  try {
    mode = statSync(file).mode;
  } catch {
    // readTsigKeyFile names the reason.
  }
  if (mode !== undefined && (mode & 0o004) !== 0) {
    throw new UsageError(
      `the TSIG key file ${file} is readable by every user of this host (mode ${(mode & 0o777).toString(8).padStart(4, "0")}): any of them could change your zone with it`,
      { hint: `Make it private: chmod 600 ${file} (or 640 and a group that needs it).` },
    );
  }
  return readTsigKeyFile(file, name);
}

export const rfc2136Provider = defineDnsProvider({
  name: "rfc2136",
  summary: "dynamic DNS update (RFC 2136) of the zone's primary server, signed with a TSIG key",
  example: "--dns rfc2136 --rfc2136-server ns1.example.com --rfc2136-tsig-key /etc/wile/tsig.key",
  settings: {
    server: required(
      text({
        arg: "HOST[:PORT]",
        help: "rfc2136: send the updates to this server (the zone's primary; port 53 by default)",
        check: checkServer,
      }),
    ),
    tsigKey: path({
      arg: "FILE",
      help: "rfc2136: the TSIG key, a file in BIND's format as tsig-keygen writes it (hmac-sha256 or hmac-sha512; not readable by others)",
    }),
    tsigName: text({
      arg: "NAME",
      help: "rfc2136: the key's name: which key of a file holding several, or the name of the key given as RFC2136_TSIG_SECRET",
    }),
    tsigAlgorithm: algorithm({
      arg: "ALG",
      help: "rfc2136: the algorithm of the key given as RFC2136_TSIG_SECRET: hmac-sha256 (the default) or hmac-sha512",
    }),
    tsigSecret: {
      ...text({
        help: "the key's base64 secret, without a key file: from RFC2136_TSIG_SECRET or the home's config (wile config --dns-credential rfc2136.tsigSecret)",
        check: (v) =>
          /^[A-Za-z0-9+/]+=*$/.test(v) && Buffer.from(v, "base64").length >= 16
            ? undefined
            : "must be a base64 secret of at least 16 bytes",
      }),
      secret: true,
      cli: false,
    },
    zone: text({
      arg: "ZONE",
      help: "rfc2136: the zone to update (default: found by asking the server for the SOA of each name, upwards)",
    }),
    /** Seconds. */
    timeout: withDefault(
      integer({
        arg: "SECONDS",
        help: `rfc2136: wait this long for each answer of the server (default ${RFC2136_TIMEOUT_S})`,
        min: 1,
        max: 300,
        what: "whole seconds",
      }),
      RFC2136_TIMEOUT_S,
    ),
  },
  env: {
    server: ["RFC2136_NAMESERVER"],
    tsigKey: ["RFC2136_TSIG_FILE"],
    tsigName: ["RFC2136_TSIG_KEY"],
    tsigAlgorithm: ["RFC2136_TSIG_ALGORITHM"],
    tsigSecret: ["RFC2136_TSIG_SECRET"],
    timeout: ["RFC2136_DNS_TIMEOUT"],
  },
  check(c, name) {
    if (c.tsigName !== undefined && c.tsigKey === undefined && c.tsigSecret === undefined) {
      throw new Error(
        `${name("tsigName")} names a key, but there is neither a key file (${name("tsigKey")}) nor a secret (RFC2136_TSIG_SECRET, or the home's config: wile config --dns-credential rfc2136.tsigSecret)`,
      );
    }
    if (c.tsigKey !== undefined && c.tsigSecret !== undefined) {
      throw new Error(
        `a key file (${name("tsigKey")}) and a secret (${name("tsigSecret")}, RFC2136_TSIG_SECRET) are both set: use one`,
      );
    }
    if (c.tsigSecret !== undefined && c.tsigName === undefined) {
      throw new Error(`the secret needs the key's name: ${name("tsigName")} (or RFC2136_TSIG_KEY)`);
    }
    if (c.tsigAlgorithm !== undefined && c.tsigSecret === undefined) {
      throw new Error(
        `${name("tsigAlgorithm")} goes with a secret (RFC2136_TSIG_SECRET); a key file names its own algorithm`,
      );
    }
  },
  create(c) {
    const server = parseServer(c.server);
    let key: TsigKey | undefined;
    if (c.tsigKey !== undefined) key = readKeyFile(c.tsigKey, c.tsigName);
    else if (c.tsigSecret !== undefined && c.tsigName !== undefined) {
      key = {
        name: c.tsigName.replace(/\.$/, ""),
        algorithm: c.tsigAlgorithm ?? "hmac-sha256",
        secret: Buffer.from(c.tsigSecret, "base64"),
      };
    }
    const target: UpdateTarget = {
      server,
      ...(key ? { key } : {}),
      ...(c.zone !== undefined ? { zone: c.zone } : {}),
      timeoutMs: c.timeout * 1000,
    };
    const shown = `rfc2136 (${serverLabel(server)}, ${key ? `key ${key.name}` : "unsigned"})`;
    return {
      describe: () => shown,
      present: (record) => addTxt(target, record.fqdn, record.value, RFC2136_TTL),
      cleanup: (record) => deleteTxt(target, record.fqdn, record.value),
    };
  },
});
