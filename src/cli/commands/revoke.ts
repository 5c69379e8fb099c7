import {
  isRevocationReason,
  REVOCATION_REASON_NAMES,
  REVOCATION_REASONS,
  type RevocationReason,
} from "../../acme/revoke";
import { loadLocalAccount } from "../../flow/account-admin";
import { createClient } from "../../flow/client";
import { loadRevocationTarget, revokeTarget } from "../../flow/revoke";
import { DEFAULT_ACCOUNT } from "../../store/accounts";
import { UsageError } from "../../util/errors";
import { CA_OPTIONS, parseCaOptions } from "../ca-options";
import type { Command } from "../command";
import { confirmAction } from "../confirm";
import { flag, type OptionSpec, str } from "../options";

const OPTIONS: OptionSpec[] = [
  {
    name: "reason",
    type: "string",
    arg: "REASON",
    help: `why: ${REVOCATION_REASON_NAMES.join(", ")} (default unspecified)`,
  },
  {
    name: "with-cert-key",
    type: "boolean",
    help: "sign with the certificate's own key (privkey.pem) instead of the account key",
  },
  {
    name: "yes",
    alias: "y",
    type: "boolean",
    help: "do not ask for confirmation (required without a terminal)",
  },
  ...CA_OPTIONS.map((o) => ({ ...o, help: `${o.help} (default: the one in renewal.json)` })),
];

/** "keyCompromise", "keycompromise", "key-compromise" -> keyCompromise; UsageError otherwise. */
export function parseReason(text: string | undefined): RevocationReason {
  if (text === undefined) return "unspecified";
  const wanted = text.replace(/[-_\s]/g, "").toLowerCase();
  const found = REVOCATION_REASON_NAMES.find((r) => r.toLowerCase() === wanted);
  if (found && isRevocationReason(found)) return found;
  throw new UsageError(`unknown --reason "${text}"`, {
    hint: `Use one of: ${REVOCATION_REASON_NAMES.join(", ")} (the reasons Let's Encrypt accepts).`,
  });
}

export const revokeCommand: Command = {
  name: "revoke",
  summary: "revoke a certificate at the CA (it stays in place; see remove)",
  usage: "wile revoke NAME [--reason REASON] [--with-cert-key] [--yes]",
  description: [
    "Asks the CA that issued NAME's current certificate to revoke it, signed with this home's",
    "account key, or with --with-cert-key with the certificate's own key (works even when the",
    "account is lost). The CA and --ca-bundle recorded in renewal.json are used unless given.",
    "Revocation is permanent. It does not remove anything: wile keeps renewing NAME; re-issue now",
    "with 'wile issue ... --force', or stop renewing with 'wile remove NAME'. Asks for confirmation",
    "on a terminal; without one, --yes is required (exit 2 otherwise, nothing done).",
  ].join("\n"),
  options: OPTIONS,
  logs: true,
  examples: [
    "wile revoke example.com --reason keyCompromise",
    "wile revoke example.com --reason superseded --yes",
    "wile revoke example.com --with-cert-key --reason keyCompromise",
  ],
  async run(ctx) {
    const { out, home, opts } = ctx;
    const [name, ...extra] = opts._;
    if (name === undefined || extra.length > 0) {
      throw new UsageError(
        name === undefined ? "which certificate? no NAME given" : `unexpected argument "${extra[0]}"`,
        {
          hint: "Example: wile revoke example.com --reason keyCompromise (names: wile list)",
        },
      );
    }
    const reason = parseReason(str(opts, "reason"));
    const withCertKey = flag(opts, "with-cert-key");
    const target = await loadRevocationTarget(home, name);
    if (!target.renewal && str(opts, "server") === undefined && !flag(opts, "staging")) {
      throw new UsageError(`${target.dir} has no renewal.json, so wile does not know which CA issued it`, {
        hint: "Give the CA with --server (and --ca-bundle if needed).",
      });
    }
    const ca = await parseCaOptions(
      opts,
      target.renewal ? { server: target.renewal.server, caBundle: target.renewal.caBundle } : undefined,
    );
    const account = target.renewal?.account ?? DEFAULT_ACCOUNT;
    if (!withCertKey && !(await loadLocalAccount(home, ca.server, account))) {
      throw new UsageError(`this home has no account "${account}" at ${ca.server} to sign the revocation`, {
        hint: "Sign with the certificate's own key instead: add --with-cert-key. Nothing was contacted.",
      });
    }
    const names = [...target.info.dnsNames, ...target.info.ipAddresses].join(", ");
    await confirmAction({
      yes: flag(opts, "yes"),
      action: `revoke the certificate of ${name}`,
      out,
      plan: [
        `This asks ${ca.server} to revoke the certificate of ${name}:`,
        `  serial ${target.info.serialHex}, names ${names || "-"}, valid until ${target.info.notAfter.toISOString()}`,
        `  reason ${reason} (${REVOCATION_REASONS[reason]}), signed with ${withCertKey ? `the certificate's key ${target.dir}/privkey.pem` : `this home's account key (${account})`}.`,
        "Revocation is permanent: clients that check revocation will reject this certificate.",
        `The files in ${target.dir} stay in place and wile keeps renewing ${name}.`,
      ],
    });
    const client = await createClient(ca.server, ca.caBundle, out.logger);
    let outcome: "revoked" | "already";
    try {
      outcome = await revokeTarget(client, home, target, {
        reason,
        withCertKey,
        account,
        logger: out.logger,
      });
    } finally {
      client.close();
    }
    const next =
      reason === "keyCompromise" && target.renewal?.reuseKey
        ? `renewal.json reuses the key (--reuse-key): issue anew with a new key, without --reuse-key, or stop with: wile remove ${name}`
        : `Replace it now with 'wile issue ... --force' (a new key unless --reuse-key), or stop renewing it with: wile remove ${name}`;
    if (out.jsonMode) {
      out.json({
        name,
        serial: target.info.serialHex,
        reason,
        reasonCode: REVOCATION_REASONS[reason],
        revoked: true,
        alreadyRevoked: outcome === "already",
        server: ca.server,
      });
    } else {
      out.logger.info(
        outcome === "already"
          ? `The CA says the certificate of ${name} (serial ${target.info.serialHex}) was already revoked`
          : `Revoked the certificate of ${name} (serial ${target.info.serialHex}, reason ${reason})`,
      );
      out.logger.info(next);
    }
    return 0;
  },
};
