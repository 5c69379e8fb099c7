import { readFile } from "node:fs/promises";
import { AcmeClient } from "../acme/client";
import { WileError } from "../util/errors";
import type { Logger } from "../util/log";
import { VERSION } from "../version";

/** An AcmeClient for a directory URL, trusting the --ca-bundle file recorded with it. */
export async function createClient(
  server: string,
  caBundle: string | undefined,
  logger: Logger,
): Promise<AcmeClient> {
  let extraCa: string | undefined;
  if (caBundle) {
    try {
      extraCa = await readFile(caBundle, "utf8");
    } catch (err) {
      throw new WileError(
        `cannot read the CA bundle ${caBundle}: ${(err as NodeJS.ErrnoException).code ?? err}`,
        {
          hint: "Restore the file, or issue again with another --ca-bundle.",
        },
      );
    }
  }
  return new AcmeClient({
    directoryUrl: server,
    userAgent: `wile/${VERSION}`,
    logger,
    ...(extraCa ? { extraCa } : {}),
  });
}

/**
 * One client per (CA, trust) for a run over many certificates: one directory fetch, one connection.
 * Certificates under different accounts share it safely: the client holds no account, each signs
 * through its own AccountSession (see ensureAccount).
 */
export class ClientPool {
  private readonly clients = new Map<string, Promise<AcmeClient>>();
  constructor(private readonly logger: Logger) {}

  get(server: string, caBundle: string | undefined): Promise<AcmeClient> {
    const key = `${server}\n${caBundle ?? ""}`;
    let client = this.clients.get(key);
    if (!client) {
      client = createClient(server, caBundle, this.logger);
      this.clients.set(key, client);
      client.catch(() => this.clients.delete(key));
    }
    return client;
  }

  async close(): Promise<void> {
    for (const c of this.clients.values()) (await c.catch(() => null))?.close();
    this.clients.clear();
  }
}
