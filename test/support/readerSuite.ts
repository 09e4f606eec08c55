/**
 * What the reader contract tests (test/reader*.test.ts split by topic) share:
 * iterator taps that watch for "nothing arrives" without losing an event, and
 * per-test streams and readers released when the test ends.
 */
import { onTestFinished } from 'vitest';
import type { Event, Reader, ReaderOptions, StreamOptions, Subscription } from '../../packages/pulse-streaming/src/index.js';
import { Stream } from '../../packages/pulse-streaming/src/index.js';
import { type TestClient, uniqueName, waitFor } from './clients.js';

/** How long "nothing arrives" is watched for. */
export const GRACE_MS = 300;

export function byId(a: string, b: string): number {
  const [am = '0', as = '0'] = a.split('-');
  const [bm = '0', bs = '0'] = b.split('-');
  const d = BigInt(am) - BigInt(bm) || BigInt(as) - BigInt(bs);
  return d < 0n ? -1 : d > 0n ? 1 : 0;
}

export function ids(events: Event[]): string[] {
  return events.map((e) => e.id);
}

export function texts(events: Event[]): string[] {
  return events.map((e) => e.text());
}

/** Resolves true when `p` settles within `ms`. */
export async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let t: NodeJS.Timeout | undefined;
  const r = await Promise.race([
    p.then(
      () => true,
      () => true,
    ),
    new Promise<boolean>((res) => {
      t = setTimeout(() => res(false), ms);
    }),
  ]);
  clearTimeout(t);
  return r;
}

/**
 * Wraps an iterator so that watching for "nothing arrives" does not lose the
 * event that arrives later: the pending `next()` is kept for the next read.
 */
export class Tap<T> implements AsyncIterator<T> {
  #pending: Promise<IteratorResult<T>> | undefined;
  constructor(private readonly it: AsyncIterator<T>) {}

  next(): Promise<IteratorResult<T>> {
    const p = this.#pending ?? this.it.next();
    this.#pending = undefined;
    return p;
  }

  /** The next result, or 'timeout' after `ms` (the pending read is kept). */
  async within(ms: number): Promise<IteratorResult<T> | 'timeout'> {
    const p = this.next();
    let t: NodeJS.Timeout | undefined;
    const r = await Promise.race([
      p,
      new Promise<'timeout'>((res) => {
        t = setTimeout(() => res('timeout'), ms);
      }),
    ]);
    clearTimeout(t);
    if (r === 'timeout') this.#pending = p;
    return r;
  }

  /** True when nothing arrives for `ms`. */
  async quiet(ms = GRACE_MS): Promise<boolean> {
    const r = await this.within(ms);
    if (r !== 'timeout') this.#pending = Promise.resolve(r);
    return r === 'timeout';
  }
}

/**
 * Streams and readers of one test on `c()`, and views of the private server
 * `pc()` is connected to (for counting commands and connections without
 * other test files disturbing the numbers).
 */
export function readerSuite(c: () => TestClient, pc: () => TestClient) {
  return { newStream, newReader, addMany, xreadCalls, connectedClients, clientList, sizeSettles };

  function newStream(options?: StreamOptions, client: TestClient = c(), name = uniqueName('rd')): Stream {
    const s = new Stream(name, client.redis, options);
    onTestFinished(() => s.destroy());
    return s;
  }

  async function newReader(s: Stream, options: ReaderOptions = {}): Promise<Reader> {
    const r = await s.newReader({ blockMs: 200, ...options });
    onTestFinished(() => r.close());
    return r;
  }

  async function addMany(s: Stream, n: number, prefix = 'e'): Promise<string[]> {
    const out: string[] = [];
    for (let i = 0; i < n; i += 200) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(200, n - i) }, (_, j) => s.add(`${prefix}`, `${prefix}${i + j}`)),
      );
      out.push(...(batch as string[]));
    }
    return out;
  }

  async function xreadCalls(): Promise<number> {
    const info = String(await pc().cmd('INFO', 'commandstats'));
    const m = /cmdstat_xread:calls=(\d+)/.exec(info);
    return m ? Number(m[1]) : 0;
  }

  /** Connections to the private server, less the one adds travel on with ioredis (it lives as long as the client). */
  async function connectedClients(): Promise<number> {
    return (await clientList()).filter((l) => !l.includes(' name=pulse:publish ')).length;
  }

  async function clientList(): Promise<string[]> {
    return String(await pc().cmd('CLIENT', 'LIST'))
      .split('\n')
      .filter((l) => l.startsWith('id='));
  }

  /** Waits until nothing more arrives in a subscription's buffer (its size stays the same for a while). */
  async function sizeSettles(sub: Subscription<Event>): Promise<number> {
    let last = -1;
    let since = Date.now();
    await waitFor(
      () => {
        const size = sub.size;
        if (size !== last) {
          last = size;
          since = Date.now();
          return false;
        }
        return size > 0 && Date.now() - since >= GRACE_MS;
      },
      { timeout: 10_000, what: 'the subscription buffer to stop growing' },
    );
    return last;
  }
}
