/**
 * Dynamic DNS UPDATE (RFC 2136) of one TXT record, signed with TSIG (RFC 8945), sent to one
 * server (the zone's primary, or whatever accepts updates for it) over UDP with TCP fallback.
 *
 *     const target = { server: parseServer("ns1.example.com"), key: readTsigKeyFile("tsig.key") };
 *     await addTxt(target, "_acme-challenge.example.com", "value", 60);
 *     await deleteTxt(target, "_acme-challenge.example.com", "value");
 *
 * Adding a record that is there already and deleting one that is not are both success (RFC 2136
 * 3.4.2), so retries are harmless. The zone is found by asking the same server for SOA records
 * from the name upwards, unless the caller gives it.
 */
import { DEFAULT_TIMEOUT_MS, type DnsServer, exchange, newId, query, serverLabel } from "./transport";
import { signMessage, type TsigKey, verifyAnswer } from "./tsig";
import {
  CLASS,
  DnsError,
  decodeMessage,
  encodeMessage,
  encodeTxt,
  type Message,
  message,
  normalName,
  OPCODE,
  type ResourceRecord,
  rcodeName,
  sameName,
  TYPE,
} from "./wire";

export interface UpdateTarget {
  server: DnsServer;
  /** Signs the updates; without it they are sent unsigned (servers that allow updates by address). */
  key?: TsigKey;
  /** The zone to update; found with findZone when absent. */
  zone?: string;
  /** Per exchange (UDP, then TCP); default 5 s. */
  timeoutMs?: number;
}

const HINTS: Record<string, string> = {
  NOTAUTH:
    "the server is not authoritative for the zone, or does not accept this TSIG key: send updates to the zone's primary",
  REFUSED:
    "the server's allow-update / update-policy does not allow this key (or, unsigned, this address) to change this name",
  NOTZONE: "the name is not inside the zone: check the zone (or let wile find it)",
  SERVFAIL: "the server failed to apply the update: see its log",
  NOTIMP: "the server does not support dynamic updates",
};

/**
 * The zone that holds `name`, according to `server`: the owner of the SOA record in the answer or
 * authority section of an SOA query, walking up one label at a time.
 */
export async function findZone(
  server: DnsServer,
  name: string,
  timeoutMs = DEFAULT_TIMEOUT_MS,
): Promise<string> {
  const labels = normalName(name).split(".");
  const rcodes: string[] = [];
  for (let i = 0; i < labels.length; i++) {
    const candidate = labels.slice(i).join(".");
    const m = await query(server, candidate, TYPE.SOA, { timeoutMs });
    const soa = [...m.answers, ...m.authorities].find(
      (rr) =>
        rr.type === TYPE.SOA &&
        (sameName(rr.name, candidate) || normalName(candidate).endsWith(`.${normalName(rr.name)}`)),
    );
    if (soa && (m.rcode === 0 || m.rcode === 3)) return normalName(soa.name);
    rcodes.push(`${candidate}: ${rcodeName(m.rcode)}`);
  }
  throw new DnsError(
    `DNS server ${serverLabel(server)} is not authoritative for any zone holding ${name} (${rcodes.join(", ")})`,
    {
      hint: "point the update at the zone's primary server, or give the zone explicitly",
    },
  );
}

/** Sends one signed UPDATE of the zone with `updates` in its update section; throws unless NOERROR. */
export async function sendUpdate(
  target: UpdateTarget,
  zone: string,
  updates: ResourceRecord[],
  what: string,
): Promise<void> {
  const id = newId();
  const m = message({
    id,
    opcode: OPCODE.UPDATE,
    questions: [{ name: zone, type: TYPE.SOA, class: CLASS.IN }],
    authorities: updates,
  });
  const label = serverLabel(target.server);
  const timeoutMs = target.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  let answer: Message;
  if (target.key) {
    const signed = signMessage(encodeMessage(m), target.key);
    answer = verifyAnswer(
      await exchange(target.server, signed.wire, { timeoutMs }),
      target.key,
      signed.mac,
      label,
    );
  } else {
    answer = decodeMessage(await exchange(target.server, encodeMessage(m), { timeoutMs }));
  }
  if (answer.rcode !== 0) {
    const rcode = rcodeName(answer.rcode);
    const hint = HINTS[rcode];
    throw new DnsError(`DNS server ${label} refused to ${what} in zone ${zone}: ${rcode}`, {
      rcode,
      ...(hint ? { hint } : {}),
    });
  }
}

async function zoneOf(target: UpdateTarget, name: string): Promise<string> {
  const zone = target.zone ? normalName(target.zone) : await findZone(target.server, name, target.timeoutMs);
  const n = normalName(name);
  if (n !== zone && !n.endsWith(`.${zone}`)) {
    throw new DnsError(`${name} is not inside the zone ${zone}`, {
      hint: "check the zone given for the update",
    });
  }
  return zone;
}

/** Adds the TXT record `name` = `value` with `ttl` seconds; other values on the name stay. */
export async function addTxt(target: UpdateTarget, name: string, value: string, ttl: number): Promise<void> {
  const zone = await zoneOf(target, name);
  const rr = { name, type: TYPE.TXT, class: CLASS.IN, ttl, rdata: encodeTxt(value) };
  await sendUpdate(target, zone, [rr], `add TXT ${name} "${value}"`);
}

/** Deletes exactly the TXT record `name` = `value` (RFC 2136 2.5.4); other values on the name stay. */
export async function deleteTxt(target: UpdateTarget, name: string, value: string): Promise<void> {
  const zone = await zoneOf(target, name);
  const rr = { name, type: TYPE.TXT, class: CLASS.NONE, ttl: 0, rdata: encodeTxt(value) };
  await sendUpdate(target, zone, [rr], `delete TXT ${name} "${value}"`);
}
