/**
 * Fuzz of the problem-document parser (src/acme/problem.ts) as the client drives it: any status,
 * body, content type, Retry-After and Link header give an AcmeProblem (a WileError) to report,
 * never an exception while building it, and its message and hint are printable text.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { linksWithRel, parseLinks, parseRetryAfter } from "../../../src/acme/headers";
import { AcmeProblem, problemFromResponse } from "../../../src/acme/problem";
import { WileError } from "../../../src/util/errors";
import { fuzz } from "./fuzz";
import { BASE, damagedLinkHeader, retryAfterHeader } from "./http";
import { type Json, mutatedJson, mutatedText } from "./mutate";

const problem: Json = {
  type: "urn:ietf:params:acme:error:rateLimited",
  detail: "too many certificates (5) already issued for this exact set of identifiers",
  status: 429,
  subproblems: [
    {
      type: "urn:ietf:params:acme:error:rejectedIdentifier",
      detail: 'This CA will not issue for "example.net"',
      identifier: { type: "dns", value: "example.net" },
    },
    { type: "urn:ietf:params:acme:error:caa", detail: "", identifier: { type: "ip", value: "192.0.2.1" } },
  ],
};
const typeName = fc.constantFrom(
  "rateLimited",
  "userActionRequired",
  "externalAccountRequired",
  "caa",
  "serverInternal",
  "badNonce",
  "badSignatureAlgorithm",
  "invalidContact",
  "rejectedIdentifier",
);

const body = fc.oneof(
  { weight: 4, arbitrary: mutatedJson(problem).map((v) => Buffer.from(JSON.stringify(v) ?? "")) },
  {
    weight: 2,
    arbitrary: typeName
      .chain((name) =>
        mutatedJson({ ...(problem as Record<string, Json>), type: `urn:ietf:params:acme:error:${name}` }),
      )
      .map((v) => Buffer.from(JSON.stringify(v) ?? "")),
  },
  { weight: 1, arbitrary: mutatedText(JSON.stringify(problem)).map((s) => Buffer.from(s)) },
  {
    weight: 1,
    arbitrary: mutatedText("<html><body><h1>502 Bad Gateway</h1>\r\n<hr>nginx</body></html>").map((s) =>
      Buffer.from(s),
    ),
  },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => Buffer.from(JSON.stringify(v))) },
);

test("fuzz: problemFromResponse builds an AcmeProblem from any error answer", async (t) => {
  await fuzz(
    t,
    "problem",
    0xacbe,
    fc.property(
      fc.oneof(fc.integer({ min: 400, max: 599 }), fc.integer()),
      body,
      fc.option(
        fc.oneof(fc.constantFrom("application/problem+json", "text/html"), fc.string({ maxLength: 30 })),
      ),
      retryAfterHeader,
      damagedLinkHeader,
      (status, bytes, contentType, retryAfter, link) => {
        const p = problemFromResponse({
          status,
          body: bytes,
          contentType: contentType ?? undefined,
          url: `${BASE}/finalize`,
          retryAfterMs: parseRetryAfter(retryAfter),
          links: linksWithRel(parseLinks(link, BASE), "help"),
        });
        assert.ok(p instanceof AcmeProblem && p instanceof WileError);
        assert.equal(typeof p.type, "string");
        assert.equal(typeof p.detail, "string");
        assert.ok(p.message.length > 0);
        assert.ok(p.hint === undefined || typeof p.hint === "string");
        // The CA's words reach the terminal as printable text only (one line per subproblem).
        for (const line of `${p.message}\n${p.hint ?? ""}`.split("\n")) {
          assert.match(line, /^[ -~]*$/, `not printable: ${JSON.stringify(line)}`);
        }
        for (const s of p.subproblems) {
          assert.equal(typeof s.type, "string");
          assert.equal(typeof s.detail, "string");
          if (s.identifier) assert.equal(typeof s.identifier.value, "string");
        }
        assert.equal(typeof p.is("rateLimited"), "boolean");
      },
    ),
  );
});
