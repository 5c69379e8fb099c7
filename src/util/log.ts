/** Progress reporting. Human lines go to stderr; the acme/ and crypto/ layers only see this interface. */
export interface Logger {
  /** One line per step of real progress ("Validating example.com (http-01)"). */
  info(message: string): void;
  /** Something the operator should know about but that does not stop the run. */
  warn(message: string): void;
  /** Detail shown with -v only. */
  debug(message: string): void;
}

export const silentLogger: Logger = {
  info() {},
  warn() {},
  debug() {},
};
