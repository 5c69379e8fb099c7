/**
 * Stand-ins for the DNS provider APIs of src/dns/providers (Cloudflare v4, Hetzner Cloud, DigitalOcean
 * v2, deSEC, acme-dns), one server each on 127.0.0.1, implementing the documented endpoints wile
 * uses: authentication (a wrong token gets the API's documented refusal), zone lookup, pagination
 * (`maxPerPage` forces small pages), the record shapes (quoted TXT where the API wants them) and the
 * error bodies. Each keeps the API's own record table, and mirrors every change into a TxtBackend:
 * BIND9 through RFC 2136 (src/dns/rfc2136.ts, key wile-test) for end-to-end tests, so Pebble
 * validates what the double was asked to publish; or nothing for unit tests, which read the table.
 *
 * HTTPS with a certificate from a test CA (`doubleTls`; the wile subprocess trusts it through
 * NODE_EXTRA_CA_CERTS) or plain HTTP on loopback for in-process unit tests (Node's fetch takes no
 * per-request trust, and NODE_EXTRA_CA_CERTS is read only when a process starts).
 */
import { randomBytes, randomUUID } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer as createHttpServer, request as httpRequest } from "node:http";
import { createServer as createHttpsServer, request as httpsRequest } from "node:https";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { addTxt, deleteTxt, type UpdateTarget } from "../../src/dns/rfc2136";
import { readTsigKeyFile } from "../../src/dns/tsig";
import type { Bind9 } from "./bind9";
import { openssl } from "./certs";
import { makeCa, signLeaf } from "./test-ca";

/** Where a double publishes the TXT values it holds. */
export interface TxtBackend {
  add(fqdn: string, value: string, ttl: number): Promise<void>;
  remove(fqdn: string, value: string): Promise<void>;
}

export const noBackend: TxtBackend = { add: async () => {}, remove: async () => {} };

/** RFC 2136 updates of the BIND9 under test with its wile-test key. */
export function bindBackend(bind: Bind9): TxtBackend {
  const target: UpdateTarget = {
    server: bind.server,
    key: readTsigKeyFile(bind.keyFiles["wile-test"] as string),
    timeoutMs: 3000,
  };
  return {
    add: (fqdn, value, ttl) => addTxt(target, fqdn, value, ttl),
    remove: (fqdn, value) => deleteTxt(target, fqdn, value),
  };
}

export interface DoubleTls {
  key: string;
  cert: string;
  /** The CA certificate file to give the client as NODE_EXTRA_CA_CERTS. */
  caFile: string;
}

/** A CA in `dir` and a certificate for 127.0.0.1 from it, for every double of a test file. */
export function doubleTls(dir: string): DoubleTls {
  const ca = makeCa(dir, "wile test DNS API CA");
  const keyFile = join(dir, "api-double.key");
  openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", keyFile]);
  const csr = openssl(["req", "-new", "-key", keyFile, "-subj", "/CN=127.0.0.1"]);
  const cert = signLeaf(ca, csr, { sans: ["IP:127.0.0.1", "DNS:localhost"] });
  writeFileSync(join(dir, "api-double.pem"), cert);
  return { key: readFileSync(keyFile, "utf8"), cert, caFile: ca.certFile };
}

export interface Recorded {
  method: string;
  /** Path and query. */
  url: string;
  headers: IncomingMessage["headers"];
  body: string;
}

