/**
 * The "route53" DNS provider: Amazon Route 53's REST API (version 2013-04-01, XML), every request
 * signed with AWS Signature Version 4 (src/dns/sigv4.ts; service "route53"), no AWS SDK:
 *
 *     GET  /2013-04-01/hostedzone/{Id}                              the zone given (AWS_HOSTED_ZONE_ID)
 *     GET  /2013-04-01/hostedzonesbyname?dnsname=NAME.&maxitems=N   ListHostedZonesByName, walking up
 *          [&hostedzoneid=NextHostedZoneId]                         the labels; pages followed
 *     GET  /2013-04-01/hostedzone/{Id}/rrset?name=FQDN.&type=TXT&maxitems=1   the TXT set there now
 *     POST /2013-04-01/hostedzone/{Id}/rrset/                       ChangeResourceRecordSets
 *     GET  /2013-04-01/change/{Id}                                  GetChange, until INSYNC
 *
 * Route 53 holds all TXT values at a name in one record set, so adding is an UPSERT of the whole
 * set with ours added; removing an UPSERT without ours, or, when ours was the last, a DELETE that
 * names the set exactly as it is (Route 53 deletes only an exact match). Each change is waited for
 * until GetChange says INSYNC (every Route 53 server has it), for at most ROUTE53_INSYNC_TIMEOUT_S.
 * Changes through one provider go one at a time. Private hosted zones are passed over (the CA
 * cannot see them).
 *
 * Errors are read from Route 53's XML (<ErrorResponse><Error><Code/><Message/>, or
 * <InvalidChangeBatch><Messages><Message/>) and quoted, short and printable; a credential never is.
 *
 * Endpoint: https://route53.amazonaws.com, signed for us-east-1; a region of the China or GovCloud
 * partitions (cn-*, us-gov-*) picks that partition's endpoint and signing region. The environment
 * variable AWS_ENDPOINT_URL_ROUTE_53 (the AWS SDKs' name for it) replaces the endpoint: for tests
 * and Route 53-compatible services only.
 */
import { WileError } from "../../util/errors";
import { required, text, withDefault } from "../../util/settings";
import { canonicalParents, changeTxtSet, oneAtATime } from "../api-common";
import { apiRequest, unexpectedAnswer } from "../http-api";
import { type DnsRecord, defineDnsProvider } from "../provider";
import { type AwsCredentials, signRequest } from "../sigv4";
import { parseXml, type XmlElement, xmlChild, xmlChildren, xmlEscape, xmlText } from "../xml";

const NAME = "Route 53";
const VERSION = "2013-04-01";
const XMLNS = `https://route53.amazonaws.com/doc/${VERSION}/`;
/** Seconds; the TTL of a new TXT set (an existing set keeps its own). */
export const ROUTE53_TTL = 60;
export const ROUTE53_INSYNC_TIMEOUT_S = 180;
const ZONE_PAGE = 100;
/**
 * Errors after which Route 53 has not acted and asks to be asked again later (its rate limit of
 * five requests a second per account, a change to the zone still being applied): tried up to
 * RETRIES times in all, RETRY_DELAY_MS, then twice that, apart.
 */
const RETRIED = ["Throttling", "PriorRequestNotComplete"];
const RETRIES = 3;
export const RETRY_DELAY_MS = 400;

/** The endpoint and signing region of the partition `region` belongs to. */
export function route53Endpoint(region: string): { endpoint: string; signingRegion: string } {
  if (region.startsWith("cn-"))
    return { endpoint: "https://route53.amazonaws.com.cn", signingRegion: "cn-northwest-1" };
  if (region.startsWith("us-gov-"))
    return { endpoint: "https://route53.us-gov.amazonaws.com", signingRegion: "us-gov-west-1" };
  return { endpoint: "https://route53.amazonaws.com", signingRegion: "us-east-1" };
}

/** Route 53's own words from an error answer: `Code: Message`, or the InvalidChangeBatch messages. */
export function route53ErrorDetail(body: string): string | undefined {
  let root: XmlElement;
  try {
    root = parseXml(body);
  } catch {
    return undefined;
  }
  if (root.name === "ErrorResponse") {
    const code = xmlText(root, "Error", "Code")?.trim();
    const message = xmlText(root, "Error", "Message")?.trim();
    return [code, message].filter(Boolean).join(": ") || undefined;
  }
  if (root.name === "InvalidChangeBatch") {
    const messages = xmlChildren(xmlChild(root, "Messages"), "Message").map((m) => m.text.trim());
    return `InvalidChangeBatch: ${messages.join("; ")}`;
  }
  return undefined;
}

