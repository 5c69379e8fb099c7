/**
 * Fuzz of the Retry-After and Link parsers (src/acme/headers.ts). Neither has an error to throw:
 * whatever the CA sends, Retry-After is null or a whole number of milliseconds from 0 to a year, and
 * Link gives absolute, printable URLs; a well-formed Link header is read back exactly.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { linksWithRel, parseLinks, parseRetryAfter, RETRY_AFTER_MAX_MS } from "../../../src/acme/headers";
import { fuzz } from "./fuzz";
import { BASE, damagedLinkHeader, linkValue, render, retryAfterHeader } from "./http";

const NOW = Date.parse("2026-11-29T12:00:00Z");

test("fuzz: Retry-After is null or 0..RETRY_AFTER_MAX_MS whole milliseconds, never throws", async (t) => {
  await fuzz(
    t,
    "retry-after",
    0x7a,
    fc.property(retryAfterHeader, fc.boolean(), (value, fixedNow) => {
      const ms = fixedNow ? parseRetryAfter(value, NOW) : parseRetryAfter(value);
      if (ms === null) return;
      assert.ok(Number.isSafeInteger(ms) && ms >= 0 && ms <= RETRY_AFTER_MAX_MS, `got ${ms}`);
      // Whoever adds it to now gets a Date that can be printed.
      assert.equal(typeof new Date(Date.now() + ms).toISOString(), "string");
    }),
  );
});

test("fuzz: Link headers, well-formed or damaged, give absolute printable URLs and never throw", async (t) => {
  await fuzz(
    t,
    "link",
    0x11c,
    fc.property(
      fc.array(linkValue, { minLength: 1, maxLength: 4 }),
      damagedLinkHeader,
      fc.oneof(fc.constant(BASE), fc.string({ maxLength: 20 })),
      (links, damaged, base) => {
        // Well-formed: every link comes back, resolved against the request URL, with its rel.
        const parsed = parseLinks(links.map(render).join(", "), BASE);
        assert.equal(parsed.length, links.length);
        for (const [i, l] of links.entries()) {
          assert.equal(parsed[i]?.url, new URL(l.url, BASE).href);
          for (const rel of l.rel) assert.ok(linksWithRel(parsed, rel).includes(new URL(l.url, BASE).href));
        }
        // Damaged, against any base: no exception, only absolute URLs in printable ASCII (a space
        // stays in an opaque path such as "proc-type: 4"), and string parameters.
        for (const link of parseLinks(damaged, base)) {
          assert.match(link.url, /^[a-z][a-z0-9+.-]*:[\x20-\x7e]*$/);
          for (const v of Object.values(link.params)) assert.equal(typeof v, "string");
        }
        assert.ok(Array.isArray(linksWithRel(parseLinks(damaged, base), "help")));
      },
    ),
  );
});