export interface Answer {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export interface ApiDouble {
  /** https://127.0.0.1:PORT/<prefix> (http:// without tls): the API address to give wile. */
  base: string;
  requests: Recorded[];
  /** Answers given before routing, one per request, first in first out (429s, outages). */
  failNext: Answer[];
  /** The TXT values the API holds at `fqdn` (its own table), in the order they were added. */
  txt(fqdn: string): string[];
  close(): Promise<void>;
}

export interface DoubleOptions {
  /** The token (acme-dns: none, it registers accounts) the API accepts. */
  token: string;
  /** Zone names the account holds. */
  zones: string[];
  backend?: TxtBackend;
  tls?: DoubleTls;
  /** Page size cap for list endpoints (default the API's own). */
  maxPerPage?: number;
}

interface Ctx {
  method: string;
  path: string[];
  query: URLSearchParams;
  headers: IncomingMessage["headers"];
  json: unknown;
}

type Handler = (c: Ctx) => Promise<Answer>;

/** One record of a double's table. */
interface Rec {
  id: string;
  zone: string;
  fqdn: string;
  value: string;
  ttl: number;
}

class Table {
  readonly recs: Rec[] = [];
  private seq = 1000;
  constructor(
    readonly zones: string[],
    private readonly backend: TxtBackend,
  ) {}
  /** The longest zone of the account that holds `fqdn`. */
  zoneOf(fqdn: string): string | undefined {
    const f = fqdn.toLowerCase().replace(/\.$/, "");
    return this.zones.filter((z) => f === z || f.endsWith(`.${z}`)).sort((a, b) => b.length - a.length)[0];
  }
  at(fqdn: string): Rec[] {
    const f = fqdn.toLowerCase().replace(/\.$/, "");
    return this.recs.filter((r) => r.fqdn === f);
  }
  async add(zone: string, fqdn: string, value: string, ttl: number, id?: string): Promise<Rec> {
    const rec = {
      id: id ?? String(++this.seq),
      zone,
      fqdn: fqdn.toLowerCase().replace(/\.$/, ""),
      value,
      ttl,
    };
    await this.backend.add(rec.fqdn, value, ttl);
    this.recs.push(rec);
    return rec;
  }
  async remove(rec: Rec): Promise<void> {
    const i = this.recs.indexOf(rec);
    if (i < 0) return;
    this.recs.splice(i, 1);
    if (!this.recs.some((r) => r.fqdn === rec.fqdn && r.value === rec.value))
      await this.backend.remove(rec.fqdn, rec.value);
  }
}

const unquote = (v: string) => (/^".*"$/.test(v) ? v.slice(1, -1) : v);
const isQuoted = (v: unknown) => typeof v === "string" && /^"[^"]*"$/.test(v);
const obj = (v: unknown): Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
const fqdnIn = (rel: string, zone: string) =>
  rel === "" || rel === "@" ? zone : `${rel.toLowerCase()}.${zone}`;
const relIn = (fqdn: string, zone: string) => (fqdn === zone ? "@" : fqdn.slice(0, -(zone.length + 1)));

async function serve(
  prefix: string,
  opts: { tls?: DoubleTls },
  table: Table,
  handler: Handler,
): Promise<ApiDouble> {
  const double: ApiDouble = {
    base: "",
    requests: [],
    failNext: [],
    txt: (fqdn) => table.at(fqdn).map((r) => r.value),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const listener = (req: IncomingMessage, res: ServerResponse) => {
    let body = "";
    req.on("data", (c) => {
      body += c;
    });
    req.on("end", async () => {
      double.requests.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body });
      let answer: Answer;
      try {
        const url = new URL(req.url ?? "/", "http://x");
        let json: unknown;
        try {
          json = body ? JSON.parse(body) : undefined;
        } catch {
          json = undefined;
        }
        const failed = double.failNext.shift();
        if (failed) answer = failed;
        else if (!url.pathname.startsWith(prefix)) answer = { status: 404, body: { error: "not found" } };
        else {
          const path = url.pathname
            .slice(prefix.length)
            .split("/")
            .filter((p) => p !== "")
            .map(decodeURIComponent);
          answer = await handler({
            method: req.method ?? "",
            path,
            query: url.searchParams,
            headers: req.headers,
            json,
          });
        }
      } catch (err) {
        answer = { status: 500, body: { error: String(err) } };
      }
      const text = answer.body === undefined ? "" : JSON.stringify(answer.body);
      res.writeHead(answer.status, {
        ...(text ? { "Content-Type": "application/json" } : {}),
        ...answer.headers,
      });
      res.end(text);
    });
  };
  const server = opts.tls
    ? createHttpsServer({ key: opts.tls.key, cert: opts.tls.cert }, listener)
    : createHttpServer(listener);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  double.base = `${opts.tls ? "https" : "http"}://127.0.0.1:${(server.address() as AddressInfo).port}${prefix}`;
  return double;
}

const route = (c: Ctx, method: string, ...pattern: string[]): string[] | undefined => {
  if (c.method !== method || c.path.length !== pattern.length) return undefined;
  const params: string[] = [];
  for (let i = 0; i < pattern.length; i++) {
    if (pattern[i] === "*") params.push(c.path[i] as string);
    else if (pattern[i] !== c.path[i]) return undefined;
  }
  return params;
};

