import { isIP } from "node:net";
import { resolve as resolvePath } from "node:path";
import { parseHttpAddress, parseHttpPort } from "../../challenges/http-01-standalone";
import { checkWebroot } from "../../challenges/http-01-webroot";
import { parseResolve } from "../../challenges/resolve";
import { DEFAULT_TLS_PORT } from "../../challenges/tls-alpn-01";
import { isKeyType, KEY_TYPES, type KeyType } from "../../crypto/keys";
import { withCertificateLock } from "../../flow/cert-lock";
import { obtainAndDeploy } from "../../flow/lifecycle";
import { checkNotDue } from "../../flow/not-due";
import { daysLeft } from "../../renew/due";
import { DEFAULT_ACCOUNT } from "../../store/accounts";
import { CertStore } from "../../store/certs";
import { readConfig } from "../../store/config";
import { certName } from "../../store/paths";
import {
  type AlpnConfig,
  challengeType,
  type DnsConfig,
  type RenewalConfig,
  type StandaloneConfig,
} from "../../store/renewal";
import { UsageError, WileError } from "../../util/errors";
import { CA_OPTIONS, EAB_OPTIONS, parseCaOptions, parseEabOptions, parseEmails } from "../ca-options";
import type { Command } from "../command";
import { allTargetOptions, DEPLOY_OPTION, deployConfigsFromOptions } from "../deploy-options";
import {
  allProviderOptions,
  DNS_CHECK_OPTIONS,
  DNS_OPTION,
  dnsCheckFromOptions,
  dnsConfigsFromOptions,
} from "../dns-options";
import { parseIdentifiers } from "../names";
import {
  flag,
  list,
  type OptionSpec,
  type ParsedOptions,
  pairNamesWithWebroots,
  str,
  withValuesAttached,
} from "../options";
import { BATCH_OPTIONS, runBatch } from "./issue-batch";
import { parseTimeout, TIMEOUT_OPTION } from "./renew";

