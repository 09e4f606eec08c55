/**
 * Fault-injection plumbing: private Redis servers, an admin connection for
 * looking at Redis from outside the library, and bounded waits. The consumer
 * processes are in consumers.ts, the producer in producer.ts.
 *
 * Every process started by the suite is stopped by pid (never by name), every
 * loop is bounded in count and time, and everything targets 127.0.0.1 only.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { RedisServer } from '../test/support/redisServer.js';

/** The delivery contract holds on Redis with these settings (SEMANTICS.md section 4). */
export const DURABLE_REDIS_ARGS = ['--appendonly', 'yes', '--appendfsync', 'always', '--maxmemory-policy', 'noeviction'];

/**
 * Redis records in its latency monitor every operation that kept it from
 * answering for this long (ms) or more (`LATENCY HISTORY`): a stall of Redis
 * itself (an fsync on a busy disk, a host that did not run it) that the soak
 * counts as a fault of Redis, like a pause it injected (see `watchRedisStalls`).
 */
export const REDIS_STALL_MS = 500;

const DIST_ENTRY = fileURLToPath(new URL('../packages/pulse-streaming/dist/esm/index.js', import.meta.url));

/** Pauses the fault schedule (never used to wait for an outcome: see `waitUntil`). */
export function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

export function randomBetween(min: number, max: number): number {
  return min + Math.random() * (max - min);
}

/** Polls `cond` until it is truthy or `timeoutMs` passes. Resolves to whether it became true; never throws. */
export async function waitUntil(cond: () => boolean | Promise<boolean>, timeoutMs: number, intervalMs = 20): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await cond()) return true;
    } catch {
      // Redis may be down for a moment: try again until the deadline.
    }
    if (Date.now() >= deadline) return false;
    await pause(intervalMs);
  }
}

/** Rejects when `p` has not settled in `ms`, so a stopped Redis never hangs the harness. */
export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        t = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(t);
  }
}

/** A private redis-server with AOF on every write. */
export function startRedis(): Promise<RedisServer> {
  if (!existsSync(DIST_ENTRY)) {
    throw new Error('chaos workers import dist/index.js: run `npm run build` first (`npm test` and `npm run chaos` do)');
  }
  return RedisServer.start({ args: [...DURABLE_REDIS_ARGS, '--latency-monitor-threshold', String(REDIS_STALL_MS)] });
}

const pairs = (reply: unknown): Map<string, unknown> => {
  const m = new Map<string, unknown>();
  if (Array.isArray(reply)) for (let i = 0; i + 1 < reply.length; i += 2) m.set(String(reply[i]), reply[i + 1]);
  else if (reply && typeof reply === 'object') for (const [k, v] of Object.entries(reply)) m.set(k, v);
  return m;
};

export interface ConsumerInfo {
  name: string;
  pending: number;
  idle: number;
}

/** A connection of the harness's own, to look at Redis from outside the library and to inject faults. */
export class Admin {
  readonly redis: Redis;

  private constructor(redis: Redis) {
    this.redis = redis;
  }

  static async connect(url: string): Promise<Admin> {
    const redis = new Redis(url, {
      lazyConnect: true,
      connectionName: 'chaos:admin',
      maxRetriesPerRequest: 1,
      retryStrategy: (n: number) => Math.min(50 * n, 300),
    });
    redis.on('error', () => {});
    await redis.connect();
    return new Admin(redis);
  }

  /** One command, failing after `timeoutMs` (a paused Redis does not answer). */
  call(args: (string | number | Buffer)[], timeoutMs = 3000): Promise<unknown> {
    const [cmd, ...rest] = args;
    return within(this.redis.call(String(cmd), ...rest), timeoutMs, `admin ${String(cmd)}`);
  }

  /** IDs pending for one consumer of a group. */
  async pendingOf(key: string, group: string, consumer: string, count = 100_000): Promise<string[]> {
    const reply = (await this.call(['XPENDING', key, group, '-', '+', count, consumer])) as unknown[][];
    return reply.map((p) => String(p[0]));
  }

  /** Entries pending for the whole group. */
  async pendingCount(key: string, group: string): Promise<number> {
    const reply = (await this.call(['XPENDING', key, group])) as unknown[];
    return Number(reply[0]);
  }

  async consumers(key: string, group: string): Promise<ConsumerInfo[]> {
    const reply = (await this.call(['XINFO', 'CONSUMERS', key, group])) as unknown[];
    return reply.map((c) => {
      const m = pairs(c);
      return { name: String(m.get('name')), pending: Number(m.get('pending')), idle: Number(m.get('idle')) };
    });
  }

  /** True when the group has read up to the stream's last entry. */
  async caughtUp(key: string, group: string): Promise<boolean> {
    const stream = pairs(await this.call(['XINFO', 'STREAM', key]));
    const groups = (await this.call(['XINFO', 'GROUPS', key])) as unknown[];
    const g = groups.map(pairs).find((x) => String(x.get('name')) === group);
    return g !== undefined && String(g.get('last-delivered-id')) === String(stream.get('last-generated-id'));
  }

  async clients(): Promise<Array<{ id: string; name: string }>> {
    const text = String(await this.call(['CLIENT', 'LIST']));
    return text
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => ({ id: /(?:^| )id=(\d+)/.exec(l)?.[1] ?? '', name: /(?:^| )name=(\S*)/.exec(l)?.[1] ?? '' }));
  }

  close(): void {
    this.redis.disconnect();
  }
}