function pageOf<T>(list: T[], c: Ctx, def: number, cap: number | undefined) {
  const per = Math.min(Number(c.query.get("per_page") ?? def) || def, cap ?? Number.POSITIVE_INFINITY);
  const page = Math.max(1, Number(c.query.get("page") ?? 1) || 1);
  return {
    items: list.slice((page - 1) * per, page * per),
    page,
    per,
    pages: Math.max(1, Math.ceil(list.length / per)),
  };
}

// -----------------------------------------------------------------------------------------------
// Cloudflare API v4 (developers.cloudflare.com/api): Bearer token; {success, errors, messages, result}

export async function startCloudflareDouble(o: DoubleOptions): Promise<ApiDouble> {
  const table = new Table(o.zones, o.backend ?? noBackend);
  const zoneIds = new Map(o.zones.map((z) => [randomBytes(16).toString("hex"), z]));
  const fail = (status: number, code: number, message: string): Answer => ({
    status,
    body: { success: false, errors: [{ code, message }], messages: [], result: null },
  });
  const done = (result: unknown, info?: Record<string, number>): Answer => ({
    status: 200,
    body: { success: true, errors: [], messages: [], result, ...(info ? { result_info: info } : {}) },
  });
  const recJson = (r: Rec) => ({
    id: r.id,
    type: "TXT",
    name: r.fqdn,
    content: r.value,
    ttl: r.ttl,
    zone_id: [...zoneIds].find(([, z]) => z === r.zone)?.[0],
    zone_name: r.zone,
  });
  return serve("/client/v4", o, table, async (c) => {
    if (c.headers.authorization !== `Bearer ${o.token}`) return fail(403, 9109, "Invalid access token");
    if (route(c, "GET", "zones")) {
      const name = c.query.get("name");
      const list = [...zoneIds]
        .filter(([, z]) => name === null || z === name)
        .map(([id, z]) => ({ id, name: z, status: "active" }));
      const p = pageOf(list, c, 20, o.maxPerPage);
      return done(p.items, {
        page: p.page,
        per_page: p.per,
        count: p.items.length,
        total_count: list.length,
        total_pages: p.pages,
      });
    }
    const [zoneId, recId] = c.path[0] === "zones" ? [c.path[1] ?? "", c.path[3]] : ["", undefined];
    const zone = zoneIds.get(zoneId);
    if (c.path[0] !== "zones" || c.path[2] !== "dns_records" || !zone)
      return fail(
        404,
        7003,
        `Could not route to /${c.path.join("/")}, perhaps your object identifier is invalid?`,
      );
    if (route(c, "POST", "zones", "*", "dns_records")) {
      const b = obj(c.json);
      const name = String(b.name ?? "").toLowerCase();
      if (b.type !== "TXT" || typeof b.content !== "string" || !name)
        return fail(400, 9000, "DNS name is invalid.");
      if (table.zoneOf(name) !== zone) return fail(400, 9005, "Content for TXT record is invalid.");
      if (table.at(name).some((r) => r.value === unquote(b.content as string)))
        return fail(400, 81058, "An identical record already exists.");
      return done(recJson(await table.add(zone, name, unquote(b.content), Number(b.ttl ?? 1))));
    }
    if (route(c, "GET", "zones", "*", "dns_records")) {
      const name = c.query.get("name");
      const list = table.recs.filter((r) => r.zone === zone && (name === null || r.fqdn === name));
      const p = pageOf(list, c, 100, o.maxPerPage);
      return done(p.items.map(recJson), {
        page: p.page,
        per_page: p.per,
        count: p.items.length,
        total_count: list.length,
        total_pages: p.pages,
      });
    }
    if (route(c, "DELETE", "zones", "*", "dns_records", "*")) {
      const rec = table.recs.find((r) => r.id === recId && r.zone === zone);
      if (!rec) return fail(404, 81044, "Record does not exist.");
      await table.remove(rec);
      return done({ id: rec.id });
    }
    return fail(405, 10405, "Method not allowed");
  });
}

// -----------------------------------------------------------------------------------------------
// Hetzner Cloud API (docs.hetzner.cloud, Zones and Zone RRSets): Bearer token; {error: {code, message}}

