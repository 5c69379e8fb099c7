import { exchangeKind } from "./exchange";
import { haproxyKind } from "./haproxy";
import { sshKind } from "./ssh";
import type { TargetKind } from "./target";

/**
 * Every deploy target kind, in the order `wile deploy --help` lists them. A new kind is one file
 * in src/deploy/ and one line here.
 */
export const TARGET_KINDS: TargetKind[] = [haproxyKind as TargetKind, exchangeKind as TargetKind, sshKind as TargetKind];

export function targetKind(kind: string): TargetKind | undefined {
  return TARGET_KINDS.find((k) => k.kind === kind);
}
