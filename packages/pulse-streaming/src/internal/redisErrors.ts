import { inspect } from 'node:util';
import { PulseError } from '../errors.js';

/** The Redis reply code (`NOGROUP`, `BUSYGROUP`, ...) of an error, if any. */
export function replyCode(err: unknown): string | undefined {
  if (!(err instanceof Error)) return undefined;
  // ioredis gives up a command bounced between the nodes of a migrating slot with this, whatever
  // the last bounce was (often MOVED): it ran nowhere, which is what TRYAGAIN says. Not when the
  // last "redirection" was a closed connection, which ioredis counts too: that one may have run.
  if (/^Too many Cluster redirections\. Last error: ReplyError: (MOVED|ASK|TRYAGAIN|CLUSTERDOWN)\b/.test(err.message))
    return 'TRYAGAIN';
  const m = /^([A-Z][A-Z_]+)\b/.exec(err.message);
  if (m?.[1] && m[1] !== 'ERR') return m[1];
  // Scripts wrap errors: "ERR user_script:12: NOGROUP ..." or "... @user_script ...".
  const inner =
    /\b(NOGROUP|BUSYGROUP|WRONGTYPE|NOSCRIPT|MOVED|ASK|TRYAGAIN|CLUSTERDOWN|LOADING|READONLY|OOM|NOPROTO|NOPERM)\b/.exec(
      err.message,
    );
  if (inner?.[1]) return inner[1];
  // An ACL refusal inside a script (Redis 7): "ERR The user executing the script can't run this command or subcommand".
  if (/can't run this command|no permissions to/i.test(err.message)) return 'NOPERM';
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
  return new PulseError(`${what}: ${errorReason(err)}`, code === undefined ? { cause: err } : { cause: err, code });
}

/**
 * `errorText(err)`, or when that is empty what the error's class says:
 * node-redis' `TimeoutError` (its command timeout) has no message, and
 * "ack events of sink k on stream s: " gave the user no reason at all
 * (outside review M).
 */
export function errorReason(err: unknown): string {
  const text = errorText(err);
  if (text !== '') return text;
  if (!(err instanceof Error)) return 'no reason given';
  const name = err.constructor.name || err.name;
  return isErrorNamed(err, ['TimeoutError']) ? `${name} (the command timed out in the client)` : name;
}

/**
 * A short description of a thrown value for log lines, whatever it is: a
 * handler may throw anything, and `String()` throws for some values (an
 * object without a prototype, from `Object.create(null)` or
 * `querystring.parse`, has no `toString`). A description that threw would
 * skip what follows it (the nack of a failed event).
 */
export function errorText(err: unknown): string {
  try {
    if (err instanceof Error) return typeof err.message === 'string' ? err.message : String(err.message);
    return String(err);
  } catch {
    try {
      return inspect(err, { depth: 2, breakLength: Number.POSITIVE_INFINITY });
    } catch {
      return 'a value that cannot be described';
    }
  }
}

/**
 * Reply codes that a later retry can outlive: the server is starting,
 * busy or failing over, the slot moved, the group is being recreated, the
 * script cache was flushed. Every other reply (a syntax or ID error,
 * `WRONGTYPE`, `NOPERM`, an unknown command...) comes back the same on
 * every retry.
 */
const RETRYABLE_CODES = new Set([
  'NOGROUP',
  'LOADING',
  'BUSY',
  'READONLY',
  'MOVED',
  'ASK',
  'TRYAGAIN',
  'CLUSTERDOWN',
  'MASTERDOWN',
  'NOREPLICAS',
  'UNBLOCKED',
  'NOSCRIPT',
  'OOM',
  'MISCONF',
  'EXECABORT',
]);

/**
 * True when `err` is an instance of a class named one of `names`, or of a
 * subclass: matched by constructor name along the prototype chain, as the
 * clients' classes live in packages the library does not import.
 */
export function isErrorNamed(err: unknown, names: readonly string[]): boolean {
  for (let p: unknown = err; p !== null && typeof p === 'object'; p = Object.getPrototypeOf(p)) {
    const name = (p as { constructor?: { name?: unknown } }).constructor?.name;
    if (typeof name === 'string' && names.includes(name)) return true;
    if (name === 'Error' || name === 'Object') return false;
  }
  return false;
}

/** True when `err` is an error reply from Redis (not a connection, timeout or client-state error). */
export function isServerReply(err: unknown): boolean {
  // ioredis: ReplyError (redis-errors); node-redis: ErrorReply and its SimpleError/BlobError subclasses.
  return isErrorNamed(err, ['ReplyError', 'ErrorReply']);
}

/** Errors of commands the client never wrote to Redis (see `markUnsent`). */
const unsent = new WeakSet<object>();

/**
 * Marks `err` as the rejection of a command the client guarantees it never
 * wrote to Redis, so it cannot have run: the drivers mark what their client
 * says so of (a closed client refusing it, a command timed out in its queue,
 * one flushed from ioredis' offline queue), and an add rejected with it is
 * "not stored" rather than "outcome unknown" (add.ts). Only an error object
 * that belongs to this one command (or merged call) may be marked: ioredis
 * rejects written and unwritten commands with one shared error.
 */
export function markUnsent<E extends object>(err: E): E {
  unsent.add(err);
  return err;
}

/** True when `err` was marked by {@link markUnsent}: its command never reached Redis. */
export function wasUnsent(err: unknown): boolean {
  return typeof err === 'object' && err !== null && unsent.has(err);
}

/**
 * True when retrying the command that failed with `err` may succeed:
 * connection drops, timeouts and the reply codes of transient server states
 * (`NOGROUP`, `LOADING`, `BUSY`, `READONLY`, `MOVED`, `ASK`, `TRYAGAIN`,
 * `CLUSTERDOWN`...). False for replies that a retry gets again, which must
 * end the work with the error instead of retrying forever. A `PulseError`
 * is judged by its cause.
 */
export function isRetryable(err: unknown): boolean {
  const e = err instanceof PulseError && err.cause !== undefined ? err.cause : err;
  if (!isServerReply(e)) return true;
  const code = replyCode(e);
  if (code !== undefined && RETRYABLE_CODES.has(code)) return true;
  // Sent when a connection is refused at the limit; the next attempt may get in. And a script
  // of ours stopped by an operator's SCRIPT KILL: it runs again (its code is ERR).
  return /max number of clients|script killed/i.test(errorText(e));
}

/**
 * Read errors that say the node serving a slot changed or restarted without a reconnect of ours (a
 * clean cluster failover: node-redis sees only UNBLOCKED or MOVED). As after a reconnect, the
 * groups' entries-read may be another node's (it is not replicated): the next check resyncs.
 */
export const NODE_CHANGED = new Set(['MOVED', 'ASK', 'UNBLOCKED', 'READONLY', 'CLUSTERDOWN', 'LOADING', 'MASTERDOWN']);

/**
 * Redis ended a blocked read because one of its stream keys was deleted (a
 * sibling stream destroyed): the next check says which, as a missing key;
 * no node changed, and resyncing every stream made false "how many is
 * unknown" reports on the others (outside review V).
 */
export function keyDeleted(err: unknown): boolean {
  return isReplyError(err, 'UNBLOCKED') && /no longer exists/.test(errorText(err));
}
