import { type Event, type Logger, type StartAt, Stream } from 'pulse-streaming';
import { streamKey } from 'pulse-streaming/keys';
import { type CliRedis, isCluster } from '../clients.js';
import type { CommandContext } from '../context.js';
import { isEntryId } from '../entryIds.js';
import { CliError } from '../errors.js';
import {
  charLength,
  cutTo,
  displayText,
  idTime,
  idTimeText,
  isoTime,
  jsonText,
  libraryLine,
  lineField,
  payloadDisplay,
  payloadJson,
  quoted,
} from '../format.js';
import { interruptSignal, onCleanup, shutdownSignal, signalExitCode } from '../lifecycle.js';
import { streamOrAbsent } from '../streamChecks.js';

/** Options of `tail`. */
export interface TailOptions {
  readonly topic?: string;
  readonly count?: number;
  readonly from?: string;
  readonly after?: string;
  /** Do not cut lines to the terminal width. */
  readonly full?: boolean;
  /** Show each event's headers in text lines (JSON lines always have them). */
  readonly headers?: boolean;
}

function startAt(options: TailOptions): StartAt {
  if (options.after !== undefined) {
    // Both: one would be ignored without a word.
    if (options.from !== undefined) throw new CliError('--after and --from both say where to start: give one', 2);
    if (!isEntryId(options.after)) throw new CliError(`--after takes an entry ID like 1700000000000-0, got ${options.after}`, 2);
    return { after: options.after };
  }
  const from = options.from ?? 'newest';
  if (from === 'newest' || from === 'oldest') return from;
  const time = parseTime(from);
  if (time === undefined)
    throw new CliError(`--from takes newest, oldest or a time (ISO 8601, UTC unless it has a zone), got ${from}`, 2);
  return time;
}

/** `2026-12-08`, `2026-12-08T10:20`, `2026-12-08 10:20:30.5`, with `Z` or `+01:00` or no zone (UTC). */
const ISO_TIME =
  /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?(?:([Zz])|([+-])(\d{2}):?(\d{2}))?$/;

/**
 * A time as the CLI prints them (UTC, ISO 8601), strictly: `new Date()` read
 * a time without a zone as local (a time copied from `stream` started hours
 * off, with a warning about clocks) and took `5` or `2024-02-30` as dates.
 */
export function parseTime(text: string): Date | undefined {
  const m = ISO_TIME.exec(text);
  if (!m) return undefined;
  const [y, mo, d, h = 0, mi = 0, sec = 0] = [m[1], m[2], m[3], m[4], m[5], m[6]].map((v) =>
    v === undefined ? undefined : Number(v),
  );
  const ms = m[7] === undefined ? 0 : Number(m[7].slice(0, 3).padEnd(3, '0'));
  if (y === undefined || mo === undefined || d === undefined || h > 23 || mi > 59 || sec > 59) return undefined;
  const day = new Date(Date.UTC(y, mo - 1, d));
  // Not a day of that month (2024-02-30 is no 2024-03-01).
  if (day.getUTCFullYear() !== y || day.getUTCMonth() !== mo - 1 || day.getUTCDate() !== d) return undefined;
  let offset = 0;
  if (m[9] !== undefined) {
    const [oh, om] = [Number(m[10]), Number(m[11])];
    if (oh > 23 || om > 59) return undefined;
    offset = (m[9] === '-' ? -1 : 1) * (oh * 60 + om) * 60_000;
  }
  return new Date(Date.UTC(y, mo - 1, d, h, mi, sec, ms) - offset);
}

/**
 * One event as one JSON line; always the same keys, `topic` null when there
 * is none, `createdAt` null when its ID's time is past what a date holds,
 * `payload` per `encoding` (see `payloadJson`).
 */
export function eventJson(ev: Event): string {
  return jsonText({
    id: ev.id,
    stream: ev.streamName,
    event: ev.eventName,
    topic: ev.topic ?? null,
    headers: ev.headers,
    // null past what a date holds (an ID's time can be up to 2^64 - 1; ev.createdAt is then an Invalid Date).
    createdAt: isoTime(idTime(ev.id)),
    ...payloadJson(ev.payload),
  });
}

/**
 * One event as one terminal line: time, ID, event name, [topic],
 * {headers} with `withHeaders`, payload. Nothing in it can break the line
 * (see `payloadDisplay`, `displayText`); the payload is cut to `width`
 * characters when one is given.
 */
function textLine(ctx: CommandContext, ev: Event, width: number | undefined, withHeaders: boolean): string {
  const { paint } = ctx;
  const time = idTimeText(ev.id);
  const name = lineField(ev.eventName);
  const topic = ev.topic === undefined || ev.topic === '' ? '' : ` [${lineField(ev.topic)}]`;
  const headers = withHeaders ? headersText(ev.headers) : '';
  const head = `${time} ${ev.id} ${name}${topic}${headers} `;
  const payload = payloadDisplay(ev.payload);
  const room = width === undefined ? undefined : width - charLength(head);
  if (room !== undefined && room < 8) return cutTo(head + payload, width); // too narrow for colours to matter
  const coloredHead = `${paint.paint('dim', time)} ${paint.paint('gray', ev.id)} ${paint.paint('cyan', name)}${topic === '' ? '' : ` ${paint.paint('magenta', topic.slice(1))}`}${headers === '' ? '' : ` ${paint.paint('yellow', headers.slice(1))}`} `;
  return coloredHead + cutTo(payload, room);
}