const OPTIONS: OptionSpec[] = [
  {
    name: "domain",
    alias: "d",
    type: "string",
    repeat: true,
    arg: "NAME",
    help: "a name for the certificate (repeat for more; the first names the certificate). Taken literally: letters are lower-cased and a trailing dot dropped; % and characters IDNA would rewrite (full-width dots, soft hyphens) are refused",
  },
  {
    name: "webroot",
    alias: "w",
    type: "string",
    repeat: true,
    arg: "DIR",
    help: "document root serving http://NAME/.well-known/acme-challenge/; -w first: it serves the -d names after it (certbot); -d first: the -d names before it (acme.sh)",
  },
  {
    name: "standalone",
    type: "boolean",
    help: "http-01 answered by wile's own listener on --http-port while the CA validates (no web server needed); per name like -w; IP addresses too",
  },
  {
    name: "http-port",
    type: "string",
    arg: "PORT",
    help: "--standalone: listen on PORT (default 80; the CA always connects to 80, so forward 80 to PORT); below 1024 needs CAP_NET_BIND_SERVICE, authbind or net.ipv4.ip_unprivileged_port_start",
  },
  {
    name: "http-address",
    type: "string",
    arg: "IP",
    help: "--standalone: listen on this address only (default: every address, IPv4 and IPv6)",
  },
  {
    name: "stateless",
    type: "boolean",
    help: "http-01 answered by the web server itself from this account's thumbprint (configured once with what wile stateless prints); wile writes nothing and checks the answer first; per name like -w",
  },
  DNS_OPTION,
  ...allProviderOptions(),
  ...DNS_CHECK_OPTIONS,
  {
    name: "challenge",
    type: "string",
    repeat: true,
    arg: "TYPE",
    help: "dns-persist-01: prove control with the persistent TXT record _validation-persist.NAME you created once (wile dns-persist prints it); wile checks it and writes nothing; per name like -w; works for *.NAME",
  },
  {
    name: "alpn",
    type: "boolean",
    help: "tls-alpn-01: wile answers the CA's TLS connection itself (RFC 8737), on --tls-port for the time of the order; per name like -w; nginx or HAProxy on 443 can pass acme-tls/1 on to it (docs/http-01.md)",
  },
  {
    name: "tls-port",
    type: "string",
    arg: "PORT",
    help: "--alpn: the port wile listens on (default 443; the CA connects to 443, so a higher port needs 443 forwarded to it)",
  },
  {
    name: "tls-address",
    type: "string",
    arg: "ADDR",
    help: "--alpn: listen on this IP address only (default: all of this machine's)",
  },
  {
    name: "email",
    type: "string",
    repeat: true,
    arg: "ADDR",
    help: "contact address for the account (expiry and policy mail from the CA)",
  },
  ...CA_OPTIONS,
  {
    name: "key-type",
    type: "string",
    arg: "TYPE",
    help: `certificate key: ${KEY_TYPES.join(", ")} (default ec-256)`,
  },
  {
    name: "preferred-chain",
    type: "string",
    arg: "CN",
    help: "prefer the chain whose top certificate is issued by this CN",
  },
  ...EAB_OPTIONS,
  {
    name: "preflight",
    type: "boolean",
    defaultTrue: true,
    help: "--no-preflight: skip wile's own fetch of each challenge file (with --alpn: its own TLS handshake) before the CA's",
  },
  {
    name: "resolve",
    type: "string",
    repeat: true,
    arg: "NAME:PORT:ADDR",
    help: "preflight: connect to ADDR:PORT for NAME instead of NAME:80 (NAME:443 with --alpn)",
  },
  {
    name: "profile",
    type: "string",
    arg: "NAME",
    help: "ACME profile the CA offers (Let's Encrypt: classic, tlsserver, shortlived); checked against the CA's list",
  },
  {
    name: "reuse-key",
    type: "boolean",
    help: "keep the certificate key across renewals (default: a new key each time)",
  },
  {
    name: "renew-days",
    type: "string",
    arg: "N",
    help: "renew N days before expiry instead of when the CA's renewal window (ARI) or 1/3 of the lifetime says",
  },
  {
    name: "must-staple",
    type: "boolean",
    help: "ask for the OCSP Must-Staple extension (Let's Encrypt no longer supports it)",
  },
  { name: "force", type: "boolean", help: "issue even if the current certificate is not due" },
  TIMEOUT_OPTION,
  DEPLOY_OPTION,
  ...allTargetOptions(),
  ...BATCH_OPTIONS,
];

