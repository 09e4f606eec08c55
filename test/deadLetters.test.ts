import { Redis } from 'ioredis';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RedisClient, readDeadLetters, replayDeadLetters, Stream } from '../packages/pulse-streaming/src/index.js';
import {
  CLIENT_KINDS,
  connect,
  recordingLogger,
  sharedUrl,
  type TestClient,
  take,
  uniqueName,
  waitFor,
} from './support/clients.js';

describe.each(CLIENT_KINDS)('dead letters (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  it('a poison event is delivered maxDeliveries times, dead-lettered once, then replayed into its stream', async () => {
    const s = new Stream(uniqueName(), c.redis);
    const sink = await s.newSink('workers', { ackGracePeriodMs: 100, maxDeliveries: 3, blockMs: 100 });
    const sub = sink.subscribe();
    const poison = Buffer.from([0xde, 0xad, 0x00, 0xff]);
    const poisonId = await s.add('poison', poison, { topic: 'tp' });
    await s.add('fine', 'ok');
    const counts: number[] = [];
    let fine = 0;
    const consumed = (async () => {
      for await (const ev of sub) {
        if (ev.eventName === 'poison') {
          counts.push(ev.deliveryCount);
        } else {
          fine++;
          await ev.ack();
        }
        if (counts.length === 3 && fine === 1) return;
      }
    })();
    await consumed;
    // The sink counts the move when the script's reply arrives, just after Redis did it.
    await waitFor(
      async () => sink.counters.deadLettered === 1 && Number(((await c.cmd('XPENDING', s.key, 'workers')) as unknown[])[0]) === 0,
      {
        timeout: 10_000,
        what: 'poison event dead-lettered',
      },
    );
    expect(counts).toEqual([1, 2, 3]);
    expect(sink.counters.deadLettered).toBe(1);

    const dead = await readDeadLetters(s);
    expect(dead).toHaveLength(1);
    const d = dead[0];
    expect(d?.eventName).toBe('poison');
    expect(d?.topic).toBe('tp');
    expect(d?.payload.equals(poison)).toBe(true);
    expect(d?.sourceStream).toBe(s.name);
    expect(d?.sourceSink).toBe('workers');
    expect(d?.sourceId).toBe(poisonId);
    expect(d?.deliveries).toBe(3);
    expect(d?.reason).toMatch(/max deliveries/);

    const sub2 = sink.subscribe(); // leaving the loop above ended the first subscription
    const replayed = await replayDeadLetters(s, { sink: 'workers' });
    expect(replayed).toHaveLength(1);
    expect(await readDeadLetters(s)).toHaveLength(0);
    const [again] = await take(sub2, 1);
    expect(again?.id).toBe(replayed[0]);
    expect(again?.payload.equals(poison)).toBe(true);
    expect(again?.topic).toBe('tp');
    expect(again?.deliveryCount).toBe(1);
    await again?.ack();
    await sink.close();
    await s.destroy();
    await c.cmd('DEL', `pulse:stream:${s.name}:dead`);
  });

  // README: the dead-letter stream is the record of what failed: not trimmed by the stream's maxLen,
  // not expired with a ttlMs stream (an outside review found this said nowhere).
  it("dead letters are kept: the dead-letter stream is not trimmed by maxLen nor given the stream's TTL", async () => {
    const s = new Stream(uniqueName('deadkept'), c.redis, { maxLen: 3, ttlMs: 60_000 });
    const sink = await s.newSink('w', { startAt: 'oldest', maxDeliveries: 1, ackGracePeriodMs: 200, blockMs: 50 });
    const dead = `pulse:stream:${s.name}:dead`;
    try {
      const ac = new AbortController();
      const run = sink.process(
        () => {
          throw new Error('poison');
        },
        { signal: ac.signal, retry: false },
      );
      for (let i = 0; i < 8; i++) {
        await s.add('e', `p${i}`);
        await waitFor(async () => Number(await c.cmd('XLEN', dead)) === i + 1, { what: `dead letter ${i + 1}` });
      }
      ac.abort();
      await run;
      expect(Number(await c.cmd('XLEN', dead))).toBe(8);
      expect(Number(await c.cmd('PTTL', dead))).toBe(-1);
    } finally {
      await sink.close();
      await s.destroy();
      await c.cmd('DEL', dead);
    }
  });

  it('replays only the given IDs and a custom dead-letter stream', async () => {
    const s = new Stream(uniqueName(), c.redis);
    const deadName = `${s.name}-graveyard`;
    const dk = `pulse:stream:${deadName}`;
    const ids: string[] = [];
    for (const n of ['a', 'b', 'c']) {
      ids.push(
        String(
          await c.cmd(
            'XADD',
            dk,
            '*',
            'n',
            n,
            'p',
            n,
            'source_stream',
            s.name,
            'source_sink',
            'x',
            'source_id',
            '1-0',
            'deliveries',
            '2',
            'reason',
            'r',
          ),
        ),
      );
    }
    const listed = await readDeadLetters(s, { deadLetterStream: deadName, count: 2 });
    expect(listed.map((d) => d.eventName)).toEqual(['a', 'b']);
    const next = await readDeadLetters(s, { deadLetterStream: deadName, after: listed[1]?.id as string });
    expect(next.map((d) => d.eventName)).toEqual(['c']);
    const out = await replayDeadLetters(s, { deadLetterStream: deadName, ids: [ids[1] as string] });
    expect(out).toHaveLength(1);
    const left = await readDeadLetters(s, { deadLetterStream: deadName });
    expect(left.map((d) => d.eventName)).toEqual(['a', 'c']);
    const inStream = (await c.cmd('XRANGE', s.key, '-', '+')) as Array<[string, string[]]>;
    expect(inStream.map((e) => e[1][1])).toEqual(['b']);
    await s.destroy();
    await c.cmd('DEL', dk);
  });
});

describe.each(CLIENT_KINDS)('owned connections (%s)', (kind) => {
  it("a user's short command timeout does not cut the library's blocking reads short", async () => {
    const url = sharedUrl();
    // 500 ms, not 200: the reader's start position is read on the user's client, and a loaded full
    // run took longer than 200 ms to answer it (the user's timeout rightly failed newReader).
    const ioredis = kind === 'ioredis' ? new Redis(url, { commandTimeout: 500 }) : undefined;
    const nodeRedis = kind === 'node-redis' ? createClient({ url, commandOptions: { timeout: 500 } }) : undefined;
    await nodeRedis?.connect();
    const user = (ioredis ?? nodeRedis) as RedisClient;
    const { logger, lines } = recordingLogger();
    const s = new Stream(uniqueName(), user, { logger });
    const reader = await s.newReader({ blockMs: 1500 });
    const sub = reader.subscribe();
    // What is tested is a duration: a block longer than the user's timeout must
    // complete. Let one full block (1.5 s) elapse before adding.
    await new Promise((r) => setTimeout(r, 1800));
    // Added through a client of the test's own: under load an add took longer than the user's
    // 500 ms (a full run), and the add is not what is tested.
    const other = await connect(kind);
    const ours = new Stream(s.name, other.redis);
    await ours.add('late', 'x');
    const [ev] = await take(sub, 1, 5000);
    expect(ev?.eventName).toBe('late');
    expect(lines.filter((l) => l.msg?.includes('read failed'))).toEqual([]);
    await reader.close();
    await ours.destroy();
    await other.close();
    ioredis?.disconnect();
    nodeRedis?.destroy();
  });
});
