/** src/dns/transport.ts: server addresses as operators write them (exchanges are tested against BIND9 in e2e). */
import assert from "node:assert/strict";
import { test } from "node:test";
import { parseServer, serverLabel } from "../../../src/dns/transport";
import { UsageError } from "../../../src/util/errors";

test("parseServer: host, host:port, IPv4, bare IPv6 and [IPv6]:port; serverLabel writes them back", () => {
  const cases: [string, string, number, string][] = [
    ["ns1.example.com", "ns1.example.com", 53, "ns1.example.com:53"],
    ["ns1.example.com:5353", "ns1.example.com", 5353, "ns1.example.com:5353"],
    ["192.0.2.1:53", "192.0.2.1", 53, "192.0.2.1:53"],
    ["2001:db8::1", "2001:db8::1", 53, "[2001:db8::1]:53"],
    ["[2001:db8::1]:8053", "2001:db8::1", 8053, "[2001:db8::1]:8053"],
  ];
  for (const [text, host, port, label] of cases) {
    const s = parseServer(text);
    assert.deepEqual(s, { host, port }, text);
    assert.equal(serverLabel(s), label);
  }
});

test("parseServer: empty hosts and bad ports are usage errors showing the expected form", () => {
  for (const text of ["", ":53", "ns1:0", "ns1:65536", "ns1:x", "[::1]:"]) {
    assert.throws(
      () => parseServer(text),
      (e: unknown) => e instanceof UsageError && /expected HOST or HOST:PORT/.test(e.message),
      text,
    );
  }
});
