/**
 * Proving that a service serves the certificate just deployed: connect to it (TLS, or STARTTLS for
 * SMTP, IMAP and POP3, done by hand), with SNI, take the leaf it presents and compare its bytes with
 * the new certificate. Trust is not judged here (a service may well serve a certificate only its
 * own clients trust); only the bytes matter. Reloads take a moment, so a mismatch is retried for a
 * few seconds before the deploy fails.
 */
import { isIP, connect as netConnect, type Socket } from "node:net";
import { type TLSSocket, connect as tlsConnect } from "node:tls";
import { parseCertificate } from "../crypto/x509";
import { UsageError } from "../util/errors";
import type { Logger } from "../util/log";
import type { Setting } from "../util/settings";
import { printable } from "../util/text";
import { type DeployContext, DeployError, VERIFY_WAIT_MS } from "./target";

export type VerifyProtocol = "tls" | "smtp" | "imap" | "pop3";
export const VERIFY_PROTOCOLS: readonly VerifyProtocol[] = ["tls", "smtp", "imap", "pop3"];

export interface Endpoint {
  host: string;
  port: number;
  protocol: VerifyProtocol;
}

/** Ports whose protocol is plain text upgraded with STARTTLS, used when a spec names a port but no protocol. */
const STARTTLS_PORTS: Record<number, VerifyProtocol> = { 25: "smtp", 587: "smtp", 143: "imap", 110: "pop3" };
/** Ports that speak TLS from the first byte. */
const IMPLICIT_TLS_PORTS = new Set([443, 465, 636, 853, 993, 995, 8443]);

const EXAMPLE = "for example 127.0.0.1, mail.example.com:587:smtp or [::1]:993";

/**
 * Reads `host`, `host:port`, `host:port:proto`, `[v6]`, `[v6]:port`, `[v6]:port:proto` (a bare IPv6
 * address is taken as a host). Without a protocol, a well-known port decides (25/587 smtp, 143 imap,
 * 110 pop3, 443/465/993/995 tls), else `defaults.protocol`; without a port, `defaults.port`.
 */
export function parseEndpoint(spec: string, defaults: { port: number; protocol: VerifyProtocol }): Endpoint {
  const bad = (why: string) =>
    new UsageError(`invalid endpoint "${printable(spec, 100)}": ${why}`, {
      hint: `Give HOST[:PORT[:PROTOCOL]] with PROTOCOL one of ${VERIFY_PROTOCOLS.join(", ")}, ${EXAMPLE}.`,
    });
  const s = spec.trim();
  if (s === "") throw bad("it is empty");
  let host: string;
  let rest: string[];
  if (s.startsWith("[")) {
    const close = s.indexOf("]");
    if (close < 0) throw bad("missing ]");
    host = s.slice(1, close);
    if (isIP(host) !== 6) throw bad(`${host || "[]"} is not an IPv6 address`);
    const after = s.slice(close + 1);
    if (after !== "" && !after.startsWith(":")) throw bad("expected :PORT after ]");
    rest = after === "" ? [] : after.slice(1).split(":");
  } else if (isIP(s) === 6) {
    host = s;
    rest = [];
  } else {
    [host, ...rest] = s.split(":") as [string, ...string[]];
    if (host === "") throw bad("no host");
    if (rest.length > 2) throw bad("too many colons (write an IPv6 address in brackets: [::1]:993)");
    if (!/^[A-Za-z0-9.-]+$/.test(host) || host.startsWith("-") || host.startsWith(".")) {
      throw bad(`${host} is not a host name or IP address`);
    }
  }
  let port = defaults.port;
  let protocol: VerifyProtocol | undefined;
  if (rest.length > 2) throw bad("too many parts");
  if (rest[0] !== undefined) {
    if (!/^\d{1,5}$/.test(rest[0]) || Number(rest[0]) < 1 || Number(rest[0]) > 65535) {
      throw bad(`port ${rest[0] || "(empty)"} is not a number from 1 to 65535`);
    }
    port = Number(rest[0]);
  }
  if (rest[1] !== undefined) {
    const p = rest[1].toLowerCase();
    if (!(VERIFY_PROTOCOLS as readonly string[]).includes(p)) {
      throw bad(`unknown protocol ${rest[1] || "(empty)"}`);
    }
    protocol = p as VerifyProtocol;
  }
  if (protocol === undefined) {
    const known = rest[0] !== undefined ? STARTTLS_PORTS[port] : undefined;
    if (known) protocol = known;
    else if (rest[0] !== undefined && IMPLICIT_TLS_PORTS.has(port)) protocol = "tls";
    else protocol = defaults.protocol;
  }
  return { host, port, protocol };
}

