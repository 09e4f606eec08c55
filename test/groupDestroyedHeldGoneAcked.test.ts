/**
 * An event whose entry was trimmed while its handler ran (kept in the delays set by the in-progress
 * touch), then its group destroyed: acked by the handler, it is not counted lost (it was, as a
 * delayed nack gone: review of the NOGROUP accounting, session 28).
 */
import { describe, expect, it } from 'vitest';
import { CLIENT_KINDS, waitFor } from './support/clients.js';
import { aofSink, warnings } from './support/groupMissing.js';

describe.concurrent.each(CLIENT_KINDS)('held event trimmed, then its group destroyed (%s)', (kind) => {
  it('acked by its handler: not counted lost', async (ctx) => {
    const { c, s, sink, lines } = await aofSink(ctx, kind, 'hgd');
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
    expect(sink.counters.lost, `acked by its handler, yet counted lost; warn: ${warnings(lines)}`).toBe(0);
  }, 30_000);
});
