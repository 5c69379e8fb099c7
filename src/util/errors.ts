/**
 * Errors that reach the operator. main.ts is the only place that turns them into output and an
 * exit code: 1 failed, 2 usage or configuration error (nothing contacted, nothing changed),
 * 3 skipped because not due.
 */
export class WileError extends Error {
  readonly exitCode: number = 1;
  /** What the operator should do next, printed on its own line after the message. */
  readonly hint: string | undefined;

  constructor(message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.hint = options.hint;
  }
}

/** Bad input or configuration, found before anything was contacted or changed. Exit 2. */
export class UsageError extends WileError {
  override readonly exitCode: number = 2;
}

/** The certificate is not due for renewal; nothing was done. Exit 3. */
export class NotDueError extends WileError {
  override readonly exitCode: number = 3;
}
