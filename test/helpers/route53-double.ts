/**
 * A stand-in for Amazon Route 53's REST API (2013-04-01) on https://127.0.0.1:PORT, for e2e tests
 * of the route53 provider. It implements the documented endpoints wile uses, with Route 53's XML:
 *
 *     GET  /2013-04-01/hostedzone/{Id}                         GetHostedZone
 *     GET  /2013-04-01/hostedzonesbyname?dnsname&hostedzoneid&maxitems   ListHostedZonesByName:
 *          zones ordered by name with the labels reversed, then id; pages of at most `pageSize`
 *     GET  /2013-04-01/hostedzone/{Id}/rrset?name&type&maxitems         ListResourceRecordSets:
 *          the sets from (name, type) on, in the same order (so a missing name yields the NEXT set)
 *     POST /2013-04-01/hostedzone/{Id}/rrset/                  ChangeResourceRecordSets: CREATE,
 *          UPSERT, DELETE (exact match only), values must be quoted, names inside the zone
 *     GET  /2013-04-01/change/{Id}                             GetChange: PENDING once, then INSYNC
 *
 * and answers errors the way Route 53 does (<ErrorResponse> with Code and Message, 400
 * <InvalidChangeBatch>). TXT changes are written into a real BIND9 by RFC 2136 (src/dns/rfc2136.ts
 * with test/helpers/bind9.ts's wile-test key) before the answer, so Pebble validates real records.
 *
 * Authentication: every request must carry a SigV4 Authorization header for the double's key pair
 * (and its session token, when it has one), service route53, region us-east-1, dated within 5
 * minutes. The signature is recomputed from the request AS RECEIVED (raw header lines, raw path and
 * query, the body's bytes) with the functions of src/dns/sigv4.ts, which test/unit/dns/sigv4.test.ts
 * pins to AWS's published test suite. Sharing them does not make the check circular: the algorithm
 * is fixed by AWS's vectors, and what this check catches is a difference between what wile signed
 * and what went on the wire - a header fetch adds or changes, the port in Host, the encoding of the
 * path or query, the body, the scope (date, region, service), the token, the clock, the key id.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { addTxt, deleteTxt, type UpdateTarget } from "../../src/dns/rfc2136";
import {
  amzDate,
  canonicalRequest,
  credentialScope,
  sha256Hex,
  signature,
  stringToSign,
} from "../../src/dns/sigv4";
import { readTsigKeyFile } from "../../src/dns/tsig";
import { parseXml, xmlChild, xmlChildren, xmlEscape, xmlText } from "../../src/dns/xml";
import type { Bind9 } from "./bind9";
import { makeCa, otherKeyCsr, signLeaf } from "./test-ca";

const XMLNS = "https://route53.amazonaws.com/doc/2013-04-01/";

export interface DoubleZone {
  name: string;
  id: string;
  private?: boolean;
}

interface TxtSet {
  ttl: number;
  values: string[];
}

export interface Route53Double {
  /** https://127.0.0.1:PORT (AWS_ENDPOINT_URL_ROUTE_53) */
  endpoint: string;
  /** PEM file of the CA of the double's certificate (NODE_EXTRA_CA_CERTS). */
  caFile: string;
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  /** "GET hostedzonesbyname dnsname=... hostedzoneid=..." / "POST rrset UPSERT _acme-challenge.x. 2" ..., in order. */
  log: string[];
  /** Authentication failures, with the reason the double found. */
  rejected: string[];
  /** The TXT sets the double holds for a zone (name -> values, quoted). */
  txt(zoneId: string): Record<string, string[]>;
  close(): Promise<void>;
}

export interface Route53DoubleOptions {
  bind: Bind9;
  zones: DoubleZone[];
  /** TXT sets present from the start: zone id -> name -> quoted values (also written into BIND9). */
  seed?: Record<string, Record<string, string[]>>;
  /** The most zones per ListHostedZonesByName page, whatever maxitems asks (to exercise paging). */
  pageSize?: number;
  sessionToken?: boolean;
  dir: string;
}

const canonical = (n: string) => n.toLowerCase().replace(/\.?$/, ".");
/** Route 53's order of names: the labels reversed ("com.example.www"). */
const orderKey = (name: string) => canonical(name).slice(0, -1).split(".").reverse().join(".");
/** `list` sorted by `key` (plain string order). */
const sortedBy = <T>(list: T[], key: (x: T) => string): T[] =>
  [...list].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));

