import type { Identifier } from "../acme/types";
import type { CertificateFiles } from "../store/certs";
import { WileError } from "../util/errors";
import type { Logger } from "../util/log";
import type { Namer, Settings, Values } from "../util/settings";

/** How long a deploy's verify waits for a service to serve the new certificate, unless told otherwise. */
export const VERIFY_WAIT_MS = 10_000;

/**
 * Deploy targets: put a certificate where a service reads it, reload the service, and check that
 * it serves the new certificate. One file per kind (files, command, dovecot, postfix, haproxy,
 * nginx, apache, exchange, ssh); each is a TargetKind registered in registry.ts. Its settings are
 * stored in renewal.json's `deploy` list as `{ "kind": "<kind>", ...settings }`, so every renewal
 * replays them, and `wile deploy NAME` runs them again. Nothing here knows the command line.
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

/**
 * One kind of target, declared once: its settings (from which come the command-line options
 * `--<kind>-<setting>`, the check of renewal.json's entry and the help text), the checks across
 * settings, and how a target is made from checked settings. A new kind is one file exporting
 * `defineTarget({...})` and one line in registry.ts.
 */
export interface TargetKind<S extends Settings = Settings> {
  kind: string;
  /** For `wile deploy --help`: "Dovecot: key and fullchain where doveconf's ssl_cert/ssl_key say, ...". */
  summary: string;
  /** A typical command line, shown as the hint of a mistake in it: "--deploy nginx --nginx-reload '...'". */
  example: string;
  settings: S;
  /** Checks across settings (each one is checked already); throws SettingError naming them with `name`. */
  check?(c: Values<S>, name: Namer): void;
  create(c: Values<S>): Target;
}

/** Declares a kind; the settings' types flow into check() and create(). */
export function defineTarget<S extends Settings>(kind: TargetKind<S>): TargetKind<S> {
  return kind;
}

/** A deploy that failed: which target, what happened, what to do. Exit 1; the certificate stays issued. */
export class DeployError extends WileError {}
