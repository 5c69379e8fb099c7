/**
 * A hostile or broken CA: an HTTPS proxy in front of a TestEnv's Pebble (pebble-proxy.ts) that
 * forwards every request, except those of the kind the test set a misbehaviour for, which the
 * misbehaviour answers instead (rewriting Pebble's answer, or making up its own).
 *
 * Request kinds are told apart by Pebble 2.4.0's paths: the directory, newNonce, newAccount and
 * newOrder URLs from its directory, /authZ/, /chalZ/, /finalize-order/, /my-order/ (order polls)
 * and /certZ/.
 *
 * The acts below are the misbehaviours the hostile-ca e2e suite uses: a JSON rewrite, a made-up
 * answer (status, headers, body), 50 MB bodies, endless chunked streams, headers then silence, a
 * body that stops half way, redirects.
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import { type PebbleProxy, startPebbleProxy, type Upstream } from "./pebble-proxy";
import type { TestEnv } from "./testenv";

export type RequestKind =
  | "directory"
  | "newNonce"
  | "newAccount"
  | "newOrder"
  | "authz"
  | "challenge"
  | "finalize"
  | "order"
  | "certificate"
  | "other";

export interface ActContext {
  req: IncomingMessage;
  res: ServerResponse;
  body: Buffer;
  kind: RequestKind;
  /** https://127.0.0.1:P of this proxy. */
  origin: string;
  /** Pebble's answer to this request (URLs rewritten to the proxy). */
  forward(): Promise<Upstream>;
  /** A fresh nonce from Pebble, so that the client can go on signing after a made-up answer. */
  nonce(): Promise<string | undefined>;
  /** Sends an answer (content-length set; no body for HEAD). */
  reply(up: Upstream): void;
}

/** Answers one request of the kind it is set for. */
export type Act = (c: ActContext) => Promise<void>;

export interface HostileCa {
  /** https://127.0.0.1:P/dir */
  directoryUrl: string;
  origin: string;
  /** For --ca-bundle: trusts the proxy and Pebble. */
  caBundle: string;
  /** From now on requests of `kind` ("*" = every kind) get `act`; others are forwarded. */
  set(kind: RequestKind | RequestKind[] | "*", act: Act): void;
  /** Forward everything again; returns how many requests the act answered. */
  clear(): number;
  stop(): Promise<void>;
}

export async function startHostileCa(env: TestEnv): Promise<HostileCa> {
  let plan: { kinds: RequestKind[] | "*"; act: Act } | undefined;
  let acted = 0;
  const paths = { directory: "", newNonce: "", newAccount: "", newOrder: "" };

  const kindOf = (req: IncomingMessage): RequestKind => {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    for (const k of ["directory", "newNonce", "newAccount", "newOrder"] as const) {
      if (path === paths[k]) return k;
    }
    const prefixes: Array<[string, RequestKind]> = [
      ["/nonce-plz", "newNonce"],
      ["/authZ/", "authz"],
      ["/chalZ/", "challenge"],
      ["/finalize-order/", "finalize"],
      ["/my-order/", "order"],
      ["/certZ/", "certificate"],
    ];
    return prefixes.find(([p]) => path.startsWith(p))?.[1] ?? "other";
  };

  const handle = async (req: IncomingMessage, body: Buffer, res: ServerResponse): Promise<void> => {
    const kind = kindOf(req);
    const current = plan;
    if (!current || (current.kinds !== "*" && !current.kinds.includes(kind))) {
      return proxy.reply(req, res, await proxy.forward(req, body));
    }
    acted++;
    await current.act({
      req,
      res,
      body,
      kind,
      origin: proxy.origin,
      forward: () => proxy.forward(req, body),
      nonce: async () => {
        const host = req.headers.host ?? new URL(proxy.origin).host;
        const r = await proxy.forwardRaw("HEAD", paths.newNonce, { host }, null);
        const n = r.headers["replay-nonce"];
        return Array.isArray(n) ? n[0] : n;
      },
      reply: (up) => proxy.reply(req, res, up),
    });
  };

  const proxy: PebbleProxy = await startPebbleProxy(env, handle);
  const dir = await proxy.forwardRaw("GET", proxy.directoryPath, { host: new URL(proxy.origin).host }, null);
  const d = JSON.parse(dir.body.toString("utf8")) as Record<string, string>;
  paths.directory = proxy.directoryPath;
  for (const k of ["newNonce", "newAccount", "newOrder"] as const)
    paths[k] = new URL(d[k] as string).pathname;

  return {
    directoryUrl: `${proxy.origin}${proxy.directoryPath}`,
    origin: proxy.origin,
    caBundle: env.caBundle,
    set: (kind, act) => {
      plan = { kinds: kind === "*" || Array.isArray(kind) ? kind : [kind], act };
      acted = 0;
    },
    clear: () => {
      plan = undefined;
      return acted;
    },
    stop: () => proxy.stop(),
  };
}

