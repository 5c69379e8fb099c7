/**
 * The "hetzner" DNS provider: Hetzner DNS through the Hetzner Cloud API
 * (https://api.hetzner.cloud/v1, `Authorization: Bearer TOKEN`, a Cloud project's API token with
 * read & write). Hetzner moved DNS into the Cloud API in 2025; the old DNS Console API
 * (dns.hetzner.com/api/v1, `Auth-API-Token`) no longer serves a zone once it is migrated and is
 * being shut down, so it is not implemented, and its tokens (HETZNER_API_KEY, acme.sh's
 * HETZNER_Token) are not read: they would only be refused.
 *
 * - Zone: `GET /zones/NAME` for each name zoneCandidates gives (the parents of the record's name), most specific first (404: not a
 *   zone of this project).
 * - RRsets are per name and type: `GET /zones/ZONE/rrsets/RR_NAME/TXT` (RR_NAME relative, `@` for
 *   the apex) shows the values; `POST .../actions/add_records {ttl, records: [{value}]}` appends
 *   one (the set is created if missing), `POST .../actions/remove_records {records: [{value}]}`
 *   removes exactly that one. TXT values are quoted strings. Both answer with an action, followed
 *   (`GET /zones/actions/ID`) until it is no longer running.
 * Errors are `{error: {code, message}}`.
 */
import { WileError } from "../../util/errors";
import { isRecord } from "../../util/text";
import {
  apiUrl,
  apiUrlSetting,
  authHint,
  quoteTxt,
  relativeName,
  tokenSetting,
  unquoteTxt,
  walkUp,
  zoneCache,
} from "../api-common";
import { type ApiAnswer, ApiError, apiRequest, unexpectedAnswer } from "../http-api";
import { defineDnsProvider } from "../provider";

const PROVIDER = "Hetzner";
const TOKEN_ENV = ["HETZNER_API_TOKEN", "HETZNER_TOKEN", "HCLOUD_TOKEN"];
export const HETZNER_TTL = 120;
/** How long an action may run before wile gives up following it. */
export const HETZNER_ACTION_WAIT_MS = 60_000;
const ACTION_POLL_MS = 250;
const AUTH_HINT = `Check the token in ${TOKEN_ENV.join(" / ")} (or the home's config: wile config --dns-credential hetzner.token): a Hetzner Cloud API token (Console > project > Security > API tokens) with read & write, of the project holding the zone; tokens of the old DNS Console do not work.`;

function hetznerError(a: ApiAnswer): string | undefined {
  if (!isRecord(a.json) || !isRecord(a.json.error)) return undefined;
  const e = a.json.error;
  return `${String(e.message ?? "")}${e.code !== undefined ? ` (${String(e.code)})` : ""}`;
}

function ok(a: ApiAnswer, what: string): Record<string, unknown> {
  if (a.status >= 200 && a.status < 300 && isRecord(a.json)) return a.json;
  throw unexpectedAnswer(PROVIDER, what, a, hetznerError(a), authHint(a.status, AUTH_HINT));
}

export const hetznerProvider = defineDnsProvider({
  name: "hetzner",
  summary: "Hetzner DNS through the Hetzner Cloud API with a project API token (HETZNER_API_TOKEN)",
  example: "--dns hetzner, with HETZNER_API_TOKEN in the environment",
  settings: {
    token: tokenSetting("hetzner", "Hetzner Cloud API token (read & write)", TOKEN_ENV),
    api: apiUrlSetting("hetzner", "https://api.hetzner.cloud/v1"),
  },
  env: { token: TOKEN_ENV, api: ["HETZNER_API", "HCLOUD_ENDPOINT"] },
  create(c, ctx) {
    const headers = { Authorization: `Bearer ${c.token}` };
    const call = (method: "GET" | "POST", path: string, body?: unknown) =>
      apiRequest(PROVIDER, { method, url: apiUrl(c.api, path), headers, body });

    const findZone = async (fqdn: string) => {
      const found = await walkUp(fqdn, async (name) => {
        const a = await call("GET", `/zones/${encodeURIComponent(name)}`);
        if (a.status === 404) return undefined;
        const zone = ok(a, `find the zone of ${fqdn} (${name}?)`).zone;
        return isRecord(zone) && (typeof zone.id === "number" || typeof zone.id === "string")
          ? String(zone.id)
          : undefined;
      });
      if (found) {
        ctx.logger.debug(`Hetzner zone of ${fqdn}: ${found.name} (${found.zone})`);
        return { id: found.zone, name: found.name };
      }
      throw new ApiError(`Hetzner has no zone holding ${fqdn} in this project`, undefined, {
        hint: "Check that the zone is in the Cloud project of this token (Hetzner Console > DNS); a zone still in the old DNS Console must be migrated first.",
      });
    };
    const zoneOf = zoneCache(findZone);
    const rrsetPath = async (fqdn: string) => {
      const zone = await zoneOf(fqdn);
      const rr = relativeName(fqdn, zone.name) || "@";
      return `/zones/${encodeURIComponent(zone.id)}/rrsets/${encodeURIComponent(rr)}/TXT`;
    };
    const values = async (path: string, fqdn: string): Promise<string[]> => {
      const a = await call("GET", path);
      if (a.status === 404) return [];
      const rrset = ok(a, `read the TXT records of ${fqdn}`).rrset;
      const records = isRecord(rrset) && Array.isArray(rrset.records) ? rrset.records : [];
      return records.filter(isRecord).map((r) => unquoteTxt(String(r.value ?? "")));
    };
    /** Follows an action until it is no longer running; throws if it failed. */
    const settle = async (answer: Record<string, unknown>, what: string) => {
      let action = answer.action;
      const until = Date.now() + HETZNER_ACTION_WAIT_MS;
      for (let i = 0; isRecord(action) && action.status === "running"; i++) {
        if (Date.now() > until)
          throw new WileError(`Hetzner did not finish to ${what} within ${HETZNER_ACTION_WAIT_MS / 1000} s`, {
            hint: "Check the zone in the Hetzner Console; run again later.",
          });
        // At once first (an action is usually done by then), then 250 ms doubling up to 2 s.
        if (i > 0)
          await new Promise((resolve) => setTimeout(resolve, Math.min(ACTION_POLL_MS * 2 ** (i - 1), 2000)));
        const a = await call("GET", `/zones/actions/${encodeURIComponent(String(action.id))}`);
        action = ok(a, `report on its action (${what})`).action;
      }
      if (isRecord(action) && action.status === "error") {
        const e = isRecord(action.error) ? action.error : {};
        throw new WileError(`Hetzner could not ${what}: ${String(e.message ?? "the action failed")}`, {
          hint: "Check the zone in the Hetzner Console; run again with -v for details.",
        });
      }
    };

    return {
      describe: () => `hetzner (${new URL(c.api).host})`,
      async present(r) {
        const path = await rrsetPath(r.fqdn);
        if ((await values(path, r.fqdn)).includes(r.value)) return;
        const what = `add the TXT record ${r.fqdn}`;
        const a = await call("POST", `${path}/actions/add_records`, {
          ttl: HETZNER_TTL,
          records: [{ value: quoteTxt(r.value) }],
        });
        await settle(ok(a, what), what);
      },
      async cleanup(r) {
        const path = await rrsetPath(r.fqdn);
        if (!(await values(path, r.fqdn)).includes(r.value)) return;
        const what = `remove the TXT record ${r.fqdn}`;
        const a = await call("POST", `${path}/actions/remove_records`, {
          records: [{ value: quoteTxt(r.value) }],
        });
        await settle(ok(a, what), what);
      },
    };
  },
});
