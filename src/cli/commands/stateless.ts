import {
  STATELESS_FORMATS,
  type StatelessFormat,
  statelessSnippet,
} from "../../challenges/http-01-stateless";
import { ensureAccount } from "../../flow/account";
import { createClient } from "../../flow/client";
import { DEFAULT_ACCOUNT } from "../../store/accounts";
import { UsageError } from "../../util/errors";
import { CA_OPTIONS, EAB_OPTIONS, registrationOptions } from "../ca-options";
import type { Command } from "../command";
import { parseIdentifiers } from "../names";
import { list, type OptionSpec, str } from "../options";

const OPTIONS: OptionSpec[] = [
  {
    name: "domain",
    alias: "d",
    type: "string",
    repeat: true,
    arg: "NAME",
    help: "a name the lines will serve (optional, repeat): checked, and named in the instructions; the lines are the same for every name",
  },
  {
    name: "format",
    type: "string",
    arg: "SERVER",
    help: `the web server to print configuration for: ${STATELESS_FORMATS.join(", ")} or all (default all)`,
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

export const statelessCommand: Command = {
  name: "stateless",
  summary: "print web server configuration that answers http-01 for this home's account (for --stateless)",
  usage: "wile stateless [-d NAME ...] [--format nginx|apache|haproxy|all] [options]",
  description: [
    "Stateless http-01: the answer to a challenge is TOKEN.THUMBPRINT (RFC 8555 8.1), where",
    "THUMBPRINT belongs to this home's ACME account key. A web server configured once with the",
    "lines printed here answers every token itself, so wile issue -d NAME --stateless writes no",
    "files and needs no access to the web server. The same lines work on every node behind a load",
    "balancer: a web farm gets http-01 certificates with no shared storage. Registers the account",
    "at the CA first if needed. The thumbprint changes with wile account rollover: print and paste",
    "again after one. Exit 0 printed, 1 the CA failed, 2 bad input (nothing was contacted).",
  ].join("\n"),
  options: OPTIONS,
  logs: true,
  examples: [
    "wile stateless -d example.com -d www.example.com --format nginx",
    "wile stateless --staging --format haproxy",
    "wile stateless --json | jq -r .thumbprint",
  ],
  async run(ctx) {
    const { out, home, opts } = ctx;
    if (opts._.length > 0) {
      throw new UsageError(`unexpected argument "${opts._[0]}"`, {
        hint: "wile stateless takes no names: the configuration is the same for every name.",
      });
    }
    // Checked like wile issue's names, before anything is contacted; the lines do not depend on them.
    const names = parseIdentifiers(list(opts, "domain")).map((i) => i.value);
    if (names.some((n) => n.startsWith("*."))) {
      throw new UsageError("a wildcard name cannot be proved with http-01, stateless or not", {
        hint: "Use --dns or --challenge dns-persist-01 for *.NAME (see wile issue --help).",
      });
    }
    const formats = parseFormat(str(opts, "format"));
    const { ca, eab, email } = await registrationOptions(opts, home);
    const client = await createClient(ca.server, ca.caBundle, out.logger);
    try {
      const account = await ensureAccount(
        client,
        { home, directoryUrl: ca.server, account: DEFAULT_ACCOUNT, email, eab },
        out.logger,
      );
      const { thumbprint } = account.key;
      const snippets = Object.fromEntries(formats.map((f) => [f, statelessSnippet(f, thumbprint)]));
      out.logger.info(
        `Account ${account.url}, thumbprint ${thumbprint}: paste this into the port 80 configuration of every web server (or node) that answers for ${names.length > 0 ? names.join(", ") : "your names"}, reload it, then: wile issue ${names.length > 0 ? names.map((n) => `-d ${n}`).join(" ") : "-d NAME"} --stateless`,
      );
      if (out.jsonMode) out.json({ server: ca.server, account: account.url, thumbprint, snippets });
      else out.print(formats.map((f) => snippets[f]).join("\n\n"));
      return 0;
    } finally {
      client.close();
    }
  },
};

/** --format: one server, or all of them (the default). */
export function parseFormat(arg: string | undefined): StatelessFormat[] {
  if (arg === undefined || arg === "all") return [...STATELESS_FORMATS];
  const f = STATELESS_FORMATS.find((x) => x === arg);
  if (!f) {
    throw new UsageError(`--format "${arg}" is not a web server wile prints configuration for`, {
      hint: `Use one of: ${STATELESS_FORMATS.join(", ")}, all.`,
    });
  }
  return [f];
}
