/** RFC 8555 7.1.4 identifier; "ip" per RFC 8738. */
export interface Identifier {
  type: "dns" | "ip";
  value: string;
}

export interface Challenge {
  type: string;
  url: string;
  status: "pending" | "processing" | "valid" | "invalid";
  token?: string;
  /** dns-persist-01 (draft-ietf-acme-dns-persist-02; -00/-01 spell it "issuer-domain-names"). */
  issuerDomainNames?: unknown;
  "issuer-domain-names"?: unknown;
  /** dns-persist-01 draft -01: the accounturi the CA expects. */
  accounturi?: unknown;
  error?: unknown;
  validationRecord?: Array<Record<string, unknown>>;
}

export interface Authorization {
  identifier: Identifier;
  status: "pending" | "valid" | "invalid" | "deactivated" | "expired" | "revoked";
  expires?: string;
  challenges: Challenge[];
  wildcard?: boolean;
}

export interface Order {
  status: "pending" | "ready" | "processing" | "valid" | "invalid";
  expires?: string;
  identifiers: Identifier[];
  authorizations: string[];
  finalize: string;
  certificate?: string;
  error?: unknown;
}