export async function startHetznerDouble(o: DoubleOptions): Promise<ApiDouble> {
  const table = new Table(o.zones, o.backend ?? noBackend);
  const zoneIds = new Map(o.zones.map((z, i) => [String(4711 + i), z]));
  const actions = new Map<string, Record<string, unknown>>();
  let actionSeq = 100;
  const error = (status: number, code: string, message: string): Answer => ({
    status,
    body: { error: { code, message, details: {} } },
  });
  const zoneJson = (id: string, name: string) => ({
    id: Number(id),
    name,
    mode: "primary",
    ttl: 3600,
    status: "ok",
  });
  const zoneBy = (idOrName: string) =>
    [...zoneIds].find(([id, z]) => id === idOrName || z === idOrName.toLowerCase());
  const action = (command: string, zoneId: string): Answer => {
    const a = {
      id: ++actionSeq,
      command,
      status: "running",
      progress: 0,
      resources: [{ id: Number(zoneId), type: "zone" }],
      error: null,
    };
    actions.set(String(a.id), a);
    return { status: 201, body: { action: a } };
  };
  return serve("/v1", o, table, async (c) => {
    if (c.headers.authorization !== `Bearer ${o.token}`)
      return error(401, "unauthorized", "unable to authenticate");
    const act = route(c, "GET", "zones", "actions", "*");
    if (act) {
      const a = actions.get(act[0] as string);
      if (!a) return error(404, "not_found", "action not found");
      // Done by the time it is asked about (the records were written before the POST was answered).
      a.status = "success";
      a.progress = 100;
      return { status: 200, body: { action: a } };
    }
    const one = route(c, "GET", "zones", "*");
    if (one) {
      const z = zoneBy(one[0] as string);
      return z
        ? { status: 200, body: { zone: zoneJson(z[0], z[1]) } }
        : error(404, "not_found", "zone not found");
    }
    if (c.path[0] !== "zones" || c.path[2] !== "rrsets") return error(404, "not_found", "not found");
    const z = zoneBy(c.path[1] ?? "");
    if (!z) return error(404, "not_found", "zone not found");
    const [zoneId, zone] = z;
    const rr = c.path[3] ?? "";
    const type = c.path[4];
    if (type !== "TXT") return error(422, "invalid_input", "only TXT in this double");
    if (rr !== rr.toLowerCase() || rr.endsWith(".") || rr.endsWith(zone))
      return error(422, "invalid_input", "rr_name must be relative to the zone, in lower case");
    const fqdn = fqdnIn(rr, zone);
    if (route(c, "GET", "zones", "*", "rrsets", "*", "*")) {
      const recs = table.at(fqdn);
      if (recs.length === 0) return error(404, "not_found", "rrset not found");
      return {
        status: 200,
        body: {
          rrset: {
            id: `${rr}/TXT`,
            name: rr,
            type: "TXT",
            ttl: recs[0]?.ttl,
            records: recs.map((r) => ({ value: `"${r.value}"`, comment: null })),
            zone: Number(zoneId),
          },
        },
      };
    }
    const records = Array.isArray(obj(c.json).records) ? (obj(c.json).records as unknown[]) : [];
    const values = records.map((r) => obj(r).value);
    if (values.length === 0 || !values.every(isQuoted))
      return error(
        422,
        "invalid_input",
        "invalid input in field 'records': TXT values must be quoted strings",
      );
    if (route(c, "POST", "zones", "*", "rrsets", "*", "*", "actions", "add_records")) {
      for (const v of values) {
        const value = unquote(v as string);
        if (!table.at(fqdn).some((r) => r.value === value))
          await table.add(zone, fqdn, value, Number(obj(c.json).ttl ?? 3600));
      }
      return action("add_rrset_records", zoneId);
    }
    if (route(c, "POST", "zones", "*", "rrsets", "*", "*", "actions", "remove_records")) {
      for (const v of values)
        for (const r of table.at(fqdn).filter((x) => x.value === unquote(v as string))) await table.remove(r);
      return action("remove_rrset_records", zoneId);
    }
    return error(404, "not_found", "not found");
  });
}

// -----------------------------------------------------------------------------------------------
// DigitalOcean API v2 (docs.digitalocean.com/reference/api): Bearer token; {id, message}

