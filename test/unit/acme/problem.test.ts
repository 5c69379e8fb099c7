import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { AcmeProblem, problemFromResponse } from "../../../src/acme/problem";
import { WileError } from "../../../src/util/errors";

const json = (v: unknown) => Buffer.from(JSON.stringify(v));

describe("RFC 8555 6.7 problem documents", () => {
  test("keeps type, detail, status and subproblems with identifiers", () => {
    const p = problemFromResponse({
      status: 400,
      body: json({
        type: "urn:ietf:params:acme:error:malformed",
        detail: "Some of the identifiers requested were rejected",
        subproblems: [
          {
            type: "urn:ietf:params:acme:error:malformed",
            detail: "Invalid underscore in DNS name",
            identifier: { type: "dns", value: "_example.org" },
          },
          {
            type: "urn:ietf:params:acme:error:rejectedIdentifier",
            detail: 'This CA will not issue for "example.net"',
            identifier: { type: "dns", value: "example.net" },
          },
          "junk",
        ],
      }),
      contentType: "application/problem+json",
      url: "https://ca/new-order",
      retryAfterMs: null,
      links: [],
    });
    assert.ok(p instanceof AcmeProblem && p instanceof WileError);
    assert.ok(p.is("malformed"));
    assert.ok(!p.is("badNonce"));
    assert.equal(p.status, 400);
    assert.equal(p.subproblems.length, 2);
    assert.deepEqual(p.subproblems[1]?.identifier, { type: "dns", value: "example.net" });
    assert.match(p.message, /_example\.org: Invalid underscore/);
    assert.match(p.message, /example\.net: This CA will not issue/);
    assert.equal(p.exitCode, 1);
  });

  test("rateLimited keeps Retry-After and the help link, and the hint says when", () => {
    const p = problemFromResponse({
      status: 429,
      body: json({ type: "urn:ietf:params:acme:error:rateLimited", detail: "too many certificates" }),
      contentType: "application/problem+json",
      url: "https://ca/new-order",
      retryAfterMs: 3_600_000,
      links: ["https://letsencrypt.org/docs/rate-limits/"],
    });
    assert.ok(p.is("rateLimited"));
    assert.equal(p.retryAfterMs, 3_600_000);
    assert.match(p.hint ?? "", /try again after \d{4}-/);
    assert.match(p.hint ?? "", /rate-limits/);
  });

  test("externalAccountRequired points at the EAB options", () => {
    const p = problemFromResponse({
      status: 403,
      body: json({ type: "urn:ietf:params:acme:error:externalAccountRequired", detail: "no EAB" }),
      contentType: "application/problem+json",
      url: "u",
      retryAfterMs: null,
      links: [],
    });
    assert.match(p.hint ?? "", /--eab-kid/);
  });

  test("a non-JSON error page becomes a readable detail, not a crash", () => {
    const p = problemFromResponse({
      status: 502,
      body: Buffer.from("<html><body>\n<h1>502 Bad Gateway</h1></body></html>"),
      contentType: "text/html",
      url: "https://ca/dir",
      retryAfterMs: null,
      links: [],
    });
    assert.equal(p.type, "about:blank");
    assert.match(p.detail, /unexpected text\/html: <html><body> <h1>502 Bad Gateway/);
    assert.equal(p.status, 502);
  });
});