/** What to check for a Route 53 error code (from route53ErrorDetail), or undefined for the general hint. */
export function route53Hint(detail: string | undefined): string | undefined {
  const code = detail?.split(":")[0];
  if (code === "SignatureDoesNotMatch")
    return "Check the secret access key (AWS_SECRET_ACCESS_KEY) and this host's clock; it must belong to the access key id.";
  if (code === "InvalidClientTokenId" || code === "UnrecognizedClientException" || code === "ExpiredToken")
    return "Check the access key id (AWS_ACCESS_KEY_ID) and, for temporary credentials, that AWS_SESSION_TOKEN is set and not expired.";
  if (code === "AccessDenied" || code === "AccessDeniedException")
    return "The credentials' IAM policy must allow route53:ListHostedZonesByName, route53:GetHostedZone, route53:ListResourceRecordSets, route53:ChangeResourceRecordSets (on the zone) and route53:GetChange.";
  if (code === "NoSuchHostedZone")
    return "Check AWS_HOSTED_ZONE_ID (--route53-hosted-zone-id): no such hosted zone in this account.";
  if (code === "Throttling" || code === "PriorRequestNotComplete")
    return "Route 53 asks for fewer requests at once: run again in a minute.";
  return undefined;
}

export interface Route53Set {
  name: string;
  ttl: number;
  /** Values in presentation form (quoted), as Route 53 gives them. */
  values: string[];
}

/**
 * The change that adds (`add`) or removes `value` at `name`, given the TXT set there now; undefined
 * when nothing has to change. The body of ChangeResourceRecordSets is changeBatchXml(change).
 */
export function route53Change(
  name: string,
  current: Route53Set | undefined,
  value: string,
  add: boolean,
): { action: "UPSERT" | "DELETE"; set: Route53Set } | undefined {
  const values = changeTxtSet(current?.values ?? [], value, add, { content: (v) => v, make: (v) => v });
  if (!values) return undefined;
  const ttl = current?.ttl ?? ROUTE53_TTL;
  if (values.length === 0 && current) return { action: "DELETE", set: current };
  return { action: "UPSERT", set: { name, ttl, values } };
}

