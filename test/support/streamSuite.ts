/**
 * What the stream contract tests (test/stream*.test.ts split by topic) share:
 * raw views of entries (as text and as exact bytes) and per-test streams and
 * readers released when the test ends.
 */
import type { Redis } from 'ioredis';
import { onTestFinished } from 'vitest';
import { type Event, type Reader, Stream, type StreamOptions } from '../../packages/pulse-streaming/src/index.js';
import { type TestClient, take, uniqueName } from './clients.js';

export type RawEntries = Array<[string, string[]]>;

/** Numeric reply of a raw command (clients differ in number vs string). */
export async function num(c: TestClient, ...args: (string | number)[]): Promise<number> {
  return Number(await c.cmd(...args));
}

export function isAscending(ids: string[]): boolean {
  const parse = (id: string): [bigint, bigint] => {
    const [ms = '0', seq = '0'] = id.split('-');
    return [BigInt(ms), BigInt(seq)];
  };
  for (let i = 1; i < ids.length; i++) {
    const [am, as] = parse(ids[i - 1] as string);
    const [bm, bs] = parse(ids[i] as string);
    if (!(am < bm || (am === bm && as < bs))) return false;
  }
  return true;
}

/** Streams and readers of one test on `c()`, and raw views through `c()` and the binary-safe `bin()`. */
export function streamSuite(c: () => TestClient, bin: () => Redis) {
  return { newStream, newReader, rawEntries, rawBytes, readAll };

  /** A stream with a unique name, destroyed when the test ends. */
  function newStream(options?: StreamOptions, name = uniqueName('st')): Stream {
    const s = new Stream(name, c().redis, options);
    onTestFinished(() => s.destroy());
    return s;
  }

  async function newReader(s: Stream, options: Parameters<Stream['newReader']>[0] = {}): Promise<Reader> {
    const r = await s.newReader({ blockMs: 200, ...options });
    onTestFinished(() => r.close());
    return r;
  }

  async function rawEntries(key: string): Promise<RawEntries> {
    return (await c().cmd('XRANGE', key, '-', '+')) as RawEntries;
  }

  /** Entries with every field as a Buffer, whatever the client. */
  async function rawBytes(key: string): Promise<Array<[string, Buffer[]]>> {
    const reply = (await bin().callBuffer('XRANGE', key, '-', '+')) as Array<[Buffer, Buffer[]]>;
    return reply.map(([id, fields]) => [id.toString(), fields]);
  }

  /** Reads back every event of the stream from the oldest. */
  async function readAll(s: Stream, n: number): Promise<Event[]> {
    const r = await newReader(s, { startAt: 'oldest' });
    const sub = r.subscribe();
    const events = await take(sub, n, 10_000);
    await r.close();
    return events;
  }
}