/** `127.0.0.1:993`, `[::1]:587`: for messages. */
export function describeEndpoint(ep: Endpoint): string {
  return `${isIP(ep.host) === 6 ? `[${ep.host}]` : ep.host}:${ep.port}`;
}

/** `127.0.0.1:587:smtp`: what parseEndpoint reads back to the same Endpoint (for renewal.json). */
export function formatEndpoint(ep: Endpoint): string {
  return `${describeEndpoint(ep)}:${ep.protocol}`;
}

/**
 * Why a served certificate could not be fetched. `retryable` is true for what a reload or restart
 * explains (refused, reset, timed out) and false for a server that speaks something unexpected.
 */
export class VerifyConnectionError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
    this.name = "VerifyConnectionError";
  }
}

/** Total bytes read from the plain-text part of a STARTTLS conversation. */
const MAX_PLAIN_BYTES = 64 * 1024;

/**
 * Connects to `ep`, does STARTTLS when its protocol asks for it, and returns the DER of the leaf
 * certificate the server presents for `serverName` (sent as SNI unless it is an IP address).
 * Throws VerifyConnectionError with a readable reason.
 */
export async function fetchServedCertificate(
  ep: Endpoint,
  serverName: string,
  timeoutMs = 5000,
): Promise<Buffer> {
  const state: ProbeState = { stage: "connecting", sockets: [] };
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(
        new VerifyConnectionError(`timed out after ${formatSeconds(timeoutMs)} while ${state.stage}`, true),
      );
    }, timeoutMs);
  });
  try {
    const der = await Promise.race([probe(ep, serverName, state), timeout]);
    // A polite close (close_notify, FIN), so the service does not log a reset; destroyed soon anyway.
    const last = state.sockets[state.sockets.length - 1];
    last?.end();
    setTimeout(() => {
      for (const s of state.sockets) s.destroy();
    }, 1000).unref();
    return der;
  } catch (err) {
    for (const s of state.sockets) s.destroy();
    if (err instanceof VerifyConnectionError) throw err;
    throw new VerifyConnectionError(networkReason(err), true);
  } finally {
    clearTimeout(timer);
  }
}

interface ProbeState {
  /** What is being waited for, for a timeout message ("waiting for the SMTP greeting"). */
  stage: string;
  sockets: Socket[];
}

async function probe(ep: Endpoint, serverName: string, state: ProbeState): Promise<Buffer> {
  const servername = isIP(serverName) === 0 && serverName !== "" ? serverName : undefined;
  if (ep.protocol === "tls") {
    state.stage = "connecting and doing the TLS handshake";
    const socket = tlsConnect({ host: ep.host, port: ep.port, servername, rejectUnauthorized: false });
    track(state, socket);
    await waitFor(socket, "secureConnect");
    return leafOf(socket);
  }
  const plain = netConnect({ host: ep.host, port: ep.port });
  track(state, plain);
  await waitFor(plain, "connect");
  const talk = new LineReader(plain);
  const name = ep.protocol.toUpperCase();
  try {
    if (ep.protocol === "smtp") {
      state.stage = "waiting for the SMTP greeting";
      const greeting = await talk.smtpReply();
      if (greeting.code !== "220") throw unexpected(name, "greeting", greeting.text);
      state.stage = "waiting for the reply to EHLO";
      talk.send("EHLO wile.invalid\r\n");
      const ehlo = await talk.smtpReply();
      if (ehlo.code !== "250") throw unexpected(name, "reply to EHLO", ehlo.text);
      if (!/^250[- ]STARTTLS\b/im.test(ehlo.text)) {
        throw new VerifyConnectionError(
          `the SMTP server does not offer STARTTLS (EHLO said: ${printable(ehlo.text, 200)})`,
          false,
        );
      }
      state.stage = "waiting for the reply to STARTTLS";
      talk.send("STARTTLS\r\n");
      const go = await talk.smtpReply();
      if (go.code !== "220") throw unexpected(name, "reply to STARTTLS", go.text);
    } else if (ep.protocol === "imap") {
      state.stage = "waiting for the IMAP greeting";
      const greeting = await talk.line();
      if (!/^\* OK\b/i.test(greeting)) throw unexpected(name, "greeting", greeting);
      state.stage = "waiting for the reply to STARTTLS";
      talk.send("a1 STARTTLS\r\n");
      let reply = await talk.line();
      while (reply.startsWith("* ")) reply = await talk.line();
      if (!/^a1 OK\b/i.test(reply)) throw unexpected(name, "reply to STARTTLS", reply);
    } else {
      state.stage = "waiting for the POP3 greeting";
      const greeting = await talk.line();
      if (!greeting.startsWith("+OK")) throw unexpected(name, "greeting", greeting);
      state.stage = "waiting for the reply to STLS";
      talk.send("STLS\r\n");
      const reply = await talk.line();
      if (!reply.startsWith("+OK")) throw unexpected(name, "reply to STLS", reply);
    }
  } finally {
    talk.detach();
  }
  if (talk.pending() > 0) {
    throw new VerifyConnectionError(`the ${name} server sent data before the TLS handshake`, false);
  }
  state.stage = "doing the TLS handshake after STARTTLS";
  const secure = tlsConnect({ socket: plain, servername, rejectUnauthorized: false });
  track(state, secure);
  await waitFor(secure, "secureConnect");
  return leafOf(secure);
}

