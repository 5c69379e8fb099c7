import { connect } from "node:net";
import { isAbsolute } from "node:path";
import { command, path, required, text, withDefault } from "../util/settings";
import { printable } from "../util/text";
import { checkWritable, installFile } from "./install-file";
import { fullchainThenKey } from "./pem-bundle";
import { runHook } from "./reload";
import { type DeployContext, DeployError, defineTarget, type Target } from "./target";
import { describeEndpoint, type Endpoint, verifyDeployed, verifyEndpoint, verifySetting } from "./verify";

/**
 * HAProxy: one PEM holding the full chain followed by the private key (HAProxy 2.x reads the parts
 * in either order; certificate first is what its documentation and certbot users write), written
 * atomically to `--haproxy-pem`, the path of a `crt` on a `bind` line in haproxy.cfg. Then either
 *  - a hot update over the runtime API (`--haproxy-socket`, a unix socket declared with
 *    `stats socket PATH level admin`): `set ssl cert <pem> <<` with the new PEM as payload, then
 *    `commit ssl cert <pem>`. No reload, no dropped connections. HAProxy names a loaded certificate
 *    by the path written in its configuration, so `--haproxy-pem` must be spelled exactly as on the
 *    `crt` line (check() compares it with `show ssl cert`); or
 *  - a reload command (`--haproxy-reload 'systemctl reload haproxy'`), run with `sh -c`.
 * Afterwards it connects to `--haproxy-verify HOST[:PORT]` (default 127.0.0.1:443) over TLS with
 * SNI and compares the served leaf with the new certificate; `--no-haproxy-verify` turns that off.
 */
export interface HaproxyConfig {
  /** Absolute path of the combined PEM, as on haproxy.cfg's `crt` line. */
  pem: string;
  /** Runtime API unix socket: hot update. Exactly one of socket and reload. */
  socket?: string;
  /** Reload command (sh -c). */
  reload?: string;
  /** Endpoint as formatEndpoint writes it (`127.0.0.1:443:tls`), or false for no verification. */
  verify: string | false;
}

export const DEFAULT_HAPROXY_VERIFY = "127.0.0.1:443";
const VERIFY_DEFAULTS = { port: 443, protocol: "tls" } as const;

/** Per runtime API command. */
export const RUNTIME_API_TIMEOUT_MS = 10_000;
/** The most read back from one runtime API answer. */
export const RUNTIME_API_MAX_BYTES = 256 * 1024;

export const haproxyKind = defineTarget({
  kind: "haproxy",
  summary:
    "HAProxy: combined PEM (chain + key), hot update over the runtime API or a reload, verify over TLS",
  example:
    "--deploy haproxy --haproxy-pem /etc/haproxy/certs/example.pem --haproxy-socket /run/haproxy/admin.sock",
  settings: {
    // Not a path setting: HAProxy names a certificate by the crt path exactly as written, so it is
    // never rewritten (made absolute) here.
    pem: required(
      text({
        arg: "PATH",
        help: "haproxy: where to write the combined PEM (full chain, then key): exactly the path on haproxy.cfg's crt line",
        check: (pem) =>
          !isAbsolute(pem)
            ? "must be an absolute path, spelled as on the crt line"
            : pem.endsWith("/")
              ? "names a directory; give the file"
              : /\s/.test(pem)
                ? "must not contain white space, which the runtime API cannot name"
                : undefined,
      }),
    ),
    socket: path({
      arg: "PATH",
      help: "haproxy: runtime API unix socket (stats socket PATH level admin): hot update with set/commit ssl cert, no reload",
    }),
    reload: command({
      arg: "CMD",
      help: "haproxy: instead of --haproxy-socket, a command that reloads HAProxy (e.g. 'systemctl reload haproxy')",
    }),
    verify: withDefault(
      verifySetting({
        arg: "HOST[:PORT]",
        help: `haproxy: check over TLS that this address serves the new certificate (default ${DEFAULT_HAPROXY_VERIFY}); --no-haproxy-verify skips it`,
        defaults: VERIFY_DEFAULTS,
      }),
      DEFAULT_HAPROXY_VERIFY,
    ),
  },
  check(c, name) {
    if (c.socket !== undefined && c.reload !== undefined) {
      throw new Error(`give ${name("socket")} (hot update) or ${name("reload")}, not both`);
    }
    if (c.socket === undefined && c.reload === undefined) {
      throw new Error(
        `give ${name("socket")} PATH (hot update over the runtime API) or ${name("reload")} CMD, or HAProxy keeps serving the old certificate`,
      );
    }
  },
  create: (c) => new HaproxyTarget(c),
});

