/**
 * A reader oracle under faults: a producer adding to a stream with a small
 * maxLen, readers with a slow subscriber (backpressure), and faults (kill -9
 * restart with AOF, CLIENT KILL, CLIENT PAUSE, SIGSTOP). Per reader: IDs
 * strictly increasing (no duplicate, in order), delivered + lost equals what
 * was added after its start (entries-added), and close() never hangs.
 */
import { describe, expect, it } from 'vitest';
import { type Event, type Reader, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, recordingLogger, type TestClient, uniqueName, waitFor, within } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

function cmpId(a: string, b: string): number {
  const [am = '0', as = '0'] = a.split('-');
  const [bm = '0', bs = '0'] = b.split('-');
  const d = BigInt(am) - BigInt(bm) || BigInt(as) - BigInt(bs);
  return d < 0n ? -1 : d > 0n ? 1 : 0;
}

async function entriesAdded(c: TestClient, key: string): Promise<number> {
  const info = (await c.cmd('XINFO', 'STREAM', key)) as unknown;
  if (Array.isArray(info)) {
    const i = info.indexOf('entries-added');
    return Number(info[i + 1]);
  }
  return Number((info as Record<string, unknown>)['entries-added']);
}

type Fault = 'restart-aof' | 'client-kill' | 'client-pause' | 'sigstop';

// Concurrent: each test has its own redis-server (8 tests of about 4 s each).
describe.concurrent.each(CLIENT_KINDS)('reader oracle under faults (%s)', (kind) => {
  for (const fault of ['restart-aof', 'client-kill', 'client-pause', 'sigstop'] as Fault[]) {
    it(`${fault}: no duplicate, in order, delivered + lost = added`, async (ctx) => {
      const srv = await RedisServer.start({ args: ['--appendonly', 'yes', '--appendfsync', 'always'] });
      ctx.onTestFinished(() => srv.stop());
      const c = await connect(kind, srv.url);
      ctx.onTestFinished(() => c.close());
      const rec = recordingLogger();
      const s = new Stream(uniqueName('rf'), c.redis, { maxLen: 30, logger: rec.logger });
      await s.add('e', 'seed');
      const readers: Reader[] = [];
      const got: Event[][] = [];
      const consumers: Promise<void>[] = [];
      const starts: Array<'oldest' | 'newest'> = ['oldest', 'newest', 'oldest'];
      const addedAtStart: number[] = [];
      for (const [i, startAt] of starts.entries()) {
        const r = await s.newReader({ startAt, bufferSize: 5, maxPolled: 7, blockMs: 300 });
        readers.push(r);
        addedAtStart.push(startAt === 'newest' ? await entriesAdded(c, s.key) : 0);
        const into: Event[] = [];
        got.push(into);
        const slow = i === 0;
        consumers.push(
          (async () => {
            for await (const ev of r) {
              into.push(ev);
              if (slow && into.length % 3 === 0) await new Promise((res) => setTimeout(res, 2));
            }
          })(),
        );
      }
      ctx.onTestFinished(async () => {
        for (const r of readers) await r.close();
      });
      let stop = false;
      const producer = (async () => {
        let n = 0;
        while (!stop) {
          await Promise.all(Array.from({ length: 10 }, () => s.add('e', `p${n++}`).catch(() => undefined)));
          await new Promise((res) => setTimeout(res, 1));
        }
      })();
      await new Promise((res) => setTimeout(res, 400));
      for (let round = 0; round < 3; round++) {
        if (fault === 'restart-aof') await srv.restart();
        else if (fault === 'client-kill') await srv.killClients();
        else if (fault === 'client-pause') await c.cmd('CLIENT', 'PAUSE', '300', 'ALL').catch(() => {});
        else {
          srv.pause();
          await new Promise((res) => setTimeout(res, 300));
          srv.resume();
        }
        await new Promise((res) => setTimeout(res, 500));
      }
      stop = true;
      await producer;
      const total = await entriesAdded(c, s.key);
      await waitFor(() => readers.every((r, i) => r.counters.delivered + r.counters.lost >= total - (addedAtStart[i] ?? 0)), {
        timeout: 15_000,
        what: `all accounted for: ${readers.map((r) => JSON.stringify(r.counters)).join(' ')} of ${total}`,
      });
      await new Promise((res) => setTimeout(res, 800));
      for (const r of readers) await within(r.close(), 3000, 'close');
      await Promise.all(consumers);
      for (const [i, r] of readers.entries()) {
        const evs = got[i] as Event[];
        for (let j = 1; j < evs.length; j++) {
          expect(cmpId((evs[j - 1] as Event).id, (evs[j] as Event).id), `reader ${i} order at ${j}`).toBe(-1);
        }
        expect(evs.length, `reader ${i} received = delivered`).toBe(r.counters.delivered);
        expect(r.counters.delivered + r.counters.lost, `reader ${i} ${JSON.stringify(r.counters)}`).toBe(
          total - (addedAtStart[i] ?? 0),
        );
      }
    }, 30_000);
  }
});
