/**
 * node-redis' socketTimeout is an idle timeout (socket.setTimeout): a
 * connection of the library idle longer than it is destroyed and
 * reconnected. The sink's control connection is idle between liveness beats
 * (every ackGracePeriodMs / 2): it gets the user's socketTimeout lengthened
 * by the grace period, as reading connections get it lengthened by their
 * longest block (see ownSocketTimeout). Outside review Q. Left, documented
 * there: a read connection paused behind full buffers longer than
 * socketTimeout + blockMs reconnects when reads resume.
 */
import { createClient } from 'redis';
import { afterEach, describe, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { sharedUrl, uniqueName, waitFor } from './support/clients.js';

const logs: string[] = [];
const logger = {
  debug: (o: object, m?: string) => logs.push(`debug ${m} ${JSON.stringify(o)}`),
  info: (o: object, m?: string) => logs.push(`info ${m} ${JSON.stringify(o)}`),
  warn: (o: object, m?: string) => logs.push(`warn ${m} ${JSON.stringify(o)}`),
  error: (o: object, m?: string) => logs.push(`error ${m} ${JSON.stringify(o)}`),
  child() {
    return logger;
  },
};

async function clientIds(admin: { sendCommand(a: string[]): Promise<unknown> }, prefix: string): Promise<string[]> {
  const list = String(await admin.sendCommand(['CLIENT', 'LIST']));
  return list
    .split('\n')
    .filter((l) => l.includes(`name=${prefix}`))
    .map((l) => /id=(\d+)/.exec(l)?.[1] as string);
}

describe('node-redis socketTimeout on idle library connections', () => {
  const cleanups: Array<() => Promise<unknown> | unknown> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function clients() {
    // socketTimeout well above blockMs: the user's own (busy) client never trips it.
    const redis = createClient({ url: sharedUrl(), socket: { socketTimeout: 800, reconnectStrategy: () => 50 } });
    redis.on('error', () => {});
    await redis.connect();
    const admin = createClient({ url: sharedUrl() });
    await admin.connect();
    cleanups.push(
      () => redis.destroy(),
      () => admin.destroy(),
    );
    return { redis, admin };
  }

  it("a sink's idle control connection is not torn down every socketTimeout", async () => {
    const { redis, admin } = await clients();
    const name = uniqueName('revQctl');
    const s = new Stream(name, redis, { logger });
    const sinkName = `k${Math.random().toString(36).slice(2, 8)}`;
    const sink = await s.newSink(sinkName, { blockMs: 200 });
    cleanups.push(() => sink.close().catch(() => {}));
    const prefix = `pulse:sink:${sinkName}:control`;
    const first = await clientIds(admin, prefix);
    expect(first).toHaveLength(1);
    // Expected: the same connection stays (nothing wrong with it). Observed: a new one within ~1 s.
    let replaced: string[] = [];
    const changed = await waitFor(
      async () => {
        const now = await clientIds(admin, prefix);
        replaced = now;
        return now.length === 1 && now[0] !== first[0] ? 'replaced' : undefined;
      },
      { timeout: 3000, what: 'control connection replaced' },
    ).catch(() => undefined);
    expect(
      changed,
      `control connection ${first[0]} -> ${replaced.join(',')}; logs:\n${logs.slice(-5).join('\n')}`,
    ).toBeUndefined();
  }, 20_000);
});
