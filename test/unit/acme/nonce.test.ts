import assert from "node:assert/strict";
import { test } from "node:test";
import { NoncePool } from "../../../src/acme/nonce";

test("nonce pool: freshest first, invalid values ignored, bounded", () => {
  const pool = new NoncePool(3);
  pool.add("a1");
  pool.add(undefined);
  pool.add("bad nonce!");
  pool.add(["b2"]);
  assert.equal(pool.size, 2);
  assert.equal(pool.take(), "b2");
  pool.add("c3");
  pool.add("d4");
  pool.add("e5");
  assert.equal(pool.size, 3, "oldest dropped at capacity");
  assert.equal(pool.take(), "e5");
  assert.equal(pool.take(), "d4");
  assert.equal(pool.take(), "c3");
  assert.equal(pool.take(), undefined);
});
