/**
 * tls-alpn-01 (RFC 8737): a TLS listener that, for the time of the order, answers the CA's
 * handshake (ALPN "acme-tls/1", SNI = the name being validated) with a self-signed certificate
 * whose only subjectAltName is that name and which carries the critical id-pe-acmeIdentifier
 * extension holding SHA-256(key authorization). IP addresses (RFC 8738 6) are asked for by the
 * reverse-DNS name as SNI (4.3.2.1.in-addr.arpa, nibbles under ip6.arpa) and answered with an
 * iPAddress subjectAltName.
 *
 * Everything else is refused: a handshake with an unknown SNI or none fails (no certificate is
 * configured for it); one offering other ALPN protocols gets the fatal no_application_protocol
 * alert (Node >= 19 sends it when ALPNProtocols and the client's list do not meet); a client that
 * offers no ALPN at all completes the handshake (TLS cannot refuse that from the SNI callback) and
 * is disconnected at once.
 */
import { createHash, generateKeyPairSync, type KeyObject, randomBytes, sign } from "node:crypto";
import type { Socket } from "node:net";
import { connect, createSecureContext, createServer, type SecureContext, type Server } from "node:tls";
import type { ChallengeContext, Solver } from "../acme/solver";
import type { Identifier } from "../acme/types";
import { extension, subjectAltName } from "../crypto/csr";
import * as der from "../crypto/der";
import { ipToBytes } from "../crypto/ip";
import { publicKeyDer } from "../crypto/keys";
import { toPem } from "../crypto/pem";
import { WileError } from "../util/errors";
import type { Logger } from "../util/log";
import { printable } from "../util/text";
import { hostPort, listenError } from "./listen-errors";
import { findResolve, type ResolveRule } from "./resolve";

export const ACME_TLS_ALPN = "acme-tls/1";
/** id-pe-acmeIdentifier (RFC 8737 6.1). */
export const ACME_IDENTIFIER_OID = "1.3.6.1.5.5.7.1.31";
export const DEFAULT_TLS_PORT = 443;

const OID = {
  commonName: "2.5.4.3",
  subjectAltName: "2.5.29.17",
  ecdsaWithSha256: "1.2.840.10045.4.3.2",
};

/** The SNI a validator sends for `identifier`: the name itself, or the reverse-DNS name of an IP (RFC 8738 6). */
export function sniName(identifier: Identifier): string {
  if (identifier.type === "dns") return identifier.value.toLowerCase();
  const bytes = ipToBytes(identifier.value);
  if (bytes.length === 4) return `${[...bytes].reverse().join(".")}.in-addr.arpa`;
  const nibbles = [...bytes].flatMap((b) => [b >> 4, b & 0xf]);
  return `${nibbles
    .reverse()
    .map((n) => n.toString(16))
    .join(".")}.ip6.arpa`;
}

/**
 * DER of the self-signed challenge certificate for `identifier` (RFC 8737 3): subjectAltName with
 * only the identifier, and the critical acmeIdentifier extension whose extnValue is the DER of
 * `Authorization ::= OCTET STRING (SIZE (32))`, the SHA-256 digest of the key authorization.
 * Valid from a day ago to a week ahead (the validator ignores the dates; a clock off by hours does not matter).
 */
export function challengeCertificate(
  identifier: Identifier,
  keyAuthorization: string,
  key: KeyObject,
  now = new Date(),
): Buffer {
  const day = 86_400_000;
  const digest = createHash("sha256").update(keyAuthorization, "utf8").digest();
  const name = der.sequence(
    der.set(der.sequence(der.oid(OID.commonName), der.utf8String("wile tls-alpn-01 challenge"))),
  );
  const algorithm = der.sequence(der.oid(OID.ecdsaWithSha256));
  const serial = randomBytes(16);
  serial[0] = (serial[0] ?? 0) & 0x7f;
  const tbs = der.sequence(
    der.contextSpecific(0, der.integer(2), true),
    der.integer(serial),
    algorithm,
    name,
    der.sequence(der.utcTime(new Date(now.getTime() - day)), der.utcTime(new Date(now.getTime() + 7 * day))),
    name,
    publicKeyDer(key),
    der.contextSpecific(
      3,
      der.sequence(
        extension(OID.subjectAltName, false, subjectAltName([identifier])),
        extension(ACME_IDENTIFIER_OID, true, der.octetString(digest)),
      ),
      true,
    ),
  );
  const signature = sign("sha256", tbs, { key, dsaEncoding: "der" });
  return der.sequence(tbs, algorithm, der.bitString(signature));
}

export interface TlsAlpnSolverOptions {
  port: number;
  /** Listen on this address only; all addresses when absent. */
  address?: string;
  logger: Logger;
  /**
   * Connect to NAME:443 (or where a --resolve rule says) as the CA will, before the CA is told to
   * validate; false to skip (--no-preflight).
   */
  preflight?: { resolve: ResolveRule[]; timeoutMs?: number } | false;
}

