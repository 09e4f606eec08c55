/**
 * Live updates over server-sent events: snapshots of the overview page or of
 * one stream, sent again every interval while the page is open, and the live
 * tail of a stream, read with the library's `Reader` (a blocking read on a
 * connection the library duplicates, closed when the page goes away).
 * Nothing is written to a page that stopped reading (a laptop asleep with
 * the tab open, a stalled proxy) until it reads again: snapshots are skipped,
 * tail entries counted as skipped, so its buffer stays bounded.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type Event, InvalidArgumentError, type Logger, type Reader, type StartAt, Stream } from 'pulse-streaming';
import { canonicalEntryId, isEntryId } from '../entryIds.js';
import { errorMessage } from '../errors.js';
import { libraryLine } from '../format.js';
import { type ApiContext, overview, overviewQuery, param, streamPage } from './api.js';
import { LIMITS, withDeadline } from './limits.js';
import { type EntryView, payloadView } from './payload.js';

/** Most entries of one tail message; older ones in a burst are counted as skipped. */
const TAIL_MAX_BATCH = 100;
/** Comment line that keeps proxies from closing an idle stream. */
const KEEPALIVE_MS = 15_000;

/**
 * Open event streams, closed together by the dashboard's `close()`. Once
 * closed it stays so: a stream opened after (a tail whose reader was being
 * created when `close()` came) must end at once, or it would stream for ever.
 */
export class LiveConnections {
  readonly #open = new Set<() => void>();
  readonly #finishing = new Set<Promise<void>>();
  #closed = false;

  get closed(): boolean {
    return this.#closed;
  }

  /** Whether {@link LIMITS.liveMax} live views are open: a new one is refused (503). */
  get full(): boolean {
    return this.#open.size >= LIMITS.liveMax;
  }

