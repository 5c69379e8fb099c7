import { isKeyType, KEY_TYPES, type KeyType, keyTypeOf } from "../../crypto/keys";
import { ensureAccount } from "../../flow/account";
import {
  deactivate,
  type LocalAccount,
  loadLocalAccount,
  noAccountError,
  rollover,
  showAccount,
  updateEmail,
} from "../../flow/account-admin";
import { createClient } from "../../flow/client";
import { AccountStore, DEFAULT_ACCOUNT } from "../../store/accounts";
import { UsageError } from "../../util/errors";
import { CA_OPTIONS, EAB_OPTIONS, parseCaOptions, parseEabOptions, parseEmails } from "../ca-options";
import type { Command, CommandContext } from "../command";
import { confirmAction } from "../confirm";
import { flag, list, type OptionSpec, str } from "../options";

const SUBCOMMANDS = ["show", "register", "update", "deactivate", "rollover"] as const;
type Sub = (typeof SUBCOMMANDS)[number];

const OPTIONS: OptionSpec[] = [
  ...CA_OPTIONS.map((o) => (o.name === "server" ? { ...o, help: `${o.help} (default letsencrypt)` } : o)),
  {
    name: "email",
    type: "string",
    repeat: true,
    arg: "ADDR",
    help: "register/update: the account's contact address (repeat for more)",
  },
  ...EAB_OPTIONS.map((o) => ({ ...o, help: `register: ${o.help}` })),
  {
    name: "key-type",
    type: "string",
    arg: "TYPE",
    help: `rollover: the new key's type, ec-256, ec-384 or rsa-2048..4096 (default: as the current key)`,
  },
  { name: "yes", alias: "y", type: "boolean", help: "deactivate: do not ask (required without a terminal)" },
];

export const accountCommand: Command = {
  name: "account",
  summary: "show, register, update, deactivate or roll over the ACME account",
  usage: "wile account show|register|update|deactivate|rollover [options]",
  description: [
    "One account per CA lives in ~/.wile/accounts/<ca>/default/ (account.key, account.json).",
    "  show        what the CA says: URL, status, contact; and the key's thumbprint",
    "  register    register an account now (issue does this by itself when needed)",
    "  update      --email ADDR: replace the contact addresses",
    "  deactivate  deactivate the account for good; its files move to default.deactivated-<UTC time>",
    "              and the next issue or renewal at that CA registers a new account",
    "  rollover    replace the account key (RFC 8555 7.3.5), keeping the account URL; the old key",
    "              stays as account.key.old-<UTC time>",
    "The CA is --server (default letsencrypt), as for issue.",
  ].join("\n"),
  options: OPTIONS,
  logs: true,
  examples: [
    "wile account show",
    "wile account register --email admin@example.com",
    "wile account update --email ops@example.com --server letsencrypt-staging",
    "wile account rollover",
    "wile account deactivate --yes",
  ],
  async run(ctx) {
    const { opts } = ctx;
    const [sub, ...extra] = opts._;
    if (sub === undefined || !(SUBCOMMANDS as readonly string[]).includes(sub)) {
      throw new UsageError(sub === undefined ? "which account action?" : `unknown account action "${sub}"`, {
        hint: `Use one of: ${SUBCOMMANDS.join(", ")}. Example: wile account show`,
      });
    }
    if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
    return run(sub as Sub, ctx);
  },
};

