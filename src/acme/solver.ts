import type { Challenge, Identifier } from "./types";

/** What a solver needs to answer one challenge. */
export interface ChallengeContext {
  identifier: Identifier;
  /** The challenge token, already checked to be base64url by the caller ("" for dns-persist-01, which has none). */
  token: string;
  /** token + "." + base64url(JWK thumbprint) (RFC 8555 8.1); "" without a token. */
  keyAuthorization: string;
  /** The authorization is for `*.<identifier.value>`. */
  wildcard?: boolean;
  /** The challenge object as the CA sent it (dns-persist-01 reads its issuer domain names). */
  challenge?: Challenge;
}

/**
 * One way of proving control of an identifier. Shaped like lego's provider: present, then the CA is
 * told to validate, then cleanup (always, on failure too). Declared here because obtain.ts drives
 * it; the implementations live in src/challenges.
 */
export interface Solver {
  readonly type: "http-01" | "dns-01" | "dns-persist-01" | "tls-alpn-01";
  /** Put the proof in place. */
  present(ctx: ChallengeContext): Promise<void>;
  /**
   * Optional self-check after present() and before the CA is told to validate, so that a
   * misconfiguration does not burn the CA's failed-validation rate limit. Throws WileError when the
   * proof is certainly not reachable; logs a warning and returns when it cannot tell.
   */
  preflight?(ctx: ChallengeContext): Promise<void>;
  /** Remove what present() put in place. Must not throw for a proof that is already gone. */
  cleanup(ctx: ChallengeContext): Promise<void>;
}
