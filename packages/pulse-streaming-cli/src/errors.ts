/**
 * Errors the command-line program reports as one line on stderr, never with
 * a stack trace.
 */

/** A failure to show the user as is, with the process exit code to use. */
export class CliError extends Error {
  readonly exitCode: number;

  constructor(message: string, exitCode = 1) {
    super(message);
    this.name = 'CliError';
    this.exitCode = exitCode;
  }
}

/** The first line of an error's message (Redis and client errors can be long). */
export function errorMessage(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  const line = text.split('\n').find((l) => l.trim() !== '') ?? 'unknown error';
  return line.trim();
}
