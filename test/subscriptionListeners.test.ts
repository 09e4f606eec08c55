/**
 * A subscription listens to its caller's `signal` only while it lives: every
 * way it ends (unsubscribe, leaving a `for await`, the owner closing or
 * failing) takes its `abort` listener off again, so one long-lived signal
 * shared by many subscriptions never collects listeners (and never triggers
 * `MaxListenersExceededWarning`).
 */
import { getEventListeners } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Reader, type Sink, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, type TestClient, take, uniqueName, within } from './support/clients.js';

const ROUNDS = 200;

describe.each(CLIENT_KINDS)('subscription abort listeners (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  /** Subscribes and ends the subscription ROUNDS times, each of the three ways in turn. */
  async function churn(owner: Reader | Sink, signal: AbortSignal): Promise<void> {
    for (let i = 0; i < ROUNDS; i++) {
      const sub = owner.subscribe({ signal });
      expect(getEventListeners(signal, 'abort').length).toBe(1);
      if (i % 3 === 0) owner.unsubscribe(sub as never);
      else if (i % 3 === 1) await sub.return();
      else await sub[Symbol.asyncDispose]();
      expect(sub.ended).toBe(true);
    }
  }

  it('readers: ended subscriptions leave no listener on the signal', async () => {
    const stream = new Stream(uniqueName('listeners'), c.redis);
    const reader = await stream.newReader({ startAt: 'oldest' });
    const ac = new AbortController();
    try {
      await churn(reader, ac.signal);
      expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
      // A subscription still open keeps its listener and still works; closing the reader removes it.
      const live = reader.subscribe({ signal: ac.signal });
      await stream.add('e', 'x');
      expect((await take(live, 1))[0]?.text()).toBe('x');
      expect(getEventListeners(ac.signal, 'abort')).toHaveLength(1);
      await reader.close();
      expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
    } finally {
      await reader.close();
      await stream.destroy();
    }
  });

  it('sinks: ended subscriptions and process() runs leave no listener on the signal', async () => {
    const stream = new Stream(uniqueName('listeners'), c.redis);
    const sink = await stream.newSink('s', { ackGracePeriodMs: 1000 });
    const ac = new AbortController();
    try {
      await churn(sink, ac.signal);
      expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
      // process() runs ended by their sink closing, over one shared signal.
      for (let i = 0; i < 5; i++) {
        const other = await stream.newSink('p', { ackGracePeriodMs: 1000 });
        const done = other.process(() => undefined, { signal: ac.signal });
        expect(getEventListeners(ac.signal, 'abort')).toHaveLength(1);
        await other.close();
        await within(done, 5000, 'process() after close');
      }
      expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
      const live = sink.subscribe({ signal: ac.signal });
      await stream.add('e', 'x');
      const [ev] = await take(live, 1);
      await ev?.ack();
      expect(getEventListeners(ac.signal, 'abort')).toHaveLength(1);
      await sink.close();
      expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
    } finally {
      await sink.close();
      await stream.destroy();
    }
  });
});
