import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, recordingLogger, type TestClient, take, uniqueName, waitFor } from './support/clients.js';

const pendingCount = async (c: TestClient, key: string, group: string): Promise<number> =>
  Number(((await c.cmd('XPENDING', key, group)) as unknown[])[0]);

describe.each(CLIENT_KINDS)('entries trimmed after the sink read them (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  it('a nacked event that was trimmed meanwhile is reported lost, not dropped silently', async () => {
    const { logger, lines } = recordingLogger();
    const s = new Stream(uniqueName(), c.redis, { logger });
    const sink = await s.newSink('g', { blockMs: 100, ackGracePeriodMs: 5000 });
    const sub = sink.subscribe();
    await s.add('a', 'x');
    const [ev] = await take(sub, 1);
    await c.cmd('XTRIM', s.key, 'MAXLEN', '0');
    await ev?.nack({ delayMs: 0 });
    expect(sink.counters.lost).toBe(1);
    expect(await pendingCount(c, s.key, 'g')).toBe(0);
    expect(lines.some((l) => l.level === 'warn' && JSON.stringify(l.obj).includes(ev?.id as string))).toBe(true);
    await sink.close();
    await s.destroy();
  });

  it('events trimmed while waiting in a subscription buffer are taken out of it and reported lost', async () => {
    const s = new Stream(uniqueName(), c.redis);
    // Keep-alive (and the buffer check) runs every grace / 4 = 250 ms.
    const sink = await s.newSink('g', { blockMs: 100, ackGracePeriodMs: 1000 });
    const sub = sink.subscribe();
    for (let i = 0; i < 5; i++) await s.add('e', `${i}`);
    const [first] = await take(sub, 1);
    await waitFor(() => sub.size === 4, { what: 'four events buffered' });
    await c.cmd('XTRIM', s.key, 'MAXLEN', '0');
    await waitFor(() => sink.counters.lost === 4 && sub.size === 0, { what: 'buffered events reported lost' });
    // Only the event with the subscriber stays pending; its ack clears it.
    expect(await pendingCount(c, s.key, 'g')).toBe(1);
    await first?.ack();
    expect(await pendingCount(c, s.key, 'g')).toBe(0);
    await sink.close();
    await s.destroy();
  });
});
