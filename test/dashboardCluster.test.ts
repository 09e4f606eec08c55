/**
 * The dashboard on a Redis Cluster (an ioredis `Cluster` client): the
 * overview lists streams from every master with their lengths, sinks and
 * lag, in the browser and in the API; a stream's page and /metrics work; a
 * dead letter replays across slots. Uses the shared test cluster with
 * PULSE_TEST_CLUSTER=1, else starts one.
 */
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { slotOf } from '../packages/pulse-streaming/src/internal/slot.js';
import { uniqueName, waitFor } from './support/clients.js';
import {
  addDeadLetters,
  chromiumPath,
  groupsOf,
  launchBrowser,
  type ServedDashboard,
  serveDashboard,
} from './support/dashboard.js';
import { RedisCluster } from './support/redisCluster.js';

describe('dashboard on a Redis Cluster', () => {
  let own: RedisCluster | undefined;
  let redis: Cluster;
  let dash: ServedDashboard;

  beforeAll(async () => {
    let ports = inject('clusterPorts');
    if (ports.length === 0) {
      own = await RedisCluster.start();
      ports = own.rootNodes.map((n) => n.port);
    }
    redis = new Cluster(
      ports.map((port) => ({ host: '127.0.0.1', port })),
      { redisOptions: { maxRetriesPerRequest: 3 } },
    );
    dash = await serveDashboard({ redis });
  }, 90_000);

  afterAll(async () => {
    await dash?.close();
    redis?.disconnect();
    await own?.stop();
  });

  it('shows the streams of every master with their lengths, sinks and lag', async () => {
    const prefix = uniqueName('dash-cluster');
    const streams = ['a', 'b', 'c', 'd', 'e', 'f'].map((s) => new Stream(`${prefix}-${s}`, redis));
    // Six names over three masters: the listing must scan them all.
    expect(new Set(streams.map((s) => Math.floor(slotOf(`pulse:stream:${s.name}`) / 5462))).size).toBeGreaterThan(1);
    for (const [i, s] of streams.entries()) for (let n = 0; n <= i; n++) await s.add('e', String(n));
    const first = streams[0] as Stream;
    const sink = await first.newSink('billing', { startAt: 'oldest' });
    await first.add('e', 'more');
    const [group] = await groupsOf(redis, first.name);
    expect(Number(group?.lag)).toBe(2);

    type Overview = { total: number; streams: { name: string; length: number; sinks: { name: string; lag: number }[] }[] };
    const res = (await (await fetch(`${dash.url}api/overview?q=${prefix}`)).json()) as Overview;
    expect(res.streams.map((s) => [s.name, s.length])).toEqual(streams.map((s, i) => [s.name, i === 0 ? 2 : i + 1]));
    expect(res.streams[0]?.sinks).toMatchObject([{ name: 'billing', lag: 2 }]);

    const page = (await (await fetch(`${dash.url}api/stream?name=${encodeURIComponent(first.name)}`)).json()) as {
      sinkDetails: { name: string; consumers: { name: string }[] }[];
    };
    expect(page.sinkDetails.map((s) => [s.name, s.consumers.length])).toEqual([['billing', 1]]);
    const metrics = await (await fetch(`${dash.url}metrics`)).text();
    for (const [i, s] of streams.entries())
      expect(metrics).toContain(`pulse_stream_length{stream="${s.name}"} ${i === 0 ? 2 : i + 1}\n`);
    expect(metrics).toContain(`pulse_sink_lag{stream="${first.name}",sink="billing"} 2\n`);

    if (chromiumPath !== undefined) {
      const browser = await launchBrowser();
      try {
        const tab = await browser.newPage();
        await tab.goto(dash.url);
        await tab.getByLabel('search stream names').fill(prefix);
        const rows = tab.locator('#streams tbody tr');
        await waitFor(async () => (await rows.count()) === 6, { what: 'the six streams of the search' });
        expect(await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-stream')))).toEqual(
          streams.map((s) => s.name),
        );
        expect(await tab.locator(`tr[data-stream="${streams[5]?.name}"] .length`).textContent()).toBe('6');
        expect(await tab.locator(`tr[data-stream="${first.name}"] li[data-sink="billing"] .lag`).textContent()).toBe('2');
      } finally {
        await browser.close();
      }
    }
    await sink.close();
  });

  it('replays a dead letter into a stream of another slot', async () => {
    const stream = new Stream(uniqueName('dash-cluster-dead'), redis);
    await stream.add('e', 'x');
    const [id] = await addDeadLetters(redis, stream.name, [{ event: 'e', payload: 'again', sink: 's', sourceId: '1-0' }]);
    const res = await fetch(`${dash.url}api/replay`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ stream: stream.name, ids: [id] }),
    });
    expect(((await res.json()) as { replayed: string[] }).replayed).toHaveLength(1);
    expect(Number(await redis.call('XLEN', `pulse:stream:${stream.name}`))).toBe(2);
    expect(Number(await redis.call('XLEN', `pulse:stream:${stream.name}:dead`))).toBe(0);
  });
});