export const issueCommand: Command = {
  name: "issue",
  summary:
    "get a certificate, proving control with files in a webroot, wile's own listener or a stateless web server (http-01), wile's own TLS listener (tls-alpn-01), DNS records (dns-01) or a persistent DNS record (dns-persist-01)",
  usage:
    "wile issue -d NAME [-d NAME ...] (-w WEBROOT | --standalone | --stateless | --alpn | --dns PROVIDER | --challenge dns-persist-01) [options]\n       wile issue --batch FILE|- [--parallel N] [options for every line]",
  description: [
    "Registers an ACME account if this home has none for the CA, proves control of every name by",
    "writing a file under WEBROOT/.well-known/acme-challenge/ (checked by wile itself first, then by",
    "the CA), answering that path itself on --http-port while the CA validates (--standalone; the",
    "port is bound before the CA is contacted), an answer the web server makes from the account",
    "thumbprint (--stateless, set up once with wile stateless; checked by wile first), a TLS",
    "listener of its own on --tls-port that answers the CA's acme-tls/1 handshake (--alpn), a TXT",
    "record _acme-challenge.NAME that a DNS provider (--dns) adds and removes, or the persistent TXT",
    "record _validation-persist.NAME you created once (--challenge dns-persist-01), and stores the",
    "key and chain in ~/.wile/certs/<first name>/ (*.NAME as _.NAME). Every setting is saved in",
    "renewal.json there, so renewals need no options. Exit 0 issued, 1 failed, 2 bad input or a",
    "port --standalone/--alpn cannot use (nothing was contacted), 3 the existing certificate is not",
    "due (use --force).",
    "",
    "--batch FILE issues one certificate per line of FILE (- for stdin), in one process with one",
    "account and one connection to the CA, --parallel at a time. A line is the certificate's names,",
    "then its options as on this command line (-w DIR, --dns ..., --key-type, --deploy, ...); the",
    "command line's options apply to every line that does not give its own. # starts a comment.",
    "Every line is checked before the CA is contacted: a bad one is exit 2, naming its line. Lines",
    "whose certificate exists with the same names and is not due are skipped, so the same file can",
    "run daily. One result per line (--json: one JSON object per line, then a summary); a failed",
    "line never stops the others. A rate limit (rateLimited) pauses new orders until the CA's",
    "Retry-After, within --timeout. Exit 0 every line issued or skipped, 1 any line failed, 2 bad",
    "file. See docs/batch.md.",
  ].join("\n"),
  options: OPTIONS,
  logs: true,
  examples: [
    "wile issue -d example.com -d www.example.com -w /var/www/html --email me@example.com",
    "wile issue -d a.example -w /srv/a -d b.example -w /srv/b",
    "wile issue -d mail.example.com --standalone                    (listens on port 80 if allowed)",
    "wile issue -d mail.example.com --standalone --http-port 8080   (port 80 forwarded to 8080)",
    "wile issue --staging -d example.com -w /var/www/html",
    "wile issue -d example.com -d www.example.com --stateless   (after pasting what wile stateless prints)",
    "wile issue -d example.com -d '*.example.com' --dns exec --dns-exec /usr/local/bin/dns-hook",
    "wile issue -d example.com -d '*.example.com' --dns rfc2136 --rfc2136-server ns1.example.com --rfc2136-tsig-key /etc/wile/tsig.key",
    "wile issue -d example.com -d '*.example.com' --challenge dns-persist-01",
    "wile issue -d example.com --alpn --tls-port 8443   (443 forwarded to 8443, or acme-tls/1 routed there by nginx/HAProxy)",
    "wile issue -d example.com --dns exec --dns-exec /usr/local/bin/dns-hook --dns-alias acme.example.net --dns-timeout 300",
    "wile issue -d mail.example.com --dns exec --dns-exec /usr/local/bin/uacme-hook --dns-exec-mode uacme -d www.example.com -w /srv/www",
    "CF_Token=... wile issue -d example.com -d '*.example.com' --dns acmesh:dns_cf   (acme.sh's dnsapi/dns_cf.sh)",
    "CLOUDFLARE_DNS_API_TOKEN=... wile issue -d example.com -d '*.example.com' --dns cloudflare",
    "wile issue -d example.com -w /var/www/html --key-type rsa-2048 --server zerossl --eab-kid KID --eab-hmac-key KEY",
    "wile issue --batch /etc/wile/customers.txt -w /var/www/default --email hostmaster@example.net",
    "    (customers.txt, one certificate per line:  example.com www.example.com -w /srv/www/example)",
    "generate-customer-list | wile issue --batch - --parallel 16 --json",
  ],
  async run(ctx) {
    const { out, home } = ctx;
    if (str(ctx.opts, "batch") !== undefined)
      return runBatch(ctx, OPTIONS, (argv, opts) => buildConfig(argv, opts, ctx.env, home));
    if (str(ctx.opts, "parallel") !== undefined) {
      throw new UsageError("--parallel applies to --batch only", {
        hint: "wile issue --batch FILE --parallel 16",
      });
    }
    const { cfg, eab } = await buildConfig(ctx.argv, ctx.opts, ctx.env, home);
    const timeoutMs = parseTimeout(str(ctx.opts, "timeout"));
    // The default contact set at install time (install.sh --email, wile config --email).
    if (cfg.email.length === 0) cfg.email = (await readConfig(home)).email ?? [];
    const store = new CertStore(home);
    const name = cfg.name;
    const { issued: result, error } = await withCertificateLock(
      home,
      name,
      `wile issue ${name}`,
      async () => {
        const existing = await store.readCurrent(name);
        if (existing && !flag(ctx.opts, "force")) {
          const { notDue, namesDiffer } = checkNotDue(existing.certPem, `${store.dir(name)}/cert.pem`, cfg);
          if (notDue) throw notDue;
          if (namesDiffer)
            out.logger.info(`The names differ from the current certificate's; issuing a new one for ${name}`);
        }
        const previous = await store.readRenewal(name).catch(() => null);
        if (previous) cfg.createdAt = previous.createdAt;

        return obtainAndDeploy(cfg, {
          home,
          logger: out.logger,
          now: new Date(),
          verifyWaitMs: ctx.verifyWaitMs,
          reason: "issued",
          eab,
          timeoutMs,
        });
      },
    );
    // Obtaining failed (recorded for a certificate this home already has): main reports it.
    if (!result) throw error;
    // A deploy that failed is recorded as pending: wile list shows it, the next cron deploys again.
    if (error !== undefined && !(error instanceof WileError)) throw error;
    const doc = {
      name: result.name,
      domains: result.identifiers.map((i) => i.value),
      serial: result.serial,
      issuer: result.issuer,
      notBefore: result.notBefore.toISOString(),
      notAfter: result.notAfter.toISOString(),
      keyType: cfg.keyType,
      path: result.path,
      deployed: cfg.deploy.map((d) => d.kind),
      ...(error ? { deployError: error.message } : {}),
    };
    out.logger.info(
      `Issued ${name}: serial ${result.serial}, valid until ${doc.notAfter} (${daysLeft(result.notAfter)} days)`,
    );
    if (error) {
      // The certificate is issued and stored; the deploy is what failed (exit 1).
      out.error(error.message, error.hint);
      if (out.jsonMode) out.json({ ok: false, ...doc });
      return error.exitCode;
    }
    if (out.jsonMode) out.json(doc);
    else out.print(`${result.path}/fullchain.pem\n${result.path}/privkey.pem`);
    return 0;
  },
};

