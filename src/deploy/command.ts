/**
 * The "command" target: runs a command the operator wrote (sh -c) with the hook environment:
 * wile's WILE_* names plus certbot's RENEWED_LINEAGE/RENEWED_DOMAINS and acme.sh's CERT_PATH,
 * CERT_KEY_PATH, CA_CERT_PATH, CERT_FULLCHAIN_PATH, so existing deploy hooks work unchanged. A
 * non-zero exit, or running past the timeout, fails the deploy.
 */
import { checkCommandProgram } from "../util/programs";
import { command, integer, required, withDefault } from "../util/settings";
import { RELOAD_TIMEOUT_MS, runHook } from "./reload";
import { defineTarget } from "./target";

const MAX_TIMEOUT_S = 3600;

export const commandKind = defineTarget({
  kind: "command",
  summary: "run your own command with the certificate's paths in certbot's and acme.sh's variables",
  example: "--deploy command --deploy-cmd '/usr/local/bin/push-cert.sh'",
  settings: {
    command: required(
      command({
        flag: "deploy-cmd",
        arg: "CMD",
        help: "command: run this (sh -c) with WILE_*, RENEWED_LINEAGE, RENEWED_DOMAINS, CERT_PATH, CERT_KEY_PATH, CA_CERT_PATH, CERT_FULLCHAIN_PATH set",
      }),
    ),
    /** Seconds. */
    timeout: withDefault(
      integer({
        flag: "deploy-timeout",
        arg: "SECONDS",
        help: `command: kill it after this long (default ${RELOAD_TIMEOUT_MS / 1000}, at most ${MAX_TIMEOUT_S})`,
        min: 1,
        max: MAX_TIMEOUT_S,
        what: "whole seconds",
      }),
      RELOAD_TIMEOUT_MS / 1000,
    ),
  },
  create(c) {
    const cmd = c.command;
    return {
      kind: "command",
      describe: () => `command (${cmd.length > 60 ? `${cmd.slice(0, 57)}...` : cmd})`,
      async check() {
        await checkCommandProgram(cmd, "command");
      },
      async deploy(ctx) {
        await runHook(cmd, ctx, "command", c.timeout * 1000);
      },
    };
  },
});