export class HaproxyTarget implements Target {
  readonly kind = "haproxy";
  private readonly endpoint: Endpoint | undefined;

  constructor(readonly config: HaproxyConfig) {
    this.endpoint = verifyEndpoint(config.verify, VERIFY_DEFAULTS);
  }

  describe(): string {
    const how = this.config.socket ? `runtime API ${this.config.socket}` : "reload command";
    const verify = this.endpoint ? `verify ${describeEndpoint(this.endpoint)}` : "no verify";
    return `haproxy (${this.config.pem}, ${how}, ${verify})`;
  }

  async check(_ctx: DeployContext): Promise<void> {
    await checkWritable(this.config.pem, "haproxy");
    if (!this.config.socket) return;
    const answer = await runtimeApi(this.config.socket, "show ssl cert");
    if (/permission denied/i.test(answer)) {
      throw new DeployError(
        `haproxy: the runtime API at ${this.config.socket} refused "show ssl cert": ${printable(answer, 200)}`,
        {
          hint: "Certificate updates need an admin socket: stats socket PATH level admin in haproxy.cfg's global section.",
        },
      );
    }
    const loaded = answer
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l !== "" && !l.startsWith("#"));
    // A pending transaction shows as "*<path>"; the name counts all the same.
    if (!loaded.some((l) => l.replace(/^\*/, "") === this.config.pem)) {
      const shown = loaded.slice(0, 5).join(", ");
      throw new DeployError(
        `haproxy: ${this.config.pem} is not a certificate HAProxy has loaded (it has ${shown || "none"}${loaded.length > 5 ? ", ..." : ""})`,
        {
          hint: "--haproxy-pem must be spelled exactly as the crt path on the bind line in haproxy.cfg (HAProxy names certificates by that path). Add the crt and reload HAProxy once, or fix --haproxy-pem.",
        },
      );
    }
  }

  async deploy(ctx: DeployContext): Promise<void> {
    const pem = fullchainThenKey(ctx.files);
    await installFile(this.config.pem, pem, { secret: true });
    ctx.logger.info(`${ctx.name}: haproxy: wrote ${this.config.pem}`);
    if (this.config.socket) {
      await hotUpdate(this.config.socket, this.config.pem, pem);
      ctx.logger.info(
        `${ctx.name}: haproxy: certificate updated over the runtime API (${this.config.socket})`,
      );
    } else if (this.config.reload) {
      await runHook(this.config.reload, ctx, "haproxy reload");
    }
    if (this.endpoint) {
      await verifyDeployed(
        ctx,
        "haproxy",
        this.endpoint,
        `is ${this.config.pem} the crt of the bind line on that address (and the certificate chosen for SNI ${ctx.serverName})?`,
      );
    }
  }
}

/**
 * `set ssl cert` + `commit ssl cert` for `certPath`; a failed step aborts the transaction and
 * throws DeployError with HAProxy's answer.
 */