/** Everything the command line says, checked before anything is contacted (UsageError = exit 2). */
async function buildConfig(
  argv: string[],
  opts: ParsedOptions,
  env: Record<string, string | undefined>,
  home: string,
): Promise<{ cfg: RenewalConfig; eab: { kid: string; hmacKey: Uint8Array } | undefined }> {
  if (opts._.length > 0) {
    throw new UsageError(`unexpected argument "${opts._[0]}"`, {
      hint: "Names go after -d: wile issue -d example.com -w /var/www/html",
    });
  }
  const pairs = pairNamesWithWebroots(withValuesAttached(argv, OPTIONS)).flatMap((p) =>
    p.name
      .split(",")
      .filter((n) => n.trim() !== "")
      .map((n) => ({ ...p, name: n })),
  );
  if (pairs.length === 0) {
    throw new UsageError("no name given", { hint: "Example: wile issue -d example.com -w /var/www/html" });
  }
  const identifiers = parseIdentifiers(pairs.map((p) => p.name));
  const pairOf = (id: { value: string }) =>
    pairs.find((p) => parseIdentifiers([p.name])[0]?.value === id.value);
  const usedDns = pairs.flatMap((p) => (p.dns === undefined ? [] : [p.dns]));
  // Credentials may come from the home's config (wile config --dns-credential).
  const dnsConfig = usedDns.length > 0 ? (await readConfig(home)).dns : undefined;
  const providers = dnsConfigsFromOptions(opts, usedDns, env, undefined, dnsConfig);

  const webroots: Record<string, string> = {};
  const dns: Record<string, DnsConfig> = {};
  const persist: string[] = [];
  const standaloneNames: string[] = [];
  const stateless: string[] = [];
  const alpnNames: string[] = [];
  const checked = new Set<string>();
  for (const id of identifiers) {
    const pair = pairOf(id);
    const provider = pair?.dns === undefined ? undefined : providers.get(pair.dns);
    if (provider) {
      dns[id.value] = provider;
      continue;
    }
    if (pair?.alpn) {
      if (id.value.startsWith("*.")) {
        throw new UsageError(
          `${id.value} is a wildcard name; CAs do not validate wildcards with tls-alpn-01`,
          {
            hint: `Prove it with a DNS provider (--dns) or a persistent record (--challenge dns-persist-01).`,
          },
        );
      }
      alpnNames.push(id.value);
      continue;
    }
    if (pair?.challenge !== undefined) {
      if (pair.challenge !== "dns-persist-01") {
        throw new UsageError(
          `--challenge "${pair.challenge}" is not a challenge type wile chooses this way`,
          {
            hint: "--challenge takes dns-persist-01; http-01 is -w DIR, dns-01 is --dns PROVIDER.",
          },
        );
      }
      if (id.type !== "dns") {
        throw new UsageError(`${id.value} is an IP address; dns-persist-01 proves DNS names only`, {
          hint: `Prove ${id.value} with -w (http-01).`,
        });
      }
      persist.push(id.value);
      continue;
    }
    if (id.value.startsWith("*.")) {
      throw new UsageError(
        `${id.value} is a wildcard name; CAs validate wildcards only with DNS-01 or dns-persist-01, not with ${pair?.stateless ? "a web server" : pair?.standalone ? "wile's own listener" : "files in a webroot"} (HTTP-01)`,
        {
          hint: `Prove it with a DNS provider: -d ${id.value} --dns exec --dns-exec /path/to/dns-hook (a --dns applies to the -d names next to it, like -w), or with a persistent record: -d ${id.value} --challenge dns-persist-01.`,
        },
      );
    }
    if (pair?.standalone) {
      standaloneNames.push(id.value);
      continue;
    }
    if (pair?.stateless) {
      stateless.push(id.value);
      continue;
    }
    const dir = pair?.webroot;
    if (!dir) {
      throw new UsageError(`no webroot or DNS provider for ${id.value}`, {
        hint: "Give the document root its web server serves with -w (-d example.com -w /var/www/html), --standalone for wile's own listener on port 80, --stateless for a web server set up with wile stateless, --alpn for wile's own TLS listener, a DNS provider with --dns (-d example.com --dns exec --dns-exec CMD), or --challenge dns-persist-01 for a persistent record.",
      });
    }
    // renewal.json keeps the path as the operator gave it (absolute), not its symlink-resolved form.
    const abs = resolvePath(dir);
    if (!checked.has(abs)) {
      await checkWebroot(abs);
      checked.add(abs);
    }
    webroots[id.value] = abs;
  }

  const { dnsCheck, dnsAlias } = dnsCheckFromOptions(opts, Object.keys(dns), persist);
  const standalone = standaloneFromOptions(opts, standaloneNames);
  const alpn = alpnFromOptions(opts, alpnNames);

  const keyTypeArg = str(opts, "key-type") ?? "ec-256";
  if (!isKeyType(keyTypeArg)) {
    throw new UsageError(`unknown --key-type "${keyTypeArg}"`, {
      hint: `Use one of: ${KEY_TYPES.join(", ")}.`,
    });
  }
  const keyType: KeyType = keyTypeArg;
  const { server, caBundle } = await parseCaOptions(opts);
  const eab = parseEabOptions(opts);
  const email = parseEmails(list(opts, "email"));
  const resolve = list(opts, "resolve");
  for (const r of resolve) parseResolve(r);
  const preflight = opts.preflight !== false;
  const profile = str(opts, "profile");
  if (profile !== undefined && !/^[A-Za-z0-9._-]{1,64}$/.test(profile)) {
    throw new UsageError(`--profile "${profile}" is not a profile name`, {
      hint: "Example: --profile shortlived",
    });
  }
  const renewDaysArg = str(opts, "renew-days");
  const renewDays = renewDaysArg === undefined ? undefined : Number(renewDaysArg);
  if (renewDays !== undefined && !(Number.isFinite(renewDays) && renewDays > 0 && renewDays <= 3650)) {
    throw new UsageError(`--renew-days "${renewDaysArg}" is not a number of days`, {
      hint: "Example: --renew-days 30",
    });
  }
  const now = new Date().toISOString();
  const preferredChain = str(opts, "preferred-chain");
  const cfg: RenewalConfig = {
    version: 1,
    name: certName((identifiers[0] as { value: string }).value),
    identifiers,
    challenge: {
      type: challengeType(webroots, dns, persist, stateless, standaloneNames, alpnNames),
      webroots,
      ...(Object.keys(dns).length > 0 ? { dns } : {}),
      ...(persist.length > 0 ? { persist } : {}),
      ...(stateless.length > 0 ? { stateless } : {}),
      ...(standalone ? { standalone } : {}),
      ...(dnsCheck ? { dnsCheck } : {}),
      ...(dnsAlias ? { dnsAlias } : {}),
      ...(alpn ? { alpn } : {}),
    },
    keyType,
    server,
    ...(caBundle ? { caBundle } : {}),
    account: DEFAULT_ACCOUNT,
    email,
    ...(preferredChain ? { preferredChain } : {}),
    ...(profile ? { profile } : {}),
    ...(renewDays !== undefined ? { renewDays } : {}),
    mustStaple: flag(opts, "must-staple"),
    preflight,
    resolve,
    reuseKey: flag(opts, "reuse-key"),
    createdAt: now,
    updatedAt: now,
    deploy: deployConfigsFromOptions(opts, list(opts, "deploy")),
  };
  return { cfg, eab };
}

