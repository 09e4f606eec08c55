/**
 * An event pending at the last check, held by a handler of an instance that
 * does not hold the stream's lease, its stream deleted while that instance's
 * read blocks, then nacked: counted lost once (outside review X, both
 * clients). The DEL ended the blocked read with "UNBLOCKED the stream key no
 * longer exists", taken for a node change: the instance then remembered all
 * it had read as Redis-lost and its nack counted the event again, on top of
 * the estimate that had it (12/12 at 4569a65; a deleted key is no longer a
 * node change since f900dbb).
 */
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { sinkKeys, sinkWideKeys } from '../packages/pulse-streaming/src/internal/keys.js';
import { CLIENT_KINDS, connect, recordingLogger, stays, type TestClient, take, uniqueName, waitFor } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

const GRACE = 4000;

describe.each(CLIENT_KINDS)('a pending event held by a non-holder, its stream deleted, nacked (%s)', (kind) => {
  let srv: RedisServer;
  let c: TestClient;
  beforeAll(async () => {
    // Its own server: `readBlocked` must see this test's reads only.
    srv = await RedisServer.start();
    c = await connect(kind, srv.url);
  });
  afterAll(async () => {
    await c.close();
    await srv.stop();
  });

  async function setup(ctx: TestContext) {
    const { logger, lines } = recordingLogger();
    const s = new Stream(uniqueName('nho'), c.redis, { maxLen: 0, logger });
    const sinkName = uniqueName('g');
    const keys = sinkKeys(s.name, sinkName);
    const sinks: Array<Awaited<ReturnType<typeof s.newSink>>> = [];
    ctx.onTestFinished(async () => {
      await Promise.all(sinks.map((x) => x.close().catch(() => {})));
      await s.destroy().catch(() => {});
    });
    const start = async (opts: object) => {
      const x = await s.newSink(sinkName, { startAt: 'oldest', blockMs: 5000, ackGracePeriodMs: GRACE, ...opts });
      sinks.push(x);
      return x;
    };
    const said = () =>
      lines
        .filter((l) => l.level !== 'debug')
        .map((l) => `${l.level} ${l.msg} ${JSON.stringify(l.obj)}`)
        .join('\n');
    return { s, keys, sinkName, start, said };
  }

  for (const holderReads of [true, false]) {
    it(`holder ${holderReads ? 'reads (and reports)' : 'reads nothing (the other reports)'}: counted lost once`, async (ctx) => {
      const { s, keys, sinkName, start, said } = await setup(ctx);
      const a = await start({});
      await waitFor(async () => String(await c.cmd('GET', keys.lease)) === a.consumerName, { what: 'a holds the lease' });
      const b = await start({ bufferSize: 1, maxPolled: 1 });
      await waitFor(async () => (await c.cmd('ZSCORE', keys.consumers, b.consumerName)) !== null, { what: "b's sweep" });
      await s.add('e', 'x1');
      const subB = b.subscribe();
      // b reads x1 and checks again (a full read): x1 is pending at that check, held by b's handler.
      const x1 = (await take(subB, 1))[0] as SinkEvent;
      if (holderReads) {
        // a's first read carries a check made now: x1 pending there too (the holder's estimate).
        const subA = a.subscribe();
        void (async () => {
          for await (const ev of subA) await ev.ack().catch(() => {});
        })();
      }
      await waitFor(
        async () =>
          String(await c.cmd('CLIENT', 'LIST'))
            .split('\n')
            .filter((l) => l.includes('cmd=xreadgroup') && / flags=\S*b/.test(l)).length === (holderReads ? 2 : 1),
        { what: 'the reads blocked' },
      );
      await c.cmd('DEL', s.key);
      await waitFor(() => said().includes('stream key is gone'), { what: 'the key found gone' });
      await x1.nack().catch(() => {});
      // The sink's one report of what went with the key (the holder's, or b's once the holder said nothing).
      await waitFor(async () => (await c.cmd('ZSCORE', sinkWideKeys(sinkName).reported, s.key)) !== null, {
        timeout: 2 * GRACE + 4000,
        what: 'the loss reported',
      });
      await waitFor(() => a.counters.lost + b.counters.lost >= 1, { what: 'x1 counted' });
      await stays(() => a.counters.lost + b.counters.lost <= 1, 1000, 'x1 counted once').catch((e: Error) => {
        throw new Error(`${e.message}: lost a=${a.counters.lost} b=${b.counters.lost}\n${said()}`);
      });
      expect(a.counters.lost + b.counters.lost).toBe(1);
    }, 40_000);
  }
});
