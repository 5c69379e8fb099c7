/**
 * The "acme-dns" DNS provider: an acme-dns server (github.com/joohoi/acme-dns), which serves the
 * TXT records of one subdomain per registration and nothing else, so its credentials cannot change
 * anything but that subdomain.
 *
 * Set-up, once per name (acme-dns's own protocol, done by the operator): `POST /register` on the
 * server answers `{username, password, fulldomain, subdomain}`; then, in the name's real zone,
 * `_acme-challenge.NAME. CNAME <fulldomain>.` (fulldomain is `<subdomain>.<acme-dns domain>`). The
 * CA and wile's propagation check follow that CNAME.
 *
 * - Add: `POST /update` with `X-Api-User: USERNAME`, `X-Api-Key: PASSWORD` and
 *   `{subdomain, txt: VALUE}`; 200 `{txt}`.
 * - acme-dns keeps the two most recent values of a subdomain (so a name and its wildcard both
 *   validate) and has no delete: cleanup sends nothing, the values are rolled out by the next
 *   updates. A third value for one subdomain in one run would push out the first one before the
 *   CA looked at it, so it is refused: such a name needs a registration of its own.
 * Errors are `{error: "forbidden" | "bad_txt" | "bad_subdomain" | ...}`.
 */
import { WileError } from "../../util/errors";
import { required, text } from "../../util/settings";
import { isRecord } from "../../util/text";
import { apiUrl, apiUrlProblem } from "../api-common";
import { ApiError, apiRequest, unexpectedAnswer } from "../http-api";
import { defineDnsProvider } from "../provider";

const PROVIDER = "acme-dns";
/** Values an acme-dns subdomain serves at once. */
export const ACME_DNS_VALUES = 2;

export const acmeDnsProvider = defineDnsProvider({
  name: "acme-dns",
  summary: "an acme-dns server: _acme-challenge.NAME is a CNAME to the registered subdomain",
  example:
    "--dns acme-dns --acme-dns-api https://auth.example.org --acme-dns-username USER --acme-dns-subdomain SUB, with ACMEDNS_PASSWORD in the environment",
  settings: {
    api: required(
      text({
        arg: "URL",
        help: "acme-dns: the server's API address (https://auth.example.org)",
        check: apiUrlProblem,
      }),
    ),
    username: required(text({ arg: "USER", help: "acme-dns: the username /register gave" })),
    password: required(
      text({
        arg: "PASSWORD",
        secret: true,
        cli: false,
        help: "acme-dns: the password /register gave (better in the environment: ACMEDNS_PASSWORD; never stored, so renewals read it there again)",
      }),
    ),
    subdomain: required(
      text({
        arg: "SUB",
        help: "acme-dns: the subdomain /register gave (the CNAME target's first label)",
        check: (v) =>
          /^[A-Za-z0-9-]{1,63}$/.test(v) ? undefined : "must be one DNS label (the subdomain /register gave)",
      }),
    ),
  },
  env: {
    api: ["ACMEDNS_BASE_URL", "ACME_DNS_API_BASE"],
    username: ["ACMEDNS_USERNAME"],
    password: ["ACMEDNS_PASSWORD"],
    subdomain: ["ACMEDNS_SUBDOMAIN"],
  },
  create(c, ctx) {
    const host = new URL(c.api).host;
    /** Values presented and not cleaned up yet (acme-dns holds ACME_DNS_VALUES). */
    const live = new Set<string>();
    return {
      describe: () => `acme-dns (${host}, subdomain ${c.subdomain})`,
      async present(r) {
        if (!live.has(r.value) && live.size >= ACME_DNS_VALUES) {
          throw new WileError(
            `acme-dns keeps ${ACME_DNS_VALUES} TXT values per subdomain, and ${c.subdomain} already holds ${ACME_DNS_VALUES} of this order: ${r.fqdn} cannot be added`,
            {
              hint: "Register another acme-dns subdomain (POST /register) for this name, point its _acme-challenge CNAME there, and issue it in a certificate of its own.",
            },
          );
        }
        const a = await apiRequest(PROVIDER, {
          method: "POST",
          url: apiUrl(c.api, "/update"),
          headers: { "X-Api-User": c.username, "X-Api-Key": c.password },
          body: { subdomain: c.subdomain, txt: r.value },
        });
        if (a.status !== 200) {
          const said = isRecord(a.json) && typeof a.json.error === "string" ? a.json.error : undefined;
          throw unexpectedAnswer(
            PROVIDER,
            `update the TXT record of subdomain ${c.subdomain} (for ${r.fqdn})`,
            a,
            said,
            a.status === 401
              ? "Check the acme-dns username and password (ACMEDNS_USERNAME, ACMEDNS_PASSWORD), the subdomain they were registered with, and the server's allowfrom list."
              : undefined,
          );
        }
        if (isRecord(a.json) && a.json.txt !== undefined && a.json.txt !== r.value)
          throw new ApiError(`acme-dns answered the update of ${c.subdomain} with another value`, 200, {
            hint: "Check that the API address is an acme-dns server.",
          });
        live.add(r.value);
        ctx.logger.debug(`acme-dns: ${r.fqdn} is served as ${c.subdomain} (a CNAME must point there)`);
      },
      async cleanup(r) {
        // acme-dns has no delete: the value rolls out with the next updates.
        live.delete(r.value);
      },
    };
  },
});
