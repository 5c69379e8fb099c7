import { isIP } from "node:net";
import { domainToASCII, domainToUnicode } from "node:url";
import type { Identifier } from "../acme/types";
import { UsageError } from "../util/errors";

/** The most names Let's Encrypt allows on one certificate. */
export const MAX_NAMES = 100;

/**
 * Turns what the operator typed after -d into an ACME identifier: IP addresses become "ip"
 * identifiers (RFC 8738), Unicode names become punycode. A name is taken literally: the only
 * changes are letters to lower case, Unicode composed (NFC) and one trailing dot dropped, none of
 * which changes the name DNS looks up. Anything that URL or IDNA processing would rewrite into
 * another name (percent-escapes, full-width dots, soft hyphens, full-width or compatibility
 * letters, a backslash) is refused, naming the character, as is anything a CA would reject for
 * its form: all before anything is contacted.
 */
export function parseIdentifier(input: string): Identifier {
  const raw = input.trim();
  if (raw === "")
    throw new UsageError("an empty name was given with -d", { hint: "Example: -d example.com" });
  const bare = raw.startsWith("[") && raw.endsWith("]") ? raw.slice(1, -1) : raw;
  // net.isIP compiles a large IPv6 pattern on first use (~5 ms): only ask when it could be one.
  const ipVersion = /^[0-9.]+$/.test(bare) || bare.includes(":") ? isIP(bare) : 0;
  if (ipVersion !== 0) return { type: "ip", value: canonicalIp(bare, ipVersion) };
  if (/[/\\:@?#\s]/.test(raw)) {
    throw new UsageError(`"${raw}" is not a domain name`, {
      hint: "Give the bare name with -d, without scheme, port or path: -d example.com",
    });
  }
  if (raw.includes("%")) {
    throw rewritten(raw, "%", "percent-escapes are not decoded (in a URL, %41 means A)");
  }
  const wildcard = raw.startsWith("*.");
  const rest = (wildcard ? raw.slice(2) : raw).replace(/\.$/, "");
  if (rest.includes("*")) {
    throw new UsageError(
      `"${raw}" is not a valid name: "*" may only be the whole first label ("*.example.com")`,
    );
  }
  if (/(^|\.)[0-9]+$/.test(rest)) {
    throw new UsageError(`"${raw}" looks like a mistyped IP address: its last label is numeric`);
  }
  const ascii = rest
    .split(".")
    .map((label) => asciiLabel(label, raw))
    .join(".");
  checkDnsName(ascii, raw);
  return { type: "dns", value: wildcard ? `*.${ascii}` : ascii };
}

/**
 * One label in ASCII (punycode for Unicode), refusing a label that IDNA would map to something
 * else than itself: the label read back from the ASCII form must be the label as typed, in lower
 * case and NFC. A non-ASCII character whose lower case is ASCII is left as typed, so IDNA mapping
 * it to ASCII is refused too.
 */
function asciiLabel(label: string, raw: string): string {
  if (label === "") return "";
  const literal = [...label.normalize("NFC")]
    .map((c) => {
      const lower = c.toLowerCase();
      return c.charCodeAt(0) > 0x7f && /^\p{ASCII}+$/u.test(lower) ? c : lower;
    })
    .join("");
  const ascii = domainToASCII(literal);
  if (ascii === "") {
    throw new UsageError(`"${raw}" is not a valid domain name (it cannot be converted to punycode)`);
  }
  const back = /^\p{ASCII}*$/u.test(literal) ? ascii : domainToUnicode(ascii);
  if (back !== literal) {
    const typed = [...literal];
    const got = [...back];
    const i = typed.findIndex((c, k) => c !== got[k]);
    throw rewritten(
      raw,
      typed[i < 0 ? typed.length - 1 : i] ?? "",
      `IDNA would read the label "${label}" as "${back}"`,
    );
  }
  return ascii;
}

/** A name refused because name processing would turn `char` in it into something else. */
function rewritten(raw: string, char: string, what: string): UsageError {
  const code = char.codePointAt(0) ?? 0;
  const shown = code > 0x20 && code !== 0x7f && !/\p{Cf}|\p{Z}/u.test(char) ? `"${char}" ` : "";
  return new UsageError(
    `${JSON.stringify(raw)} contains ${shown}(U+${code.toString(16).toUpperCase().padStart(4, "0")}): a name is taken literally, and ${what}`,
    {
      hint: "Type the name exactly as it is in DNS: ASCII letters, digits, hyphens and dots, or Unicode letters.",
    },
  );
}

function checkDnsName(name: string, raw: string): void {
  if (name.length > 253)
    throw new UsageError(`"${raw}" is longer than the 253 characters a DNS name may have`);
  const labels = name.split(".");
  if (labels.length < 2) {
    throw new UsageError(`"${raw}" is a single-label name; public CAs only issue for fully qualified names`, {
      hint: "Use the full name, e.g. -d host.example.com",
    });
  }
  for (const label of labels) {
    if (label.length === 0) throw new UsageError(`"${raw}" has an empty label (two dots in a row?)`);
    if (label.length > 63) throw new UsageError(`"${raw}" has a label longer than 63 characters`);
    if (!/^[a-z0-9-]+$/.test(label)) {
      throw new UsageError(`"${raw}" contains characters not allowed in a host name ("${label}")`, {
        hint: "Host names use letters, digits and hyphens; Unicode names are converted to punycode.",
      });
    }
    if (label.startsWith("-") || label.endsWith("-")) {
      throw new UsageError(`"${raw}" has a label that starts or ends with a hyphen ("${label}")`);
    }
  }
}

function canonicalIp(text: string, version: number): string {
  if (version === 4) return text;
  // URL parsing gives the RFC 5952 text form of an IPv6 address.
  return new URL(`http://[${text}]/`).hostname.slice(1, -1);
}

/** Parses and de-duplicates every -d value, keeping the order given. */
export function parseIdentifiers(inputs: string[]): Identifier[] {
  const seen = new Set<string>();
  const out: Identifier[] = [];
  for (const input of inputs) {
    for (const part of input.split(",")) {
      if (part.trim() === "" && input.includes(",")) continue;
      const id = parseIdentifier(part);
      const key = `${id.type}:${id.value}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(id);
    }
  }
  if (out.length > MAX_NAMES) {
    throw new UsageError(
      `${out.length} names were given; CAs allow at most ${MAX_NAMES} on one certificate`,
      {
        hint: "Split them into several certificates.",
      },
    );
  }
  return out;
}
