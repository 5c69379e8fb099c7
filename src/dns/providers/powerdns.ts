/**
 * The "powerdns" DNS provider: the PowerDNS Authoritative Server's HTTP API (version 1), as lego's
 * pdns provider uses it:
 *
 *     GET   {url}/api/v1/servers/{server}/zones?zone=NAME.   the zone, found by walking up the labels
 *     GET   {url}/api/v1/servers/{server}/zones/{zone id}    the zone's rrsets (the TXT set at the name)
 *     PATCH {url}/api/v1/servers/{server}/zones/{zone id}    {"rrsets":[{..., "changetype":"REPLACE"|"DELETE"}]}
 *     PUT   {url}/api/v1/servers/{server}/zones/{zone id}/notify   after a change to a primary zone
 *
 * every request carrying the key in the X-API-Key header. Names are canonical (trailing dot).
 * PowerDNS keeps all TXT values at a name in one rrset and a PATCH replaces the whole set, so adding
 * a value is: read the set, REPLACE it with the values already there plus ours; removing is REPLACE
 * without ours, or DELETE when nothing else is left. Changes through one provider go one at a time,
 * so that a name and its wildcard (same record name) cannot overwrite each other's value.
 *
 * TXT content is written the way PowerDNS presents it: a quoted string, `"` and `\` escaped
 * (quoteTxt in http-api.ts).
 */
import { WileError } from "../../util/errors";
import { required, text, withDefault } from "../../util/settings";
import { isRecord } from "../../util/text";
import { canonicalParents, changeTxtSet, oneAtATime } from "../api-common";
import { type ApiAnswer, type ApiError, apiRequest, unexpectedAnswer } from "../http-api";
import { type DnsRecord, defineDnsProvider } from "../provider";

const NAME = "PowerDNS";
/** Seconds; the TTL of a new TXT set (an existing set keeps its own). */
export const PDNS_TTL = 120;

interface PdnsZone {
  id: string;
  name: string;
  /** Native, Master/Primary, Slave/Secondary (older and newer names). */
  kind?: string;
}

interface PdnsRecord {
  content: string;
  disabled?: boolean;
}

interface RrsetChange {
  name: string;
  type: "TXT";
  ttl?: number;
  changetype: "REPLACE" | "DELETE";
  records?: PdnsRecord[];
}

/**
 * The PATCH body's rrset that adds (`add`) or removes `value` at `name`, given the records of the
 * TXT set there now (`current`, undefined when there is none) and its TTL; undefined when nothing
 * needs to change (the value is already there, or already gone). Other records are kept verbatim.
 */
export function txtRrsetChange(
  name: string,
  current: { ttl: number; records: PdnsRecord[] } | undefined,
  value: string,
  add: boolean,
): RrsetChange | undefined {
  const records = changeTxtSet(current?.records ?? [], value, add, {
    content: (r) => r.content,
    make: (content) => ({ content, disabled: false }),
    active: (r) => !r.disabled,
  });
  if (!records) return undefined;
  if (records.length === 0) return { name, type: "TXT", changetype: "DELETE" };
  return { name, type: "TXT", ttl: current?.ttl ?? PDNS_TTL, changetype: "REPLACE", records };
}

/** The API's base `.../api/v1/servers/{server}` from the URL the operator gave (with or without /api/v1). */
export function pdnsServerBase(apiUrl: string, server: string): string {
  const u = new URL(apiUrl);
  const path = u.pathname.replace(/\/+$/, "").replace(/\/api\/v1$/, "");
  return `${u.protocol}//${u.host}${path}/api/v1/servers/${encodeURIComponent(server)}`;
}

/** PowerDNS's answer to a refused request as an ApiError: its `error` field, and what to check. */
export function pdnsRefused(what: string, answer: ApiAnswer, server: string): ApiError {
  const detail =
    isRecord(answer.json) && typeof answer.json.error === "string" ? answer.json.error : undefined;
  const hint =
    answer.status === 401 || answer.status === 403
      ? "Check the API key (PDNS_API_KEY, or wile config --dns-credential powerdns.apiKey): it must be the api-key of pdns.conf."
      : answer.status === 404
        ? `Check the API URL (PDNS_API_URL: the address of PowerDNS's webserver, with api=yes in pdns.conf) and the server id (${server}; PDNS_SERVER_NAME, default localhost).`
        : undefined;
  return unexpectedAnswer(NAME, what, answer, detail, hint);
}

