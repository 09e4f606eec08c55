/**
 * Ways to consume events: a library sink or reader, and raw XREADGROUP/XREAD
 * loops. Shared by in-process cases and worker processes. Both sides get each
 * event's ID and payload bytes and hand the payload to the same hooks.
 */
import type { Reader, Sink } from '../packages/pulse-streaming/src/index.js';
import type { BenchClient } from './clients.js';
import { BLOCK_MS, replyEntries } from './rawStreams.js';

export interface ConsumeHooks {
  /** Called with each event's payload (latency measurement). */
  readonly onEvent?: (payload: Buffer) => void;
  /** Called with the running count, per event or per batch. */
  readonly onProgress?: (consumed: number) => void;
}

/** Batch size of every read, the library's `maxPolled` and the raw `COUNT`. */
export const READ_COUNT = 1000;

/** Empty blocking reads in a row after which a raw loop gives up (events were lost). */
const MAX_EMPTY_READS = 3;

/**
 * Takes `events` events from a sink, acking each with `ev.ack()` without
 * awaiting it (acks issued in the same tick travel as one XACK); resolves once
 * the last ack is done.
 */
export async function consumeWithSink(sink: Sink, events: number, hooks: ConsumeHooks = {}): Promise<void> {
  const { onEvent, onProgress } = hooks;
  let count = 0;
  let lastAck: Promise<void> | undefined;
  let failure: unknown;
  const fail = (err: unknown): void => {
    failure ??= err;
  };
  for await (const ev of sink) {
    onEvent?.(ev.payload);
    const ack = ev.ack();
    if (ack !== lastAck) {
      lastAck = ack;
      ack.catch(fail);
    }
    count++; // not inside `onProgress?.()`: its arguments are skipped when it is undefined
    onProgress?.(count);
    if (count >= events) break;
  }
  await lastAck;
  if (failure !== undefined) throw failure;
  if (count < events) throw new Error(`sink ended after ${count} of ${events} events`);
}

/** Takes `events` events from a reader. */
export async function consumeWithReader(reader: Reader, events: number, hooks: ConsumeHooks = {}): Promise<void> {
  const { onEvent, onProgress } = hooks;
  let count = 0;
  for await (const ev of reader) {
    onEvent?.(ev.payload);
    count++; // not inside `onProgress?.()`: its arguments are skipped when it is undefined
    onProgress?.(count);
    if (count >= events) break;
  }
  if (count < events) throw new Error(`reader ended after ${count} of ${events} events`);
}

export interface RawGroup {
  /** Connection for the blocking reads. */
  readonly reader: BenchClient;
  /** Connection for the acks (the user's client, as for the library). */
  readonly acker: BenchClient;
  readonly key: string;
  readonly group: string;
  readonly consumer: string;
}

/** XREADGROUP COUNT 1000 and one XACK per batch, not awaited before the next read. */
export async function consumeRawGroup(g: RawGroup, events: number, hooks: ConsumeHooks = {}): Promise<void> {
  const { onEvent, onProgress } = hooks;
  const read = [
    'XREADGROUP',
    'GROUP',
    g.group,
    g.consumer,
    'COUNT',
    String(READ_COUNT),
    'BLOCK',
    BLOCK_MS,
    'STREAMS',
    g.key,
    '>',
  ];
  let count = 0;
  let empty = 0;
  let lastAck: Promise<unknown> | undefined;
  let failure: unknown;
  while (count < events) {
    const entries = replyEntries(await g.reader.send(read));
    if (entries.length === 0) {
      if (++empty >= MAX_EMPTY_READS) throw new Error(`raw group consumer stalled after ${count} of ${events} events`);
      continue;
    }
    empty = 0;
    const ack: string[] = ['XACK', g.key, g.group];
    for (const e of entries) {
      if (e.payload) onEvent?.(e.payload);
      ack.push(e.id);
    }
    lastAck = g.acker.send(ack);
    lastAck.catch((err: unknown) => {
      failure ??= err;
    });
    count += entries.length;
    onProgress?.(count);
  }
  await lastAck;
  if (failure !== undefined) throw failure;
}

/** XREAD COUNT 1000 from `0-0`, moving the cursor to the last entry of each batch. */
export async function consumeRawXread(conn: BenchClient, key: string, events: number, hooks: ConsumeHooks = {}): Promise<void> {
  const { onEvent, onProgress } = hooks;
  let cursor = '0-0';
  let count = 0;
  let empty = 0;
  while (count < events) {
    const entries = replyEntries(
      await conn.send(['XREAD', 'COUNT', String(READ_COUNT), 'BLOCK', BLOCK_MS, 'STREAMS', key, cursor]),
    );
    if (entries.length === 0) {
      if (++empty >= MAX_EMPTY_READS) throw new Error(`raw reader stalled after ${count} of ${events} events`);
      continue;
    }
    empty = 0;
    for (const e of entries) {
      if (e.payload) onEvent?.(e.payload);
      cursor = e.id;
    }
    count += entries.length;
    onProgress?.(count);
  }
}
