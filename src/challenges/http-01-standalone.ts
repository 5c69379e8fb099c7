/**
 * http-01 answered by wile itself (--standalone): a node:http listener that exists only while an
 * order is validated. It is bound before the CA is contacted (a port that is taken or not permitted
 * stops the run with exit 2 and nothing ordered), answers GET/HEAD
 * /.well-known/acme-challenge/<token> for the tokens of the current order with the key
 * authorization, 404 for everything else, and is closed with every connection (keep-alive ones
 * too) on success, failure and interrupt, so that nothing keeps the port or the process.
 *
 * Addresses: without --http-address it listens on every address, IPv4 and IPv6 through one
 * dual-stack socket on [::] (libuv clears IPV6_V6ONLY whatever net.ipv6.bindv6only says), or on
 * 0.0.0.0 alone when the machine has no IPv6. A program holding 0.0.0.0:PORT or [::]:PORT is then
 * reported as holding the port, which it does for one of the two families.
 */
import http from "node:http";
import { isIP } from "node:net";
import type { ChallengeContext, Solver } from "../acme/solver";
import { UsageError, WileError } from "../util/errors";
import type { Logger } from "../util/log";
import { printable } from "../util/text";
import { listenError } from "./listen-errors";
import { checkServed } from "./preflight-fetch";
import type { ResolveRule } from "./resolve";

export const DEFAULT_HTTP_PORT = 80;
const CHALLENGE_PATH = /^\/\.well-known\/acme-challenge\/([A-Za-z0-9_-]+)$/;
/** Request line and headers together; a validator sends a few hundred bytes. */
const MAX_HEADER_BYTES = 8 * 1024;

export interface StandaloneSolverOptions {
  port: number;
  /** An IP address of this machine; every address (dual-stack) when absent. */
  address?: string;
  logger: Logger;
  /** Fetch the challenge back before the CA does; false to skip (--no-preflight). */
  preflight?: { resolve: ResolveRule[]; timeoutMs?: number } | false;
  /** Who holds a port (for EADDRINUSE); default: ask `ss -ltnp`. */
  portHolders?: (port: number) => Promise<string[] | undefined>;
}

/**
 * One bound port with the tokens it answers. The solvers of every certificate this process works on
 * at once (wile cron --parallel) share it, so that two certificates on port 80 do not collide; the
 * last one to close it closes it.
 */
class Listener {
  /** token -> key authorization, for the challenges presented and not yet cleaned up. */
  readonly tokens = new Map<string, string>();
  /** token -> requests for it received (the preflight tells its own answer apart). */
  readonly hits = new Map<string, number>();
  users = 0;
  readonly server: http.Server;

  constructor(private readonly logger: Logger) {
    this.server = http.createServer(
      {
        maxHeaderSize: MAX_HEADER_BYTES,
        headersTimeout: 10_000,
        requestTimeout: 10_000,
        keepAliveTimeout: 5_000,
      },
      (req, res) => this.answer(req, res),
    );
    // A request too large or malformed: Node answers 431/400 and closes; nothing else to do.
    this.server.on("clientError", (_err, socket) => {
      if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
      socket.destroy();
    });
  }

  listen(port: number, address: string | undefined): Promise<void> {
    const { server } = this;
    return new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen({ port, host: address, ipv6Only: false }, () => {
        server.off("error", reject);
        server.on("error", (e) => this.logger.warn(`http-01 listener: ${e.message}`));
        resolve();
      });
    });
  }

  /** Stops listening and drops every connection, idle keep-alive ones and those mid-request too. */
  close(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.tokens.clear();
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private answer(req: http.IncomingMessage, res: http.ServerResponse): void {
    const head = req.method === "HEAD";
    // A validator sends no body: any request announcing one is refused without reading it.
    const hasBody =
      req.headers["transfer-encoding"] !== undefined || Number(req.headers["content-length"] ?? 0) > 0;
    if (hasBody) {
      res.shouldKeepAlive = false;
      reply(res, 413, "request body not accepted\n", head);
      return;
    }
    const token = CHALLENGE_PATH.exec(req.url ?? "")?.[1];
    const keyAuth = token === undefined ? undefined : this.tokens.get(token);
    if (token !== undefined && keyAuth !== undefined && (req.method === "GET" || req.method === "HEAD")) {
      this.hits.set(token, (this.hits.get(token) ?? 0) + 1);
      this.logger.debug(`http-01: ${req.method} for token ${token} from ${req.socket.remoteAddress ?? "?"}`);
      reply(res, 200, keyAuth, head);
      return;
    }
    reply(res, 404, "not found\n", head);
  }
}

