/** renewal.json fixtures for unit tests of deploy targets and the store. */
import { readDeployEntry } from "../../src/deploy/run";
import type { TargetKind } from "../../src/deploy/target";
import {
  type DeployConfig,
  parseRenewalConfig,
  type RenewalConfig,
  serializeRenewalConfig,
} from "../../src/store/renewal";

/** A valid RenewalConfig for one name with these deploy targets. */
export function renewalConfig(name: string, deploy: DeployConfig[] = []): RenewalConfig {
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
    deploy,
  };
}

/**
 * The deploy entries after a write and read of renewal.json, each read back as renewals read it
 * (only `kind` known) and given in the form it would be stored again.
 */
export function deployRoundTrip(kind: TargetKind, configs: DeployConfig[]): DeployConfig[] {
  const back = parseRenewalConfig(
    serializeRenewalConfig(renewalConfig("x.example", configs)),
    "renewal.json",
  );
  return back.deploy.map(
    (d, i) =>
      readDeployEntry(d, i, { file: "renewal.json", name: "x.example" }, [kind]).stored as DeployConfig,
  );
}