async function run(sub: Sub, ctx: CommandContext): Promise<number> {
  const { out, home, opts } = ctx;
  const email = parseEmails(list(opts, "email"));
  const eab = parseEabOptions(opts);
  const only = (name: string, where: Sub[]) => {
    if (opts[name] !== undefined && !where.includes(sub)) {
      throw new UsageError(`--${name} does not apply to 'wile account ${sub}'`, {
        hint: "See wile account --help.",
      });
    }
  };
  only("email", ["register", "update"]);
  only("eab-kid", ["register"]);
  only("eab-hmac-key", ["register"]);
  only("key-type", ["rollover"]);
  if (sub === "update" && email.length === 0) {
    throw new UsageError("update needs --email", {
      hint: "Example: wile account update --email admin@example.com",
    });
  }
  let keyType: KeyType | undefined;
  const keyTypeArg = str(opts, "key-type");
  if (keyTypeArg !== undefined) {
    if (!isKeyType(keyTypeArg)) {
      throw new UsageError(`unknown --key-type "${keyTypeArg}"`, {
        hint: `Use one of: ${KEY_TYPES.join(", ")}.`,
      });
    }
    keyType = keyTypeArg;
  }
  const ca = await parseCaOptions(opts);
  const local = await loadLocalAccount(home, ca.server, DEFAULT_ACCOUNT);
  if (!local && sub !== "register") throw noAccountError(home, ca.server);

  if (sub === "deactivate") {
    const l = local as LocalAccount;
    await confirmAction({
      yes: flag(opts, "yes"),
      action: "deactivate the account for good",
      out,
      plan: [
        `This deactivates the account ${l.record?.url ?? `of the key ${l.keyFile}`} at ${ca.server}.`,
        "Deactivation is permanent: the CA refuses this account from then on. Certificates already issued stay valid.",
        `Its files move to ${new AccountStore(home).deactivatedDir(ca.server, "<UTC time>", l.name)}; the next issue or renewal at this CA registers a new account with a new key.`,
      ],
    });
  }

  const client = await createClient(ca.server, ca.caBundle, out.logger);
  try {
    switch (sub) {
      case "show": {
        const s = await showAccount(client, home, local as LocalAccount);
        const doc = {
          server: ca.server,
          url: s.url,
          status: s.account.status,
          contact: s.account.contact,
          thumbprint: s.thumbprint,
          keyType: s.keyType,
          keyFile: s.keyFile,
          ...(s.recordedUrl ? { recordedUrl: s.recordedUrl } : {}),
        };
        if (s.recordedUrl)
          out.logger.warn(`account.json names ${s.recordedUrl}, but the CA finds ${s.url} for the key`);
        if (out.jsonMode) out.json(doc);
        else {
          out.print(
            [
              `URL:        ${doc.url}`,
              `Status:     ${doc.status}`,
              `Contact:    ${doc.contact.length > 0 ? doc.contact.join(", ") : "(none)"}`,
              `Key:        ${doc.keyType ?? "unknown"}, thumbprint ${doc.thumbprint}`,
              `Key file:   ${doc.keyFile}`,
              `CA:         ${doc.server}`,
            ].join("\n"),
          );
        }
        return 0;
      }
      case "register": {
        if (local?.record?.url) {
          out.logger.info(`This home already has an account at ${ca.server}: ${local.record.url}`);
          if (email.length > 0) out.logger.info("To change its contact: wile account update --email ADDR");
          if (out.jsonMode) out.json({ server: ca.server, url: local.record.url, created: false });
          else out.print(local.record.url);
          return 0;
        }
        const { url, key } = await ensureAccount(
          client,
          { home, directoryUrl: ca.server, account: DEFAULT_ACCOUNT, email, eab },
          out.logger,
        );
        if (out.jsonMode) out.json({ server: ca.server, url, created: true, thumbprint: key.thumbprint });
        else out.print(url);
        return 0;
      }
      case "update": {
        const { url, account } = await updateEmail(client, home, local as LocalAccount, email);
        out.logger.info(`Updated the contact of ${url}: ${account.contact.join(", ") || "(none)"}`);
        if (out.jsonMode) out.json({ server: ca.server, url, contact: account.contact });
        return 0;
      }
      case "deactivate": {
        const r = await deactivate(client, home, local as LocalAccount);
        out.logger.info(`Deactivated ${r.url}; its files are in ${r.movedTo}`);
        if (out.jsonMode) out.json({ server: ca.server, url: r.url, deactivated: true, movedTo: r.movedTo });
        return 0;
      }
      case "rollover": {
        const l = local as LocalAccount;
        const type = keyType ?? keyTypeOf(l.key.privateKey) ?? "ec-256";
        const r = await rollover(client, home, l, type, out.logger);
        out.logger.info(
          `Rolled over the key of ${r.url}: thumbprint ${r.oldThumbprint} -> ${r.newThumbprint}; the old key is kept at ${r.oldKeyFile}`,
        );
        if (out.jsonMode) {
          out.json({
            server: ca.server,
            url: r.url,
            oldThumbprint: r.oldThumbprint,
            thumbprint: r.newThumbprint,
            keyType: type,
            oldKeyFile: r.oldKeyFile,
          });
        }
        return 0;
      }
    }
  } finally {
    client.close();
  }
}
