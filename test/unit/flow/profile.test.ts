import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { Directory } from "../../../src/acme/client";
import { checkProfile } from "../../../src/flow/issue";

const ca = (profiles?: Record<string, string>) => ({
  directory: async (): Promise<Directory> => ({
    newNonce: "https://ca/nonce",
    newAccount: "https://ca/acct",
    newOrder: "https://ca/order",
    ...(profiles ? { meta: { profiles } } : {}),
  }),
});

describe("--profile is checked against the directory's meta.profiles", () => {
  const le = {
    classic: "The same profile you're accustomed to",
    shortlived: "Six-day certificates",
    tlsserver: "45 days",
  };
  test("a listed profile passes", async () => {
    await checkProfile(ca(le), "shortlived");
  });
  test("an unlisted one names every profile on offer", async () => {
    await assert.rejects(checkProfile(ca(le), "short"), (e: Error) => {
      assert.match(e.message, /the CA has no profile "short"; it offers:/);
      for (const name of Object.keys(le)) assert.match(e.message, new RegExp(`  ${name}: `));
      return true;
    });
  });
  test("a CA without profiles says so", async () => {
    await assert.rejects(checkProfile(ca(), "classic"), /offers no profiles/);
  });
  test("inherited object keys are not profiles", async () => {
    await assert.rejects(checkProfile(ca(le), "toString"), /no profile "toString"/);
  });
});