function xml(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { "Content-Type": "text/xml" });
  res.end(`<?xml version="1.0"?>\n${body}`);
}

function awsError(res: ServerResponse, status: number, code: string, message: string): void {
  xml(
    res,
    status,
    `<ErrorResponse xmlns="${XMLNS}"><Error><Type>Sender</Type><Code>${code}</Code><Message>${xmlEscape(message)}</Message></Error><RequestId>${randomBytes(8).toString("hex")}</RequestId></ErrorResponse>`,
  );
}

function invalidBatch(res: ServerResponse, message: string): void {
  xml(
    res,
    400,
    `<InvalidChangeBatch xmlns="${XMLNS}"><Messages><Message>${xmlEscape(message)}</Message></Messages></InvalidChangeBatch>`,
  );
}

const unquote = (v: string) => v.slice(1, -1).replace(/\\(.)/g, "$1");

export async function startRoute53Double(opts: Route53DoubleOptions): Promise<Route53Double> {
  mkdirSync(opts.dir, { recursive: true });
  const ca = makeCa(opts.dir, "route53 double CA");
  const leaf = otherKeyCsr(opts.dir);
  const cert = signLeaf(ca, leaf.csrPem, { sans: ["IP:127.0.0.1"] });
  const accessKeyId = `AKIA${randomBytes(8).toString("hex").toUpperCase()}`;
  const secretAccessKey = randomBytes(30).toString("base64");
  const sessionToken = opts.sessionToken ? randomBytes(48).toString("base64") : undefined;
  const target: UpdateTarget = {
    server: opts.bind.server,
    key: readTsigKeyFile(opts.bind.keyFiles["wile-test"] as string),
    timeoutMs: 2000,
  };
  const sets = new Map<string, Map<string, TxtSet>>(opts.zones.map((z) => [z.id, new Map()]));
  const changes = new Map<string, number>();
  const log: string[] = [];
  const rejected: string[] = [];
  const pageSize = opts.pageSize ?? 100;

  for (const [zoneId, names] of Object.entries(opts.seed ?? {})) {
    for (const [name, values] of Object.entries(names)) {
      sets.get(zoneId)?.set(canonical(name), { ttl: 300, values });
      for (const v of values) await addTxt({ ...target, zone: zoneOf(zoneId)?.name }, name, unquote(v), 300);
    }
  }

  function zoneOf(id: string): DoubleZone | undefined {
    return opts.zones.find((z) => z.id === id);
  }

  /** Why the request's signature is not right, or undefined. */
  function authFailure(req: IncomingMessage, body: string): { code: string; message: string } | undefined {
    const auth = req.headers.authorization;
    if (!auth) return { code: "MissingAuthenticationToken", message: "Missing Authentication Token" };
    const m =
      /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$/.exec(
        auth,
      );
    if (!m)
      return {
        code: "IncompleteSignature",
        message: "Authorization header requires Credential, SignedHeaders and Signature",
      };
    const [, keyId, date, region, service, signedList, sig] = m as unknown as string[];
    if (keyId !== accessKeyId)
      return {
        code: "InvalidClientTokenId",
        message: "The security token included in the request is invalid.",
      };
    if (sessionToken && req.headers["x-amz-security-token"] !== sessionToken)
      return {
        code: "InvalidClientTokenId",
        message: "The security token included in the request is invalid.",
      };
    if (region !== "us-east-1" || service !== "route53")
      return {
        code: "SignatureDoesNotMatch",
        message: `Credential should be scoped to a valid region and service route53, not ${region}/${service}`,
      };
    const amz = req.headers["x-amz-date"];
    if (typeof amz !== "string" || !/^\d{8}T\d{6}Z$/.test(amz) || amz.slice(0, 8) !== date)
      return {
        code: "IncompleteSignature",
        message: "X-Amz-Date is missing or does not match the credential's date",
      };
    const when = Date.UTC(
      +amz.slice(0, 4),
      +amz.slice(4, 6) - 1,
      +amz.slice(6, 8),
      +amz.slice(9, 11),
      +amz.slice(11, 13),
      +amz.slice(13, 15),
    );
    if (Math.abs(Date.now() - when) > 5 * 60_000)
      return {
        code: "SignatureDoesNotMatch",
        message: `Signature expired: ${amz} is now earlier or later than ${amzDate(new Date())} by more than 5 minutes`,
      };
    const signed = (signedList as string).split(";");
    for (const must of ["host", "x-amz-date", ...(sessionToken ? ["x-amz-security-token"] : [])])
      if (!signed.includes(must)) return { code: "IncompleteSignature", message: `${must} must be signed` };
    const lines: [string, string][] = [];
    for (let i = 0; i < req.rawHeaders.length; i += 2)
      lines.push([req.rawHeaders[i] as string, req.rawHeaders[i + 1] as string]);
    const url = `https://${req.headers.host}${req.url}`;
    const canon = canonicalRequest(req.method ?? "", url, lines, signed, sha256Hex(body));
    const scope = credentialScope(date as string, region as string, service as string);
    if (signature(secretAccessKey, scope, stringToSign(amz, scope, canon)) !== sig)
      return {
        code: "SignatureDoesNotMatch",
        message:
          "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
      };
    return undefined;
  }

  function zoneXml(z: DoubleZone): string {
    return `<HostedZone><Id>/hostedzone/${z.id}</Id><Name>${z.name}.</Name><CallerReference>wile-test-${z.id}</CallerReference><Config><PrivateZone>${z.private ? "true" : "false"}</PrivateZone></Config><ResourceRecordSetCount>${(sets.get(z.id)?.size ?? 0) + 2}</ResourceRecordSetCount></HostedZone>`;
  }

  function listZonesByName(q: URLSearchParams, res: ServerResponse): void {
    const dnsname = q.get("dnsname");
    const fromId = q.get("hostedzoneid");
    const max = Math.min(Number(q.get("maxitems") ?? 100) || 100, pageSize);
    const ordered = sortedBy(opts.zones, (z) => `${orderKey(z.name)} ${z.id}`);
    const start = dnsname
      ? ordered.findIndex(
          (z) =>
            orderKey(z.name) > orderKey(dnsname) ||
            (orderKey(z.name) === orderKey(dnsname) && (!fromId || z.id >= fromId)),
        )
      : 0;
    const rest = start < 0 ? [] : ordered.slice(start);
    const page = rest.slice(0, max);
    const next = rest[max];
    xml(
      res,
      200,
      `<ListHostedZonesByNameResponse xmlns="${XMLNS}"><HostedZones>${page.map(zoneXml).join("")}</HostedZones>` +
        `${dnsname ? `<DNSName>${dnsname}</DNSName>` : ""}${fromId ? `<HostedZoneId>${fromId}</HostedZoneId>` : ""}` +
        `<IsTruncated>${next ? "true" : "false"}</IsTruncated>` +
        `${next ? `<NextDNSName>${next.name}.</NextDNSName><NextHostedZoneId>${next.id}</NextHostedZoneId>` : ""}` +
        `<MaxItems>${max}</MaxItems></ListHostedZonesByNameResponse>`,
    );
  }

  function listSets(zone: DoubleZone, q: URLSearchParams, res: ServerResponse): void {
    const all = [
      { name: `${zone.name}.`, type: "NS", ttl: 60, values: [`ns1.${zone.name}.`] },
      {
        name: `${zone.name}.`,
        type: "SOA",
        ttl: 60,
        values: [`ns1.${zone.name}. hostmaster.${zone.name}. 1 3600 600 86400 60`],
      },
      ...[...(sets.get(zone.id) ?? new Map<string, TxtSet>()).entries()].map(([name, s]) => ({
        name,
        type: "TXT",
        ...s,
      })),
    ];
    const ordered = sortedBy(all, (x) => `${orderKey(x.name)} ${x.type}`);
    const name = q.get("name");
    const type = q.get("type") ?? "";
    const max = Math.min(Number(q.get("maxitems") ?? 100) || 100, 300);
    const from = name
      ? ordered.filter(
          (s) => orderKey(s.name) > orderKey(name) || (orderKey(s.name) === orderKey(name) && s.type >= type),
        )
      : ordered;
    const page = from.slice(0, max);
    const next = from[max];
    const setXml = (s: (typeof all)[number]) =>
      `<ResourceRecordSet><Name>${s.name}</Name><Type>${s.type}</Type><TTL>${s.ttl}</TTL><ResourceRecords>${s.values
        .map((v) => `<ResourceRecord><Value>${xmlEscape(v)}</Value></ResourceRecord>`)
        .join("")}</ResourceRecords></ResourceRecordSet>`;
    xml(
      res,
      200,
      `<ListResourceRecordSetsResponse xmlns="${XMLNS}"><ResourceRecordSets>${page.map(setXml).join("")}</ResourceRecordSets>` +
        `<IsTruncated>${next ? "true" : "false"}</IsTruncated>${next ? `<NextRecordName>${next.name}</NextRecordName><NextRecordType>${next.type}</NextRecordType>` : ""}` +
        `<MaxItems>${max}</MaxItems></ListResourceRecordSetsResponse>`,
    );
  }

  async function changeSets(zone: DoubleZone, body: string, res: ServerResponse): Promise<void> {
    let root: ReturnType<typeof parseXml>;
    try {
      root = parseXml(body);
    } catch (e) {
      return awsError(res, 400, "InvalidInput", `Could not parse the request: ${(e as Error).message}`);
    }
    if (root.name !== "ChangeResourceRecordSetsRequest" || !body.includes(`xmlns="${XMLNS}"`))
      return awsError(
        res,
        400,
        "InvalidInput",
        "Expected a ChangeResourceRecordSetsRequest in the 2013-04-01 namespace",
      );
    const changeList = xmlChildren(xmlChild(xmlChild(root, "ChangeBatch"), "Changes"), "Change");
    if (changeList.length === 0) return awsError(res, 400, "InvalidInput", "No changes");
    const zoneSets = sets.get(zone.id) as Map<string, TxtSet>;
    const planned: { name: string; before?: TxtSet; after?: TxtSet }[] = [];
    for (const ch of changeList) {
      const action = xmlText(ch, "Action");
      const rrs = xmlChild(ch, "ResourceRecordSet");
      const name = canonical(xmlText(rrs, "Name") ?? "");
      const type = xmlText(rrs, "Type");
      const ttl = Number(xmlText(rrs, "TTL"));
      const values = xmlChildren(xmlChild(rrs, "ResourceRecords"), "ResourceRecord").map(
        (r) => xmlText(r, "Value") ?? "",
      );
      log.push(`POST rrset ${action} ${name} ${values.length}`);
      if (type !== "TXT") return invalidBatch(res, `The double handles TXT only, not ${type}`);
      if (!name.endsWith(`.${zone.name}.`) && name !== `${zone.name}.`)
        return invalidBatch(res, `RRSet with DNS name ${name} is not permitted in zone ${zone.name}.`);
      if (!Number.isInteger(ttl) || ttl < 0) return invalidBatch(res, "TTL must be a whole number");
      const bad = values.find((v) => !/^"(?:[^"\\]|\\.)*"$/.test(v));
      if (bad !== undefined)
        return invalidBatch(
          res,
          `Invalid Resource Record: FATAL problem: InvalidCharacterString (Value should be enclosed in quotation marks) encountered with '${bad}'`,
        );
      const before = zoneSets.get(name);
      if (action === "DELETE") {
        if (!before)
          return invalidBatch(
            res,
            `Tried to delete resource record set [name='${name}', type='TXT'] but it was not found`,
          );
        if (before.ttl !== ttl || before.values.join("\n") !== values.join("\n"))
          return invalidBatch(
            res,
            `Tried to delete resource record set [name='${name}', type='TXT'] but the values provided do not match the current values`,
          );
        planned.push({ name, before });
      } else if (action === "UPSERT" || action === "CREATE") {
        if (action === "CREATE" && before)
          return invalidBatch(
            res,
            `Tried to create resource record set [name='${name}', type='TXT'] but it already exists`,
          );
        if (values.length === 0) return invalidBatch(res, "A resource record set needs at least one value");
        planned.push({ name, before, after: { ttl, values } });
      } else return awsError(res, 400, "InvalidInput", `Unknown action ${action}`);
    }
    for (const p of planned) {
      const old = new Set((p.before?.values ?? []).map(unquote));
      const now = new Set((p.after?.values ?? []).map(unquote));
      for (const v of old) if (!now.has(v)) await deleteTxt({ ...target, zone: zone.name }, p.name, v);
      for (const v of now)
        if (!old.has(v)) await addTxt({ ...target, zone: zone.name }, p.name, v, p.after?.ttl ?? 60);
      if (p.after) zoneSets.set(p.name, p.after);
      else zoneSets.delete(p.name);
    }
    const id = `C${randomBytes(8).toString("hex").toUpperCase()}`;
    changes.set(id, 0);
    xml(
      res,
      200,
      `<ChangeResourceRecordSetsResponse xmlns="${XMLNS}"><ChangeInfo><Id>/change/${id}</Id><Status>PENDING</Status><SubmittedAt>${new Date().toISOString()}</SubmittedAt><Comment>${xmlEscape(xmlText(xmlChild(root, "ChangeBatch"), "Comment") ?? "")}</Comment></ChangeInfo></ChangeResourceRecordSetsResponse>`,
    );
  }

  async function route(req: IncomingMessage, body: string, res: ServerResponse): Promise<void> {
    const failure = authFailure(req, body);
    if (failure) {
      rejected.push(`${req.method} ${req.url}: ${failure.code}: ${failure.message}`);
      return awsError(res, 403, failure.code, failure.message);
    }
    const u = new URL(req.url ?? "/", "https://x");
    const path = u.pathname;
    const zoneMatch = /^\/2013-04-01\/hostedzone\/([A-Z0-9]+)(\/rrset\/?)?$/.exec(path);
    const changeMatch = /^\/2013-04-01\/change\/([A-Z0-9]+)$/.exec(path);
    if (req.method === "GET" && path === "/2013-04-01/hostedzonesbyname") {
      log.push(
        `GET hostedzonesbyname dnsname=${u.searchParams.get("dnsname")} hostedzoneid=${u.searchParams.get("hostedzoneid") ?? ""}`,
      );
      return listZonesByName(u.searchParams, res);
    }
    if (zoneMatch) {
      const m = zoneMatch;
      const zone = zoneOf(m[1] as string);
      if (!zone) return awsError(res, 404, "NoSuchHostedZone", `No hosted zone found with ID: ${m[1]}`);
      if (!m[2] && req.method === "GET") {
        log.push(`GET hostedzone ${zone.id}`);
        return xml(
          res,
          200,
          `<GetHostedZoneResponse xmlns="${XMLNS}">${zoneXml(zone)}<DelegationSet><NameServers><NameServer>ns1.${zone.name}</NameServer></NameServers></DelegationSet></GetHostedZoneResponse>`,
        );
      }
      if (m[2] && req.method === "GET") {
        log.push(`GET rrset ${u.searchParams.get("name")} ${u.searchParams.get("type")}`);
        return listSets(zone, u.searchParams, res);
      }
      if (m[2] === "/rrset/" && req.method === "POST") return changeSets(zone, body, res);
    }
    if (req.method === "GET" && changeMatch) {
      const m = changeMatch;
      const polls = changes.get(m[1] as string);
      if (polls === undefined)
        return awsError(
          res,
          404,
          "NoSuchChange",
          `A change with the specified change ID does not exist: ${m[1]}`,
        );
      changes.set(m[1] as string, polls + 1);
      log.push(`GET change ${polls === 0 ? "PENDING" : "INSYNC"}`);
      return xml(
        res,
        200,
        `<GetChangeResponse xmlns="${XMLNS}"><ChangeInfo><Id>/change/${m[1]}</Id><Status>${polls === 0 ? "PENDING" : "INSYNC"}</Status><SubmittedAt>${new Date().toISOString()}</SubmittedAt></ChangeInfo></GetChangeResponse>`,
      );
    }
    return awsError(res, 404, "UnknownOperation", `No operation ${req.method} ${path}`);
  }

  const server: Server = createServer({ key: leaf.keyPem, cert }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      route(req, Buffer.concat(chunks).toString("utf8"), res).catch((e: Error) => {
        awsError(res, 500, "InternalFailure", `double: ${e.message}`);
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const caFile = join(opts.dir, "route53-ca.pem");
  writeFileSync(caFile, ca.pem);
  return {
    endpoint: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    caFile,
    accessKeyId,
    secretAccessKey,
    sessionToken,
    log,
    rejected,
    txt: (zoneId) =>
      Object.fromEntries(
        [...(sets.get(zoneId) ?? new Map<string, TxtSet>()).entries()].map(([n, s]) => [n, s.values]),
      ),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
