/**
 * A broken network between wile and a TestEnv's Pebble: an HTTPS proxy on 127.0.0.1 (Pebble's
 * listener certificate, see pebble-proxy.ts) that forwards each request to Pebble unchanged and
 * can, on command,
 *   - reset the connection at step i of the run, either before the request reaches Pebble, or
 *     after Pebble answered (Pebble did the work, the client never hears). Steps number the
 *     requests from 1, except that a poll repeated at once (a POST-as-GET of the URL just asked)
 *     is the same step: how often an order is polled varies with Pebble's timing, and by plain
 *     index the same request of a clean run would not be hit every time;
 *   - cut the network from step i on: that request is reset after Pebble answered, every later one
 *     before it reaches Pebble (a run that cannot complete, failing at that point);
 *   - drop requests at random, one in `oneIn`, each before or after forwarding, from a seeded
 *     generator so that a failure can be replayed with the same seed;
 *   - add latency to every request.
 * A reset is a TCP RST (resetAndDestroy on the socket under TLS), what a client sees when a NAT or
 * load balancer forgets the connection. Every request is counted and recorded.
 */
import type { Socket } from "node:net";
import { type PebbleProxy, startPebbleProxy } from "./pebble-proxy";
import type { TestEnv } from "./testenv";

export type Fault =
  | { kind: "none" }
  | { kind: "reset"; step: number; when: "before" | "after" }
  | { kind: "outage"; step: number }
  | { kind: "drop"; oneIn: number; seed: number }
  | { kind: "latency"; ms: number };

export interface FaultRequest {
  /** 1-based position in the run. */
  index: number;
  /** 1-based step: as index, but a poll repeated at once counts as the step it repeats. */
  step: number;
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
  let fault: Fault = { kind: "none" };
  let random = () => 1;
  let requests: FaultRequest[] = [];

  /** What to do with the request just recorded: forward, or reset before/after forwarding. */
  const decide = (rec: FaultRequest, repeated: boolean): "forward" | "reset-before" | "reset-after" => {
    if (fault.kind === "reset" && fault.step === rec.step && !repeated) return `reset-${fault.when}`;
    if (fault.kind === "outage" && rec.step >= fault.step) {
      return rec.step === fault.step && !repeated ? "reset-after" : "reset-before";
    }
    if (fault.kind === "drop" && random() < 1 / fault.oneIn) {
      return random() < 0.5 ? "reset-before" : "reset-after";
    }
    return "forward";
  };

  const proxy: PebbleProxy = await startPebbleProxy(env, async (req, body, res) => {
    const method = req.method ?? "GET";
    const path = req.url ?? "/";
    const last = requests[requests.length - 1];
    // A poll asked again at once after an answer; a request sent again after a reset is a new step.
    const repeated =
      last !== undefined &&
      typeof last.outcome === "number" &&
      method === "POST" &&
      last.path === path &&
      isPostAsGet(body);
    const rec: FaultRequest = {
      index: requests.length + 1,
      step: (last?.step ?? 0) + (repeated ? 0 : 1),
      method,
      path,
      key: requestKey(method, path),
      outcome: 0,
    };
    requests.push(rec);
    const action = decide(rec, repeated);
    const delay = fault.kind === "latency" ? fault.ms : 0;
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    if (action === "reset-before") {
      rec.outcome = action;
      return reset(req.socket);
    }
    const up = await proxy.forward(req, body);
    if (action === "reset-after") {
      rec.outcome = action;
      return reset(req.socket);
    }
    rec.outcome = up.status;
    proxy.reply(req, res, up);
  });

  return {
    directoryUrl: `${proxy.origin}${upstream.pathname}`,
    get requests() {
      return requests;
    },
    faults: () => requests.filter((r) => typeof r.outcome === "string").length,
    setFault: (f) => {
      fault = f;
      requests = [];
      random = f.kind === "drop" ? mulberry32(f.seed) : () => 1;
    },
    stop: () => proxy.stop(),
  };
}

/** "POST /my-order/" for POST /my-order/abc: what kind of request it is, without the resource id. */
function requestKey(method: string, path: string): string {
  const segments = path.split("?")[0]?.split("/") ?? [];
  return `${method} /${segments[1] ?? ""}${segments.length > 2 ? "/" : ""}`;
}

/** A JWS with an empty payload: RFC 8555 6.3 POST-as-GET. */
function isPostAsGet(body: Buffer): boolean {
  try {
    return (JSON.parse(body.toString("utf8")) as { payload?: unknown }).payload === "";
  } catch {
    return false;
  }
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
