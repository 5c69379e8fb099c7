/**
 * The two one-file bundles of key and certificates that services read, named by their order:
 * - keyThenFullchain: key, leaf, chain (Postfix's smtpd_tls_chain_files demands it; files
 *   --combined-file; dovecot/postfix when one path serves for both);
 * - fullchainThenKey: leaf, chain, key (HAProxy's crt files and runtime API, ssh --ssh-combined).
 * Both are normalized the same way: no CR, no blank lines (an empty line ends a payload on HAProxy's
 * runtime API), one newline at the end.
 */
import type { CertificateFiles } from "../store/certs";

function join(parts: string[]): string {
  const lines = parts
    .join("\n")
    .replace(/\r/g, "")
    .split("\n")
    .filter((l) => l.trim() !== "");
  return `${lines.join("\n")}\n`;
}

export function keyThenFullchain(files: Pick<CertificateFiles, "privkeyPem" | "fullchainPem">): string {
  return join([files.privkeyPem, files.fullchainPem]);
}

export function fullchainThenKey(files: Pick<CertificateFiles, "privkeyPem" | "fullchainPem">): string {
  return join([files.fullchainPem, files.privkeyPem]);
}
