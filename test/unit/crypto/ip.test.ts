import assert from "node:assert/strict";
import { test } from "node:test";
import { ipFromBytes, ipToBytes } from "../../../src/crypto/ip";

test("ipToBytes: IPv4 gives 4 bytes, IPv6 (compressed, full, IPv4-suffixed) gives 16", () => {
  assert.equal(ipToBytes("192.0.2.1").toString("hex"), "c0000201");
  assert.equal(ipToBytes("::1").toString("hex"), `${"0".repeat(30)}01`);
  assert.equal(ipToBytes("::").toString("hex"), "0".repeat(32));
  assert.equal(ipToBytes("2001:db8::").toString("hex"), `20010db8${"0".repeat(24)}`);
  assert.equal(ipToBytes("2001:DB8:0:0:1:0:0:1").toString("hex"), "20010db8000000000001000000000001");
  assert.equal(ipToBytes("::ffff:192.0.2.1").toString("hex"), "00000000000000000000ffffc0000201");
  assert.equal(ipToBytes("fe80::a:b:c:d").toString("hex"), "fe80000000000000000a000b000c000d");
});

test("ipToBytes rejects text that is not a bare address", () => {
  for (const bad of ["", "1.2.3", "01.2.3.4", "1.2.3.4:80", "[::1]", "::1%lo", "1:2:3:4:5:6:7:8:9", "::g"]) {
    assert.throws(() => ipToBytes(bad), /not an IPv4 or IPv6 address/, bad);
  }
});

test("ipFromBytes prints IPv4 dotted and IPv6 in RFC 5952 form", () => {
  for (const [text, canonical] of [
    ["192.0.2.1", "192.0.2.1"],
    ["2001:DB8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
    ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"],
    ["0:0:0:0:0:0:0:1", "::1"],
    ["::", "::"],
    ["1:0:0:2:0:0:0:3", "1:0:0:2::3"],
    ["2001:db8::", "2001:db8::"],
  ] as const) {
    assert.equal(ipFromBytes(ipToBytes(text)), canonical, text);
  }
  assert.throws(() => ipFromBytes(Buffer.alloc(5)), /4 or 16 bytes/);
});
