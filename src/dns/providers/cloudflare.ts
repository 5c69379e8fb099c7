/**
 * The "cloudflare" DNS provider: Cloudflare's API v4 (https://api.cloudflare.com/client/v4) with an
 * API token (`Authorization: Bearer TOKEN`; permissions Zone / DNS / Edit, plus Zone / Zone / Read
 * for the zone lookup unless the zone id is given).
 *
 * - Zone: `GET /zones?name=NAME` for each name zoneCandidates gives (the parents of the record's name), most specific first; the
 *   first zone found holds the record (or the zone id given: no lookup).
 * - Add: `POST /zones/ZONE/dns_records {type: "TXT", name: FQDN, content: VALUE, ttl}`; several
 *   records may share a name (a name and its wildcard). "An identical record already exists"
 *   (81058) counts as added.
 * - Remove: `GET /zones/ZONE/dns_records?type=TXT&name=FQDN` (paged by `result_info.total_pages`),
 *   then `DELETE /zones/ZONE/dns_records/ID` for each record whose content is our value (with or
 *   without the quotes Cloudflare may keep around TXT content), leaving every other value.
 * Every answer is `{success, errors: [{code, message}], result}`; errors are quoted with their codes.
 */

import { text } from "../../util/settings";
import { isRecord } from "../../util/text";
import {
  allPages,
  apiUrl,
  apiUrlSetting,
  authHint,
  tokenSetting,
  unquoteTxt,
  walkUp,
  zoneCache,
} from "../api-common";
import { type ApiAnswer, ApiError, apiRequest, unexpectedAnswer } from "../http-api";
import { defineDnsProvider } from "../provider";

const PROVIDER = "Cloudflare";
const TOKEN_ENV = ["CLOUDFLARE_DNS_API_TOKEN", "CF_DNS_API_TOKEN", "CF_Token"];
export const CLOUDFLARE_TTL = 120;
const PER_PAGE = 100;
const IDENTICAL_RECORD = 81058;
const AUTH_HINT = `Check the token in ${TOKEN_ENV.join(" / ")} (or the home's config: wile config --dns-credential cloudflare.token): it must be an API token (not the Global API Key) with Zone / DNS / Edit on this zone, and Zone / Zone / Read unless --cloudflare-zone-id is given.`;

/** The `errors` of a Cloudflare answer as "message (code); ...", or undefined. */
function cloudflareErrors(a: ApiAnswer): string | undefined {
  if (!isRecord(a.json) || !Array.isArray(a.json.errors)) return undefined;
  const parts = a.json.errors
    .filter(isRecord)
    .map((e) => `${String(e.message ?? "")}${e.code !== undefined ? ` (${String(e.code)})` : ""}`);
  return parts.length > 0 ? parts.join("; ") : undefined;
}

function errorCodes(a: ApiAnswer): unknown[] {
  return isRecord(a.json) && Array.isArray(a.json.errors)
    ? a.json.errors.filter(isRecord).map((e) => e.code)
    : [];
}

/** The answer's `result` when it is a success, else the API's refusal as an ApiError. */
function result(a: ApiAnswer, what: string): unknown {
  if (a.status >= 200 && a.status < 300 && isRecord(a.json) && a.json.success === true) return a.json.result;
  throw unexpectedAnswer(PROVIDER, what, a, cloudflareErrors(a), authHint(a.status, AUTH_HINT));
}

export const cloudflareProvider = defineDnsProvider({
  name: "cloudflare",
  summary: "Cloudflare's API v4 with an API token (CLOUDFLARE_DNS_API_TOKEN)",
  example: "--dns cloudflare, with CLOUDFLARE_DNS_API_TOKEN in the environment",
  settings: {
    token: tokenSetting("cloudflare", "API token with Zone / DNS / Edit", TOKEN_ENV),
    zoneId: text({
      arg: "ID",
      help: "cloudflare: the zone's id (skips the zone lookup; the token then needs no Zone / Zone / Read)",
      check: (v) => (/^[A-Za-z0-9]{1,64}$/.test(v) ? undefined : "must be a zone id (letters and digits)"),
    }),
    api: apiUrlSetting("cloudflare", "https://api.cloudflare.com/client/v4"),
  },
  env: { token: TOKEN_ENV, zoneId: ["CLOUDFLARE_ZONE_ID", "CF_Zone_ID"], api: ["CLOUDFLARE_BASE_URL"] },
  create(c, ctx) {
    const headers = { Authorization: `Bearer ${c.token}` };
    const call = (method: "GET" | "POST" | "DELETE", path: string, body?: unknown) =>
      apiRequest(PROVIDER, { method, url: apiUrl(c.api, path), headers, body });

    const findZone = async (fqdn: string): Promise<string> => {
      const found = await walkUp(fqdn, async (name) => {
        const list = result(
          await call("GET", `/zones?name=${encodeURIComponent(name)}`),
          `find the zone of ${fqdn} (${name}?)`,
        );
        const zone = Array.isArray(list) ? list.find((z) => isRecord(z) && z.name === name) : undefined;
        return isRecord(zone) && typeof zone.id === "string" ? zone.id : undefined;
      });
      if (found) {
        ctx.logger.debug(`Cloudflare zone of ${fqdn}: ${found.name} (${found.zone})`);
        return found.zone;
      }
      throw new ApiError(`Cloudflare has no zone holding ${fqdn} for this token`, undefined, {
        hint: "Check that the zone is in this Cloudflare account and that the token may read it (Zone / Zone / Read), or give its id (--cloudflare-zone-id).",
      });
    };
    const lookup = zoneCache(findZone);
    const zoneOf = (fqdn: string): Promise<string> => (c.zoneId ? Promise.resolve(c.zoneId) : lookup(fqdn));

    return {
      describe: () => `cloudflare (${new URL(c.api).host}${c.zoneId ? `, zone ${c.zoneId}` : ""})`,
      async present(r) {
        const zone = await zoneOf(r.fqdn);
        const a = await call("POST", `/zones/${encodeURIComponent(zone)}/dns_records`, {
          type: "TXT",
          name: r.fqdn,
          content: r.value,
          ttl: CLOUDFLARE_TTL,
        });
        if (errorCodes(a).includes(IDENTICAL_RECORD)) return;
        result(a, `add the TXT record ${r.fqdn}`);
      },
      async cleanup(r) {
        const zone = encodeURIComponent(await zoneOf(r.fqdn));
        const records = await allPages(async (page) => {
          const a = await call(
            "GET",
            `/zones/${zone}/dns_records?type=TXT&name=${encodeURIComponent(r.fqdn)}&per_page=${PER_PAGE}&page=${page}`,
          );
          const list = result(a, `list the TXT records of ${r.fqdn}`);
          const info = isRecord(a.json) && isRecord(a.json.result_info) ? a.json.result_info : {};
          const more = typeof info.total_pages === "number" && page < info.total_pages;
          return { items: Array.isArray(list) ? list.filter(isRecord) : [], more };
        });
        const ids = records
          .filter((rec) => typeof rec.content === "string" && unquoteTxt(rec.content) === r.value)
          .map((rec) => String(rec.id));
        for (const id of ids) {
          const a = await call("DELETE", `/zones/${zone}/dns_records/${encodeURIComponent(id)}`);
          if (a.status === 404) continue;
          result(a, `remove the TXT record ${r.fqdn}`);
        }
      },
    };
  },
});
