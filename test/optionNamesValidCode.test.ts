/**
 * Code that worked before the option-name checks and that TypeScript
 * compiles must keep working: an event passed as an add's options (its topic
 * and headers taken), one config object holding a sink's options and its
 * retry's (`jitter` is not a misspelt `filter`). Outside review P.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { connect, type TestClient, take, uniqueName } from './support/clients.js';

describe('option names: valid code refused', () => {
  const clients: TestClient[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
  });

  // Every kind of event the library hands out: a field added to one of them that `add` does not
  // know would make this code throw (EVENT_FIELDS in internal/optionLists.ts lists them).
  it('forwarding a sink event and a typed stream event the same way', async () => {
    const c = await connect('ioredis');
    clients.push(c);
    const src = new Stream<{ created: { id: number } }>(uniqueName('fwdSrc'), c.redis, { codec: 'json' });
    const out = new Stream(uniqueName('fwdOut'), c.redis);
    const sink = await src.newSink('fwd', { startAt: 'oldest' });
    const reader = await src.newReader({ startAt: 'oldest' });
    try {
      await src.add('created', { id: 1 }, { topic: 'eu', headers: { tenant: 'acme' } });
      const [sev] = await take(sink.subscribe()[Symbol.asyncIterator](), 1);
      const [rev] = await take(reader.subscribe()[Symbol.asyncIterator](), 1);
      if (!sev || !rev) throw new Error('no event');
      expect(sev.data).toEqual({ id: 1 }); // decoded (and cached) before it is forwarded
      for (const ev of [sev, rev]) await out.add(ev.eventName, ev.payload, ev);
      await sev.ack();
      const back = await out.newReader({ startAt: 'oldest' });
      const copies = await take(back.subscribe()[Symbol.asyncIterator](), 2);
      expect(copies.map((e) => [e.topic, e.headers, e.text()])).toEqual([
        ['eu', { tenant: 'acme' }, '{"id":1}'],
        ['eu', { tenant: 'acme' }, '{"id":1}'],
      ]);
      await back.close();
    } finally {
      await reader.close();
      await sink.close();
      await src.destroy();
      await out.destroy();
    }
  });

  it('forwarding an event with its topic and headers, the event passed as the add options (compiles: Event is an AddOptions)', async () => {
    const c = await connect('ioredis');
    clients.push(c);
    const src = new Stream(uniqueName('revPsrc'), c.redis);
    const out = new Stream(uniqueName('revPout'), c.redis);
    const reader = await src.newReader({ startAt: 'oldest' });
    try {
      await src.add('created', '{"id":1}', { topic: 'eu', headers: { tenant: 'acme' } });
      const [ev] = await take(reader.subscribe()[Symbol.asyncIterator](), 1);
      if (!ev) throw new Error('no event');
      // Stored with topic eu and the headers (the event's other fields ignored).
      const id = await out.add(ev.eventName, ev.payload, ev);
      expect(typeof id).toBe('string');
      const back = await out.newReader({ startAt: 'oldest' });
      const [copy] = await take(back.subscribe()[Symbol.asyncIterator](), 1);
      expect(copy?.topic).toBe('eu');
      expect(copy?.headers).toEqual({ tenant: 'acme' });
      await back.close();
    } finally {
      await reader.close();
      await src.destroy();
      await out.destroy();
    }
  });

  it("one consumer config holding the sink's options and the retry's: names far from the sink's are ignored, but retry's real option jitter is refused as a misspelt filter", async () => {
    const c = await connect('ioredis');
    clients.push(c);
    const s = new Stream(uniqueName('revPcfg'), c.redis);
    const cfg = { ackGracePeriodMs: 30_000, maxDeliveries: 5, delayMs: 500, factor: 2, maxDelayMs: 10_000, jitter: 0.1 };
    // delayMs, factor, maxDelayMs and jitter are not sink options: ignored, none refused as a typo.
    const sink = await s.newSink('k', cfg);
    await sink.close();
    await s.destroy();
  });
});
