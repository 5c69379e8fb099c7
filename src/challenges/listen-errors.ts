/**
 * What to say when one of wile's challenge listeners (standalone http-01, tls-alpn-01) cannot take
 * its port: a UsageError (exit 2), raised before any order is created, naming the port, the reason,
 * what holds the port when `ss` can tell, and the ways out.
 */
import { realpathSync } from "node:fs";
import { UsageError, type WileError } from "../util/errors";
import { commandEnv } from "../util/programs";
import { run } from "../util/spawn";
import { printable } from "../util/text";

export interface ListenWhat {
  /** The listener, for the message: "http-01 (--standalone)". */
  what: string;
  /** The option that picks another port: "--http-port". */
  portOption: string;
  /** The option that picks the address: "--http-address". */
  addressOption: string;
  /** The port the CA connects to (80 for http-01, 443 for tls-alpn-01), which a forward must serve. */
  caPort: number;
  /** Another way to prove control when the port is taken, for the hint ("prove control ... with -w DIR"). */
  instead: string;
  /** Who holds a port (for EADDRINUSE); default: ask `ss -ltnp`. */
  portHolders?: (port: number) => Promise<string[] | undefined>;
}

/** `address:port` as people write it ([v6]:port). */
export function hostPort(address: string, port: number): string {
  return `${address.includes(":") ? `[${address}]` : address}:${port}`;
}

/**
 * The error for `err` from listen() on `port` at `address` (every address when undefined).
 * EADDRINUSE names what holds the port when `ss -ltnp` can tell (other users' processes only when
 * run as root).
 */
export async function listenError(
  err: unknown,
  port: number,
  address: string | undefined,
  opts: ListenWhat,
): Promise<WileError> {
  const code = (err as NodeJS.ErrnoException).code;
  const at = `Cannot listen on ${address === undefined ? `port ${port}` : hostPort(address, port)} for ${opts.what}`;
  if (code === "EADDRINUSE") {
    const holders = await (opts.portHolders ?? portHolders)(port).catch(() => undefined);
    const who =
      holders && holders.length > 0
        ? `: ${holders.join(", ")} holds it`
        : ` (ss could not tell which program holds it; as root, ss -ltnp 'sport = :${port}' shows it)`;
    return new UsageError(`${at}: it is in use${who}. Nothing was ordered.`, {
      hint:
        `Stop that program for the validation, ${opts.instead}, ` +
        `or listen elsewhere with ${opts.portOption} PORT and forward port ${opts.caPort} to it (see docs/http-01.md).`,
      cause: err,
    });
  }
  if (code === "EACCES" || code === "EPERM") {
    const node = realpathSync(process.execPath);
    return new UsageError(
      `${at}: permission denied; ports below 1024 need privileges this user (uid ${process.getuid?.() ?? "?"}) does not have. Nothing was ordered.`,
      {
        hint: [
          "Allow it one of three ways:",
          `  sudo setcap cap_net_bind_service=+ep ${node}   (setcap needs the real file; for node, every Node program may then bind low ports)`,
          `  authbind: sudo touch /etc/authbind/byport/${port}; sudo chown $USER /etc/authbind/byport/${port}; sudo chmod 500 /etc/authbind/byport/${port}; then authbind --deep wile ...`,
          `  sudo sysctl net.ipv4.ip_unprivileged_port_start=${port}   (for every user; persist it in /etc/sysctl.d/)`,
          `Or listen on a high port and redirect ${port} to it: ${opts.portOption} 8080 with`,
          `  sudo iptables -t nat -A PREROUTING -p tcp --dport ${port} -j REDIRECT --to-ports 8080`,
          `  or: sudo nft add rule ip nat prerouting tcp dport ${port} redirect to :8080   (in a nat prerouting chain)`,
        ].join("\n"),
        cause: err,
      },
    );
  }
  if (code === "EADDRNOTAVAIL" || code === "ENOTFOUND" || code === "EAFNOSUPPORT") {
    return new UsageError(
      `${at}: ${address ?? "that address"} is not an address of this machine. Nothing was ordered.`,
      {
        hint: `Give ${opts.addressOption} one of this machine's addresses (ip -br addr), or leave it out to listen on all.`,
        cause: err,
      },
    );
  }
  return new UsageError(
    `${at}: ${printable((err as Error).message ?? String(err), 200)}. Nothing was ordered.`,
    { hint: `Check ${opts.portOption} and ${opts.addressOption}.`, cause: err },
  );
}

/**
 * Who listens on TCP `port`, from `ss -Hltnp 'sport = :PORT'` (iproute2): "nginx (pid 1234)" per
 * process; [] when ss shows listeners but no process (other users' processes are visible to root
 * only); undefined when ss is missing or says nothing.
 */
export async function portHolders(port: number): Promise<string[] | undefined> {
  const r = await run(["ss", "-Hltnp", "sport", "=", `:${port}`], {
    timeoutMs: 3000,
    env: commandEnv(),
    maxOutputBytes: 64 * 1024,
  });
  if (r.code !== 0 || r.stdout.trim() === "") return undefined;
  return parseSsHolders(r.stdout);
}

/** The processes in ss -p output: `users:(("nginx",pid=1234,fd=6),...)`, each once, at most 5. */
export function parseSsHolders(out: string): string[] {
  const seen = new Set<string>();
  for (const m of out.matchAll(/\("((?:[^"\\]|\\.)*)",pid=(\d+)/g)) {
    seen.add(`${printable(m[1] ?? "?", 40)} (pid ${m[2]})`);
  }
  return [...seen].slice(0, 5);
}
