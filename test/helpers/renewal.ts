/** renewal.json fixtures for unit tests of deploy targets and the store. */
import type { TargetKind } from "../../src/deploy/target";
import { parseRenewalConfig, type RenewalConfig, serializeRenewalConfig } from "../../src/store/renewal";

/** A valid RenewalConfig for one name with these deploy targets. */
export function renewalConfig(name: string, deploy: Array<{ kind: string }> = []): RenewalConfig {
  const now = new Date().toISOString();
  return {
    version: 1,
    name,
    identifiers: [{ type: "dns", value: name }],
    challenge: { type: "http-01", webroots: { [name]: "/srv" } },
    keyType: "ec-256",
    server: "https://ca.example/dir",
    account: "default",
    email: [],
    mustStaple: false,
    preflight: true,
    resolve: [],
    reuseKey: false,
    createdAt: now,
    updatedAt: now,
    deploy: deploy as RenewalConfig["deploy"],
  };
}

/** The deploy settings after a write and read of renewal.json, each read back by its kind. */
export function deployRoundTrip<C extends { kind: string }>(kind: TargetKind<C>, configs: C[]): C[] {
  const back = parseRenewalConfig(
    serializeRenewalConfig(renewalConfig("x.example", configs)),
    "renewal.json",
  );
  return back.deploy.map((d, i) => kind.parse(d, `deploy[${i}]`));
}
