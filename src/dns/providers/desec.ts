/**
 * The "desec" DNS provider: deSEC's API (https://desec.io/api/v1, `Authorization: Token TOKEN`).
 *
 * - Zone ("domain"): `GET /domains/?owns_qname=FQDN`, deSEC's own answer to "which of my domains
 *   holds this name" (a list of at most one).
 * - deSEC keeps RRsets (all values of one name and type): `GET /domains/DOMAIN/rrsets/SUBNAME/TXT/`
 *   (SUBNAME relative, `@` for the apex; 404 when there is none) reads the values; a new set is
 *   `POST /domains/DOMAIN/rrsets/ {subname, type: "TXT", ttl, records}`, a changed one
 *   `PATCH .../rrsets/SUBNAME/TXT/ {records}` with every value that stays (an empty list deletes
 *   the set). TXT values are quoted strings. So adding and removing are read-modify-write: the
 *   changes of one name are made one after another.
 * - TTL 3600, deSEC's default minimum.
 * Errors are `{detail}` or `{field: [messages]}`. deSEC limits writes per domain (429 with
 * Retry-After): apiRequest waits and retries within bounds.
 */
import { isRecord } from "../../util/text";
import {
  apiUrl,
  apiUrlSetting,
  authHint,
  quoteTxt,
  relativeName,
  tokenSetting,
  unquoteTxt,
  zoneCache,
} from "../api-common";
import { type ApiAnswer, ApiError, apiRequest, unexpectedAnswer } from "../http-api";
import { defineDnsProvider } from "../provider";

const PROVIDER = "deSEC";
const TOKEN_ENV = ["DESEC_TOKEN", "DEDYN_TOKEN"];
export const DESEC_TTL = 3600;
const AUTH_HINT = `Check the token in ${TOKEN_ENV.join(" / ")} (or the home's config: wile config --dns-credential desec.token): a deSEC API token of the account holding the domain, allowed to write its records.`;

function desecError(a: ApiAnswer): string | undefined {
  if (isRecord(a.json) && typeof a.json.detail === "string") return a.json.detail;
  if (isRecord(a.json) || Array.isArray(a.json)) return JSON.stringify(a.json);
  return undefined;
}

function ok(a: ApiAnswer, what: string): unknown {
  if (a.status >= 200 && a.status < 300) return a.json;
  throw unexpectedAnswer(PROVIDER, what, a, desecError(a), authHint(a.status, AUTH_HINT));
}

export const desecProvider = defineDnsProvider({
  name: "desec",
  summary: "deSEC (desec.io, dedyn.io) with an API token (DESEC_TOKEN)",
  example: "--dns desec, with DESEC_TOKEN in the environment",
  settings: {
    token: tokenSetting("desec", "API token", TOKEN_ENV),
    api: apiUrlSetting("desec", "https://desec.io/api/v1"),
  },
  env: { token: TOKEN_ENV, api: ["DESEC_API_URL"] },
  create(c, ctx) {
    const headers = { Authorization: `Token ${c.token}` };
    const call = (method: "GET" | "POST" | "PATCH", path: string, body?: unknown) =>
      apiRequest(PROVIDER, { method, url: apiUrl(c.api, path), headers, body });
    /** The last change of each name: the next one waits for it. */
    const queue = new Map<string, Promise<unknown>>();

    const zoneOf = zoneCache(async (fqdn: string): Promise<string> => {
      const list = ok(
        await call("GET", `/domains/?owns_qname=${encodeURIComponent(fqdn)}`),
        `find the domain of ${fqdn}`,
      );
      const d = Array.isArray(list) ? list.find(isRecord) : undefined;
      if (d && typeof d.name === "string") {
        ctx.logger.debug(`deSEC domain of ${fqdn}: ${d.name}`);
        return d.name;
      }
      throw new ApiError(`deSEC has no domain holding ${fqdn} in this account`, undefined, {
        hint: "Check that the domain is in the deSEC account of this token.",
      });
    });

    /** Reads the TXT values at r.fqdn, lets `change` compute the new list, writes it if it differs. */
    const update = (fqdn: string, change: (values: string[]) => string[], what: string): Promise<void> => {
      const run = async () => {
        const domain = await zoneOf(fqdn);
        const sub = relativeName(fqdn, domain);
        const path = `/domains/${encodeURIComponent(domain)}/rrsets/${encodeURIComponent(sub || "@")}/TXT/`;
        const a = await call("GET", path);
        const rrset = a.status === 404 ? undefined : ok(a, `read the TXT records of ${fqdn}`);
        const old =
          isRecord(rrset) && Array.isArray(rrset.records)
            ? rrset.records.map((v) => unquoteTxt(String(v)))
            : [];
        const next = change(old);
        if (next.length === old.length && next.every((v, i) => v === old[i])) return;
        const records = next.map(quoteTxt);
        const w = rrset
          ? await call("PATCH", path, { records })
          : await call("POST", `/domains/${encodeURIComponent(domain)}/rrsets/`, {
              subname: sub,
              type: "TXT",
              ttl: DESEC_TTL,
              records,
            });
        ok(w, what);
      };
      const before = queue.get(fqdn) ?? Promise.resolve();
      const mine = before.catch(() => {}).then(run);
      queue.set(fqdn, mine);
      return mine;
    };

    return {
      describe: () => `desec (${new URL(c.api).host})`,
      present: (r) =>
        update(r.fqdn, (v) => (v.includes(r.value) ? v : [...v, r.value]), `add the TXT record ${r.fqdn}`),
      cleanup: (r) =>
        update(r.fqdn, (v) => v.filter((x) => x !== r.value), `remove the TXT record ${r.fqdn}`),
    };
  },
});
