import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { linksWithRel, parseLinks, parseRetryAfter } from "../../../src/acme/headers";

describe("Retry-After (RFC 9110 10.2.3)", () => {
  const now = Date.parse("2026-11-23T12:00:00Z");
  test("delta-seconds", () => {
    assert.equal(parseRetryAfter("120", now), 120_000);
    assert.equal(parseRetryAfter(" 0 ", now), 0);
  });
  test("HTTP-date", () => {
    assert.equal(parseRetryAfter("Mon, 23 Nov 2026 12:00:30 GMT", now), 30_000);
  });
  test("a date in the past means now", () => {
    assert.equal(parseRetryAfter("Mon, 23 Nov 2026 11:00:00 GMT", now), 0);
  });
  test("absent, empty, negative or garbage is null", () => {
    assert.equal(parseRetryAfter(undefined, now), null);
    assert.equal(parseRetryAfter("", now), null);
    assert.equal(parseRetryAfter("-5", now), null);
    assert.equal(parseRetryAfter("soon", now), null);
    assert.equal(parseRetryAfter("1.5", now), null);
  });
});

describe("Link (RFC 8288) as ACME uses it", () => {
  const base = "https://ca.example/acme/cert/1";
  test("several alternates joined by Node with ', ', relative URLs resolved", () => {
    const links = parseLinks(
      '<https://ca.example/acme/cert/1/1>;rel="alternate", </acme/cert/1/2>; rel=alternate, <https://ca.example/dir>;rel="index"',
      base,
    );
    assert.deepEqual(linksWithRel(links, "alternate"), [
      "https://ca.example/acme/cert/1/1",
      "https://ca.example/acme/cert/1/2",
    ]);
    assert.deepEqual(linksWithRel(links, "index"), ["https://ca.example/dir"]);
  });
  test("array form, commas and semicolons inside URLs and quoted values", () => {
    const links = parseLinks(
      [
        '<https://ca.example/a,b;c>; rel="alternate"; title="x, y; z"',
        '<https://ca.example/help>;rel="help"',
      ],
      base,
    );
    assert.equal(links.length, 2);
    assert.equal(links[0]?.url, "https://ca.example/a,b;c");
    assert.equal(links[0]?.params.title, "x, y; z");
    assert.deepEqual(linksWithRel(links, "help"), ["https://ca.example/help"]);
  });
  test("rel with several types and odd case", () => {
    const links = parseLinks('<https://x.example/1>; REL="Alternate index"', base);
    assert.deepEqual(linksWithRel(links, "alternate"), ["https://x.example/1"]);
    assert.deepEqual(linksWithRel(links, "index"), ["https://x.example/1"]);
  });
  test("garbage yields nothing rather than throwing", () => {
    assert.deepEqual(parseLinks("not a link, <unterminated", base), []);
    assert.deepEqual(parseLinks(undefined, base), []);
  });
});