export async function startDigitalOceanDouble(o: DoubleOptions): Promise<ApiDouble> {
  const table = new Table(o.zones, o.backend ?? noBackend);
  const error = (status: number, id: string, message: string): Answer => ({ status, body: { id, message } });
  let double: ApiDouble | undefined;
  const recJson = (r: Rec) => ({
    id: Number(r.id),
    type: "TXT",
    name: relIn(r.fqdn, r.zone),
    data: r.value,
    ttl: r.ttl,
  });
  double = await serve("/v2", o, table, async (c) => {
    if (c.headers.authorization !== `Bearer ${o.token}`)
      return error(401, "Unauthorized", "Unable to authenticate you");
    const zone = c.path[0] === "domains" ? o.zones.find((z) => z === c.path[1]) : undefined;
    if (!zone) return error(404, "not_found", "The resource you were accessing could not be found.");
    if (route(c, "GET", "domains", "*"))
      return { status: 200, body: { domain: { name: zone, ttl: 1800, zone_file: "" } } };
    if (route(c, "POST", "domains", "*", "records")) {
      const b = obj(c.json);
      const name = String(b.name ?? "");
      if (b.type !== "TXT" || typeof b.data !== "string" || !name || name.endsWith(`${zone}.`))
        return error(422, "unprocessable_entity", "Name Only valid hostname characters are allowed");
      if (Number(b.ttl) < 30)
        return error(422, "unprocessable_entity", "Ttl must be greater than or equal to 30");
      const rec = await table.add(zone, fqdnIn(name, zone), b.data, Number(b.ttl));
      return { status: 201, body: { domain_record: recJson(rec) } };
    }
    if (route(c, "GET", "domains", "*", "records")) {
      const name = c.query.get("name");
      const type = c.query.get("type");
      const list = table.recs.filter(
        (r) => r.zone === zone && (name === null || r.fqdn === name) && (type === null || type === "TXT"),
      );
      const p = pageOf(list, c, 20, o.maxPerPage);
      const pages: Record<string, string> = {};
      if (p.page < p.pages) {
        const next = new URL(`${double?.base}/domains/${zone}/records`);
        for (const [k, v] of c.query) next.searchParams.set(k, v);
        next.searchParams.set("page", String(p.page + 1));
        pages.next = next.toString();
      }
      return {
        status: 200,
        body: { domain_records: p.items.map(recJson), links: { pages }, meta: { total: list.length } },
      };
    }
    const del = route(c, "DELETE", "domains", "*", "records", "*");
    if (del) {
      const rec = table.recs.find((r) => r.id === del[1] && r.zone === zone);
      if (!rec) return error(404, "not_found", "The resource you were accessing could not be found.");
      await table.remove(rec);
      return { status: 204 };
    }
    return error(404, "not_found", "The resource you were accessing could not be found.");
  });
  return double;
}

// -----------------------------------------------------------------------------------------------
// deSEC (desec.readthedocs.io): Token auth; RRsets per subname and type; {detail} or field errors

export async function startDesecDouble(o: DoubleOptions): Promise<ApiDouble> {
  const table = new Table(o.zones, o.backend ?? noBackend);
  const MIN_TTL = 3600;
  const rrset = (zone: string, sub: string) => {
    const recs = table.at(fqdnIn(sub, zone));
    return {
      domain: zone,
      subname: sub,
      name: `${fqdnIn(sub, zone)}.`,
      type: "TXT",
      records: recs.map((r) => `"${r.value}"`),
      ttl: recs[0]?.ttl ?? MIN_TTL,
    };
  };
  const write = async (
    zone: string,
    sub: string,
    records: unknown,
    ttl: number,
  ): Promise<Answer | undefined> => {
    if (!Array.isArray(records) || !records.every(isQuoted))
      return { status: 400, body: { records: ["TXT records must be quoted strings."] } };
    const fqdn = fqdnIn(sub, zone);
    const want = records.map((v) => unquote(v as string));
    for (const r of table.at(fqdn).filter((x) => !want.includes(x.value))) await table.remove(r);
    for (const v of want) if (!table.at(fqdn).some((r) => r.value === v)) await table.add(zone, fqdn, v, ttl);
    return undefined;
  };
  return serve("/api/v1", o, table, async (c) => {
    if (c.headers.authorization !== `Token ${o.token}`)
      return { status: 401, body: { detail: "Invalid token." } };
    if (route(c, "GET", "domains")) {
      const q = c.query.get("owns_qname");
      const zones = q === null ? o.zones : [table.zoneOf(q)].filter((z) => z !== undefined);
      return { status: 200, body: zones.map((name) => ({ name, minimum_ttl: MIN_TTL })) };
    }
    const zone = c.path[0] === "domains" ? o.zones.find((z) => z === c.path[1]) : undefined;
    if (!zone || c.path[2] !== "rrsets") return { status: 404, body: { detail: "Not found." } };
    if (route(c, "POST", "domains", "*", "rrsets")) {
      const b = obj(c.json);
      const sub = String(b.subname ?? "");
      if (b.type !== "TXT") return { status: 400, body: { type: ["Only TXT in this double."] } };
      if (Number(b.ttl) < MIN_TTL)
        return { status: 400, body: { ttl: [`Ensure this value is greater than or equal to ${MIN_TTL}.`] } };
      if (table.at(fqdnIn(sub, zone)).length > 0)
        return {
          status: 400,
          body: {
            non_field_errors: ["Another RRset with the same subdomain and type exists for this domain."],
          },
        };
      const bad = await write(zone, sub, b.records, Number(b.ttl));
      return bad ?? { status: 201, body: rrset(zone, sub) };
    }
    const sub = c.path[3] === "@" ? "" : (c.path[3] ?? "");
    if (c.path[4] !== "TXT") return { status: 404, body: { detail: "Not found." } };
    const exists = table.at(fqdnIn(sub, zone)).length > 0;
    if (route(c, "GET", "domains", "*", "rrsets", "*", "TXT"))
      return exists
        ? { status: 200, body: rrset(zone, sub) }
        : { status: 404, body: { detail: "Not found." } };
    if (route(c, "PATCH", "domains", "*", "rrsets", "*", "TXT")) {
      if (!exists) return { status: 404, body: { detail: "Not found." } };
      const records = obj(c.json).records;
      const bad = await write(zone, sub, records, table.at(fqdnIn(sub, zone))[0]?.ttl ?? MIN_TTL);
      if (bad) return bad;
      return Array.isArray(records) && records.length === 0
        ? { status: 204 }
        : { status: 200, body: rrset(zone, sub) };
    }
    return { status: 405, body: { detail: `Method "${c.method}" not allowed.` } };
  });
}

