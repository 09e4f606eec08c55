/**
 * An event whose entry was trimmed while its handler ran (kept in the delays set by the in-progress
 * touch), then its group destroyed: acked by the handler, it is not counted lost (it was, as a
 * delayed nack gone: review of the NOGROUP accounting, session 28).
 */
import { describe, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, recordingLogger, uniqueName, waitFor } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

const AOF = ['--appendonly', 'yes', '--appendfsync', 'always'];

describe.concurrent.each(CLIENT_KINDS)('held event trimmed, then its group destroyed (%s)', (kind) => {
  it('acked by its handler: not counted lost', async (ctx) => {
    const server = await RedisServer.start({ args: AOF });
    ctx.onTestFinished(() => server.stop());
    const c = await connect(kind, server.url);
    ctx.onTestFinished(() => c.close());
    const { logger, lines } = recordingLogger();
    const s = new Stream(uniqueName('hgd'), c.redis, { logger });
    const sink = await s.newSink('g', { blockMs: 100, ackGracePeriodMs: 1000 });
    ctx.onTestFinished(() => sink.close());
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const handled: string[] = [];
    let started = false;
    const run = sink.process(async (ev) => {
      started = true;
      await released;
      handled.push(ev.id);
    });
    run.catch(() => {});
    const id = (await s.add('e', 'held')) as string;
    await waitFor(() => started, { what: 'handler started' });
    // A producer's maxLen trims it while the handler works on it.
    await c.cmd('XTRIM', s.key, 'MAXLEN', 0);
    const delays = `{${s.key}}:sink:g:delays`;
    await waitFor(async () => (await c.cmd('ZSCORE', delays, id)) !== null, {
      timeout: 8000,
      what: 'kept in the delays set by the in-progress touch',
    });
    await c.cmd('XGROUP', 'DESTROY', s.key, 'g');
    await waitFor(() => lines.some((l) => /recreated at 0/.test(String(l.msg))), { what: 'group recreated' });
    release();
    await waitFor(() => handled.includes(id), { what: 'handled' });
    await waitFor(async () => (await c.cmd('ZSCORE', delays, id)) === null, { what: 'acked: out of the delays set' });
    const log = lines
      .filter((l) => l.level === 'warn')
      .map((l) => `${l.msg} ${JSON.stringify(l.obj)}`)
      .join(' | ');
    expect(sink.counters.lost, `acked by its handler, yet counted lost; warn: ${log}`).toBe(0);
  }, 30_000);
});
