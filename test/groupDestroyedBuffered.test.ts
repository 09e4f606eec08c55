/**
 * A group destroyed and the stream trimmed under buffered events whose subscription then stalls:
 * the events given back are counted lost, not dropped (review of the NOGROUP accounting, session 28).
 */
import { describe, expect, it } from 'vitest';
import { type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, recordingLogger, uniqueName, waitFor } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

const AOF = ['--appendonly', 'yes', '--appendfsync', 'always'];

describe.concurrent.each(CLIENT_KINDS)('group destroyed and trimmed under buffered events (%s)', (kind) => {
  it('each buffered event is delivered or counted lost', async (ctx) => {
    const server = await RedisServer.start({ args: AOF });
    ctx.onTestFinished(() => server.stop());
    const c = await connect(kind, server.url);
    ctx.onTestFinished(() => c.close());
    const { logger, lines } = recordingLogger();
    const s = new Stream(uniqueName('bad'), c.redis, { logger, maxLen: 10 });
    const sink = await s.newSink('g', { blockMs: 100, ackGracePeriodMs: 1000 });
    ctx.onTestFinished(() => sink.close());
    const sub = sink.subscribe();
    const first = await Promise.all(Array.from({ length: 50 }, (_, i) => s.add('e', `b${i}`)));
    await waitFor(async () => Number(((await c.cmd('XPENDING', s.key, 'g')) as unknown[])[0]) === 50, {
      what: '50 read into the buffer',
    });
    await c.cmd('XGROUP', 'DESTROY', s.key, 'g');
    const more = await Promise.all(Array.from({ length: 300 }, (_, i) => s.add('e', `m${i}`)));
    await waitFor(() => lines.some((l) => /recreated at 0/.test(String(l.msg))), { what: 'group recreated' });
    // The holds of the buffered events lapse (grace period 1 s).
    // Its subscription takes nothing for a grace period (1 s): its buffered events are given back.
    await waitFor(() => lines.some((l) => /took no event for a grace period/.test(String(l.msg))), {
      timeout: 8000,
      what: 'the buffered events given back',
    });
    const got = new Set<string>();
    void (async () => {
      for await (const ev of sub as AsyncIterable<SinkEvent>) {
        got.add(ev.id);
        await ev.ack();
      }
    })();
    const all = [...first, ...more];
    const xlen = Number(await c.cmd('XLEN', s.key));
    const delivered = (): number => all.filter((id) => got.has(id)).length;
    await waitFor(() => delivered() + sink.counters.lost >= 350, {
      timeout: 8000,
      what: 'every event delivered or counted lost',
    }).catch((err: unknown) => {
      const log = lines
        .filter((l) => l.level === 'warn')
        .map((l) => `${l.msg} ${JSON.stringify(l.obj)}`)
        .join(' | ');
      throw new Error(
        `${(err as Error).message}: delivered ${delivered()} (b: ${first.filter((id) => got.has(id)).length}), lost ${sink.counters.lost}, xlen ${xlen}; warn: ${log}`,
      );
    });
    expect(delivered() + sink.counters.lost).toBe(350);
  }, 30_000);
});
