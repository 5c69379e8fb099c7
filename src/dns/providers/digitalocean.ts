/**
 * The "digitalocean" DNS provider: DigitalOcean's API v2 (https://api.digitalocean.com/v2) with a
 * personal access token (`Authorization: Bearer TOKEN`, scope domain read/update/create/delete).
 *
 * - Zone ("domain"): `GET /domains/NAME` for each name zoneCandidates gives (the parents of the record's name), most specific
 *   first (404: not a domain of this account).
 * - Add: `POST /domains/DOMAIN/records {type: "TXT", name: RELATIVE or "@", data: VALUE, ttl}`;
 *   each value is a record of its own, so a name and its wildcard coexist.
 * - Remove: `GET /domains/DOMAIN/records?type=TXT&name=FQDN` (the filter takes the full name;
 *   paged with `page`/`per_page` while `links.pages.next` is there), then
 *   `DELETE /domains/DOMAIN/records/ID` for each record whose data is our value.
 * Errors are `{id, message}`.
 */
import { isRecord } from "../../util/text";
import {
  allPages,
  apiUrl,
  apiUrlSetting,
  authHint,
  relativeName,
  tokenSetting,
  unquoteTxt,
  walkUp,
  zoneCache,
} from "../api-common";
import { type ApiAnswer, ApiError, apiRequest, unexpectedAnswer } from "../http-api";
import { defineDnsProvider } from "../provider";

const PROVIDER = "DigitalOcean";
const TOKEN_ENV = ["DO_AUTH_TOKEN", "DO_API_KEY"];
/** DigitalOcean's smallest TTL. */
export const DIGITALOCEAN_TTL = 30;
const PER_PAGE = 200;
const AUTH_HINT = `Check the token in ${TOKEN_ENV.join(" / ")} (or the home's config: wile config --dns-credential digitalocean.token): a personal access token with read and write on domains.`;

function doError(a: ApiAnswer): string | undefined {
  if (!isRecord(a.json) || typeof a.json.message !== "string") return undefined;
  return `${a.json.message}${typeof a.json.id === "string" ? ` (${a.json.id})` : ""}`;
}

function ok(a: ApiAnswer, what: string): Record<string, unknown> {
  if (a.status >= 200 && a.status < 300) return isRecord(a.json) ? a.json : {};
  throw unexpectedAnswer(PROVIDER, what, a, doError(a), authHint(a.status, AUTH_HINT));
}

export const digitaloceanProvider = defineDnsProvider({
  name: "digitalocean",
  summary: "DigitalOcean's API v2 with a personal access token (DO_AUTH_TOKEN)",
  example: "--dns digitalocean, with DO_AUTH_TOKEN in the environment",
  settings: {
    token: tokenSetting("digitalocean", "personal access token (domain read and write)", TOKEN_ENV),
    api: apiUrlSetting("digitalocean", "https://api.digitalocean.com/v2"),
  },
  env: { token: TOKEN_ENV, api: ["DO_API_URL"] },
  create(c, ctx) {
    const headers = { Authorization: `Bearer ${c.token}` };
    const call = (method: "GET" | "POST" | "DELETE", path: string, body?: unknown) =>
      apiRequest(PROVIDER, { method, url: apiUrl(c.api, path), headers, body });

    const zoneOf = zoneCache(async (fqdn: string): Promise<string> => {
      const found = await walkUp(fqdn, async (name) => {
        const a = await call("GET", `/domains/${encodeURIComponent(name)}`);
        if (a.status === 404) return undefined;
        const domain = ok(a, `find the domain of ${fqdn} (${name}?)`).domain;
        return isRecord(domain) && domain.name === name ? name : undefined;
      });
      if (found) {
        ctx.logger.debug(`DigitalOcean domain of ${fqdn}: ${found.name}`);
        return found.name;
      }
      throw new ApiError(`DigitalOcean has no domain holding ${fqdn} in this account`, undefined, {
        hint: "Check that the domain is in the DigitalOcean account of this token (Networking > Domains).",
      });
    });

    return {
      describe: () => `digitalocean (${new URL(c.api).host})`,
      async present(r) {
        const zone = await zoneOf(r.fqdn);
        const a = await call("POST", `/domains/${encodeURIComponent(zone)}/records`, {
          type: "TXT",
          name: relativeName(r.fqdn, zone) || "@",
          data: r.value,
          ttl: DIGITALOCEAN_TTL,
        });
        ok(a, `add the TXT record ${r.fqdn}`);
      },
      async cleanup(r) {
        const zone = encodeURIComponent(await zoneOf(r.fqdn));
        const records = await allPages(async (page) => {
          const a = await call(
            "GET",
            `/domains/${zone}/records?type=TXT&name=${encodeURIComponent(r.fqdn)}&per_page=${PER_PAGE}&page=${page}`,
          );
          const body = ok(a, `list the TXT records of ${r.fqdn}`);
          const next = isRecord(body.links) && isRecord(body.links.pages) ? body.links.pages.next : undefined;
          const items = Array.isArray(body.domain_records) ? body.domain_records.filter(isRecord) : [];
          return { items, more: typeof next === "string" };
        });
        const ids = records
          .filter(
            (rec) => rec.type === "TXT" && typeof rec.data === "string" && unquoteTxt(rec.data) === r.value,
          )
          .map((rec) => String(rec.id));
        for (const id of ids) {
          const a = await call("DELETE", `/domains/${zone}/records/${encodeURIComponent(id)}`);
          if (a.status !== 404) ok(a, `remove the TXT record ${r.fqdn}`);
        }
      },
    };
  },
});
