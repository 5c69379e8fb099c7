import type { ChallengeContext, Solver } from "../acme/solver";
import { WileError } from "../util/errors";
import type { Logger } from "../util/log";
import { printable } from "../util/text";
import { checkServed } from "./preflight-fetch";
import type { ResolveRule } from "./resolve";

/**
 * Stateless http-01: the key authorization is `TOKEN.THUMBPRINT` (RFC 8555 8.1), so a web server
 * configured once with this account's thumbprint answers every token itself, and nothing is written
 * per challenge. The same lines work on every node behind a load balancer: no shared storage.
 */
export const STATELESS_FORMATS = ["nginx", "apache", "haproxy"] as const;
export type StatelessFormat = (typeof STATELESS_FORMATS)[number];

/** A JWK thumbprint as RFC 7638 gives it in base64url: the only thing pasted into a configuration. */
const THUMBPRINT = /^[A-Za-z0-9_-]{43}$/;

/** Ready-to-paste configuration that answers `/.well-known/acme-challenge/TOKEN` with `TOKEN.THUMBPRINT`. */
export function statelessSnippet(format: StatelessFormat, thumbprint: string): string {
  if (!THUMBPRINT.test(thumbprint)) throw new Error(`not a base64url SHA-256 thumbprint: ${thumbprint}`);
  switch (format) {
    case "nginx":
      return [
        "# nginx: inside the server block that listens on port 80 (every server block that does).",
        "location ~ ^/\\.well-known/acme-challenge/([-_a-zA-Z0-9]+)$ {",
        "    default_type text/plain;",
        `    return 200 "$1.${thumbprint}";`,
        "}",
      ].join("\n");
    case "apache":
      return [
        "# Apache 2.4 (mod_alias, on by default): inside the <VirtualHost *:80> block.",
        '# The request ends in "Redirect 200", whose body ErrorDocument 200 makes from the token.',
        '<LocationMatch "^/\\.well-known/acme-challenge/(?<acmetoken>[-_a-zA-Z0-9]+)$">',
        "    Redirect 200",
        `    ErrorDocument 200 "%{env:MATCH_ACMETOKEN}.${thumbprint}"`,
        "</LocationMatch>",
      ].join("\n");
    case "haproxy":
      return [
        "# HAProxy 2.2 or later: in the frontend that receives port 80 (mode http), before any redirect.",
        "http-request return status 200 content-type text/plain " +
          `lf-string "%[path,field(4,/)].${thumbprint}" ` +
          "if { path_reg ^/\\.well-known/acme-challenge/[-_A-Za-z0-9]+$ }",
      ].join("\n");
  }
}

export interface StatelessSolverOptions {
  logger: Logger;
  /** Fetch each token before the CA does; false to skip (--no-preflight). */
  preflight?: { resolve: ResolveRule[]; timeoutMs?: number } | false;
}

/**
 * http-01 answered by the web server's stateless configuration (statelessSnippet): present() and
 * cleanup() do nothing; preflight() fetches the token and fails, with the lines to paste, when the
 * server does not answer the key authorization, before the CA is asked.
 */
export class StatelessSolver implements Solver {
  readonly type = "http-01";

  constructor(private readonly opts: StatelessSolverOptions) {}

  async present(): Promise<void> {}

  async preflight(ctx: ChallengeContext): Promise<void> {
    if (this.opts.preflight === false) return;
    const { resolve = [], timeoutMs = 5000 } = this.opts.preflight ?? {};
    const name = ctx.identifier.value;
    const got = await checkServed(ctx, { resolve, timeoutMs }, this.opts.logger);
    if (!got) return;
    const thumbprint = ctx.keyAuthorization.slice(ctx.token.length + 1);
    // A server set up for another account key (an old one, before wile account rollover) answers
    // TOKEN.OTHER: say so rather than only "wrong content".
    const other = got.status === 200 && got.body.trimEnd().startsWith(`${ctx.token}.`);
    const why = other
      ? `answers with the thumbprint ${printable(got.body.trimEnd().slice(ctx.token.length + 1), 60)}, not this account's ${thumbprint}`
      : `answered ${got.answer} instead of ${ctx.token}.${thumbprint}`;
    throw new WileError(
      `Preflight for ${name} failed: ${got.url} ${why}.\nThe web server for ${name} needs this in its port 80 configuration (nginx; wile stateless prints Apache and HAProxy too):\n${statelessSnippet("nginx", thumbprint)}`,
      {
        hint: `The CA was not asked to validate ${name}. Add the lines above (or: wile stateless --format apache|haproxy) and reload the web server, then run the command again; or --no-preflight if you are sure.`,
      },
    );
  }

  async cleanup(): Promise<void> {}
}