/** challenge.standalone from --http-port / --http-address for the --standalone names (none: those options are refused). */
function standaloneFromOptions(opts: ParsedOptions, names: string[]): StandaloneConfig | undefined {
  const portArg = str(opts, "http-port");
  const addressArg = str(opts, "http-address");
  if (names.length === 0) {
    const given =
      portArg !== undefined ? "--http-port" : addressArg !== undefined ? "--http-address" : undefined;
    if (given) {
      throw new UsageError(`${given} applies to --standalone names only, and no name uses --standalone`, {
        hint: "Example: wile issue -d example.com --standalone --http-port 8080",
      });
    }
    return undefined;
  }
  const address = parseHttpAddress(addressArg);
  return { names, port: parseHttpPort(portArg), ...(address ? { address } : {}) };
}

/** challenge.alpn from --tls-port and --tls-address, for the --alpn names; undefined when there are none. */
function alpnFromOptions(opts: ParsedOptions, names: string[]): AlpnConfig | undefined {
  const portArg = str(opts, "tls-port");
  const address = str(opts, "tls-address");
  if (names.length === 0) {
    const given = portArg !== undefined ? "--tls-port" : address !== undefined ? "--tls-address" : undefined;
    if (given) {
      throw new UsageError(`${given} is given but no name uses --alpn`, {
        hint: "Add --alpn next to the -d names wile proves with its TLS listener: wile issue -d example.com --alpn --tls-port 8443",
      });
    }
    return undefined;
  }
  const port = portArg === undefined ? DEFAULT_TLS_PORT : Number(portArg);
  if (!/^\d+$/.test(portArg ?? "443") || !(port >= 1 && port <= 65_535)) {
    throw new UsageError(`--tls-port "${portArg}" is not a port number`, {
      hint: "Example: --tls-port 8443",
    });
  }
  if (address !== undefined && isIP(address) === 0) {
    throw new UsageError(`--tls-address "${address}" is not an IP address`, {
      hint: "Give an IPv4 or IPv6 address of this machine (e.g. --tls-address 127.0.0.1), or leave it out to listen on all.",
    });
  }
  return { names, port, ...(address !== undefined ? { address } : {}) };
}
