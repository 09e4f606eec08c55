/**
 * Errors the command-line program reports as one line on stderr, never with
 * a stack trace, and the translation of raw Redis and socket errors into a
 * sentence that says what to do: users should never have to decode
 * `Unknown RESP type 72 "H"` or a Lua script's SHA.
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

// Redis appends where a script failed ("script: <sha>, on @user_script:19."): noise for a user.
const SCRIPT_SUFFIX = /\s*script: [0-9a-f]{40}, on @user_script:\d+\.?/g;

/** The first line of an error's message (Redis and client errors can be long), without script locations. */
export function errorMessage(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  const line = text.split('\n').find((l) => l.trim() !== '') ?? 'unknown error';
  return line.replace(SCRIPT_SUFFIX, '').trim();
}

function codeOf(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * Why a connection to `what` ("Redis at redis://host:port") failed, as one
 * sentence that says what to do.
 */
export function connectionFailure(what: string, err: unknown, tls: boolean, answer?: string): string {
  const msg = errorMessage(err);
  if (answer?.startsWith('HTTP/')) {
    return `${what} is not a Redis server (it answered like a web server: ${JSON.stringify(answer.slice(0, 40))}): check the host and port`;
  }
  if (answer !== undefined && /^-ERR max/i.test(answer)) {
    return `${what} refuses new connections: ${answer.slice(1)}: raise its maxclients or close idle clients`;
  }
  const code = codeOf(err) ?? /\b(E[A-Z]{4,})\b/.exec(msg)?.[1];
  if (/^NOAUTH\b/.test(msg)) {
    return `${what} requires a password: put it in the URL, redis://:PASSWORD@host:port (or redis://USER:PASSWORD@host:port)`;
  }
  if (/^WRONGPASS\b/.test(msg)) {
    return `${what} refused the user name or password in the URL: check them (redis://USER:PASSWORD@host:port)`;
  }
  const resp = /Unknown RESP type \d+ "(.)"/.exec(msg);
  if (resp || /protocol error/i.test(msg)) {
    const first = resp?.[1] === 'H' ? ' (it answered like a web server)' : '';
    return `${what} is not a Redis server${first}: check the host and port`;
  }
  if (code === 'EPIPE' || code === 'ECONNRESET' || /connection is closed/i.test(msg)) {
    return (
      `${what} closed the connection without answering: check that the host and port are a Redis server's` +
      `${tls ? '' : ' (a server that expects TLS does this: try rediss://)'} and that it is not at its maxclients`
    );
  }
  if (code === 'ECONNREFUSED') {
    return `cannot connect to ${what}: connection refused (ECONNREFUSED): is redis-server running there? check the host and port`;
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN')
    return `cannot connect to ${what}: unknown host (${code}): check the host name`;
  if (code === 'ETIMEDOUT' || /no answer within/.test(msg)) {
    const hint = tls ? ' (with rediss://, the server must speak TLS: try redis://)' : '';
    return `cannot connect to ${what}: no answer (${msg}): check the host, the port and any firewall${hint}`;
  }
  if (/^LOADING\b/.test(msg)) return `${what} is loading its data set: try again once it is done`;
  if (/^DENIED\b/.test(msg)) {
    return `${what} refuses connections from this host (protected mode): set a password on it or bind it to this interface`;
  }
  return `cannot connect to ${what}: ${msg}`;
}

/**
 * The one-line message of an error that ended a command: a {@link CliError}
 * as is, a Redis or socket error explained.
 */
export function describeError(err: unknown): string {
  const msg = errorMessage(err);
  if (err instanceof CliError) return msg;
  const wrongType = /^(.*?)(?::\s*)?WRONGTYPE\b/.exec(msg);
  if (wrongType) {
    const where = wrongType[1] ? `${wrongType[1]}: ` : '';
    return (
      `${where}a key of this stream holds another type of value than pulse-streaming expects (WRONGTYPE): ` +
      'check its keys with redis-cli TYPE (pulse:stream:<name>, pulse:stream:<name>:dead, {pulse:stream:<name>}:*)'
    );
  }
  if (/\bREADONLY\b/.test(msg))
    return `${msg.replace(/READONLY.*/, '')}the server is a read-only replica: point --redis at the primary`;
  if (/\bOOM\b/.test(msg)) return 'Redis is out of memory (maxmemory reached): free memory or raise maxmemory, then retry';
  if (/\bNOPERM\b/.test(msg))
    return `the Redis user may not run a command this needs (NOPERM): grant it or use another user (${msg})`;
  const code = codeOf(err);
  if (code === 'EPIPE' || code === 'ECONNRESET' || /connection is closed|Stream isn't writeable/i.test(msg)) {
    return 'lost the connection to Redis while running the command: check that the server is up, then retry';
  }
  return msg;
}
