import { InvalidArgumentError } from './errors.js';
import { checkOptionNames, names } from './internal/optionNames.js';

/**
 * A pino-compatible logger. Every method takes a context object first and a
 * message second, as pino does, so a pino instance can be passed as is.
 * A logger that throws, or returns a promise that rejects, never breaks delivery:
 * the `Stream` catches what it throws and says the first failure once as a process
 * warning `PulseWarning` with code `PULSE_LOGGER_FAILED`.
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

/** `logger`, checked to have {@link Logger}'s methods (for JavaScript callers); `Stream` then wraps it (internal/safeLogger.ts). @internal */
export function checkLogger(logger: unknown): Logger | undefined {
  if (logger === undefined || logger === null) return undefined;
  const l = logger as Record<string, unknown>;
  for (const m of ['debug', 'info', 'warn', 'error', 'child'])
    if (typeof l[m] !== 'function')
      throw new InvalidArgumentError(`logger must have debug, info, warn, error and child methods (pino's), ${m} is missing`);
  return logger as Logger;
}

/** The default logger: it discards everything. */
export const silentLogger: Logger = {
  debug: noop,
  info: noop,
  warn: noop,
  error: noop,
  child: () => silentLogger,
};

/** Levels in increasing severity, for {@link consoleLogger}'s `level`. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

const LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

/** Options of {@link consoleLogger}. */
export interface ConsoleLoggerOptions {
  /** Lines below this level are dropped. @defaultValue 'info' */
  level?: LogLevel | undefined;
  /** Where lines go. @defaultValue the global `console` */
  console?: Pick<Console, 'debug' | 'info' | 'warn' | 'error'> | undefined;
  /** Fields added to every line. @defaultValue none */
  bindings?: Record<string, unknown> | undefined;
}

const CONSOLE_LOGGER_OPTIONS = names<ConsoleLoggerOptions>()(['level', 'console', 'bindings']);

/** Renders a context value on one line: strings as is when they need no quotes, the rest as JSON. */
function show(value: unknown): string {
  if (typeof value === 'string') return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  if (value instanceof Error) return JSON.stringify(value.message);
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/**
 * A {@link Logger} for users without pino: one line per message on the console,
 * `level message key=value ...` (context as `key=value`, values JSON-encoded
 * when they need quoting), e.g. `warn sink g: events lost stream=orders lost=3`.
 * Pass it as `new Stream(name, redis, { logger: consoleLogger() })`.
 */
export function consoleLogger(options: ConsoleLoggerOptions = {}): Logger {
  checkOptionNames('consoleLogger', options, CONSOLE_LOGGER_OPTIONS);
  const min = LEVELS.indexOf(options.level ?? 'info');
  if (min < 0) throw new InvalidArgumentError(`level must be one of ${LEVELS.join(', ')}`);
  const out = options.console ?? console;
  const bindings = options.bindings ?? {};
  const line =
    (level: LogLevel) =>
    (obj: object, msg?: string): void => {
      if (LEVELS.indexOf(level) < min) return;
      const fields = Object.entries({ ...bindings, ...obj }).map(([k, v]) => `${k}=${show(v)}`);
      out[level]([level, msg ?? '', ...fields].filter((s) => s !== '').join(' '));
    };
  return {
    debug: line('debug'),
    info: line('info'),
    warn: line('warn'),
    error: line('error'),
    child: (more) => consoleLogger({ ...options, bindings: { ...bindings, ...more } }),
  };
}
