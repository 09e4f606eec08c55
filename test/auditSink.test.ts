/**
 * Audit: sink promises of the README and TSDoc that no test checked (or only weakly).
 */
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ClosedError,
  InvalidArgumentError,
  NotOwnedError,
  readDeadLetters,
  replayDeadLetters,
  type SinkEvent,
  Stream,
} from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, recordingLogger, type TestClient, take, uniqueName, waitFor } from './support/clients.js';

const GRACE = 300;

async function rejectionOf(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('resolved, expected a rejection');
}

describe.concurrent.each(CLIENT_KINDS)('audit: sink (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  const pending = async (key: string, group: string): Promise<number> =>
    Number(((await c.cmd('XPENDING', key, group)) as unknown[])[0]);

  it('TSDoc ack: an event delivered by another instance of the same sink name is acked through this one', async () => {
    const s = new Stream(uniqueName('aud'), c.redis);
    const a = await s.newSink('g', { blockMs: 100, ackGracePeriodMs: 5000 });
    const b = await s.newSink('g', { blockMs: 100, ackGracePeriodMs: 5000 });
    try {
      const subA = a.subscribe();
      const subB = b.subscribe();
      await s.add('e', 'x');
      const got = await Promise.race([take(subA, 1).then((e) => ({ from: a, e })), take(subB, 1).then((e) => ({ from: b, e }))]);
      const other = got.from === a ? b : a;
      await other.ack(...(got.e as SinkEvent[]));
      expect(await pending(s.key, 'g')).toBe(0);
      expect(other.counters.acked).toBe(1);
      expect(other.counters.staleAcks).toBe(0);
    } finally {
      await a.close();
      await b.close();
      await s.destroy();
    }
  });

  it('TSDoc ack: "Rejects with InvalidArgumentError, before any Redis call, for anything that is not an event delivered by a sink of this name" (a reader event, a plain {id, streamName})', async () => {
    const s = new Stream(uniqueName('aud'), c.redis);
    const sink = await s.newSink('g', { blockMs: 100, ackGracePeriodMs: 5000 });
    const reader = await s.newReader({ blockMs: 100 });
    try {
      const rsub = reader.subscribe();
      const sub = sink.subscribe();
      const id = await s.add('e', 'x');
      const [viaReader] = await take(rsub, 1);
      const [mine] = (await take(sub, 1)) as [SinkEvent];
      expect(mine.id).toBe(id);
      // The sink's handler has not finished with it: it must stay pending.
      const fromReader = await rejectionOf(sink.ack(viaReader as never)).catch((e: unknown) => e);
      const plain = await rejectionOf(sink.ack({ id, streamName: s.name } as never)).catch((e: unknown) => e);
      expect(await pending(s.key, 'g')).toBe(1);
      expect(fromReader).toBeInstanceOf(InvalidArgumentError);
      expect(plain).toBeInstanceOf(InvalidArgumentError);
    } finally {
      await reader.close();
      await sink.close();
      await s.destroy();
    }
  });

  it('TSDoc ack: a second ack of the same event by the same instance resolves, counts a staleAck and logs a warning', async () => {
    const { logger, lines } = recordingLogger();
    const s = new Stream(uniqueName('aud'), c.redis, { logger });
    const sink = await s.newSink('g', { blockMs: 100, ackGracePeriodMs: 5000 });
    try {
      const sub = sink.subscribe();
      await s.add('e', 'x');
      const [ev] = (await take(sub, 1)) as [SinkEvent];
      await ev.ack();
      await ev.ack();
      expect(sink.counters.acked).toBe(1);
      expect(sink.counters.staleAcks).toBe(1);
      await waitFor(() => lines.some((l) => l.level === 'warn' && JSON.stringify(l.obj).includes(ev.id)), {
        what: 'a warning naming the stale ack',
      });
    } finally {
      await sink.close();
      await s.destroy();
    }
  });

  it('README "Acks after the fact": ack of a dead-lettered event is a staleAck, inProgress() rejects with NotOwnedError', async () => {
    const s = new Stream(uniqueName('aud'), c.redis);
    const sink = await s.newSink('g', { blockMs: 100, ackGracePeriodMs: GRACE, maxDeliveries: 1 });
    try {
      const sub = sink.subscribe();
      await s.add('poison', 'x');
      const [ev] = (await take(sub, 1)) as [SinkEvent];
      // Keep a waiting next() so the instance keeps claiming: the claim after the grace period dead-letters it.
      const waiting = sub.next();
      await waitFor(() => sink.counters.deadLettered === 1, { timeout: 10_000, what: 'dead-lettered' });
      expect(await pending(s.key, 'g')).toBe(0);
      const err = await rejectionOf(ev.inProgress());
      expect(err).toBeInstanceOf(NotOwnedError);
      await ev.ack();
      expect(sink.counters.staleAcks).toBe(1);
      expect(sink.counters.acked).toBe(0);
      void waiting;
    } finally {
      await sink.close();
      await s.destroy();
      await c.cmd('DEL', `pulse:stream:${s.name}:dead`);
    }
  });

  it('README "Acks after the fact": ack of an event reported lost (removed while pending) is a staleAck; inProgress() rejects', async () => {
    const s = new Stream(uniqueName('aud'), c.redis);
    const sink = await s.newSink('g', { blockMs: 100, ackGracePeriodMs: GRACE });
    try {
      const sub = sink.subscribe();
      const id = await s.add('e', 'x');
      const [ev] = (await take(sub, 1)) as [SinkEvent];
      await s.remove(id);
      const waiting = sub.next();
      await waitFor(() => sink.counters.lost === 1, { timeout: 10_000, what: 'reported lost' });
      expect(await pending(s.key, 'g')).toBe(0);
      expect(await rejectionOf(ev.inProgress())).toBeInstanceOf(NotOwnedError);
      await ev.ack();
      expect(sink.counters.staleAcks).toBe(1);
      void waiting;
    } finally {
      await sink.close();
      await s.destroy();
    }
  });

  it('ProcessOptions.concurrency defaults to 1: handlers never overlap', async () => {
    const s = new Stream(uniqueName('aud'), c.redis);
    const sink = await s.newSink('g', { blockMs: 100, startAt: 'oldest' });
    for (let i = 0; i < 10; i++) await s.add('e', `${i}`);
    let running = 0;
    let most = 0;
    let done = 0;
    const ac = new AbortController();
    const run = sink.process(
      async () => {
        running++;
        most = Math.max(most, running);
        await new Promise((r) => setImmediate(r));
        await new Promise((r) => setTimeout(r, 5));
        running--;
        done++;
      },
      { signal: ac.signal },
    );
    try {
      await waitFor(() => done === 10, { what: '10 handled' });
      expect(most).toBe(1);
    } finally {
      ac.abort();
      await run;
      await sink.close();
      await s.destroy();
    }
  });

  it('ProcessBatchOptions: maxBatch defaults to 100 and concurrency to 1', async () => {
    const s = new Stream(uniqueName('aud'), c.redis, { maxLen: 0 });
    const sink = await s.newSink('g', { blockMs: 100, startAt: 'oldest' });
    await Promise.all(Array.from({ length: 350 }, (_, i) => s.add('e', `${i}`)));
    const sizes: number[] = [];
    let running = 0;
    let most = 0;
    const ac = new AbortController();
    const run = sink.processBatch(
      async (events) => {
        running++;
        most = Math.max(most, running);
        sizes.push(events.length);
        await new Promise((r) => setTimeout(r, 5));
        running--;
      },
      { signal: ac.signal },
    );
    try {
      await waitFor(() => sizes.reduce((a, b) => a + b, 0) === 350, { what: '350 handled' });
      expect(Math.max(...sizes)).toBe(100);
      expect(sizes[0]).toBe(100);
      expect(most).toBe(1);
    } finally {
      ac.abort();
      await run;
      await sink.close();
      await s.destroy();
    }
  });

  it('process() and processBatch() reject a bad handler with InvalidArgumentError', async () => {
    const s = new Stream(uniqueName('aud'), c.redis);
    const sink = await s.newSink('g', { blockMs: 100 });
    try {
      await expect(sink.process(42 as never)).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(sink.process(() => {}, { concurrency: 0 })).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(sink.processBatch('x' as never)).rejects.toBeInstanceOf(InvalidArgumentError);
    } finally {
      await sink.close();
      await s.destroy();
    }
  });

  it("AddStreamOptions.startAt defaults to the sink's own startAt", async () => {
    const main = new Stream(uniqueName('aud'), c.redis);
    const other = new Stream(uniqueName('aud'), c.redis);
    const other2 = new Stream(uniqueName('aud'), c.redis);
    const oldest = await main.newSink('g', { blockMs: 100, startAt: 'oldest' });
    const newest = await main.newSink('h', { blockMs: 100 });
    try {
      const before = await other.add('before', 'x');
      await other2.add('before', 'x');
      await oldest.addStream(other);
      await newest.addStream(other2);
      const after2 = await other2.add('after', 'y');
      const [a] = await take(oldest.subscribe(), 1);
      expect(a?.id).toBe(before);
      const [b] = await take(newest.subscribe(), 1);
      expect(b?.id).toBe(after2);
    } finally {
      await oldest.close();
      await newest.close();
      await main.destroy();
      await other.destroy();
      await other2.destroy();
    }
  });

  it('replayDeadLetters({ sink }) replays only the letters of that sink, and resolves to the new IDs in dead-letter order', async () => {
    const s = new Stream(uniqueName('aud'), c.redis, { maxLen: 0 });
    const dk = `pulse:stream:${s.name}:dead`;
    const letter = (n: string, sink: string) =>
      c.cmd(
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
        sink,
        'source_id',
        '1-0',
        'deliveries',
        '2',
        'reason',
        'r',
      );
    await letter('a1', 'a');
    await letter('b1', 'b');
    await letter('a2', 'a');
    try {
      const out = await replayDeadLetters(s, { sink: 'a' });
      expect(out).toHaveLength(2);
      const inStream = (await c.cmd('XRANGE', s.key, '-', '+')) as Array<[string, string[]]>;
      expect(inStream.map((e) => String(e[0]))).toEqual(out);
      expect(inStream.map((e) => String(e[1][1]))).toEqual(['a1', 'a2']);
      expect((await readDeadLetters(s)).map((d) => d.eventName)).toEqual(['b1']);
      // ids not found are left out of readDeadLetters({ ids })
      const [b1] = await readDeadLetters(s);
      const found = await readDeadLetters(s, { ids: [b1?.id as string, '1-1'] });
      expect(found.map((d) => d.eventName)).toEqual(['b1']);
    } finally {
      await s.destroy();
      await c.cmd('DEL', dk);
    }
  });

  it('readDeadLetters: count defaults to 100', async () => {
    const s = new Stream(uniqueName('aud'), c.redis);
    const dk = `pulse:stream:${s.name}:dead`;
    for (let i = 0; i < 150; i++)
      await c.cmd(
        'XADD',
        dk,
        '*',
        'n',
        `n${i}`,
        'p',
        'x',
        'source_stream',
        s.name,
        'source_sink',
        's',
        'source_id',
        '1-0',
        'deliveries',
        '1',
        'reason',
        'r',
      );
    try {
      expect(await readDeadLetters(s)).toHaveLength(100);
    } finally {
      await c.cmd('DEL', dk);
    }
  });

  it.runIf(kind === 'node-redis')(
    'README: an add on a node-redis client never connected rejects with ClosedError (not stored)',
    async () => {
      const url = (await import('./support/clients.js')).sharedUrl();
      const never = createClient({ url });
      never.on('error', () => {});
      const s = new Stream(uniqueName('aud'), never as never);
      const err = await rejectionOf(s.add('e', 'x'));
      expect(err).toBeInstanceOf(ClosedError);
      expect(Number(await c.cmd('EXISTS', s.key))).toBe(0);
    },
  );
});
