import type { Identifier } from "../acme/types";
import type { OptionSpec, ParsedOptions } from "../cli/options";
import type { CertificateFiles } from "../store/certs";
import { WileError } from "../util/errors";
import type { Logger } from "../util/log";

/**
 * Deploy targets: put a certificate where a service reads it, reload the service, and check that
 * it serves the new certificate. One file per kind (files, command, dovecot, postfix, haproxy,
 * nginx, apache, exchange, ssh); each is a TargetKind registered in registry.ts. Its settings are
 * stored in renewal.json's `deploy` list as `{ "kind": "<kind>", ...settings }`, so every renewal
 * replays them, and `wile deploy NAME` runs them again.
 */

/** What a target gets to work with: the certificate just stored (or the current one). */
export interface DeployContext {
  /** The certificate's name (its directory under certs/). */
  name: string;
  identifiers: Identifier[];
  /** The first DNS name (else the first identifier): the SNI name for verification. */
  serverName: string;
  /** The stable paths in wile's home (symlinks into the current version). */
  paths: { dir: string; privkey: string; cert: string; chain: string; fullchain: string };
  /** The PEM contents of that version. */
  files: CertificateFiles;
  /** Of the leaf, as CertInfo.serialHex (the spelling openssl prints). */
  serialHex: string;
  notAfter: Date;
  /** DER of the leaf, to compare with what a service serves. */
  leafDer: Buffer;
  home: string;
  logger: Logger;
  /** How long verifyDeployed retries a service that still serves another certificate (or refuses). */
  verifyWaitMs: number;
}

export interface Target {
  readonly kind: string;
  /** One line for messages: `dovecot (/etc/dovecot/private/mail.pem, verify 127.0.0.1:993)`. */
  describe(): string;
  /**
   * Everything that can be known without changing anything: programs present, target directories
   * writable, settings readable. Runs for every target before any target changes a file, so an
   * unwritable target fails the deploy before anything was touched. Throws DeployError.
   */
  check(ctx: DeployContext): Promise<void>;
  /** Puts the files in place, reloads, verifies (unless turned off). Throws DeployError. */
  deploy(ctx: DeployContext): Promise<void>;
}

/** One kind of target: its command-line options, how it is stored, and how it is built. */
export interface TargetKind<C extends { kind: string } = { kind: string }> {
  kind: string;
  /** For `wile deploy --help`: "Dovecot: key and fullchain where doveconf says, doveadm reload, verify IMAPS". */
  summary: string;
  /** Options specific to this kind, named after it (`--dovecot-cert`, `--haproxy-socket`, ...). */
  options: OptionSpec[];
  /** The settings from the command line (`--deploy <kind>` was given). UsageError on bad input. */
  fromOptions(opts: ParsedOptions): C;
  /** Checks settings read back from renewal.json; WileError naming `where` and the field. */
  parse(raw: Record<string, unknown>, where: string): C;
  create(config: C): Target;
}

/** A deploy that failed: which target, what happened, what to do. Exit 1; the certificate stays issued. */
export class DeployError extends WileError {}
