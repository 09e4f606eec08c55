/**
 * A handler still running after `close()` keeps its event in progress on the
 * user's client; once the user closes that client too, the library says once
 * that it cannot any more (before: a failed touch was logged every third of
 * the grace period, for as long as the handler ran).
 */
import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, recordingLogger, uniqueName, waitFor } from './support/clients.js';

const GRACE = 300;

describe.each(CLIENT_KINDS)('a handler outliving the sink and the client (%s)', (kind) => {
  it('says once that its event cannot be kept in progress, then stops trying', async () => {
    const c = await connect(kind);
    const { logger, lines } = recordingLogger();
    const s = new Stream(uniqueName('outlive'), c.redis, { maxLen: 0, logger });
    const sink = await s.newSink('sink', { startAt: 'oldest', blockMs: 100, ackGracePeriodMs: GRACE });
    let release = (): void => {};
    const hung = new Promise<void>((r) => {
      release = r;
    });
    let started = false;
    const run = sink.process(async () => {
      started = true;
      await hung;
    });
    await s.add('e', 'x');
    await waitFor(() => started, { what: 'handler started' });
    await sink.close();
    if (kind === 'ioredis') {
      const redis = c.redis as Redis;
      await redis.quit();
      await waitFor(() => redis.status === 'end', { what: 'ioredis client ended' });
    } else await c.close();
    const said = () => lines.filter((l) => l.msg?.startsWith('cannot keep events in progress')).length;
    await waitFor(() => said() === 1, { timeout: 5000, what: 'said it cannot keep the event' });
    // Several touch periods (a third of the grace period each) with nothing more said.
    await new Promise((r) => setTimeout(r, 2 * GRACE));
    expect(said()).toBe(1);
    expect(lines.filter((l) => l.msg === 'keeping events in progress failed')).toEqual([]);
    release();
    await run;
  });
});
