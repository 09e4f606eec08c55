/**
 * Two streams read by one reader (slow subscriber), random XDEL from
 * another client, trimming with a small maxLen, and addStream/removeStream
 * churn of a third stream (interrupting reads) plus CLIENT KILL: per stream
 * IDs increase strictly, delivered + lost = added.
 */
import { describe, expect, it } from 'vitest';
import { type Event, Stream } from '../packages/pulse-streaming/src/index.js';
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
  if (Array.isArray(info)) return Number(info[info.indexOf('entries-added') + 1]);
  return Number((info as Record<string, unknown>)['entries-added']);
}

describe.concurrent.each(CLIENT_KINDS)('reader churn (%s)', (kind) => {
  it('xdel + trim + addStream/removeStream churn + client kill', async (ctx) => {
    const srv = await RedisServer.start();
    ctx.onTestFinished(() => srv.stop());
    const c = await connect(kind, srv.url);
    ctx.onTestFinished(() => c.close());
    const rec = recordingLogger();
    const a = new Stream(uniqueName('ca'), c.redis, { maxLen: 40, logger: rec.logger });
    const b = new Stream(uniqueName('cb'), c.redis, { maxLen: 0, logger: rec.logger });
    const x = new Stream(uniqueName('cx'), c.redis, { logger: rec.logger });
    await a.add('e', 'seed');
    await b.add('e', 'seed');
    const r = await a.newReader({ startAt: 'oldest', bufferSize: 4, maxPolled: 6, blockMs: 300 });
    ctx.onTestFinished(() => r.close());
    await r.addStream(b, { startAt: 'oldest' });
    const got: Event[] = [];
    const consumer = (async () => {
      for await (const ev of r) {
        got.push(ev);
        if (got.length % 4 === 0) await new Promise((res) => setTimeout(res, 1));
      }
    })();
    let stop = false;
    const idsB: string[] = [];
    const producer = (async () => {
      let n = 0;
      while (!stop) {
        await Promise.all(Array.from({ length: 8 }, () => a.add('e', `a${n++}`).catch(() => undefined)));
        const ib = await Promise.all(Array.from({ length: 4 }, () => b.add('e', `b${n++}`).catch(() => undefined)));
        for (const id of ib) if (id) idsB.push(id);
        await new Promise((res) => setTimeout(res, 2));
      }
    })();
    const other = await connect(kind, srv.url);
    ctx.onTestFinished(() => other.close());
    const chaos = (async () => {
      let i = 0;
      while (!stop) {
        i++;
        if (idsB.length > 10) {
          const pick = idsB.splice(Math.floor(Math.random() * idsB.length), 1)[0] as string;
          await other.cmd('XDEL', b.key, pick).catch(() => {});
        }
        if (i % 7 === 0) await r.addStream(x).catch(() => {});
        if (i % 7 === 3) await r.removeStream(x).catch(() => {});
        if (i % 50 === 0) await srv.killClients().catch(() => {});
        await new Promise((res) => setTimeout(res, 5));
      }
    })();
    await new Promise((res) => setTimeout(res, 4000));
    stop = true;
    await producer;
    await chaos;
    const total = (await entriesAdded(c, a.key)) + (await entriesAdded(c, b.key));
    await waitFor(() => r.counters.delivered + r.counters.lost >= total, {
      timeout: 15_000,
      what: `accounted: ${JSON.stringify(r.counters)} of ${total}`,
    });
    await new Promise((res) => setTimeout(res, 800));
    await within(r.close(), 3000, 'close');
    await consumer;
    for (const key of [a.name, b.name]) {
      const evs = got.filter((e) => e.streamName === key);
      for (let j = 1; j < evs.length; j++)
        expect(cmpId((evs[j - 1] as Event).id, (evs[j] as Event).id), `${key} at ${j}`).toBe(-1);
    }
    expect(got.length).toBe(r.counters.delivered);
    expect(r.counters.delivered + r.counters.lost, JSON.stringify(r.counters)).toBe(total);
  }, 30_000);
});