// ---------------------------------------------------------------------------------------------
// Acts

/** Pebble's answer with its JSON body replaced by what `change` makes of it (a copy to edit). */
export function rewriteJson(change: (body: Record<string, unknown>, origin: string) => unknown): Act {
  return async (c) => {
    const up = await c.forward();
    if (up.status >= 300) return c.reply(up);
    const parsed = JSON.parse(up.body.toString("utf8")) as Record<string, unknown>;
    const out = change(parsed, c.origin);
    c.reply({ ...up, body: Buffer.from(typeof out === "string" ? out : JSON.stringify(out)) });
  };
}

/** Pebble's answer with other headers (null removes one). */
export function withHeaders(headers: Record<string, string | null>): Act {
  return async (c) => {
    const up = await c.forward();
    const h: Record<string, unknown> = { ...up.headers };
    for (const [k, v] of Object.entries(headers)) {
      if (v === null) delete h[k];
      else h[k] = v;
    }
    c.reply({ ...up, headers: h as Upstream["headers"] });
  };
}

/** A made-up answer, with a fresh Replay-Nonce. */
export function answer(status: number, body: string, headers: OutgoingHttpHeaders = {}): Act {
  return async (c) => {
    const nonce = await c.nonce();
    c.reply({
      status,
      headers: { ...(nonce ? { "replay-nonce": nonce } : {}), ...headers } as Upstream["headers"],
      body: Buffer.from(body),
    });
  };
}

/** An ACME problem document. */
export function problem(
  status: number,
  type: string,
  detail: string,
  headers: OutgoingHttpHeaders = {},
): Act {
  return answer(status, JSON.stringify({ type: `urn:ietf:params:acme:error:${type}`, detail }), {
    "content-type": "application/problem+json",
    ...headers,
  });
}

/** A redirect to `to` (an absolute URL or a path on the proxy). */
export function redirect(status: 301 | 302 | 307, to: string): Act {
  return async (c) =>
    c.reply({
      status,
      headers: { location: to.startsWith("/") ? `${c.origin}${to}` : to, "content-type": "text/html" },
      body: Buffer.from(`<a href="${to}">moved</a>`),
    });
}

/** `bytes` of JSON-ish filler under a JSON content type, with a content-length. */
export function hugeBody(bytes: number): Act {
  return async (c) => {
    c.res.writeHead(200, { "content-type": "application/json", "content-length": String(bytes) });
    streamFiller(c.res, bytes);
  };
}

/** A chunked answer that never ends (as fast as the client reads). */
export function endlessStream(): Act {
  return async (c) => {
    c.res.writeHead(200, { "content-type": "application/json" });
    streamFiller(c.res, Number.POSITIVE_INFINITY);
  };
}

/** Headers, then nothing: the connection stays open until the client gives up. */
export function headersThenSilence(): Act {
  return async (c) => {
    c.res.writeHead(200, { "content-type": "application/json", "content-length": "1000" });
    c.res.flushHeaders();
  };
}

/** Pebble's answer cut half way, then the connection is closed. */
export function halfBody(): Act {
  return async (c) => {
    const up = await c.forward();
    c.res.writeHead(up.status, { ...up.headers, "content-length": String(up.body.length) });
    c.res.write(up.body.subarray(0, Math.floor(up.body.length / 2)), () => c.res.destroy());
  };
}

function streamFiller(res: ServerResponse, total: number): void {
  const chunk = Buffer.alloc(64 * 1024, 0x20);
  chunk[0] = 0x7b; // "{" then spaces: JSON that never closes
  let sent = 0;
  const pump = () => {
    while (sent < total && !res.destroyed) {
      const n = Math.min(chunk.length, total - sent);
      sent += n;
      if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
        res.once("drain", pump);
        return;
      }
    }
    if (sent >= total) res.end();
  };
  pump();
}
