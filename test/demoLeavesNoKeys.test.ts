/**
 * `demo` (without --keep) leaves no key of its stream behind on the user's Redis: it destroyed
 * the stream and its dead letters, but the Go Pulse lifecycle record the library writes for a
 * stream name (`pulse:stream:<name>:lifecycle`, which destroy() keeps on purpose) stayed, one
 * hash per run (an outside trial). A record that was there before the demo stays. That no key is
 * left for good is checked by cliCluster's demo (on a cluster, where the record is in another
 * slot: one demo run fewer in the suite); that check fails before the fix.
 */
import { afterAll, beforeAll, describe, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { buildCli, cli } from './support/cli.js';
import { connect, type TestClient, uniqueName } from './support/clients.js';

beforeAll(buildCli, 120_000);

describe.concurrent('demo cleanup', { timeout: 120_000 }, () => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect('ioredis');
  });
  afterAll(() => c?.close());

  /** Keys of stream `name`: its own and every key named after it. */
  async function keysOf(name: string): Promise<string[]> {
    const found = new Set<string>();
    let cursor = '0';
    do {
      const [next, keys] = (await c.cmd('SCAN', cursor, 'MATCH', `*${name}*`, 'COUNT', '1000')) as [string, unknown[]];
      cursor = String(next);
      for (const k of keys) found.add(String(k));
    } while (cursor !== '0');
    return [...found].sort();
  }

  it('keeps a lifecycle record that was there before it', async ({ expect }) => {
    const name = uniqueName('demo-clean-kept');
    // A name a service used: its stream destroyed, Go's record kept (as documented).
    const s = new Stream(name, c.redis as never);
    await s.add('e', 'x');
    await s.destroy();
    expect(await keysOf(name)).toEqual([`pulse:stream:${name}:lifecycle`]);
    try {
      const demo = await cli(['demo', '--stream', name, '--duration', '1', '--rate', '50', '--json'], { timeoutMs: 90_000 });
      expect(demo.code, demo.stderr).toBe(0);
      expect(await keysOf(name)).toEqual([`pulse:stream:${name}:lifecycle`]);
    } finally {
      await c.cmd('DEL', `pulse:stream:${name}:lifecycle`);
    }
  });
});