/**
 * ` {name=value, ...}` of an event's headers ('' when it has none), each name
 * and value as `displayText` shows text, and in quotes when it holds one of
 * `,={}` or starts with a space: `{a="1, tenant=acme"}` is not `{a=1, tenant=acme}`.
 */
function headersText(headers: Readonly<Record<string, string>>): string {
  const show = (text: string): string => (/[,={}"]|^\s|^$/.test(text) ? quoted(text) : displayText(text));
  const pairs = Object.entries(headers).map(([k, v]) => `${show(k)}=${show(v)}`);
  return pairs.length === 0 ? '' : ` {${pairs.join(', ')}}`;
}

/** Where to cut lines: the terminal's width, else `COLUMNS`, else nowhere (a pipe or a file gets whole lines). */
function lineWidth(full: boolean): number | undefined {
  if (full) return undefined;
  if (process.stdout.isTTY === true && process.stdout.columns > 0) return process.stdout.columns;
  const columns = Number(process.env.COLUMNS);
  return Number.isInteger(columns) && columns > 0 ? columns : undefined;
}

/**
 * Makes an idle cluster client notice that the cluster is gone: it only drops
 * a node when a command to it fails, and ends once none is left. A plain
 * client ends by itself when its connection closes. Returns the stopper.
 */
function probeCluster(client: CliRedis): () => void {
  if (!isCluster(client)) return () => {};
  const timer = setInterval(() => {
    client.ping().catch(() => {});
  }, 1000);
  return () => clearInterval(timer);
}

/**
 * The library's warnings and errors as notes on stderr (`warning: ...`, a loss
 * with its count); its debug and info lines are left out.
 */
function noteLogger(ctx: CommandContext): Logger {
  const say =
    (level: string) =>
    (obj: object, msg?: string): void =>
      ctx.note(`${level}: ${libraryLine(obj, msg)}`);
  const logger: Logger = { debug: () => {}, info: () => {}, warn: say('warning'), error: say('error'), child: () => logger };
  return logger;
}

/** Most entries a tail reads at once: enough to keep up with a busy stream of small events. */
const TAIL_READ = 100;

/**
 * How much a tail reads and buffers. The reader's defaults (1000 and 1000)
 * would hold up to 2000 payloads: gigabytes in this process, and as much in
 * the production Redis's output buffer for this client, for a stream of 1 MB
 * payloads. A tail prints them one by one, so it reads at most
 * {@link TAIL_READ}, and no more than `--count` asks for: `--count 1` reads one
 * entry. A topic filter drops entries after they are read, so with `--topic`
 * it reads {@link TAIL_READ} to find the few it prints.
 */
function readSize(options: TailOptions): { maxPolled: number; bufferSize: number } {
  const n = options.count === undefined || options.topic ? TAIL_READ : Math.min(options.count, TAIL_READ);
  return { maxPolled: n, bufferSize: n };
}

/**
 * `tail <stream>`: prints events as they are added (one JSON object per line
 * with --json) until Ctrl-C, or until `--count` events were printed.
 */
export async function tailCommand(ctx: CommandContext, name: string, options: TailOptions): Promise<number> {
  const start = startAt(options);
  const { client } = await ctx.connect();
  // What the reader says goes to stderr as this command's notes, each loss with its count (without
  // a logger the library reports losses as Node process warnings, at most once a minute: a tail
  // that fell behind printed a few of them, and what came after the last went unsaid).
  const stream = new Stream(name, client, { logger: noteLogger(ctx) });
  if ((await streamOrAbsent(client, streamKey(name))) === 'none')
    ctx.note(`stream ${displayText(name)} does not exist yet: waiting for its first event`);
  const reader = await stream.newReader({
    startAt: start,
    blockMs: 2000,
    ...readSize(options),
    ...(options.topic ? { topic: options.topic } : {}),
  });
  onCleanup(() => reader.close());
  // The program's client does not reconnect: when it ends, Redis is gone.
  const lost = new AbortController();
  client.once('end', () => lost.abort());
  const stopProbing = probeCluster(client);
  let printed = 0;
  const width = lineWidth(options.full === true);
  try {
    for await (const ev of reader.subscribe({ signal: AbortSignal.any([shutdownSignal, lost.signal]) })) {
      process.stdout.write(`${ctx.json ? eventJson(ev) : textLine(ctx, ev, width, options.headers === true)}\n`);
      printed++;
      if (options.count !== undefined && printed >= options.count) break;
    }
  } finally {
    stopProbing();
    await reader.close();
    const { lost: missed } = reader.counters;
    if (missed > 0)
      ctx.note(
        `warning: ${missed} event${missed === 1 ? '' : 's'} in all were trimmed or deleted before this tail read them (not printed)`,
      );
  }
  // Ctrl-C (or SIGTERM) is how a tail without --count ends: 130 (143), as the help says, so scripts can tell.
  if (shutdownSignal.aborted) return signalExitCode(interruptSignal());
  if (lost.signal.aborted) throw new CliError('lost the connection to Redis: check that the server is up, then tail again');
  return 0;
}
