import { fetchAccount } from "../../acme/account-ops";
import type { Identifier } from "../../acme/types";
import {
  isNormalIssuerName,
  type PersistDirectoryInfo,
  persistBase,
  persistDirectoryInfo,
  persistRecordName,
  persistRecordValue,
  persistZoneLine,
  recordAccountUri,
} from "../../challenges/dns-persist-01";
import { ensureAccount } from "../../flow/account";
import { createClient } from "../../flow/client";
import { DEFAULT_ACCOUNT } from "../../store/accounts";
import { UsageError, WileError } from "../../util/errors";
import { CA_OPTIONS, EAB_OPTIONS, registrationOptions } from "../ca-options";
import type { Command } from "../command";
import { parseIdentifiers } from "../names";
import { flag, list, type OptionSpec, str } from "../options";

const OPTIONS: OptionSpec[] = [
  {
    name: "domain",
    alias: "d",
    type: "string",
    repeat: true,
    arg: "NAME",
    help: "a name to print the record for (repeat for more: one record each); *.NAME means NAME's record with policy=wildcard",
  },
  {
    name: "wildcard",
    type: "boolean",
    help: "add policy=wildcard: the record then also covers *.NAME and every subdomain of NAME",
  },
  {
    name: "persist-until",
    type: "string",
    arg: "DATE",
    help: "add persistUntil: the CA stops taking the record after DATE (2027-06-30, 2027-06-30T12:00:00Z, or Unix seconds)",
  },
  {
    name: "issuer-domain-name",
    type: "string",
    arg: "NAME",
    help: "the CA's issuer domain name to put in the record (default: the first one its directory announces)",
  },
  {
    name: "email",
    type: "string",
    repeat: true,
    arg: "ADDR",
    help: "contact address, if the account has to be registered",
  },
  ...CA_OPTIONS,
  ...EAB_OPTIONS,
];

export const dnsPersistCommand: Command = {
  name: "dns-persist",
  summary: "print the persistent TXT record (dns-persist-01) that lets this home's account prove a name",
  usage: "wile dns-persist -d NAME [-d NAME ...] [--wildcard] [--persist-until DATE] [options]",
  description: [
    "dns-persist-01 (draft-ietf-acme-dns-persist): you create one TXT record per name, once, and",
    "every later issue and renewal with --challenge dns-persist-01 uses it; this host needs no DNS",
    "credentials. The record names the CA (an issuer domain name from its directory) and this home's",
    "ACME account, which is registered first if needed. Printed as zone-file lines (stdout); the",
    "comment lines under each give the name and the value alone, for a DNS host's web form. Anyone",
    "holding the account key can get certificates for the name while the record exists: keep",
    "~/.wile/accounts private, and delete the record to withdraw it. Exit 0 printed, 1 the CA",
    "failed or announces no issuer domain name, 2 bad input (nothing was contacted).",
  ].join("\n"),
  options: OPTIONS,
  logs: true,
  examples: [
    "wile dns-persist -d example.com --wildcard",
    "wile dns-persist -d example.com -d mail.example.com --persist-until 2027-12-31",
    "wile dns-persist -d example.com --staging --json",
  ],
  async run(ctx) {
    const { out, home, opts } = ctx;
    if (opts._.length > 0) {
      throw new UsageError(`unexpected argument "${opts._[0]}"`, {
        hint: "Names go after -d: wile dns-persist -d example.com",
      });
    }
    const names = recordNames(parseIdentifiers(list(opts, "domain")), flag(opts, "wildcard"));
    const persistUntil = parsePersistUntil(str(opts, "persist-until"), Date.now());
    const chosen = str(opts, "issuer-domain-name")?.toLowerCase().replace(/\.$/, "");
    if (chosen !== undefined && !isNormalIssuerName(chosen)) {
      throw new UsageError(`--issuer-domain-name "${chosen}" is not a domain name`, {
        hint: "Example: --issuer-domain-name letsencrypt.org",
      });
    }
    const { ca, eab, email } = await registrationOptions(opts, home);

    const client = await createClient(ca.server, ca.caBundle, out.logger);
    try {
      const info = persistDirectoryInfo((await client.directory()).meta);
      // Before the account: a CA that names no issuer gets no account registered for nothing.
      const issuer = pickIssuer(info, chosen, ca.server);
      const account = await ensureAccount(
        client,
        { home, directoryUrl: ca.server, account: DEFAULT_ACCOUNT, email, eab },
        out.logger,
      );
      // Draft -02 4.5: before the record is handed on for publication, prove that this key controls
      // exactly this account URL (POST-as-GET, no redirects) and that the account is valid.
      const status = (await fetchAccount(account)).status;
      if (status !== "valid") {
        throw new WileError(
          `the CA says this home's account ${account.url} is ${status}; no record was printed`,
          {
            hint: "A record naming it would not work. Register a new account (wile account register) and run this again.",
          },
        );
      }
      const me = { url: account.url, thumbprint: account.key.thumbprint };
      const records = names.map(({ name, wildcard }) => {
        const fqdn = persistRecordName(name);
        const value = persistRecordValue({
          issuerDomainName: issuer,
          accountUri: recordAccountUri(info, name, me),
          wildcard,
          persistUntil,
        });
        return { name, wildcard, fqdn, value, zoneLine: persistZoneLine(fqdn, value) };
      });
      if (info.accountHashPrefix) {
        out.logger.info(
          "The accounturi is a hash of the name, this account's URL and its key (draft-ietf-acme-dns-persist-02): after wile account rollover, print the records again and replace them.",
        );
      }
      out.logger.info(
        `Create ${records.length === 1 ? "this TXT record" : `these ${records.length} TXT records`} at your DNS host, then: wile issue ${names.map((n) => `-d ${n.name}${n.wildcard ? ` -d '*.${n.name}'` : ""}`).join(" ")} --challenge dns-persist-01`,
      );
      if (out.jsonMode) {
        out.json({
          server: ca.server,
          account: account.url,
          issuerDomainName: issuer,
          issuerDomainNames: info.issuerDomainNames,
          issuerDomainNamesFrom: info.source,
          accountUriForm: info.accountHashPrefix ? "hashed" : "account-url",
          ...(persistUntil !== undefined
            ? { persistUntil, persistUntilDate: new Date(persistUntil * 1000).toISOString() }
            : {}),
          records,
        });
      } else {
        out.print(records.map((r) => `${r.zoneLine}\n; name:  ${r.fqdn}\n; value: ${r.value}`).join("\n"));
      }
      return 0;
    } finally {
      client.close();
    }
  },
};

