import { PulseError } from '../errors.js';

/** The Redis reply code (`NOGROUP`, `BUSYGROUP`, ...) of an error, if any. */
export function replyCode(err: unknown): string | undefined {
  if (!(err instanceof Error)) return undefined;
  const m = /^([A-Z][A-Z_]+)\b/.exec(err.message);
  if (m?.[1] && m[1] !== 'ERR') return m[1];
  // Scripts wrap errors: "ERR user_script:12: NOGROUP ..." or "... @user_script ...".
  const inner = /\b(NOGROUP|BUSYGROUP|WRONGTYPE|NOSCRIPT|MOVED|ASK|TRYAGAIN|CLUSTERDOWN|LOADING|READONLY|OOM|NOPROTO)\b/.exec(
    err.message,
  );
  if (inner?.[1]) return inner[1];
  return m?.[1];
}

/** True when `err` is a Redis reply error with the given code. */
export function isReplyError(err: unknown, code: string): boolean {
  return replyCode(err) === code;
}

/** Wraps a client error into a `PulseError` that keeps it as `cause`. */
export function toPulseError(err: unknown, what: string): PulseError {
  if (err instanceof PulseError) return err;
  const code = replyCode(err);
  const detail = err instanceof Error ? err.message : String(err);
  return new PulseError(`${what}: ${detail}`, code === undefined ? { cause: err } : { cause: err, code });
}

/** A short description for log lines. */
export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