export const powerdnsProvider = defineDnsProvider({
  name: "powerdns",
  summary: "the PowerDNS Authoritative Server's HTTP API (PDNS_API_URL, PDNS_API_KEY)",
  example: "--dns powerdns --powerdns-api-url http://ns1.example.com:8081 (PDNS_API_KEY in the environment)",
  settings: {
    apiUrl: required(
      text({
        arg: "URL",
        help: "powerdns: the API's address, as in the webserver settings (http://ns1.example.com:8081); env PDNS_API_URL",
        check: (v) => {
          let u: URL;
          try {
            u = new URL(v);
          } catch {
            return "must be an http:// or https:// URL";
          }
          if (u.protocol !== "http:" && u.protocol !== "https:") return "must be an http:// or https:// URL";
          if (u.username || u.password || u.search || u.hash)
            return "must be a plain URL without credentials, query or fragment (the key goes in PDNS_API_KEY)";
          return undefined;
        },
      }),
    ),
    apiKey: required(
      text({
        arg: "KEY",
        secret: true,
        cli: false,
        help: "powerdns: the API key (api-key in pdns.conf); better from the environment: PDNS_API_KEY",
      }),
    ),
    serverId: withDefault(
      text({
        arg: "ID",
        help: 'powerdns: the server id in the API\'s paths (default "localhost"); env PDNS_SERVER_NAME',
        check: (v) => (/^[\w.-]+$/.test(v) ? undefined : "must be letters, digits, '.', '-' or '_'"),
      }),
      "localhost",
    ),
  },
  env: { apiUrl: ["PDNS_API_URL"], apiKey: ["PDNS_API_KEY"], serverId: ["PDNS_SERVER_NAME"] },
  create(c, ctx) {
    const base = pdnsServerBase(c.apiUrl, c.serverId);
    const headers = { "X-API-Key": c.apiKey };
    const shownUrl = new URL(c.apiUrl);
    const shown = `${shownUrl.protocol}//${shownUrl.host}`;
    const zones = new Map<string, PdnsZone>();

    const findZone = async (fqdn: string): Promise<PdnsZone> => {
      const known = zones.get(fqdn);
      if (known) return known;
      const tried = canonicalParents(fqdn);
      for (const name of tried) {
        const answer = await apiRequest(NAME, {
          method: "GET",
          url: `${base}/zones?zone=${encodeURIComponent(name)}`,
          headers,
        });
        if (answer.status !== 200 || !Array.isArray(answer.json))
          throw pdnsRefused(`list zones named ${name}`, answer, c.serverId);
        const zone = answer.json.find(
          (z): z is PdnsZone =>
            isRecord(z) &&
            typeof z.id === "string" &&
            typeof z.name === "string" &&
            z.name.toLowerCase() === name,
        );
        if (zone) {
          ctx.logger.debug(`PowerDNS: ${fqdn} is in zone ${zone.name} (id ${zone.id})`);
          zones.set(fqdn, zone);
          return zone;
        }
      }
      throw new WileError(`PowerDNS at ${shown} (server ${c.serverId}) has no zone holding ${fqdn}`, {
        hint: `Tried ${tried.join(", ")}. Check the API URL and server id, and that the zone exists there (pdnsutil list-all-zones).`,
      });
    };

    const change = async (record: DnsRecord, add: boolean): Promise<void> => {
      const name = `${record.fqdn.toLowerCase()}.`;
      const zone = await findZone(name);
      const zoneUrl = `${base}/zones/${encodeURIComponent(zone.id)}`;
      const read = await apiRequest(NAME, {
        method: "GET",
        url: `${zoneUrl}?rrset_name=${encodeURIComponent(name)}&rrset_type=TXT`,
        headers,
      });
      if (read.status !== 200 || !isRecord(read.json) || !Array.isArray(read.json.rrsets))
        throw pdnsRefused(`read zone ${zone.name}`, read, c.serverId);
      const set = read.json.rrsets.find(
        (s) => isRecord(s) && s.type === "TXT" && typeof s.name === "string" && s.name.toLowerCase() === name,
      );
      const current = isRecord(set)
        ? {
            ttl: typeof set.ttl === "number" ? set.ttl : PDNS_TTL,
            records: (Array.isArray(set.records) ? set.records : []).filter(
              (r): r is PdnsRecord => isRecord(r) && typeof r.content === "string",
            ),
          }
        : undefined;
      const rrset = txtRrsetChange(name, current, record.value, add);
      if (!rrset) {
        ctx.logger.debug(`PowerDNS: ${record.value} is ${add ? "already" : "no longer"} at ${name}`);
        return;
      }
      const what = `${add ? "add" : "remove"} TXT ${record.value} at ${name} in zone ${zone.name}`;
      ctx.logger.debug(
        `PowerDNS: ${rrset.changetype} of TXT at ${name} (${rrset.records?.length ?? 0} value(s) after)`,
      );
      const answer = await apiRequest(NAME, {
        method: "PATCH",
        url: zoneUrl,
        headers,
        body: { rrsets: [rrset] },
      });
      if (answer.status !== 204 && answer.status !== 200) throw pdnsRefused(what, answer, c.serverId);
      // A primary zone's secondaries hear of the change now rather than at PowerDNS's next check,
      // as lego does; the change is made either way, so a failure here is only a warning.
      if (zone.kind === "Master" || zone.kind === "Primary") {
        const notify = await apiRequest(NAME, { method: "PUT", url: `${zoneUrl}/notify`, headers }).catch(
          (e: Error) => e,
        );
        if (!(notify instanceof Error) && notify.status === 200)
          ctx.logger.debug(`PowerDNS: NOTIFY of zone ${zone.name} queued`);
        else
          ctx.logger.warn(
            `PowerDNS did not queue a NOTIFY of zone ${zone.name} to its secondaries (${notify instanceof Error ? notify.message : `HTTP ${notify.status}`}); they catch up at their next refresh`,
          );
      }
    };

    const serially = oneAtATime();
    return {
      describe: () => `powerdns (${shown}, server ${c.serverId})`,
      present: (record) => serially(() => change(record, true)),
      cleanup: (record) => serially(() => change(record, false)),
    };
  },
});