/** "ADDRESS|PORT" -> the listener bound there by this process (port 0 is never shared). */
const listeners = new Map<string, Promise<Listener>>();
/** "ADDRESS|PORT" -> the close of its last listener, awaited before the port is bound again. */
const closings = new Map<string, Promise<void>>();

export class StandaloneSolver implements Solver {
  readonly type = "http-01";
  private listener: Listener | undefined;
  /** The tokens this solver presented (the listener may hold other certificates' too). */
  private readonly mine = new Set<string>();
  private closing: Promise<void> | undefined;

  constructor(private readonly opts: StandaloneSolverOptions) {}

  private get key(): string | undefined {
    return this.opts.port === 0 ? undefined : `${this.opts.address ?? "*"}|${this.opts.port}`;
  }

  /** The port listened on (the one the system chose for port 0). */
  get port(): number {
    const a = this.listener?.server.address();
    return a && typeof a === "object" ? a.port : this.opts.port;
  }

  /** "[::]:80", "0.0.0.0:80", "192.0.2.1:8080": where the listener is (or would be). */
  get where(): string {
    const a = this.listener?.server.address();
    const host = a && typeof a === "object" ? a.address : (this.opts.address ?? "*");
    return `${host.includes(":") ? `[${host}]` : host}:${this.port}`;
  }

  /** Binds the port (or joins this process's listener on it), before anything is contacted: UsageError (exit 2) when it cannot. */
  async open(): Promise<void> {
    if (this.listener) return;
    const key = this.key;
    let bound = key === undefined ? undefined : listeners.get(key);
    if (!bound) {
      const l = new Listener(this.opts.logger);
      bound = (async () => {
        if (key !== undefined) await closings.get(key);
        await l.listen(this.opts.port, this.opts.address);
        return l;
      })();
      if (key !== undefined) {
        listeners.set(key, bound);
        bound.catch(() => listeners.get(key) === bound && listeners.delete(key));
      }
    }
    const listener = await bound.catch(async (e: NodeJS.ErrnoException) => {
      throw await this.bindError(e);
    });
    listener.users++;
    this.listener = listener;
    this.opts.logger.info(
      listener.users === 1
        ? `Listening on ${this.where} for http-01 challenges (--standalone)`
        : `Answering http-01 challenges on ${this.where} (--standalone), the listener another certificate of this run opened`,
    );
  }

  async present(ctx: ChallengeContext): Promise<void> {
    if (!this.listener) throw new Error("standalone http-01: present() before open()");
    if (!/^[A-Za-z0-9_-]+$/.test(ctx.token)) {
      throw new WileError(
        `The CA sent a challenge token that is not base64url: ${JSON.stringify(printable(ctx.token, 80))}.`,
        { hint: "Report this to the CA; try again later." },
      );
    }
    this.listener.tokens.set(ctx.token, ctx.keyAuthorization);
    this.mine.add(ctx.token);
    this.opts.logger.debug(`Answering /.well-known/acme-challenge/${ctx.token} on ${this.where}`);
  }