// -----------------------------------------------------------------------------------------------
// acme-dns (github.com/joohoi/acme-dns): /register, /update with X-Api-User / X-Api-Key

export interface AcmeDnsDouble extends ApiDouble {
  /** POST /register through the API, as an operator does once per name. */
  register(): Promise<{ username: string; password: string; fulldomain: string; subdomain: string }>;
}

/** `zones[0]` is the acme-dns server's own domain (subdomains live under it). */
export async function startAcmeDnsDouble(o: Omit<DoubleOptions, "token">): Promise<AcmeDnsDouble> {
  const table = new Table(o.zones, o.backend ?? noBackend);
  const domain = o.zones[0] as string;
  const accounts = new Map<string, { password: string; subdomain: string }>();
  const d = await serve("", o, table, async (c) => {
    if (route(c, "POST", "register")) {
      const username = randomUUID();
      const subdomain = randomUUID();
      const password = randomBytes(30).toString("base64url");
      accounts.set(username, { password, subdomain });
      return {
        status: 201,
        body: { username, password, fulldomain: `${subdomain}.${domain}`, subdomain, allowfrom: [] },
      };
    }
    if (route(c, "POST", "update")) {
      const acct = accounts.get(String(c.headers["x-api-user"] ?? ""));
      if (!acct || acct.password !== c.headers["x-api-key"])
        return { status: 401, body: { error: "forbidden" } };
      const b = obj(c.json);
      if (b.subdomain !== acct.subdomain) return { status: 401, body: { error: "forbidden" } };
      if (typeof b.txt !== "string" || b.txt.length !== 43)
        return { status: 400, body: { error: "bad_txt" } };
      const fqdn = `${acct.subdomain}.${domain}`;
      // Two values per subdomain, the oldest rolls out.
      const held = table.at(fqdn);
      if (!held.some((r) => r.value === b.txt)) {
        if (held.length >= 2) await table.remove(held[0] as Rec);
        await table.add(domain, fqdn, b.txt, 1);
      }
      return { status: 200, body: { txt: b.txt } };
    }
    return { status: 404, body: { error: "not found" } };
  });
  return {
    ...d,
    register: () =>
      new Promise((resolve, reject) => {
        const url = new URL(`${d.base}/register`);
        const req = (url.protocol === "https:" ? httpsRequest : httpRequest)(
          url,
          { method: "POST", ca: o.tls ? readFileSync(o.tls.caFile) : undefined },
          (res) => {
            let text = "";
            res.on("data", (c) => {
              text += c;
            });
            res.on("end", () =>
              res.statusCode === 201
                ? resolve(JSON.parse(text))
                : reject(new Error(`/register: ${res.statusCode} ${text}`)),
            );
          },
        );
        req.on("error", reject);
        req.end();
      }),
  };
}
