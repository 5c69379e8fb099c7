/**
 * What to say when a challenge listener (standalone http-01, tls-alpn-01) cannot take its port:
 * a UsageError (exit 2), raised before any order is created, naming the port, the reason and the
 * ways out.
 */
import { UsageError, WileError } from "../util/errors";
import { run } from "../util/spawn";
import { printable } from "../util/text";

export interface ListenWhat {
  /** What was to listen, for the message: "the tls-alpn-01 listener". */
  what: string;
  /** The option that picks another port: "--tls-port". */
  portOption: string;
  /** The option that picks the address: "--tls-address". */
  addressOption: string;
}

/** `address:port` as people write it ([v6]:port). */
export function hostPort(address: string, port: number): string {
  return `${address.includes(":") ? `[${address}]` : address}:${port}`;
}

/**
 * The error for `err` from listen() on `address`:`port`. EADDRINUSE names what holds the port
 * when `ss -ltnp` can tell (it sees other users' processes only when run as root).
 */
export async function listenError(
  err: unknown,
  port: number,
  address: string,
  opts: ListenWhat,
): Promise<WileError> {
  const code = (err as NodeJS.ErrnoException).code;
  const where = hostPort(address, port);
  if (code === "EADDRINUSE") {
    const holder = await portHolder(port, address);
    return new UsageError(
      `${opts.what} cannot listen on ${where}: the port is in use${holder ? ` by ${holder}` : ""}.`,
      {
        hint:
          `Stop what listens there for the time of the validation, or let it forward to wile: run wile on another port (${opts.portOption} PORT) ` +
          "and have the firewall or the server on the port the CA connects to pass the validation on to it.",
        cause: err,
      },
    );
  }
  if (code === "EACCES") {
    return new UsageError(
      `${opts.what} cannot listen on ${where}: this user may not listen on so low a port (below net.ipv4.ip_unprivileged_port_start, 1024 by default).`,
      {
        hint:
          `Either give node the right once (sudo setcap cap_net_bind_service=+ep "$(readlink -f "$(command -v node)")"), ` +
          `or run wile through authbind (sudo touch /etc/authbind/byport/${port}; sudo chown $USER /etc/authbind/byport/${port}; authbind --deep wile ...), ` +
          `or lower the limit for everyone (sudo sysctl net.ipv4.ip_unprivileged_port_start=${port}), ` +
          `or listen on a high port (${opts.portOption} PORT) that the firewall forwards ${port} to.`,
        cause: err,
      },
    );
  }
  if (code === "EADDRNOTAVAIL" || code === "ENOTFOUND" || code === "EAFNOSUPPORT") {
    return new UsageError(`${opts.what} cannot listen on ${where}: this machine has no such address.`, {
      hint: `Pass with ${opts.addressOption} an address of this machine (or leave it out to listen on all).`,
      cause: err,
    });
  }
  return new WileError(
    `${opts.what} cannot listen on ${where}: ${printable((err as Error).message ?? String(err), 200)}.`,
    { hint: `Check ${opts.portOption} and ${opts.addressOption}.`, cause: err },
  );
}

/**
 * `"nginx" (pid 123)` for the process `ss -ltnp` shows listening on `port` at `address` (or on all
 * addresses); undefined when it cannot tell (ss missing, or another user's process as non-root).
 */
async function portHolder(port: number, address: string): Promise<string | undefined> {
  const r = await run(["ss", "-Hltnp", `sport = :${port}`], { timeoutMs: 2000 }).catch(() => undefined);
  if (r?.code !== 0) return undefined;
  const local = (line: string) =>
    (line.trim().split(/\s+/)[3] ?? "").replace(/:\d+$/, "").replace(/%.*$/, "");
  const wildcard = ["0.0.0.0", "*", "[::]"];
  const lines = r.stdout.split("\n").filter((l) => l.includes("users:"));
  const line =
    lines.find((l) => wildcard.includes(local(l)) || local(l) === address || local(l) === `[${address}]`) ??
    (address === "*" ? lines[0] : undefined);
  const m = line ? /users:\(\("([^"]*)",pid=(\d+)/.exec(line) : null;
  return m ? `"${printable(m[1] ?? "", 40)}" (pid ${m[2]})` : undefined;
}