  /** Registers `stop` for {@link closeAll}; once closed, nothing is registered: the caller stops itself. */
  add(stop: () => void): () => void {
    if (this.#closed) return () => {};
    this.#open.add(stop);
    return () => this.#open.delete(stop);
  }

  /** Keeps `work` (a tail's reader closing) for {@link closeAll} to wait for. */
  track(work: Promise<void>): void {
    this.#finishing.add(work);
    void work.finally(() => this.#finishing.delete(work));
  }

  /** Ends every open stream and waits until their readers are closed. */
  async closeAll(): Promise<void> {
    this.#closed = true;
    for (const stop of [...this.#open]) stop();
    this.#open.clear();
    await Promise.allSettled([...this.#finishing]);
  }
}

/**
 * Starts an event stream response; returns a writer, a signal aborted when
 * the client goes away, and `blocked()`: true while the client has not read
 * what was sent already (the response's buffer is past its high-water mark),
 * when the caller must send nothing more.
 */
function openEvents(req: IncomingMessage, res: ServerResponse, live: LiveConnections) {
  res.writeHead(200, {
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-cache, no-transform',
    'X-Accel-Buffering': 'no',
  });
  res.flushHeaders();
  const done = new AbortController();
  const stop = (): void => {
    if (done.signal.aborted) return;
    done.abort();
    clearInterval(keepalive);
    unregister();
    res.end();
  };
  const unregister = live.add(stop);
  req.on('close', stop);
  res.on('close', stop);
  const blocked = (): boolean => res.writableNeedDrain;
  const keepalive = setInterval(() => {
    if (!blocked()) res.write(': keep-alive\n\n');
  }, KEEPALIVE_MS);
  // The page may have gone while the tail's reader was being created: 'close' came already.
  // Or the dashboard was closed meanwhile.
  if (req.socket.destroyed || live.closed) stop();
  // `id` (an entry ID) is what the browser sends back as Last-Event-ID when it reconnects.
  const send = (event: string, data: unknown, id?: string): void => {
    if (!done.signal.aborted)
      res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n${id === undefined ? '' : `id: ${id}\n`}\n`);
  };
  return { send, signal: done.signal, stop, blocked };
}

/**
 * The answer to a live view asked for while {@link LIMITS.liveMax} are open: each costs Redis
 * reads every second or two (a tail, a connection of its own), and 50 overview pages, which need
 * no token, drove Redis to 40-50k commands/s and the server to 325 MB (outside trial).
 */
function busyResponse(res: ServerResponse): void {
  res.writeHead(503, { 'Content-Type': 'application/json; charset=utf-8', 'Retry-After': '10' });
  res.end(JSON.stringify({ error: `${LIMITS.liveMax} live views are open on this dashboard: close some of its pages` }));
}

/** The answer to a request that comes (or whose tail's reader is ready) after the dashboard's `close()`. */
function closedResponse(res: ServerResponse): void {
  if (res.writableEnded) return;
  if (!res.headersSent) res.writeHead(503, { 'Content-Type': 'application/json; charset=utf-8' });
  res.end(JSON.stringify({ error: 'the dashboard is closed' }));
}

/** `api/live?view=overview&q=&page=&size=` or `api/live?view=stream&name=`: repeated snapshots. */
export function liveSnapshots(
  ctx: ApiContext,
  q: URLSearchParams,
  req: IncomingMessage,
  res: ServerResponse,
  live: LiveConnections,
) {
  const view = q.get('view');
  // The first overview of a page lists the names afresh: a page (re)load shows a stream created a moment ago.
  const load = view === 'stream' ? () => streamPage(ctx, q) : (fresh: boolean) => overview(ctx, q, fresh);
  // Bad parameters are a 400 now, not a failure event every interval.
  if (view !== null && view !== 'overview' && view !== 'stream')
    throw new InvalidArgumentError("view must be 'overview' or 'stream'");
  if (view === 'stream') param(q, 'name');
  else overviewQuery(q);
  if (live.closed) return closedResponse(res);
  if (live.full) return busyResponse(res);
  const { send, signal, blocked } = openEvents(req, res, live);
  const every = view === 'stream' ? LIMITS.streamEveryMs : LIMITS.overviewEveryMs;
  // A load that outlived its deadline is awaited again by the next tick, not
  // started anew: commands must not pile up on a Redis that does not answer.
  let loading: Promise<unknown> | undefined;
  let first = true;
  const tick = async (): Promise<void> => {
    // A page that does not read gets no snapshot (nor costs Redis one) until it does.
    if (!blocked()) {
      loading ??= load(first).finally(() => {
        loading = undefined;
      });
      first = false;
      try {
        send('snapshot', await withDeadline(loading, LIMITS.readMs));
      } catch (err) {
        send('failure', { error: errorMessage(err) });
      }
    }
    if (!signal.aborted) setTimeout(() => void tick(), every);
  };
  void tick();
}

function eventView(ev: Event): EntryView {
  // Headers arrive with the headers feature; until then events have none.
  const headers = (ev as { headers?: Readonly<Record<string, string>> }).headers ?? {};
  return {
    id: ev.id,
    time: ev.createdAt.getTime(),
    event: ev.eventName,
    topic: ev.topic ?? null,
    headers: { ...headers },
    payload: payloadView(ev.payload),
  };
}

/**
 * The entry ID a tail starts after: the `Last-Event-ID` header of a page's
 * EventSource that reconnects (each batch of entries carries the ID of its
 * last entry), else the `after` parameter; undefined for one from now.
 * @throws InvalidArgumentError (HTTP 400) for a value that is not an entry ID.
 */
function tailAfter(q: URLSearchParams, req: IncomingMessage): string | undefined {
  const header = req.headers['last-event-id'];
  const resume = typeof header === 'string' && header !== '' ? header : undefined;
  const after = resume ?? (q.get('after') || undefined);
  if (after === undefined) return undefined;
  if (!isEntryId(after)) {
    const what = resume === undefined ? 'after' : 'Last-Event-ID';
    throw new InvalidArgumentError(`${what} must be an entry ID like 1700000000000-0`);
  }
  return canonicalEntryId(after);
}

/** Notices of a tail's reader kept until its page's event stream is open. */
const EARLY_NOTICES = 10;

/** Events of a tail's event stream that say how its reads go, beside `ready`, `entries` and `failure`. */
type TailNotice = 'outage' | 'recovered' | 'warning';

/**
 * What the tail's reader logs, told to its page: a read that failed and is
 * retried (Redis down or unreachable) as `outage` with the error, until a read
 * works again (`recovered`); anything else it warns of (entries trimmed or
 * deleted before the tail read them, with their count) as `warning`. The
 * reader retries through an outage without ending its subscription, so
 * without this the page said "live" while nothing could come (outside trial).
 * What comes before the page's event stream is open (`tell`: the gap a tail
 * resumed after a trimmed entry starts with, said as the reader is created)
 * waits for it, the first {@link EARLY_NOTICES}.
 */
function tailLogger(): { logger: Logger; tell: (to: (event: TailNotice, data: unknown) => void) => void } {
  const early: Array<[TailNotice, unknown]> = [];
  let tell = (event: TailNotice, data: unknown): void => {
    if (early.length < EARLY_NOTICES) early.push([event, data]);
  };
  const warn = (obj: object, msg?: string): void => {
    const o = obj as { err?: unknown; retryInMs?: unknown };
    // The read loops' retry lines carry `retryInMs` (internal/readLoop.ts).
    if (typeof o.retryInMs === 'number') tell('outage', { error: typeof o.err === 'string' ? o.err : (msg ?? '') });
    else tell('warning', { message: libraryLine(obj, msg) });
  };
  const logger: Logger = {
    debug: () => {},
    info: (_obj, msg) => {
      if (msg === 'read recovered') tell('recovered', {});
    },
    warn,
    error: warn,
    child: () => logger,
  };
  return {
    logger,
    tell: (to) => {
      tell = to;
      for (const [event, data] of early.splice(0)) to(event, data);
    },
  };
}

/**
 * `api/tail?name=&after=`: events added to a stream from now (or after an ID), as they arrive.
 * A page that reconnects (its connection dropped) resumes after the last entry it was sent.
 */
export async function liveTail(
  ctx: ApiContext,
  q: URLSearchParams,
  req: IncomingMessage,
  res: ServerResponse,
  live: LiveConnections,
) {
  const name = param(q, 'name');
  const after = tailAfter(q, req);
  const startAt: StartAt = after === undefined ? 'newest' : { after };
  // Validates the name before the response starts (a bad one is a 400).
  const notices = tailLogger();
  const stream = new Stream(name, ctx.client, { maxLen: 0, logger: notices.logger });
  if (live.closed) return closedResponse(res);
  if (live.full) return busyResponse(res);
  // close() may come while the reader is created (Redis slow: up to the library's open
  // timeout). It ends this request at once rather than wait for Redis; the reader is
  // closed as soon as it exists.
  const unregister = live.add(() => closedResponse(res));
  let reader: Reader;
  try {
    // Small reads: a tail shows at most 100 entries per flush, and 1 MB payloads must not pile up in memory.
    reader = await stream.newReader({ startAt, blockMs: 1000, maxPolled: 100, bufferSize: 200 });
  } finally {
    unregister();
  }
  if (live.closed) {
    closedResponse(res);
    await reader.close();
    return;
  }
  const { send, signal, stop, blocked } = openEvents(req, res, live);
  let queued: EntryView[] = [];
  let skipped = 0;
  const flush = (): void => {
    // While the page does not read, entries wait here (at most TAIL_MAX_BATCH, older ones
    // counted as skipped) and the count goes with the first batch it reads.
    if ((queued.length === 0 && skipped === 0) || blocked()) return;
    // The batch's last entry is the newest sent: a reconnection resumes after it.
    send('entries', { entries: queued, skipped }, queued[queued.length - 1]?.id);
    queued = [];
    skipped = 0;
  };
  const timer = setInterval(flush, LIMITS.tailFlushMs);
  send('ready', { stream: name });
  notices.tell(send);
  const run = async (): Promise<void> => {
    try {
      for await (const ev of reader.subscribe({ signal })) {
        queued.push(eventView(ev));
        if (queued.length > TAIL_MAX_BATCH) {
          queued.shift();
          skipped++;
        }
      }
      flush();
    } catch (err) {
      flush();
      send('failure', { error: errorMessage(err) });
    } finally {
      clearInterval(timer);
      await reader.close();
      stop();
    }
  };
  const running = run();
  live.track(running);
  await running;
}