/**
 * One TLS server on an address and port, shared by the solvers of one process: `wile cron` and
 * `wile renew --all` renew several certificates at once, and those proved with tls-alpn-01 usually
 * use the same port. Each solver adds and removes its own names; the last one to leave closes it.
 */
class Listener {
  /** SNI name -> the challenge's secure context and the solver that put it there. */
  readonly contexts = new Map<string, { context: SecureContext; cert: Buffer; owner: TlsAlpnSolver }>();
  users = 0;
  private readonly sockets = new Set<Socket>();
  readonly server: Server;

  constructor(logger: Logger) {
    this.server = createServer({
      ALPNProtocols: [ACME_TLS_ALPN],
      SNICallback: (servername, cb) => {
        const entry = this.contexts.get(servername.toLowerCase());
        if (entry) cb(null, entry.context);
        else cb(new Error(`no tls-alpn-01 challenge for ${servername}`));
      },
    });
    this.server.on("secureConnection", (socket) => {
      // A client without ALPN got through the handshake: it is not a validator.
      if (socket.alpnProtocol !== ACME_TLS_ALPN) {
        socket.destroy();
        return;
      }
      logger.debug(
        `tls-alpn-01: answered ${printable(socket.servername || "(no SNI)", 255)} from ${socket.remoteAddress}`,
      );
      socket.on("error", () => {});
      // The validator closes after the handshake; nothing is read or written.
      socket.end();
    });
    // Every connection, handshake done or not, so that close() does not wait for a slow client.
    this.server.on("connection", (socket: Socket) => {
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
    });
    this.server.on("tlsClientError", (err, socket) => {
      // The message may carry the client's SNI: untrusted text.
      logger.debug(
        `tls-alpn-01: refused a handshake from ${socket.remoteAddress}: ${printable(err.message, 300)}`,
      );
    });
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** "address:port" -> the listener there (port 0, which picks a new port each time, is never shared). */
const listeners = new Map<string, Promise<Listener>>();

/**
 * The tls-alpn-01 solver. listen() takes the port (before the order is created, so a taken or
 * forbidden port is a usage error with nothing contacted); present() adds the name's certificate,
 * cleanup() removes it; close() leaves the listener, which closes when no solver uses it.
 */
export class TlsAlpnSolver implements Solver {
  readonly type = "tls-alpn-01";
  private readonly key = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
  private listener: Listener | undefined;

  constructor(private readonly opts: TlsAlpnSolverOptions) {}

  private get where(): string {
    return `${this.opts.address ?? "*"}:${this.opts.port}`;
  }

  /** Takes the port; a UsageError (exit 2) when it is in use, privileged or the address is not this machine's. */
  async listen(): Promise<void> {
    if (this.listener) return;
    const { port, address, logger } = this.opts;
    const key = this.where;
    let pending = port === 0 ? undefined : listeners.get(key);
    if (!pending) {
      pending = openListener(port, address, logger);
      if (port !== 0) {
        listeners.set(key, pending);
        pending.catch(() => listeners.delete(key));
      }
    }
    const listener = await pending;
    listener.users++;
    this.listener = listener;
    logger.info(`Listening for tls-alpn-01 validation on ${key}`);
  }

  /** The port listened on (the one picked by the system when port 0 was asked for). */
  port(): number {
    const a = this.listener?.server.address();
    return typeof a === "object" && a ? a.port : this.opts.port;
  }

  async present(ctx: ChallengeContext): Promise<void> {
    if (!this.listener) throw new Error("tls-alpn-01: present() before listen()");
    if (ctx.wildcard) {
      throw new WileError(`*.${ctx.identifier.value} cannot be proved with tls-alpn-01`, {
        hint: "CAs validate wildcard names with DNS only: use --dns or --challenge dns-persist-01 for it.",
      });
    }
    const name = sniName(ctx.identifier);
    const cert = challengeCertificate(ctx.identifier, ctx.keyAuthorization, this.key);
    const context = createSecureContext({
      key: this.key.export({ type: "pkcs8", format: "pem" }),
      cert: toPem("CERTIFICATE", cert),
    });
    this.listener.contexts.set(name, { context, cert, owner: this });
    this.opts.logger.debug(`tls-alpn-01: serving the challenge certificate for ${name}`);
  }

  /**
   * Connects to the name's port 443 (or a --resolve rule's address and port) with ALPN acme-tls/1,
   * as the CA will. Another certificate, or a TLS server that refuses acme-tls/1, is a WileError:
   * the connection does not reach this listener (a proxy that does not route acme-tls/1, a forward
   * to the wrong port). No answer at all is only a warning: NAT often does not loop back.
   */
  async preflight(ctx: ChallengeContext): Promise<void> {
    const opts = this.opts.preflight;
    if (!opts || !this.listener) return;
    const { type, value } = ctx.identifier;
    const name = sniName(ctx.identifier);
    const rule = findResolve(opts.resolve, value);
    const host = rule?.address ?? value;
    const port = rule?.port ?? 443;
    const where = hostPort(host, port);
    const got = await handshake(host, port, name, opts.timeoutMs ?? 5000);
    const expected = this.listener.contexts.get(name)?.cert;
    if (got.kind === "certificate" && expected && got.der.equals(expected)) {
      this.opts.logger.debug(
        `Preflight for ${value}: ${where} answers acme-tls/1 with the challenge certificate`,
      );
      return;
    }
    if (got.kind === "unreachable") {
      this.opts.logger.warn(
        `Preflight for ${value}: could not complete a TLS handshake with ${where} (${got.reason}); this may be NAT without hairpinning, going on.`,
      );
      return;
    }
    const answered =
      got.kind === "refused"
        ? "refuses ALPN acme-tls/1 (a TLS server that is not wile's listener)"
        : `answers acme-tls/1 with another certificate (${printable(got.describe, 200)})`;
    throw new WileError(
      `Preflight for ${value} failed: ${where} ${answered}, so the CA would not reach wile's listener on ${this.where}.`,
      {
        hint:
          `Make the CA's connections to ${type === "ip" ? value : `${value}'s address`} port 443 reach wile's --tls-port ${this.opts.port}: ` +
          "forward the port, or route ALPN acme-tls/1 to it in nginx (stream, ssl_preread) or HAProxy (req.ssl_alpn) as docs/http-01.md shows; or --no-preflight if you are sure.",
      },
    );
  }

  async cleanup(ctx: ChallengeContext): Promise<void> {
    const name = sniName(ctx.identifier);
    if (this.listener?.contexts.get(name)?.owner === this) this.listener.contexts.delete(name);
  }

  /** Leaves the listener (closed, and its connections dropped, when no other solver uses it); safe to call twice. */
  async close(): Promise<void> {
    const listener = this.listener;
    if (!listener) return;
    this.listener = undefined;
    for (const [name, entry] of listener.contexts) if (entry.owner === this) listener.contexts.delete(name);
    if (--listener.users > 0) return;
    if (this.opts.port !== 0) listeners.delete(this.where);
    await listener.close();
    this.opts.logger.debug(`tls-alpn-01: listener on ${this.where} closed`);
  }
}

/** A new Listener bound to `address` (all addresses when absent) and `port`; listenError's UsageError when it cannot be. */
async function openListener(port: number, address: string | undefined, logger: Logger): Promise<Listener> {
  const listener = new Listener(logger);
  const { server } = listener;
  try {
    // All addresses: IPv6 and IPv4 on one socket, or IPv4 only on a machine without IPv6.
    await bind(server, port, address ?? "::").catch((err: NodeJS.ErrnoException) => {
      if (address !== undefined || (err.code !== "EAFNOSUPPORT" && err.code !== "EADDRNOTAVAIL")) throw err;
      return bind(server, port, "0.0.0.0");
    });
  } catch (err) {
    throw await listenError(err, port, address, {
      what: "tls-alpn-01 (--alpn)",
      portOption: "--tls-port",
      caPort: 443,
      addressOption: "--tls-address",
      instead:
        "or route the CA's acme-tls/1 connections from the server on that port to wile (nginx stream or HAProxy, see docs/http-01.md)",
    });
  }
  server.on("error", (err) => logger.warn(`tls-alpn-01 listener: ${err.message}`));
  return listener;
}

type HandshakeOutcome =
  | { kind: "certificate"; der: Buffer; describe: string }
  | { kind: "refused" }
  | { kind: "unreachable"; reason: string };

/** A TLS handshake with host:port offering only ALPN acme-tls/1 for SNI `servername`. */
function handshake(
  host: string,
  port: number,
  servername: string,
  timeoutMs: number,
): Promise<HandshakeOutcome> {
  return new Promise((resolve) => {
    const socket = connect({
      host,
      port,
      servername,
      ALPNProtocols: [ACME_TLS_ALPN],
      rejectUnauthorized: false,
    });
    const done = (outcome: HandshakeOutcome) => {
      socket.destroy();
      resolve(outcome);
    };
    socket.setTimeout(timeoutMs, () => done({ kind: "unreachable", reason: `no answer in ${timeoutMs} ms` }));
    socket.on("secureConnect", () => {
      const peer = socket.getPeerCertificate();
      const names = peer.subjectaltname ?? "no subjectAltName";
      done({
        kind: "certificate",
        der: peer.raw ?? Buffer.alloc(0),
        describe: `subject ${peer.subject?.CN ?? "?"}, ${names}`,
      });
    });
    socket.on("error", (err: NodeJS.ErrnoException) =>
      done(
        err.code === "ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL"
          ? { kind: "refused" }
          : { kind: "unreachable", reason: printable(err.code ?? err.message, 120) },
      ),
    );
  });
}

function bind(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ port, host }, () => {
      server.off("error", reject);
      resolve();
    });
  });
}