export async function hotUpdate(socket: string, certPath: string, pem: string): Promise<void> {
  const set = await runtimeApi(socket, `set ssl cert ${certPath} <<\n${pem}\n`);
  if (!/Transaction (created|updated)/i.test(set)) {
    throw new DeployError(`haproxy: set ssl cert ${certPath} failed: ${answerText(set)}`, {
      hint: /not referenced by the configuration/i.test(set)
        ? "--haproxy-pem must be spelled exactly as the crt path in haproxy.cfg. The new PEM is written there; fix the path or reload HAProxy, then run wile deploy NAME."
        : "The new PEM file is written; fix the cause, or reload HAProxy, then run wile deploy NAME again.",
    });
  }
  const commit = await runtimeApi(socket, `commit ssl cert ${certPath}`);
  if (!/Success!/.test(commit)) {
    await runtimeApi(socket, `abort ssl cert ${certPath}`).catch(() => "");
    throw new DeployError(`haproxy: commit ssl cert ${certPath} failed: ${answerText(commit)}`, {
      hint: "The new PEM file is written; HAProxy still serves the old certificate. Fix the cause, or reload HAProxy, then run wile deploy NAME again.",
    });
  }
}

/** HAProxy's answer on one line, without the command help it appends after an error. */
function answerText(answer: string): string {
  const cut = answer.search(/\n(Unknown command| {2}[a-z]+ [a-z])/);
  const text = (cut >= 0 ? answer.slice(0, cut) : answer).trim();
  return text === "" ? "(no answer)" : printable(text.replace(/\n+/g, " | "), 300);
}

/**
 * One command over HAProxy's runtime API (non-interactive: it answers and closes the connection).
 * Reads at most RUNTIME_API_MAX_BYTES, gives up after timeoutMs. Connection failures are
 * DeployErrors saying what to check.
 */
export function runtimeApi(
  socket: string,
  command: string,
  timeoutMs: number = RUNTIME_API_TIMEOUT_MS,
): Promise<string> {
  const verb = command.split(" <<")[0]?.split("\n")[0] ?? command;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (err?: Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      conn.destroy();
      if (err) reject(err);
      else resolve(Buffer.concat(chunks).toString("utf8"));
    };
    const timer = setTimeout(
      () =>
        finish(
          new DeployError(
            `haproxy: no complete answer to "${verb}" from the runtime API at ${socket} within ${timeoutMs / 1000} s`,
            { hint: "Is this HAProxy's stats socket? Check haproxy.cfg's global section." },
          ),
        ),
      timeoutMs,
    );
    const conn = connect(socket);
    // Written, not ended: HAProxy answers a non-interactive command and then closes.
    conn.on("connect", () => conn.write(command.endsWith("\n") ? command : `${command}\n`));
    conn.on("data", (c: Buffer) => {
      if (size + c.length > RUNTIME_API_MAX_BYTES) {
        finish(
          new DeployError(
            `haproxy: the answer to "${verb}" from ${socket} is larger than ${RUNTIME_API_MAX_BYTES} bytes`,
          ),
        );
        return;
      }
      size += c.length;
      chunks.push(c);
    });
    conn.on("end", () => finish());
    conn.on("close", () => finish());
    conn.on("error", (e: NodeJS.ErrnoException) => finish(socketError(socket, e)));
  });
}

function socketError(socket: string, e: NodeJS.ErrnoException): DeployError {
  const why =
    e.code === "ENOENT"
      ? "there is no such socket"
      : e.code === "ECONNREFUSED"
        ? "connection refused (HAProxy is not running, or the socket is stale)"
        : e.code === "EACCES"
          ? "permission denied"
          : e.code === "ENOTSOCK"
            ? "it is not a socket"
            : printable(e.message, 200);
  return new DeployError(`haproxy: cannot reach the runtime API at ${socket}: ${why}`, {
    hint:
      e.code === "EACCES"
        ? "Run wile as a user that may use the socket (stats socket PATH mode 660 group G level admin), or use --haproxy-reload."
        : "Declare it in haproxy.cfg's global section (stats socket PATH level admin) and reload HAProxy, or give the right --haproxy-socket.",
  });
}
