/**
 * A pino-compatible logger. Every method takes a context object first and a
 * message second, as pino does, so a pino instance can be passed as is.
 */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  /** Returns a logger that adds `bindings` to every line. */
  child(bindings: Record<string, unknown>): Logger;
}

const noop = (): void => {};

/** The default logger: it discards everything. */
export const silentLogger: Logger = {
  debug: noop,
  info: noop,
  warn: noop,
  error: noop,
  child: () => silentLogger,
};