/** Keeps the socket for cleanup; a late error (after the answer or a timeout) must not crash the process. */
function track(state: ProbeState, socket: Socket): void {
  socket.on("error", () => {});
  state.sockets.push(socket);
}

function leafOf(socket: TLSSocket): Buffer {
  const cert = socket.getPeerCertificate(false);
  if (!cert?.raw || cert.raw.length === 0) {
    throw new VerifyConnectionError("the server presented no certificate", false);
  }
  return Buffer.from(cert.raw);
}

function waitFor(socket: Socket, event: "connect" | "secureConnect"): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => {
      socket.off(event, onOk);
      reject(err);
    };
    const onOk = () => {
      socket.off("error", onError);
      resolve();
    };
    socket.once(event, onOk);
    socket.once("error", onError);
  });
}

function unexpected(protocol: string, what: string, got: string): VerifyConnectionError {
  return new VerifyConnectionError(
    `unexpected ${protocol} ${what}: ${JSON.stringify(printable(got.replace(/\r?\n$/, ""), 120))} (is this port really ${protocol}?)`,
    false,
  );
}

/** Lines from the plain-text part of a STARTTLS conversation, at most MAX_PLAIN_BYTES in all. */
class LineReader {
  private buf = "";
  private total = 0;
  private failure: Error | undefined;
  private wake: (() => void) | undefined;

  private readonly onData = (chunk: Buffer) => {
    this.total += chunk.length;
    if (this.total > MAX_PLAIN_BYTES) {
      this.fail(
        new VerifyConnectionError(
          `the server sent more than ${MAX_PLAIN_BYTES} bytes before STARTTLS`,
          false,
        ),
      );
      return;
    }
    this.buf += chunk.toString("latin1");
    this.notify();
  };
  private readonly onError = (err: Error) => this.fail(err);
  private readonly onEnd = () =>
    this.fail(new VerifyConnectionError("the server closed the connection before the TLS handshake", true));

  constructor(private readonly socket: Socket) {
    socket.on("data", this.onData);
    socket.on("error", this.onError);
    socket.on("end", this.onEnd);
    socket.on("close", this.onEnd);
  }

  send(text: string): void {
    this.socket.write(text);
  }