export function changeBatchXml(change: { action: string; set: Route53Set }, comment: string): string {
  const records = change.set.values
    .map((v) => `<ResourceRecord><Value>${xmlEscape(v)}</Value></ResourceRecord>`)
    .join("");
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n<ChangeResourceRecordSetsRequest xmlns="${XMLNS}"><ChangeBatch>` +
    `<Comment>${xmlEscape(comment)}</Comment><Changes><Change><Action>${change.action}</Action>` +
    `<ResourceRecordSet><Name>${xmlEscape(change.set.name)}</Name><Type>TXT</Type><TTL>${change.set.ttl}</TTL>` +
    `<ResourceRecords>${records}</ResourceRecords></ResourceRecordSet></Change></Changes></ChangeBatch>` +
    "</ChangeResourceRecordSetsRequest>"
  );
}

/** `Z123` from `/hostedzone/Z123` or `Z123`; `C123` from `/change/C123`. */
const lastSegment = (id: string): string => id.slice(id.lastIndexOf("/") + 1);

const sameName = (a: string, b: string) =>
  a.toLowerCase().replace(/\.?$/, ".") === b.toLowerCase().replace(/\.?$/, ".");

export interface Route53Client {
  /** A signed request; resolves with the parsed XML of a 2xx answer, throws ApiError otherwise. */
  call(method: "GET" | "POST", path: string, what: string, body?: string): Promise<XmlElement>;
}

/**
 * Polls GetChange until the change is INSYNC, waiting 0.25 s, 0.5 s, 1 s, ... (at most 5 s)
 * between polls, for at most `timeoutMs`.
 */
export async function waitInsync(client: Route53Client, changeId: string, what: string, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  let delay = 250;
  for (;;) {
    const info = xmlChild(
      await client.call(
        "GET",
        `/${VERSION}/change/${encodeURIComponent(lastSegment(changeId))}`,
        "read a change",
      ),
      "ChangeInfo",
    );
    const status = xmlText(info, "Status")?.trim();
    if (status === "INSYNC") return;
    if (status !== "PENDING")
      throw new WileError(
        `Route 53 gave change ${lastSegment(changeId)} the unknown status "${status ?? ""}"`.slice(0, 200),
      );
    if (Date.now() + delay > deadline)
      throw new WileError(
        `Route 53 did not apply the change to ${what} within ${Math.round(timeoutMs / 1000)} s (change ${lastSegment(changeId)} is still PENDING)`,
        {
          hint: "Route 53 usually applies changes within a minute; try again later, or check the AWS status page.",
        },
      );
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 5000);
  }
}

export const route53Provider = defineDnsProvider({
  name: "route53",
  summary:
    "Amazon Route 53 (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, optional AWS_SESSION_TOKEN, AWS_HOSTED_ZONE_ID)",
  example: "--dns route53 (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment)",
  settings: {
    accessKeyId: required(
      text({
        arg: "ID",
        secret: true,
        help: "route53: the access key id; better from the environment: AWS_ACCESS_KEY_ID (not stored: it goes with the secret)",
        check: (v) => (/^[A-Z0-9]{16,128}$/.test(v) ? undefined : "must be an AWS access key id (AKIA...)"),
      }),
    ),
    secretAccessKey: required(
      text({
        arg: "KEY",
        secret: true,
        cli: false,
        help: "route53: the secret access key; better from the environment: AWS_SECRET_ACCESS_KEY",
      }),
    ),
    sessionToken: text({
      arg: "TOKEN",
      secret: true,
      cli: false,
      help: "route53: the session token of temporary credentials; better from the environment: AWS_SESSION_TOKEN",
    }),
    region: withDefault(
      text({
        arg: "REGION",
        help: "route53: an AWS region, only to pick the partition: cn-* and us-gov-* use theirs (default us-east-1); env AWS_REGION",
        check: (v) =>
          /^[a-z]{2}(-[a-z0-9]+)+$/.test(v) ? undefined : "must be an AWS region name (us-east-1)",
      }),
      "us-east-1",
    ),
    hostedZoneId: text({
      arg: "ID",
      help: "route53: the hosted zone's id (Z...), instead of finding it by name; env AWS_HOSTED_ZONE_ID",
      check: (v) =>
        /^(\/hostedzone\/)?[A-Z0-9]{1,32}$/.test(v) ? undefined : "must be a hosted zone id (Z1D633PJN98FT9)",
    }),
  },
  env: {
    accessKeyId: ["AWS_ACCESS_KEY_ID"],
    secretAccessKey: ["AWS_SECRET_ACCESS_KEY"],
    sessionToken: ["AWS_SESSION_TOKEN"],
    region: ["AWS_REGION"],
    hostedZoneId: ["AWS_HOSTED_ZONE_ID"],
  },
  create(c, ctx) {
    const partition = route53Endpoint(c.region);
    const override = (ctx.env ?? process.env).AWS_ENDPOINT_URL_ROUTE_53;
    const endpoint = (override || partition.endpoint).replace(/\/+$/, "");
    const creds: AwsCredentials = {
      accessKeyId: c.accessKeyId,
      secretAccessKey: c.secretAccessKey,
      sessionToken: c.sessionToken,
    };
    const givenZone = c.hostedZoneId ? lastSegment(c.hostedZoneId) : undefined;
    const host = new URL(endpoint).host;

    const client: Route53Client = {
      async call(method, path, what, body) {
        const url = `${endpoint}${path}`;
        for (let attempt = 1; ; attempt++) {
          // Signed again for each attempt: the signature covers the time.
          const headers = signRequest(
            {
              method,
              url,
              headers: body === undefined ? {} : { "Content-Type": "application/xml" },
              body: body ?? "",
              region: partition.signingRegion,
              service: "route53",
            },
            creds,
          );
          const answer = await apiRequest(NAME, {
            method,
            url,
            headers: { Accept: "application/xml", ...headers },
            body,
          });
          if (answer.status >= 200 && answer.status <= 299) {
            try {
              return parseXml(answer.text);
            } catch (err) {
              throw new WileError(
                `Route 53 (${host}) answered "${what}" with malformed XML: ${(err as Error).message}`,
              );
            }
          }
          const detail = route53ErrorDetail(answer.text);
          const code = detail?.split(":")[0] ?? "";
          if (RETRIED.includes(code) && attempt < RETRIES) {
            const wait = RETRY_DELAY_MS * 2 ** (attempt - 1);
            ctx.logger.debug(`Route 53: ${code} for "${what}"; trying again in ${wait} ms`);
            await new Promise((r) => setTimeout(r, wait));
            continue;
          }
          throw unexpectedAnswer(NAME, what, answer, detail, route53Hint(detail));
        }
      },
    };

    const zones = new Map<string, { id: string; name: string }>();
    const findZone = async (fqdn: string): Promise<{ id: string; name: string }> => {
      const known = zones.get(fqdn);
      if (known) return known;
      let zone: { id: string; name: string } | undefined;
      if (givenZone) {
        const got = await client.call(
          "GET",
          `/${VERSION}/hostedzone/${givenZone}`,
          `read hosted zone ${givenZone}`,
        );
        const name = xmlText(got, "HostedZone", "Name")?.trim() ?? "";
        if (!canonicalParents(fqdn).some((n) => sameName(n, name)))
          throw new WileError(`hosted zone ${givenZone} is ${name}, which does not hold ${fqdn}`, {
            hint: "Give the zone of this name with AWS_HOSTED_ZONE_ID (--route53-hosted-zone-id), or leave it out to find it by name.",
          });
        zone = { id: givenZone, name };
      } else {
        const privateOnes: string[] = [];
        for (const candidate of canonicalParents(fqdn)) {
          const found: { id: string; name: string }[] = [];
          let query = `dnsname=${encodeURIComponent(candidate)}&maxitems=${ZONE_PAGE}`;
          for (let page = 0; page < 20; page++) {
            const list = await client.call(
              "GET",
              `/${VERSION}/hostedzonesbyname?${query}`,
              "list hosted zones",
            );
            let past = false;
            for (const z of xmlChildren(xmlChild(list, "HostedZones"), "HostedZone")) {
              const name = xmlText(z, "Name")?.trim() ?? "";
              if (!sameName(name, candidate)) {
                past = true;
                continue;
              }
              const id = lastSegment(xmlText(z, "Id")?.trim() ?? "");
              if (xmlText(z, "Config", "PrivateZone")?.trim() === "true") privateOnes.push(`${id} (${name})`);
              else found.push({ id, name });
            }
            const next = xmlText(list, "NextDNSName")?.trim();
            const nextId = xmlText(list, "NextHostedZoneId")?.trim();
            if (
              past ||
              xmlText(list, "IsTruncated")?.trim() !== "true" ||
              !next ||
              !nextId ||
              !sameName(next, candidate)
            )
              break;
            query = `dnsname=${encodeURIComponent(next)}&hostedzoneid=${encodeURIComponent(lastSegment(nextId))}&maxitems=${ZONE_PAGE}`;
          }
          if (found.length > 1)
            throw new WileError(
              `Route 53 has ${found.length} public hosted zones named ${candidate} (${found.map((z) => z.id).join(", ")})`,
              {
                hint: "Say which one with AWS_HOSTED_ZONE_ID (--route53-hosted-zone-id): the one the domain is delegated to.",
              },
            );
          zone = found[0];
          if (zone) break;
        }
        if (!zone)
          throw new WileError(`Route 53 has no public hosted zone holding ${fqdn} in this account`, {
            hint: `Tried ${canonicalParents(fqdn).join(", ")}${privateOnes.length ? `; passed over private zones ${privateOnes.join(", ")}` : ""}. Check that the credentials belong to the account of the zone, or give AWS_HOSTED_ZONE_ID.`,
          });
      }
      ctx.logger.debug(`Route 53: ${fqdn} is in hosted zone ${zone.name} (${zone.id})`);
      zones.set(fqdn, zone);
      return zone;
    };

    const change = async (record: DnsRecord, add: boolean): Promise<void> => {
      const name = `${record.fqdn.toLowerCase()}.`;
      const zone = await findZone(name);
      const zonePath = `/${VERSION}/hostedzone/${encodeURIComponent(zone.id)}`;
      const list = await client.call(
        "GET",
        `${zonePath}/rrset?name=${encodeURIComponent(name)}&type=TXT&maxitems=1`,
        `list the records of ${zone.name}`,
      );
      const found = xmlChildren(xmlChild(list, "ResourceRecordSets"), "ResourceRecordSet").find(
        (s) => sameName(xmlText(s, "Name")?.trim() ?? "", name) && xmlText(s, "Type")?.trim() === "TXT",
      );
      const current: Route53Set | undefined = found && {
        name: xmlText(found, "Name")?.trim() ?? name,
        ttl: Number(xmlText(found, "TTL")?.trim() ?? ROUTE53_TTL),
        values: xmlChildren(xmlChild(found, "ResourceRecords"), "ResourceRecord").map(
          (r) => xmlText(r, "Value") ?? "",
        ),
      };
      const ch = route53Change(name, current, record.value, add);
      if (!ch) {
        ctx.logger.debug(`Route 53: ${record.value} is ${add ? "already" : "no longer"} at ${name}`);
        return;
      }
      const what = `${add ? "add" : "remove"} TXT ${record.value} at ${name} in hosted zone ${zone.name}`;
      ctx.logger.debug(`Route 53: ${ch.action} of TXT at ${name} (${ch.set.values.length} value(s))`);
      const answer = await client.call("POST", `${zonePath}/rrset/`, what, changeBatchXml(ch, "wile dns-01"));
      const id = xmlText(answer, "ChangeInfo", "Id")?.trim();
      if (!id) throw new WileError(`Route 53 accepted the change to ${what} but gave no change id`);
      await waitInsync(client, id, what, ROUTE53_INSYNC_TIMEOUT_S * 1000);
    };

    const serially = oneAtATime();
    return {
      describe: () => `route53 (${host}${givenZone ? `, zone ${givenZone}` : ""})`,
      present: (record) => serially(() => change(record, true)),
      cleanup: (record) => serially(() => change(record, false)),
    };
  },
});
