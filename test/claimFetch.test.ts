/**
 * Claims read the claimed entries outside the claim script (issue 19: turned
 * into Lua tables and back they cost Redis 10-12 µs per event, three times
 * the claim): the script claims with JUSTID, setting each event's delivery
 * count itself, and the sink reads their fields with XRANGE
 * (claimedEntries.ts). What must hold whatever the layout of the pending
 * list: each count raised by exactly one, payload bytes intact, events
 * scattered among handled ones all found, and those deleted meanwhile told apart.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { claimedEntries } from '../packages/pulse-streaming/src/internal/claimedEntries.js';
import { CLIENT_KINDS, connect, type TestClient, take, uniqueName, within } from './support/clients.js';

/** Makes the pending events `ids` of consumer `dead` idle for a minute, with delivery count `count`. */
async function orphan(c: TestClient, key: string, ids: readonly string[], count: number): Promise<void> {
  await c.cmd('XCLAIM', key, 'g', 'dead', 0, ...ids, 'IDLE', 60_000, 'RETRYCOUNT', count, 'JUSTID');
}

describe.each(CLIENT_KINDS)('claimed entries read apart from the claim (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  it('events with different delivery counts: each comes with its count raised by one, bytes intact', async () => {
    const s = new Stream(uniqueName('claimfetch'), c.redis, { maxLen: 0 });
    const payloads = [randomBytes(64), randomBytes(300), Buffer.from([0, 255, 0xfe, 0xff, 13, 10])];
    const ids: string[] = [];
    for (const p of payloads) ids.push(await s.add('e', p));
    await c.cmd('XGROUP', 'CREATE', s.key, 'g', '0');
    await c.cmd('XREADGROUP', 'GROUP', 'g', 'dead', 'COUNT', 10, 'STREAMS', s.key, '>');
    const counts = [1, 3, 5];
    for (const [i, id] of ids.entries()) await orphan(c, s.key, [id], counts[i] as number);
    const sink = await s.newSink('g', { ackGracePeriodMs: 1000 });
    try {
      const it = sink[Symbol.asyncIterator]();
      const got = await take(it, 3, 10_000);
      expect(got.map((e) => e.id)).toEqual(ids);
      expect(got.map((e) => e.deliveryCount)).toEqual([2, 4, 6]);
      expect(got.map((e) => Buffer.compare(e.payload, payloads[ids.indexOf(e.id)] as Buffer))).toEqual([0, 0, 0]);
      for (const e of got) await e.ack();
      const pending = (await c.cmd('XPENDING', s.key, 'g', '-', '+', 10)) as unknown[][];
      expect(pending).toEqual([]);
    } finally {
      await within(sink.close(), 10_000, 'close');
      await s.destroy();
    }
  });

  it('events scattered among thousands handled elsewhere: all of them, each once, nothing else', async () => {
    const s = new Stream(uniqueName('claimfetch'), c.redis, { maxLen: 0 });
    const all: string[] = [];
    for (let i = 0; i < 3000; i += 500) {
      const batch = await Promise.all(Array.from({ length: 500 }, (_, j) => s.add('e', `p${i + j}`)));
      all.push(...batch);
    }
    await c.cmd('XGROUP', 'CREATE', s.key, 'g', '0');
    await c.cmd('XREADGROUP', 'GROUP', 'g', 'dead', 'COUNT', 3000, 'STREAMS', s.key, '>');
    // Every 100th left pending: the span of one claim holds 99 handled entries per claimed one.
    const left = all.filter((_, i) => i % 100 === 7);
    await c.cmd('XACK', s.key, 'g', ...all.filter((_, i) => i % 100 !== 7));
    await orphan(c, s.key, left, 1);
    const sink = await s.newSink('g', { ackGracePeriodMs: 1000 });
    try {
      const it = sink[Symbol.asyncIterator]();
      const got: SinkEvent[] = await take(it, left.length, 10_000);
      expect(got.map((e) => e.id)).toEqual(left);
      expect(got.map((e) => e.text())).toEqual(left.map((id) => `p${all.indexOf(id)}`));
      expect(new Set(got.map((e) => e.deliveryCount))).toEqual(new Set([2]));
      for (const e of got) await e.ack();
    } finally {
      await within(sink.close(), 10_000, 'close');
      await s.destroy();
    }
  });

  it('claimedEntries: entries in ID order, those deleted told apart, past the span one by one', async () => {
    const s = new Stream(uniqueName('claimfetch'), c.redis, { maxLen: 0 });
    const all: string[] = [];
    for (let i = 0; i < 200; i++) all.push(await s.add('e', `p${i}`));
    const wanted = [all[3], all[4], all[50], all[120], all[199]] as string[];
    await c.cmd('XDEL', s.key, all[50] as string, all[199] as string);
    const conn = { send: (args: readonly (string | number | Buffer)[]) => c.cmd(...args) };
    const { got, gone } = await claimedEntries(conn, s.key, wanted);
    expect(got.map((e) => e[0])).toEqual([all[3], all[4], all[120]]);
    expect(got.map((e) => e[1].map(String))).toEqual([3, 4, 120].map((i) => ['n', 'e', 'p', `p${i}`]));
    expect(gone).toEqual([all[50], all[199]]);
    await s.destroy();
  });
});