  /** The next line, without its line ending. */
  async line(): Promise<string> {
    for (;;) {
      const nl = this.buf.indexOf("\n");
      if (nl >= 0) {
        const line = this.buf.slice(0, nl).replace(/\r$/, "");
        this.buf = this.buf.slice(nl + 1);
        return line;
      }
      if (this.failure) throw this.failure;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
  }

  /** An SMTP reply, multi-line ("250-...", "250 ...") joined with "\n". */
  async smtpReply(): Promise<{ code: string; text: string }> {
    const lines: string[] = [];
    for (;;) {
      const line = await this.line();
      lines.push(line);
      const m = /^(\d{3})([ -]|$)/.exec(line);
      if (!m) throw unexpected("SMTP", "reply", line);
      if (m[2] !== "-") return { code: m[1] as string, text: lines.join("\n") };
    }
  }

  /** Bytes received but not read as lines. */
  pending(): number {
    return this.buf.length;
  }

  detach(): void {
    this.socket.off("data", this.onData);
    this.socket.off("error", this.onError);
    this.socket.off("end", this.onEnd);
    this.socket.off("close", this.onEnd);
  }

  private fail(err: Error): void {
    if (!this.failure) this.failure = err;
    this.notify();
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}

function networkReason(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  switch (e?.code) {
    case "ECONNREFUSED":
      return "connection refused (is the service running and listening there?)";
    case "ECONNRESET":
      return "the connection was reset";
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return `cannot resolve the host name (${e.code})`;
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return `no route to the host (${e.code})`;
    case "ETIMEDOUT":
      return "the connection timed out";
    default:
      return printable(e?.message ?? String(err), 300);
  }
}

function formatSeconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`;
}

export interface VerifyOptions {
  /** For messages: "dovecot", "nginx". */
  service: string;
  endpoint: Endpoint;
  /** Sent as SNI (unless an IP address). */
  serverName: string;
  expectedDer: Buffer;
  /** As CertInfo.serialHex, for the success message. */
  expectedSerialHex: string;
  /** How long a mismatch or a refused connection is retried (default VERIFY_WAIT_MS, every 500 ms). */
  retryForMs?: number;
  /** Appended to a mismatch message: "does ssl_cert point at /etc/dovecot/private/x.pem?". */
  hint?: string;
  logger: Logger;
  /** Per connection attempt (default 5 s). */
  timeoutMs?: number;
}

const RETRY_INTERVAL_MS = 500;

/**
 * Checks that the service at `endpoint` serves `expectedDer`, retrying a mismatch (and a refused or
 * timed-out connection) for `retryForMs`. Throws DeployError "<service> on <endpoint> still serves
 * serial X (expires D) after reload; <hint>" or "cannot check <service> on <endpoint>: <reason>".
 */
export async function verifyServed(opts: VerifyOptions): Promise<void> {
  const where = `${opts.service} on ${describeEndpoint(opts.endpoint)}`;
  const deadline = Date.now() + (opts.retryForMs ?? VERIFY_WAIT_MS);
  const via = opts.endpoint.protocol === "tls" ? "" : ` (${opts.endpoint.protocol.toUpperCase()} STARTTLS)`;
  opts.logger.debug(`checking the certificate served by ${where}${via}, SNI ${opts.serverName}`);
  for (;;) {
    let served: Buffer | undefined;
    let failure: VerifyConnectionError | undefined;
    try {
      served = await fetchServedCertificate(opts.endpoint, opts.serverName, opts.timeoutMs ?? 5000);
    } catch (err) {
      failure =
        err instanceof VerifyConnectionError ? err : new VerifyConnectionError(networkReason(err), true);
    }
    if (served?.equals(opts.expectedDer)) {
      opts.logger.info(`${where} serves the new certificate (serial ${opts.expectedSerialHex})`);
      return;
    }
    const retry = Date.now() + RETRY_INTERVAL_MS < deadline && (failure === undefined || failure.retryable);
    if (!retry) {
      if (failure) {
        throw new DeployError(`cannot check ${where}${via}: ${failure.message}`, {
          hint: "The new certificate is stored and was deployed; check the service, then run wile deploy NAME again.",
        });
      }
      throw mismatch(where, served as Buffer, opts.hint);
    }
    await new Promise((r) => setTimeout(r, RETRY_INTERVAL_MS));
  }
}

function mismatch(where: string, served: Buffer, hint: string | undefined): DeployError {
  let what: string;
  try {
    const info = parseCertificate(served);
    what = `serial ${info.serialHex} (expires ${info.notAfter.toISOString().slice(0, 10)})`;
  } catch {
    what = "a certificate that cannot be read";
  }
  return new DeployError(`${where} still serves ${what} after reload${hint ? `; ${hint}` : ""}`, {
    hint: "The new certificate is stored; fix the service's configuration, then run wile deploy NAME again.",
  });
}

/** verifyServed for the certificate a target has just deployed (what every target's deploy ends with). */
export function verifyDeployed(
  ctx: DeployContext,
  service: string,
  endpoint: Endpoint,
  hint: string,
): Promise<void> {
  return verifyServed({
    service,
    endpoint,
    serverName: ctx.serverName,
    expectedDer: ctx.leafDer,
    expectedSerialHex: ctx.serialHex,
    retryForMs: ctx.verifyWaitMs,
    hint,
    logger: ctx.logger,
  });
}

const VERIFY_OFF = new Set(["false", "no", "off", "none"]);

/**
 * A target's `verify` setting: HOST[:PORT[:PROTO]], kept as "host:port:proto", or false for no
 * check (`--no-<kind>-verify` reaches a string option as "false"; "no", "off", "none" work too).
 * With `fallback`, an absent setting checks that endpoint; without, it checks nothing.
 */
export function verifySetting(o: {
  flag?: string;
  arg?: string;
  help: string;
  defaults: { port: number; protocol: VerifyProtocol };
}): Setting<string | false> {
  return {
    ...o,
    arg: o.arg ?? "HOST[:PORT[:PROTO]]",
    input: "value",
    parse(v) {
      if (v === false) return false;
      if (typeof v !== "string") throw new Error("must be HOST[:PORT[:PROTOCOL]] or false");
      if (VERIFY_OFF.has(v.trim().toLowerCase())) return false;
      try {
        return formatEndpoint(parseEndpoint(v, o.defaults));
      } catch (err) {
        throw new Error(`must be HOST[:PORT[:PROTOCOL]] (${(err as Error).message})`);
      }
    },
  };
}

/** The endpoint a verify setting names, or undefined when it is off or absent. */
export function verifyEndpoint(
  verify: string | false | undefined,
  defaults: { port: number; protocol: VerifyProtocol },
): Endpoint | undefined {
  return verify === false || verify === undefined ? undefined : parseEndpoint(verify, defaults);
}
