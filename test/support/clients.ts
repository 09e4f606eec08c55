import { Redis } from 'ioredis';
import { createClient } from 'redis';
import { inject, onTestFinished } from 'vitest';
import type { RedisClient } from '../../packages/pulse-streaming/src/index.js';

export type ClientKind = 'ioredis' | 'node-redis';
export const CLIENT_KINDS: ClientKind[] = ['ioredis', 'node-redis'];

export interface TestClient {
  readonly kind: ClientKind;
  /** The user's client, handed to `new Stream`. */
  readonly redis: RedisClient;
  /** Raw command with string replies, for assertions. */
  cmd(...args: (string | number | Buffer)[]): Promise<unknown>;
  close(): Promise<void>;
}

export function sharedUrl(): string {
  return inject('redisUrl');
}

/**
 * A client of the shared test Redis (or of `url`). With PULSE_TEST_CLUSTER=1
 * and no `url`, a cluster client of the shared test cluster.
 */
export async function connect(kind: ClientKind, url?: string): Promise<TestClient> {
  const clusterPorts = inject('clusterPorts');
  if (url === undefined && clusterPorts.length > 0) {
    const { connectClusterPorts } = await import('./clusterClients.js');
    return connectClusterPorts(kind, clusterPorts);
  }
  return connectServer(kind, url ?? sharedUrl());
}

async function connectServer(kind: ClientKind, url: string): Promise<TestClient> {
  if (kind === 'ioredis') {
    const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 3 });
    redis.on('error', () => {});
    await redis.connect();
    return {
      kind,
      redis,
      cmd: (c, ...rest) => redis.call(String(c), ...rest),
      close: async () => {
        redis.disconnect();
      },
    };
  }
  const redis = createClient({ url, socket: { reconnectStrategy: (n: number) => Math.min(n * 50, 500) } });
  redis.on('error', () => {});
  await redis.connect();
  return {
    kind,
    redis,
    cmd: (...args) => redis.sendCommand(args.map((a) => (typeof a === 'number' ? String(a) : a))),
    close: async () => {
      redis.destroy();
    },
  };
}

let seq = 0;
/** A random name per test so test files can run in parallel on one server. */
export function uniqueName(prefix = 't'): string {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${(seq++).toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

/** Waits until a client of the server `c` talks to is blocked in an XREADGROUP (a sink's blocking read is out). */
export async function readBlocked(c: TestClient, timeout = 10_000): Promise<void> {
  await waitFor(
    async () =>
      String(await c.cmd('CLIENT', 'LIST'))
        .split('\n')
        .some((l) => l.includes('cmd=xreadgroup') && / flags=\S*b/.test(l)),
    { timeout, what: 'a blocked XREADGROUP' },
  );
}

/**
 * Waits until no client of the server `c` talks to has been blocked in an
 * XREADGROUP for `quietMs` (a sink with no subscriber stops reading once its
 * last blocking read, of at most `blockMs`, returns).
 */
export async function readsStopped(c: TestClient, quietMs = 300, timeout = 10_000): Promise<void> {
  let since = Date.now();
  await waitFor(
    async () => {
      const blocked = String(await c.cmd('CLIENT', 'LIST'))
        .split('\n')
        .some((l) => l.includes('cmd=xreadgroup') && / flags=\S*b/.test(l));
      if (blocked) since = Date.now();
      return Date.now() - since >= quietMs;
    },
    { timeout, what: `no blocked XREADGROUP for ${quietMs} ms` },
  );
}

/** Waits for a condition; never a fixed sleep. */
export async function waitFor<T>(
  cond: () => T | Promise<T>,
  { timeout = 5000, interval = 10, what = 'condition' }: { timeout?: number; interval?: number; what?: string } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeout;
  let last: unknown;
  for (;;) {
    try {
      const v = await cond();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, interval));
  }
}

// A next() that lost a race with a timeout stays pending and would swallow
// the next event: keep it and hand it to the next caller instead.
const pendingNext = new WeakMap<AsyncIterator<unknown>, Promise<IteratorResult<unknown>>>();

function pull<T>(it: AsyncIterator<T>): Promise<IteratorResult<T>> {
  let p = pendingNext.get(it) as Promise<IteratorResult<T>> | undefined;
  if (!p) {
    p = it.next();
    pendingNext.set(it, p);
    void p.then(
      () => pendingNext.delete(it),
      () => pendingNext.delete(it),
    );
  }
  return p;
}

/** Takes `n` events from an async iterator, failing after `timeout`. */
export async function take<T>(it: AsyncIterator<T>, n: number, timeout = 5000): Promise<T[]> {
  const out: T[] = [];
  const deadline = Date.now() + timeout;
  while (out.length < n) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`timed out after ${out.length} of ${n} events`);
    const r = await nextWithin(it, left);
    if (r === 'timeout') throw new Error(`timed out after ${out.length} of ${n} events`);
    if (r.done) throw new Error(`iteration ended after ${out.length} of ${n} events`);
    out.push(r.value);
  }
  return out;
}