  async preflight(ctx: ChallengeContext): Promise<void> {
    if (this.opts.preflight === false) return;
    const { resolve: rules = [], timeoutMs = 5000 } = this.opts.preflight ?? {};
    const { value } = ctx.identifier;
    const hits = () => this.listener?.hits.get(ctx.token) ?? 0;
    const before = hits();
    const got = await checkServed(ctx, { resolve: rules, timeoutMs }, this.opts.logger);
    if (!got) return;
    const reachedUs = hits() > before;
    const port = this.opts.port;
    throw new WileError(
      `Preflight for ${value} failed: ${got.url} answered ${got.answer}, ${reachedUs ? "through" : "but not from"} wile's listener on ${this.where}.`,
      {
        hint: reachedUs
          ? "Something between the CA and wile (a proxy or a redirect) changes the answer: forward /.well-known/acme-challenge/ to wile unchanged, or --no-preflight if you are sure."
          : port === DEFAULT_HTTP_PORT
            ? `Another server answers for ${value} on port 80 (a firewall, NAT or load balancer sends it elsewhere, or DNS points to another machine). Stop it, or use -w with the web server that runs there, or --no-preflight if you are sure.`
            : `The CA connects to port 80, and wile listens on ${port}: the forward from port 80 to ${port} is missing or goes elsewhere (NAT redirect, or the web server on 80 proxying /.well-known/acme-challenge/ to 127.0.0.1:${port}). See docs/http-01.md; or --no-preflight if you are sure.`,
      },
    );
  }

  async cleanup(ctx: ChallengeContext): Promise<void> {
    this.listener?.tokens.delete(ctx.token);
    this.listener?.hits.delete(ctx.token);
    this.mine.delete(ctx.token);
  }

  /** Leaves the listener; the last user closes it with every connection. Safe to call again. */
  close(): Promise<void> {
    const listener = this.listener;
    if (!listener) return Promise.resolve();
    this.closing ??= (async () => {
      for (const token of this.mine) {
        listener.tokens.delete(token);
        listener.hits.delete(token);
      }
      this.mine.clear();
      if (--listener.users > 0) return;
      const key = this.key;
      const closed = listener.close();
      if (key !== undefined) {
        listeners.delete(key);
        closings.set(key, closed);
      }
      await closed;
      if (key !== undefined && closings.get(key) === closed) closings.delete(key);
      this.opts.logger.debug(`Closed the http-01 listener on ${this.where}`);
    })();
    return this.closing;
  }

  private bindError(e: NodeJS.ErrnoException): Promise<WileError> {
    return listenError(e, this.opts.port, this.opts.address, {
      what: "http-01 (--standalone)",
      portOption: "--http-port",
      caPort: 80,
      addressOption: "--http-address",
      instead: "or prove control through the web server that runs there with -w DIR (its document root)",
      ...(this.opts.portHolders ? { portHolders: this.opts.portHolders } : {}),
    });
  }
}

function reply(res: http.ServerResponse, status: number, body: string, head: boolean): void {
  res.writeHead(status, {
    "Content-Type": "text/plain; charset=utf-8",
    "Content-Length": Buffer.byteLength(body),
    "Cache-Control": "no-store",
  });
  res.end(head ? undefined : body);
}

/** --http-address: an IP literal (v4 or v6, brackets allowed) or undefined. */
export function parseHttpAddress(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  const a = v.replace(/^\[(.*)\]$/, "$1");
  if (isIP(a) === 0) {
    throw new UsageError(`--http-address "${printable(v, 80)}" is not an IP address`, {
      hint: "Give one of this machine's addresses, e.g. --http-address 192.0.2.10 or --http-address ::1; leave it out to listen on all (IPv4 and IPv6).",
    });
  }
  return a;
}

/** --http-port: 1-65535, default 80. */
export function parseHttpPort(v: string | undefined): number {
  if (v === undefined) return DEFAULT_HTTP_PORT;
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isInteger(n) || n < 1 || n > 65535) {
    throw new UsageError(`--http-port "${printable(v, 80)}" is not a port number`, {
      hint: "Give a TCP port from 1 to 65535, e.g. --http-port 8080 (with port 80 forwarded to it).",
    });
  }
  return n;
}
