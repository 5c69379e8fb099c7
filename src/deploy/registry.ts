import { apacheKind } from "./apache";
import { commandKind } from "./command";
import { dovecotKind } from "./dovecot";
import { exchangeKind } from "./exchange";
import { filesKind } from "./files";
import { haproxyKind } from "./haproxy";
import { nginxKind } from "./nginx";
import { postfixKind } from "./postfix";
import { sshKind } from "./ssh";
import type { TargetKind } from "./target";

/**
 * Every deploy target kind, in the order `wile deploy --help` lists them. A new kind is one file
 * in src/deploy/ and one line here.
 */
export const TARGET_KINDS: readonly TargetKind[] = [
  filesKind,
  commandKind,
  dovecotKind,
  postfixKind,
  nginxKind,
  apacheKind,
  haproxyKind,
  exchangeKind,
  sshKind,
] as TargetKind[];

export function targetKind(kind: string): TargetKind | undefined {
  return TARGET_KINDS.find((k) => k.kind === kind);
}
