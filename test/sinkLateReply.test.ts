/**
 * A sink's read reply that reaches the process late, while another consumer
 * claimed its events, after a stall of the process (its event loop blocked,
 * as SIGSTOP would). The events must go through the ownership check, never be handed
 * out a second time. ioredis, on a private server; the read connection's
 * socket is paused to hold the reply back.
 */
import { execFileSync } from 'node:child_process';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { uniqueName, waitFor } from './support/clients.js';
import { rawCommandBulk } from './support/redisCluster.js';
import { RedisServer } from './support/redisServer.js';

/** Grace period: beats every 50 ms, a gap over 200 ms is a stall, events held over 200 ms are checked. */
const GRACE = 400;

let server: RedisServer;
beforeAll(async () => {
  server = await RedisServer.start();
}, 30_000);
afterAll(() => server?.stop());

/** A sink reading one stream on an ioredis client whose duplicates (the sink's own connections) are kept. */
async function setup() {
  const client = new Redis(server.url, { lazyConnect: true });
  client.on('error', () => {});
  await client.connect();
  const dups: Redis[] = [];
  const duplicate = client.duplicate.bind(client);
  Object.assign(client, {
    duplicate: (...args: Parameters<typeof duplicate>) => {
      const d = duplicate(...args);
      dups.push(d);
      return d;
    },
  });
  const s = new Stream(uniqueName('late'), client);
  const sinkName = uniqueName('sink');
  const sink = await s.newSink(sinkName, { ackGracePeriodMs: GRACE, blockMs: 5000 });
  const got: SinkEvent[] = [];
  const done = (async () => {
    for await (const ev of sink.subscribe()) {
      got.push(ev);
      await ev.ack().catch(() => {});
    }
  })();
  const blocked = async () =>
    (await rawCommandBulk(server.port, 'CLIENT LIST'))
      .split('\n')
      .some((l) => l.includes(`name=pulse:sink:${sinkName}:read`) && / flags=\S*b/.test(l) && l.includes('cmd=xreadgroup'));
  const warm = await s.add('e', 'warm');
  await waitFor(() => got.some((ev) => ev.id === warm), { timeout: 5000, what: 'warm-up' });
  await waitFor(blocked, { timeout: 5000, what: 'a blocking read out' });
  const read = dups.find((d) => String(d.options.connectionName).endsWith(':read')) as Redis & { stream: NodeJS.ReadableStream };
  expect(read).toBeDefined();
  const close = async () => {
    read.stream.resume();
    await sink.close();
    await done;
    await s.destroy();
    client.disconnect();
  };
  return { client, s, sinkName, got, read, blocked, close };
}

describe('a late read reply whose events another consumer claimed meanwhile (ioredis)', () => {
  // Without a stall (a slow network), a blocking read's late reply is not seen: it may legitimately come
  // long after the read was sent, and entry IDs carry the server's clock, which may run ahead.
  it.each([
    ['after a stall of the process', 0],
    // Entry IDs carry the server's clock: one running ahead must not make the reply look fresh.
    ['after a stall, with entry IDs 3 s ahead of this process', 3000],
  ])(
    '%s: the event is handed out once, not again',
    async (_, aheadMs) => {
      const t = await setup();
      try {
        t.read.stream.pause();
        const id = String(await t.client.call('XADD', t.s.key, `${Date.now() + aheadMs}-*`, 'n', 'e', 'p', 'taken'));
        await waitFor(async () => !(await t.blocked()), { timeout: 3000, what: 'the read served' });
        execFileSync('sleep', ['0.5']);
        // Past the grace period: the event is idle in the group, and another consumer takes it.
        await new Promise((r) => setTimeout(r, 2 * GRACE + 200));
        await t.client.call('XCLAIM', t.s.key, t.sinkName, 'other', String(GRACE), id);
        t.read.stream.resume();
        const later = await t.s.add('e', 'later');
        await waitFor(() => t.got.some((ev) => ev.id === later), { timeout: 5000, what: 'a later event' });
        // Another consumer owns it: this sink hands it out at most once (its own sweep may reclaim it), never twice.
        expect(t.got.filter((ev) => ev.id === id).length).toBeLessThanOrEqual(1);
      } finally {
        await t.close();
      }
    },
    30_000,
  );
});
