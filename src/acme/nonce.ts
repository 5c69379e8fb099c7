/**
 * Replay-Nonce values collected from every response (RFC 8555 7.2), used last-in first-out so the
 * freshest is spent first. newNonce is only asked when the pool is empty.
 */
export class NoncePool {
  private readonly nonces: string[] = [];
  constructor(private readonly capacity = 16) {}

  add(nonce: string | string[] | undefined): void {
    const value = Array.isArray(nonce) ? nonce[0] : nonce;
    // RFC 8555 6.5.1: base64url, no padding.
    if (!value || !/^[A-Za-z0-9_-]+$/.test(value)) return;
    this.nonces.push(value);
    if (this.nonces.length > this.capacity) this.nonces.shift();
  }

  take(): string | undefined {
    return this.nonces.pop();
  }

  get size(): number {
    return this.nonces.length;
  }
}