/** One record per base name; `*.x` or --wildcard asks for x's record with policy=wildcard. */
export function recordNames(
  ids: Identifier[],
  wildcard: boolean,
): Array<{ name: string; wildcard: boolean }> {
  if (ids.length === 0) {
    throw new UsageError("no name given", { hint: "Example: wile dns-persist -d example.com --wildcard" });
  }
  const out = new Map<string, boolean>();
  for (const id of ids) {
    if (id.type !== "dns") {
      throw new UsageError(`${id.value} is an IP address; dns-persist-01 proves DNS names only`, {
        hint: "Give DNS names with -d.",
      });
    }
    const base = persistBase(id.value);
    out.set(base, (out.get(base) ?? false) || wildcard || id.value.startsWith("*."));
  }
  return [...out].map(([name, w]) => ({ name, wildcard: w }));
}

/** --persist-until as Unix seconds: an ISO 8601 date or time (UTC unless it says otherwise), or Unix seconds; in the future. */
export function parsePersistUntil(arg: string | undefined, now: number): number | undefined {
  if (arg === undefined) return undefined;
  const text = arg.trim();
  let seconds: number;
  if (/^\d{1,12}$/.test(text)) seconds = Number(text);
  else if (/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2})?(\.\d+)?(Z|[+-]\d{2}:?\d{2})?)?$/.test(text)) {
    const iso = text.replace(" ", "T");
    const ms = Date.parse(/T.*(Z|[+-]\d{2}:?\d{2})$/.test(iso) || !iso.includes("T") ? iso : `${iso}Z`);
    if (Number.isNaN(ms)) throw badDate(arg, "is not a date");
    seconds = Math.floor(ms / 1000);
  } else {
    throw badDate(arg, "is not a date");
  }
  if (seconds * 1000 <= now) throw badDate(arg, `is in the past (${new Date(seconds * 1000).toISOString()})`);
  return seconds;
}

function badDate(arg: string, why: string): UsageError {
  return new UsageError(`--persist-until "${arg}" ${why}`, {
    hint: "Give a future date: --persist-until 2027-12-31, --persist-until 2027-12-31T23:59:59Z or Unix seconds.",
  });
}

/** The issuer domain name for the records: the operator's (if the CA announces it), else the CA's first. */
function pickIssuer(info: PersistDirectoryInfo, chosen: string | undefined, server: string): string {
  const announced = info.issuerDomainNames;
  if (chosen !== undefined) {
    if (announced.length > 0 && !announced.includes(chosen)) {
      throw new WileError(`the CA at ${server} does not announce ${chosen} as an issuer domain name`, {
        hint: `It announces: ${announced.join(", ")}. Pick one of those with --issuer-domain-name, or leave the option out.`,
      });
    }
    return chosen;
  }
  const first = announced[0];
  if (first === undefined) {
    throw new WileError(
      `the CA at ${server} announces no issuer domain name for dns-persist-01 (its directory has neither meta.issuerDomainNames nor meta.caaIdentities)`,
      {
        hint: "It may not offer dns-persist-01. If the CA documents its issuer domain name, give it with --issuer-domain-name NAME. Nothing was registered at the CA.",
      },
    );
  }
  return first;
}
