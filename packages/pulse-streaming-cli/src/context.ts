/**
 * What every command gets: the global options, a painter for stdout, notes
 * on stderr, and a lazily opened connection to Redis.
 */
import { type GlobalOptions, namesServer, openTarget, type RedisTarget } from './connection.js';
import { CliError } from './errors.js';
import { colorsWanted, type Painter, painter } from './format.js';

/** The environment of one command run. */
export interface CommandContext {
  /** Machine-readable output was asked for (`--json`). */
  readonly json: boolean;
  /** Colours for stdout (off unless stdout is a terminal, NO_COLOR is unset and --no-color was not given). */
  readonly paint: Painter;
  /** Colours for stderr. */
  readonly paintErr: Painter;
  /** True when stdout is a terminal. */
  readonly interactive: boolean;
  /**
   * Connects to Redis once: `--redis`, REDIS_URL or an embedded server. With
   * `writes` (a command that stores what the user gives it), no embedded server:
   * what it stored would go with it at exit, after a success.
   * @throws CliError (exit code 2) with `writes` when no server is named
   */
  connect(writes?: string): Promise<RedisTarget>;
  /** Writes a note for humans on stderr (never mixed into stdout, so JSON stays clean). */
  note(message: string): void;
}

/** Builds the context of a command from the global options. */
export function makeContext(options: GlobalOptions): CommandContext {
  const allowColor = options.color !== false;
  const paintErr = painter(allowColor && colorsWanted(process.stderr));
  let target: Promise<RedisTarget> | undefined;
  const note = (message: string): void => {
    process.stderr.write(`${paintErr.paint('dim', message)}\n`);
  };
  return {
    json: options.json === true,
    paint: painter(allowColor && colorsWanted(process.stdout)),
    paintErr,
    interactive: process.stdout.isTTY === true,
    connect: (writes?: string) => {
      if (writes !== undefined && !namesServer(options))
        return Promise.reject(
          new CliError(
            `${writes} needs your Redis: pass --redis redis://host:6379 or set REDIS_URL (a throwaway redis-server would be removed, and what ${writes} stored with it, as the command ends)`,
            2,
          ),
        );
      target ??= openTarget(options, note);
      return target;
    },
    note,
  };
}
