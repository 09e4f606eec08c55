/**
 * The dashboard's JSON reads: overview pages, one stream, its entries
 * (newest first, paged), a sink's pending entries and dead letters. Each
 * takes the query string and returns a JSON-ready value; bad parameters are
 * `InvalidArgumentError`s (HTTP 400), missing things {@link NotFound} (404).
 */
import { type DeadLetter, InvalidArgumentError, Stream } from 'pulse-streaming';
import { streamKey } from 'pulse-streaming/keys';
import type { CliRedis } from '../clients.js';
import { deadLetterStreamName, getDeadLetter } from '../deadLetters.js';
import { isEntryId } from '../entryIds.js';
import { CliError } from '../errors.js';
import { type PendingReport, pendingReport, sinkInfos, streamGone, streamHead } from '../inspect.js';
import { entryList, text } from '../replies.js';
import { manyStreamFigures, pageOf, type StreamFigures, type StreamNames, streamFigures } from './collect.js';
import { type EntryView, entryView, type PayloadView, PREVIEW_BYTES, PREVIEW_RANGE, payloadView } from './payload.js';
import type { RateHistory, RatePoint } from './rates.js';

/** What the read handlers need. */
export interface ApiContext {
  readonly client: CliRedis;
  readonly names: StreamNames;
  readonly rates: RateHistory;
}

/** Something asked for does not exist (HTTP 404). */
export class NotFound extends Error {
  override readonly name = 'NotFound';
}

/** Points of the overview's per-stream sparkline (about two minutes at one refresh every two seconds). */
const SPARK_POINTS = 60;

/** A required, non-empty query parameter. */
export function param(q: URLSearchParams, name: string): string {
  const v = q.get(name);
  if (v === null || v === '') throw new InvalidArgumentError(`missing query parameter ${name}`);
  if (v.length > 1024) throw new InvalidArgumentError(`query parameter ${name} is too long`);
  return v;
}

function optionalId(q: URLSearchParams, name: string): string | undefined {
  const v = q.get(name);
  if (v === null || v === '') return undefined;
  if (!isEntryId(v)) throw new InvalidArgumentError(`${name} must be an entry ID like 1700000000000-0`);
  return v;
}

function int(q: URLSearchParams, name: string, fallback: number, min: number, max: number): number {
  const v = q.get(name);
  if (v === null || v === '') return fallback;
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < min || n > max)
    throw new InvalidArgumentError(`${name} must be a whole number from ${min} to ${max}`);
  return n;
}

/** A stream's figures with its rate history. */
export type StreamRow = StreamFigures & { rate: number | null; rates: RatePoint[] };

function withRates(ctx: ApiContext, f: StreamFigures, points: number): StreamRow {
  ctx.rates.record(f.name, f.entriesAdded);
  const series = ctx.rates.series(f.name);
  return { ...f, rate: ctx.rates.current(f.name), rates: series.slice(-points) };
}

/**
 * The parameters of `api/overview` (also checked before a live overview starts).
 * @throws InvalidArgumentError for a bad page or size.
 */
export function overviewQuery(q: URLSearchParams): { query: string; page: number; size: number } {
  return { query: q.get('q') ?? '', page: int(q, 'page', 0, 0, 1_000_000), size: int(q, 'size', 50, 1, 500) };
}

/**
 * `api/overview?q=&page=&size=`: one page of the streams whose name contains
 * `q`, from the cached listing of names or, with `fresh`, a new one.
 */
export async function overview(ctx: ApiContext, q: URLSearchParams, fresh = false) {
  const { query, page: number, size } = overviewQuery(q);
  const page = pageOf(await (fresh ? ctx.names.fresh() : ctx.names.all()), query, number, size);
  const figures = await manyStreamFigures(ctx.client, page.names);
  const streams = figures.map((f) => withRates(ctx, f, SPARK_POINTS));
  return { ...page, query, time: Date.now(), streams };
}

/** `api/stream?name=`: a stream's figures (TTL, first and last entry IDs included) and its sinks with their consumers. */
export async function streamPage(ctx: ApiContext, q: URLSearchParams) {
  const name = param(q, 'name');
  const figures = await streamFigures(ctx.client, name);
  if (figures === undefined) throw new NotFound(`no stream ${JSON.stringify(name)}`);
  const sinks = await sinkInfos(ctx.client, name);
  return {
    ...withRates(ctx, figures, Number.POSITIVE_INFINITY),
    sinkDetails: sinks,
    time: Date.now(),
  };
}

/**
 * Entries of `name` from the newest (or those before `before`), at most `count`,
 * each payload cut to a preview; `next` is the `before` of the following page.
 */
export async function readEntries(
  client: CliRedis,
  name: string,
  options: { before?: string | undefined; count: number },
): Promise<{ entries: EntryView[]; next: string | null }> {
  const end = options.before === undefined ? '+' : `(${options.before}`;
  // A few bytes past the preview, so that cutting it on a character boundary sees the character.
  const keep = String(PREVIEW_BYTES + 4);
  const reply = await client.callBuffer('EVAL', PREVIEW_RANGE, '1', streamKey(name), end, String(options.count + 1), keep);
  const entries = entryList(reply).map((e) => entryView(e));
  const more = entries.length > options.count;
  if (more) entries.pop();
  return { entries, next: more ? (entries[entries.length - 1]?.id ?? null) : null };
}

