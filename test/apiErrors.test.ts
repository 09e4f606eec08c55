/**
 * Errors a caller can act on: bad arguments to `ack`, `subscribe` and
 * `process` give an `InvalidArgumentError` (not a `TypeError`, and `ack`
 * rejects rather than throws); one bad ack never fails the other acks merged
 * with it; an ack or `inProgress()` of an event this consumer no longer owns
 * is reported instead of passing silently.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Event,
  InvalidArgumentError,
  type NackOptions,
  NotOwnedError,
  PulseError,
  type SinkEvent,
  Stream,
  type SubscribeOptions,
} from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, recordingLogger, type TestClient, take, uniqueName, waitFor } from './support/clients.js';

const GRACE = 300;

/** What `fn` threw synchronously or its promise rejected with; fails when it succeeds. */
async function failureOf(fn: () => unknown): Promise<{ sync: boolean; err: unknown }> {
  let p: unknown;
  try {
    p = fn();
  } catch (err) {
    return { sync: true, err };
  }
  try {
    await p;
  } catch (err) {
    return { sync: false, err };
  }
  throw new Error('expected a failure');
}

describe.each(CLIENT_KINDS)('API errors (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  async function pending(key: string, group: string): Promise<number> {
    return Number(((await c.cmd('XPENDING', key, group)) as unknown[])[0]);
  }

  it('ack() of something that is not an event of this sink rejects with InvalidArgumentError', async () => {
    const stream = new Stream(uniqueName('apierr'), c.redis);
    const sink = await stream.newSink('s', { ackGracePeriodMs: GRACE });
    const other = await stream.newSink('other', { ackGracePeriodMs: GRACE });
    try {
      await stream.add('e', 'x');
      const [theirs] = await take(other.subscribe(), 1);
      const bad: unknown[] = [
        undefined,
        null,
        42,
        {},
        { id: 'nope', streamName: stream.name },
        { id: '1-0' },
        { id: '18446744073709551616-0', streamName: stream.name },
        theirs,
      ];
      for (const b of bad) {
        const { sync, err } = await failureOf(() => sink.ack(b as Event));
        expect(sync, `ack(${String(b)}) must reject, not throw`).toBe(false);
        expect(err).toBeInstanceOf(InvalidArgumentError);
      }
      await theirs?.ack();
    } finally {
      await sink.close();
      await other.close();
      await stream.destroy();
    }
  });

  it('nack() with a bad delayMs rejects with InvalidArgumentError, like ack(), and the event stays in hand', async () => {
    const stream = new Stream(uniqueName('apierr'), c.redis);
    const sink = await stream.newSink('s', { ackGracePeriodMs: GRACE, startAt: 'oldest' });
    try {
      await stream.add('e', 'x');
      const [ev] = await take(sink.subscribe(), 1);
      for (const delayMs of [-1, 1.5, Number.NaN, 'x']) {
        const { sync, err } = await failureOf(() => ev?.nack({ delayMs } as unknown as NackOptions));
        expect(sync, `nack({ delayMs: ${String(delayMs)} }) must reject, not throw`).toBe(false);
        expect(err).toBeInstanceOf(InvalidArgumentError);
      }
      expect(await pending(stream.key, 's')).toBe(1);
      await ev?.ack();
      expect(await pending(stream.key, 's')).toBe(0);
    } finally {
      await sink.close();
      await stream.destroy();
    }
  });

  it('subscribe() and process() with a signal that is not an AbortSignal give InvalidArgumentError', async () => {
    const stream = new Stream(uniqueName('apierr'), c.redis);
    const sink = await stream.newSink('s', { ackGracePeriodMs: GRACE });
    const reader = await stream.newReader();
    try {
      for (const signal of ['x', 1, {}, null]) {
        const opts = { signal } as unknown as SubscribeOptions;
        for (const owner of [sink, reader]) {
          const sub = await failureOf(() => owner.subscribe(opts));
          expect(sub.sync).toBe(true);
          expect(sub.err).toBeInstanceOf(InvalidArgumentError);
        }
        const proc = await failureOf(() => sink.process(() => undefined, opts));
        expect(proc.sync).toBe(false);
        expect(proc.err).toBeInstanceOf(InvalidArgumentError);
      }
    } finally {
      await sink.close();
      await reader.close();
      await stream.destroy();
    }
  });

  it('one bad ack in a merged batch fails alone: acks of other streams and events of the tick succeed', async () => {
    const a = new Stream(uniqueName('apierr-a'), c.redis);
    const b = new Stream(uniqueName('apierr-b'), c.redis);
    const sink = await a.newSink('s', { ackGracePeriodMs: 60_000 });
    try {
      await sink.addStream(b);
      const sub = sink.subscribe();
      await a.add('e', '1');
      await a.add('e', '2');
      await b.add('e', '3');
      const got = await take(sub, 3);
      const [a1, a2] = got.filter((e) => e.streamName === a.name) as [SinkEvent, SinkEvent];
      const [b1] = got.filter((e) => e.streamName === b.name) as [SinkEvent];

      // A malformed ID next to a good ack of the same stream, in the same tick.
      const forged = { id: '1-x', streamName: a.name } as unknown as Event;
      const [good, bad] = await Promise.allSettled([a1.ack(), sink.ack(forged)]);
      expect(good.status).toBe('fulfilled');
      expect(bad.status === 'rejected' && bad.reason).toBeInstanceOf(InvalidArgumentError);

      // Stream b's key now holds another type: its ack fails, a's in the same tick does not.
      await c.cmd('DEL', b.key);
      await c.cmd('SET', b.key, 'not a stream');
      const [okA, failB] = await Promise.allSettled([a2.ack(), b1.ack()]);
      expect(okA.status).toBe('fulfilled');
      expect(failB.status).toBe('rejected');
      const reason = (failB as PromiseRejectedResult).reason as PulseError;
      expect(reason).toBeInstanceOf(PulseError);
      expect(reason.code).toBe('WRONGTYPE');
      expect(await pending(a.key, 's')).toBe(0);
      expect(sink.counters.acked).toBe(2);
    } finally {
      await sink.close();
      await c.cmd('DEL', b.key);
      await a.destroy();
    }
  });

  it('an ack or inProgress() of an event another consumer took over is reported', async () => {
    const stream = new Stream(uniqueName('apierr'), c.redis);
    const { logger, lines } = recordingLogger();
    const slowStream = new Stream(stream.name, c.redis, { logger });
    const slow = await slowStream.newSink('s', { ackGracePeriodMs: GRACE });
    const fast = await stream.newSink('s', { ackGracePeriodMs: GRACE });
    try {
      const slowSub = slow.subscribe();
      await stream.add('e', 'x');
      const [ev] = (await take(slowSub, 1)) as [SinkEvent];
      await ev.inProgress(); // still ours
      // Without a subscriber, this instance claims nothing: the other one will.
      slow.unsubscribe(slowSub);
      // The slow handler lets the grace period run out: the other instance claims it.
      const fastSub = fast.subscribe();
      const [again] = (await take(fastSub, 1, 10_000)) as [SinkEvent];
      expect(again.id).toBe(ev.id);
      const taken = await failureOf(() => ev.inProgress());
      expect(taken.err).toBeInstanceOf(NotOwnedError);
      expect((taken.err as Error).message).toContain(fast.consumerName);
      await again.ack();
      const acked = await failureOf(() => ev.inProgress());
      expect(acked.err).toBeInstanceOf(NotOwnedError);
      // The late ack still resolves (an `await ev.ack()` loop goes on) but is counted and logged.
      await ev.ack();
      expect(slow.counters.staleAcks).toBe(1);
      expect(slow.counters.acked).toBe(0);
      expect(fast.counters.staleAcks).toBe(0);
      await waitFor(() => lines.some((l) => l.level === 'warn' && JSON.stringify(l.obj).includes(ev.id)), {
        what: 'a warning naming the stale ack',
      });
    } finally {
      await slow.close();
      await fast.close();
      await stream.destroy();
    }
  });
});
