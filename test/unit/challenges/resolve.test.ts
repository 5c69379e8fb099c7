import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { findResolve, parseResolve } from "../../../src/challenges/resolve";
import { UsageError } from "../../../src/util/errors";

describe("--resolve", () => {
  test("parses name:port:address with IPv4, bracketed IPv6 and bare IPv6", () => {
    assert.deepEqual(parseResolve("Example.com:8080:127.0.0.1"), {
      host: "example.com",
      port: 8080,
      address: "127.0.0.1",
    });
    assert.deepEqual(parseResolve("a.example:80:[2001:db8::1]"), {
      host: "a.example",
      port: 80,
      address: "2001:db8::1",
    });
    assert.deepEqual(parseResolve("a.example:443:::1"), { host: "a.example", port: 443, address: "::1" });
  });

  for (const bad of [
    "",
    "example.com",
    "example.com:80",
    "example.com:x:1.2.3.4",
    "example.com:0:1.2.3.4",
    "example.com:70000:1.2.3.4",
    "example.com:80:host.example",
    ":80:1.2.3.4",
    "a/b:80:1.2.3.4",
    "a:80:[::1",
  ]) {
    test(`rejects ${JSON.stringify(bad)} with a usage error showing an example`, () => {
      assert.throws(
        () => parseResolve(bad),
        (e: unknown) =>
          e instanceof UsageError && e.message.includes(bad) && /name:port:address/.test(e.hint ?? ""),
      );
    });
  }

  test("findResolve matches host names case-insensitively", () => {
    const rules = [parseResolve("a.example:81:127.0.0.1")];
    assert.equal(findResolve(rules, "A.Example")?.port, 81);
    assert.equal(findResolve(rules, "b.example"), undefined);
  });
});
