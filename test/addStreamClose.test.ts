/**
 * `addStream` racing `close()`: the instance must not stay registered as a
 * consumer of the new stream (in its group and its live-consumer set), or
 * that leftover blocks the group's removal by the sink's other instances.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClosedError, Stream } from '../packages/pulse-streaming/src/index.js';
import { mapRecord } from '../packages/pulse-streaming/src/internal/replies.js';
import { CLIENT_KINDS, connect, type TestClient, uniqueName } from './support/clients.js';

const ROUNDS = 8;

describe.each(CLIENT_KINDS)('addStream racing close (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  async function consumersOf(key: string, group: string): Promise<string[]> {
    const infos = (await c.cmd('XINFO', 'CONSUMERS', key, group).catch(() => [])) as unknown[];
    return infos.map((i) => String(mapRecord(i).name));
  }

  async function groupsOf(key: string): Promise<string[]> {
    const infos = (await c.cmd('XINFO', 'GROUPS', key).catch(() => [])) as unknown[];
    return infos.map((i) => String(mapRecord(i).name));
  }

  it('leaves no consumer behind on the added stream, and the group can still be removed', async () => {
    const s1 = new Stream(uniqueName('race1'), c.redis);
    const s2 = new Stream(uniqueName('race2'), c.redis);
    try {
      const left: string[] = [];
      for (let i = 0; i < ROUNDS; i++) {
        const sink = await s1.newSink('s', { ackGracePeriodMs: 500 });
        const [added] = await Promise.all([
          sink.addStream(s2).then(
            () => 'added',
            (e: unknown) => e,
          ),
          sink.close(),
        ]);
        if (added !== 'added') expect(added).toBeInstanceOf(ClosedError);
        left.push(sink.consumerName);
      }
      const consumers = await consumersOf(s2.key, 's');
      const live = (await c.cmd('ZRANGE', `{${s2.key}}:sink:s:consumers`, 0, -1)) as unknown[];
      for (const name of left) {
        expect(consumers).not.toContain(name);
        expect(live.map(String)).not.toContain(name);
      }
      // Another instance that adds and removes the stream, as the last one on it, removes the group.
      const other = await s1.newSink('s', { ackGracePeriodMs: 500 });
      await other.addStream(s2);
      await other.removeStream(s2);
      expect(await groupsOf(s2.key)).not.toContain('s');
      await other.close();
    } finally {
      await s1.destroy();
      await s2.destroy();
    }
  });
});
