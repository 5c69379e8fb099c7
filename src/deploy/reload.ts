import { commandEnv } from "../util/programs";
import { describeExit, lastLines, runShell } from "../util/spawn";
import type { DeployContext } from "./target";
import { DeployError } from "./target";

export const RELOAD_TIMEOUT_MS = 60_000;

/**
 * The environment deploy hooks and reload commands get: wile's names, and those of certbot
 * (RENEWED_LINEAGE, RENEWED_DOMAINS) and acme.sh (CERT_PATH, ...) so existing scripts work as they are.
 */
export function hookEnv(ctx: DeployContext): Record<string, string> {
  const domains = ctx.identifiers.map((i) => i.value).join(" ");
  return {
    WILE_CERT_NAME: ctx.name,
    WILE_DOMAINS: domains,
    WILE_CERT_PATH: ctx.paths.cert,
    WILE_KEY_PATH: ctx.paths.privkey,
    WILE_CHAIN_PATH: ctx.paths.chain,
    WILE_FULLCHAIN_PATH: ctx.paths.fullchain,
    RENEWED_LINEAGE: ctx.paths.dir,
    RENEWED_DOMAINS: domains,
    CERT_PATH: ctx.paths.cert,
    CERT_KEY_PATH: ctx.paths.privkey,
    CA_CERT_PATH: ctx.paths.chain,
    CERT_FULLCHAIN_PATH: ctx.paths.fullchain,
  };
}

/**
 * Runs a command the operator wrote (`sh -c`) with the hook environment and a timeout. A non-zero
 * exit is a DeployError carrying the command's last output.
 */
export async function runHook(
  command: string,
  ctx: DeployContext,
  what: string,
  timeoutMs: number = RELOAD_TIMEOUT_MS,
): Promise<void> {
  ctx.logger.info(`${ctx.name}: ${what}: running ${command}`);
  let r: Awaited<ReturnType<typeof runShell>>;
  try {
    r = await runShell(command, { timeoutMs, env: commandEnv({ ...process.env, ...hookEnv(ctx) }) });
  } catch (err) {
    throw new DeployError(`${what}: cannot run ${command}: ${(err as Error).message}`);
  }
  if (r.code === 0 && !r.timedOut) return;
  const output = lastLines(r);
  throw new DeployError(
    `${what}: ${command} failed (${describeExit(r, timeoutMs)})${output ? `: ${output}` : ""}`,
    {
      hint: "The new certificate is stored; fix the command and run wile deploy NAME again.",
    },
  );
}
