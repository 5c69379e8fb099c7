/**
 * A broken network between wile and a TestEnv's Pebble: an HTTPS proxy on 127.0.0.1 (Pebble's
 * listener certificate, see pebble-forward.ts) that forwards each request to Pebble unchanged and
 * can, on command,
 *   - reset the connection at one request of the run, either before the request reaches Pebble, or
 *     after Pebble answered (Pebble did the work, the client never hears). The request is named by
 *     its kind and occurrence ("the 2nd POST /my-order/"), as in a clean run's requestKeys(): by
 *     plain index the same request would not be hit every time, since the number of order polls
 *     varies with Pebble's timing;
 *   - drop requests at random, one in `oneIn`, each before or after forwarding, from a seeded
 *     generator so that a failure can be replayed with the same seed;
 *   - add latency to every request.
 * A reset is a TCP RST (resetAndDestroy on the socket under TLS), what a client sees when a NAT or
 * load balancer forgets the connection. Every request is counted and recorded.
 */
import type { Socket } from "node:net";
import { endToEndHeaders, pebbleForwarder, servePebbleCert } from "./pebble-forward";
import type { TestEnv } from "./testenv";

export type Fault =
  | { kind: "none" }
  | { kind: "reset"; key: string; nth: number; when: "before" | "after" }
  | { kind: "drop"; oneIn: number; seed: number }
  | { kind: "latency"; ms: number };

export interface FaultRequest {
  /** 1-based position in the run. */
  index: number;
  method: string;
  path: string;
  /** requestKey(): method and the first path segment, e.g. "POST /my-order/". */
  key: string;
  /** What the proxy did to it: forwarded with Pebble's status, or reset before/after forwarding. */
  outcome: number | "reset-before" | "reset-after";
}

export interface FaultProxy {
  /** https://127.0.0.1:P/dir (same path as Pebble's). */
  directoryUrl: string;
  /** Requests since the last setFault(). */
  requests: FaultRequest[];
  /** Faults those requests got. */
  faults(): number;
  /** Starts a new run: the fault to apply, request numbering from 1 again. */
  setFault(fault: Fault): void;
  stop(): Promise<void>;
}

export async function startFaultProxy(env: TestEnv): Promise<FaultProxy> {
  const upstream = new URL(env.directoryUrl);
  const { forward, close } = pebbleForwarder(env, "fault-proxy");
  let fault: Fault = { kind: "none" };
  let random = () => 1;
  let requests: FaultRequest[] = [];

  /** What to do with the request just recorded: forward, or reset before/after forwarding. */
  const decide = (rec: FaultRequest): "forward" | "reset-before" | "reset-after" => {
    if (fault.kind === "reset" && fault.key === rec.key) {
      const nth = requests.filter((r) => r.key === rec.key).length;
      if (nth === fault.nth) return `reset-${fault.when}`;
    }
    if (fault.kind === "drop" && random() < 1 / fault.oneIn) {
      return random() < 0.5 ? "reset-before" : "reset-after";
    }
    return "forward";
  };

  const server = await servePebbleCert(env, "fault-proxy", async (req, body, res) => {
    const method = req.method ?? "GET";
    const path = req.url ?? "/";
    const rec: FaultRequest = {
      index: requests.length + 1,
      method,
      path,
      key: requestKey(method, path),
      outcome: 0,
    };
    requests.push(rec);
    const action = decide(rec);
    const delay = fault.kind === "latency" ? fault.ms : 0;
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    if (action === "reset-before") {
      rec.outcome = action;
      return reset(req.socket);
    }
    const up = await forward(
      rec.method,
      rec.path,
      { ...endToEndHeaders(req.headers), host: req.headers.host ?? upstream.host },
      body.length > 0 ? body : null,
    );
    if (action === "reset-after") {
      rec.outcome = action;
      return reset(req.socket);
    }
    rec.outcome = up.status;
    res.writeHead(up.status, { ...endToEndHeaders(up.headers), "content-length": String(up.body.length) });
    res.end(rec.method === "HEAD" ? undefined : up.body);
  });

  return {
    directoryUrl: `${server.origin}${upstream.pathname}`,
    get requests() {
      return requests;
    },
    faults: () => requests.filter((r) => typeof r.outcome === "string").length,
    setFault: (f) => {
      fault = f;
      requests = [];
      random = f.kind === "drop" ? mulberry32(f.seed) : () => 1;
    },
    stop: async () => {
      await server.stop();
      close();
    },
  };
}

/** "POST /my-order/" for POST /my-order/abc: what kind of request it is, without the resource id. */
export function requestKey(method: string, path: string): string {
  const segments = path.split("?")[0]?.split("/") ?? [];
  return `${method} /${segments[1] ?? ""}${segments.length > 2 ? "/" : ""}`;
}

/** For each request of a (clean) run, its key and occurrence: the faults that hit exactly that request. */
export function requestKeys(requests: FaultRequest[]): Array<{ key: string; nth: number }> {
  const seen = new Map<string, number>();
  return requests.map((r) => {
    const nth = (seen.get(r.key) ?? 0) + 1;
    seen.set(r.key, nth);
    return { key: r.key, nth };
  });
}

/** A TCP RST on the connection under the TLS socket (a plain destroy where that is not possible). */
function reset(socket: Socket): void {
  const tcp = (socket as Socket & { _parent?: Socket })._parent ?? socket;
  try {
    tcp.resetAndDestroy();
  } catch {
    tcp.destroy();
  }
  socket.destroy();
}

/** A small seeded generator (mulberry32): the same seed gives the same drops. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