/** `api/entries?name=&before=&count=`: a page of entries, newest first. */
export function entries(ctx: ApiContext, q: URLSearchParams) {
  return readEntries(ctx.client, param(q, 'name'), { before: optionalId(q, 'before'), count: int(q, 'count', 50, 1, 500) });
}

/** `api/entry?name=&id=`: one entry with its whole payload ("show all"). */
export async function entry(ctx: ApiContext, q: URLSearchParams): Promise<EntryView> {
  const name = param(q, 'name');
  const id = optionalId(q, 'id');
  if (id === undefined) throw new InvalidArgumentError('missing query parameter id');
  const [found] = entryList(await ctx.client.callBuffer('XRANGE', streamKey(name), id, id));
  if (found === undefined) throw new NotFound(`no entry ${id} in stream ${JSON.stringify(name)}`);
  return entryView(found, Number.POSITIVE_INFINITY);
}

/**
 * `api/pending?name=&sink=&consumer=&after=&count=`: a page of the pending
 * entries of a sink, oldest first; `next` is the `after` of the following
 * page (null on the last one). An ID cursor, not an offset: acks between two
 * pages neither skip nor repeat an entry.
 */
export async function pending(ctx: ApiContext, q: URLSearchParams) {
  const consumer = q.get('consumer');
  const after = optionalId(q, 'after');
  const count = int(q, 'count', 100, 1, 1000);
  let report: PendingReport;
  try {
    report = await pendingReport(ctx.client, param(q, 'name'), param(q, 'sink'), {
      count: count + 1,
      ...(consumer ? { consumer } : {}),
      ...(after === undefined ? {} : { after }),
    });
  } catch (err) {
    if (err instanceof CliError) throw new NotFound(err.message);
    throw err;
  }
  const more = report.entries.length > count;
  if (more) report.entries.pop();
  return { ...report, next: more ? (report.entries[report.entries.length - 1]?.id ?? null) : null };
}

/** A dead letter in the API. */
export interface DeadLetterView {
  id: string;
  time: number;
  event: string;
  topic: string | null;
  sourceStream: string;
  sourceSink: string;
  sourceId: string;
  deliveries: number;
  reason: string;
  payload: PayloadView;
}

function deadView(d: DeadLetter, max?: number): DeadLetterView {
  return {
    id: d.id,
    time: d.deadAt.getTime(),
    event: d.eventName,
    topic: d.topic ?? null,
    sourceStream: d.sourceStream,
    sourceSink: d.sourceSink,
    sourceId: d.sourceId,
    deliveries: d.deliveries,
    reason: d.reason,
    payload: payloadView(d.payload, max),
  };
}

/** The key of stream `name`'s dead letters (the name checked as the library checks it: a 400). */
function deadKey(ctx: ApiContext, name: string): string {
  return streamKey(deadLetterStreamName(new Stream(name, ctx.client).name));
}

/**
 * `api/dead?name=&after=&count=`: dead letters of a stream, oldest first,
 * paged by `after`. Read like the library's `readDeadLetters` (same fields),
 * but with the payloads cut in Redis: a list of 1 MB letters stays small.
 */
export async function deadLetters(ctx: ApiContext, q: URLSearchParams) {
  const name = param(q, 'name');
  const after = optionalId(q, 'after');
  const count = int(q, 'count', 50, 1, 500);
  const key = deadKey(ctx, name);
  const start = after === undefined ? '-' : `(${after}`;
  const keep = String(PREVIEW_BYTES + 4);
  const reply = await ctx.client.callBuffer('EVAL', PREVIEW_RANGE, '1', key, start, String(count + 1), keep, 'forward');
  const letters = entryList(reply).map((e): DeadLetterView => {
    const v = entryView(e);
    const field = (f: string): string => text(e.fields.get(f));
    return {
      id: v.id,
      time: v.time,
      event: v.event,
      topic: v.topic,
      sourceStream: field('source_stream'),
      sourceSink: field('source_sink'),
      sourceId: field('source_id'),
      deliveries: Number(field('deliveries') || 0),
      reason: field('reason'),
      payload: v.payload,
    };
  });
  const more = letters.length > count;
  if (more) letters.pop();
  return { letters, next: more ? (letters[letters.length - 1]?.id ?? null) : null };
}

/**
 * `api/dead-head?name=`: the length and last ID of a stream's dead letters, 0 and null while it has
 * none: what the dead-letter page watches to read its list again. It watched `api/stream` of
 * `<name>:dead`, a 404 in the browser's console every refresh while there were none.
 */
export async function deadHead(ctx: ApiContext, q: URLSearchParams): Promise<{ length: number; lastId: string | null }> {
  const name = param(q, 'name');
  const key = deadKey(ctx, name);
  try {
    const { length, lastId } = await streamHead(ctx.client, key);
    return { length, lastId };
  } catch (err) {
    if (streamGone(err)) return { length: 0, lastId: null };
    throw err;
  }
}

/** `api/dead-letter?name=&id=`: one dead letter with its whole payload. */
export async function deadLetter(ctx: ApiContext, q: URLSearchParams): Promise<DeadLetterView> {
  const name = param(q, 'name');
  const id = optionalId(q, 'id');
  if (id === undefined) throw new InvalidArgumentError('missing query parameter id');
  const d = await getDeadLetter(ctx.client, name, id);
  if (d === undefined) throw new NotFound(`no dead letter ${id} for stream ${JSON.stringify(name)}`);
  return deadView(d, Number.POSITIVE_INFINITY);
}