/** Resolves to the iterator's next result or 'timeout' after `ms`: to show that nothing arrives. */
export async function nextWithin<T>(it: AsyncIterator<T>, ms: number): Promise<IteratorResult<T> | 'timeout'> {
  let t: NodeJS.Timeout | undefined;
  const r = await Promise.race([
    pull(it),
    new Promise<'timeout'>((res) => {
      t = setTimeout(() => res('timeout'), ms);
    }),
  ]);
  clearTimeout(t);
  return r;
}

/** Polls `cond` for `ms` and fails as soon as it is false: to show that something does not happen. */
export async function stays(cond: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (!(await cond())) throw new Error(`no longer true: ${what}`);
    if (Date.now() >= deadline) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Rejects when `p` has not settled after `ms`, so a hang fails the test instead of timing it out. */
export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        t = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(t);
  }
}

/**
 * Pulls events into an array in the background until the subscription ends,
 * acking each one with `ack`; with 'tolerant', a failed ack (during a fault)
 * is ignored: the event is then redelivered, as the contract says.
 */
export function collect<E extends { ack(): Promise<void> }>(
  sub: AsyncIterable<E>,
  into: E[],
  ack: boolean | 'tolerant',
): Promise<void> {
  return (async () => {
    for await (const ev of sub) {
      into.push(ev);
      if (ack === 'tolerant') await ev.ack().catch(() => {});
      else if (ack) await ev.ack();
    }
  })();
}

/** A logger that records lines, for asserting what was logged. */
export function recordingLogger() {
  const lines: Array<{ level: string; obj: object; msg: string | undefined }> = [];
  const make = (bindings: object): import('../../packages/pulse-streaming/src/index.js').Logger => ({
    debug: (obj, msg) => lines.push({ level: 'debug', obj: { ...bindings, ...obj }, msg }),
    info: (obj, msg) => lines.push({ level: 'info', obj: { ...bindings, ...obj }, msg }),
    warn: (obj, msg) => lines.push({ level: 'warn', obj: { ...bindings, ...obj }, msg }),
    error: (obj, msg) => lines.push({ level: 'error', obj: { ...bindings, ...obj }, msg }),
    child: (b) => make({ ...bindings, ...b }),
  });
  return { logger: make({}), lines };
}

/**
 * PulseWarnings (process warnings) about stream `streamName`, from now on to the end of the test.
 * Concurrent tests must pass their context: the global onTestFinished binds to whichever test
 * started last, so another test's end stopped the listening (a warning then went unseen).
 */
export function pulseWarnings(
  streamName: string,
  ctx?: { onTestFinished(fn: () => void): void },
): Array<Error & { code?: string }> {
  const seen: Array<Error & { code?: string }> = [];
  const listener = (w: Error): void => {
    if (w.name === 'PulseWarning' && w.message.includes(`stream ${streamName}:`)) seen.push(w);
  };
  process.on('warning', listener);
  (ctx ? ctx.onTestFinished.bind(ctx) : onTestFinished)(() => {
    process.off('warning', listener);
  });
  return seen;
}
