/**
 * SEMANTICS.md section 9, just after a handler returns: a claim of the sink's own that ran in Redis
 * before the handler's ack landed took the event back (its keep-alive came late), and its reply, or
 * the read of the claimed entries that follows it, was read after the ack settled. The event is
 * acked by then: handing it out again is a duplicate without a fault. The ack goes on the user's
 * client, the claim on the sink's own connection, so either may be answered first.
 *
 * Made certain here, with nothing of Redis mocked: the handler's keep-alives (EVALSHA on the
 * user's client) are held back until the claim took the event, and the sink's read of what its
 * claim took (XRANGE on its own connection) waits until the handler returned and its ack settled.
 *
 * Failed before the fix (both clients, process() and processBatch()): the handler ran twice, the
 * second time with deliveryCount 2 and `redelivered` 1.
 */
import { describe, expect, it } from 'vitest';
import { type Logger, type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, recordingLogger, uniqueName, waitFor, within } from './support/clients.js';
import { intercepted } from './support/controlIntercept.js';

const GRACE = 400;

describe.each(CLIENT_KINDS)('a claim answered after the handler ack it raced (%s)', (kind) => {
  it.for(['process', 'processBatch'] as const)(
    '%s: the acked event is not handed out again',
    {
      timeout: 30_000,
    },
    async (how, ctx) => {
      const x = await intercepted(ctx, kind);
      const { logger, lines } = recordingLogger();
      const s = new Stream(uniqueName('claim-after-ack'), x.redis, { logger: logger as Logger, maxLen: 0 });
      const id = String(await s.add('e', 'payload'));
      const sink = await s.newSink('g', { startAt: 'oldest', blockMs: 100, ackGracePeriodMs: GRACE });
      let release = () => {};
      const released = new Promise<void>((r) => (release = r));
      // The handler's keep-alives (scripts naming the event, on the user's client) wait until the
      // read below is let go: the event goes idle past the grace period while its handler runs.
      let touchesHeld = true;
      let readLetGo = () => {};
      const readDone = new Promise<void>((r) => (readLetGo = r));
      x.userHook = async (args) => {
        if (touchesHeld && /^EVAL/i.test(String(args[0])) && args.map(String).includes(id)) await readDone;
      };
      // The sink's read of what its claim took: the handler returns and its ack settles first.
      let claimed = false;
      x.hook = async (args) => {
        if (claimed || String(args[0]).toUpperCase() !== 'XRANGE' || String(args[2]) !== id) return;
        claimed = true;
        release();
        await waitFor(() => sink.counters.acked === 1, { timeout: 5000, what: 'the ack settled' });
        await new Promise((r) => setImmediate(r));
      };
      const calls: number[] = [];
      const handle = async (events: SinkEvent[]) => {
        for (const ev of events) calls.push(ev.deliveryCount);
        if (calls.length === 1) await released;
      };
      const stop = new AbortController();
      const run =
        how === 'process'
          ? sink.process((ev) => handle([ev]), { signal: stop.signal })
          : sink.processBatch(handle, { maxBatch: 1, signal: stop.signal });
      try {
        await waitFor(() => claimed, { timeout: 25 * GRACE, what: "the sink's claim of the running event" });
        touchesHeld = false;
        readLetGo();
        // Handed out again (before the fix), or kept from the handlers (said on a debug line).
        const kept = () => lines.some((l) => /not handed out again/.test(String(l.msg)));
        await waitFor(() => sink.counters.redelivered > 0 || kept(), {
          timeout: 5000,
          what: 'the claimed event handed out or kept',
        });
        await waitFor(async () => Number(((await x.c.cmd('XPENDING', s.key, 'g')) as unknown[])[0]) === 0, {
          timeout: 5000,
          what: 'nothing pending',
        });
        const said = lines.filter((l) => /acked|holds/.test(String(l.msg))).map((l) => l.msg);
        const log = `calls ${JSON.stringify(calls)}; log ${JSON.stringify(said)}`;
        expect(calls, log).toEqual([1]);
        expect(sink.counters, log).toMatchObject({ delivered: 1, redelivered: 0, acked: 1, deadLettered: 0, lost: 0 });
      } finally {
        stop.abort();
        readLetGo();
        await within(
          run.catch(() => {}),
          10_000,
          'the handler run',
        );
        await within(sink.close(), 10_000, 'close');
      }
    },
  );
});

/**
 * The same race with the ack still on the wire when the claim's read comes back: acked by a
 * `for await` loop (`ev.ack()`), by a `processBatch()` handler itself (that event leaves the run's
 * in-progress set at the next keep-alive tick, the ack is the sink's), or by `process()` once its
 * handler returned. The XACK is held back on the user's client until the sink's claim took the
 * event and its read was answered.
 *
 * Failed before the fix (both clients, subscribe and processBatch): the event was handed out again
 * (deliveryCount 2). process() passed before too (its run kept its own acks as held): a guard.
 */
describe.each(CLIENT_KINDS)('a claim answered while the ack it raced is on the wire (%s)', (kind) => {
  it.for(['subscribe', 'processBatch', 'process'] as const)(
    '%s: the acked event is not handed out again',
    {
      timeout: 30_000,
    },
    async (how, ctx) => {
      const x = await intercepted(ctx, kind);
      const { logger, lines } = recordingLogger();
      const s = new Stream(uniqueName('claim-ack-wire'), x.redis, { logger: logger as Logger, maxLen: 0 });
      const id = String(await s.add('e', 'payload'));
      const sink = await s.newSink('g', { startAt: 'oldest', blockMs: 100, ackGracePeriodMs: GRACE });
      let letAckGo = () => {};
      const ackGoes = new Promise<void>((r) => (letAckGo = r));
      let ackHeld = false;
      x.userHook = async (args) => {
        if (String(args[0]).toUpperCase() !== 'XACK') return;
        ackHeld = true;
        await ackGoes;
      };
      let claimed = false;
      x.hook = (args) => {
        if (String(args[0]).toUpperCase() === 'XRANGE' && String(args[2]) === id) claimed = true;
      };
      const calls: number[] = [];
      const stop = new AbortController();
      let release = () => {};
      const released = new Promise<void>((r) => (release = r));
      const consume = () => {
        if (how === 'process') return sink.process(async (ev) => void calls.push(ev.deliveryCount), { signal: stop.signal });
        if (how === 'processBatch')
          return sink.processBatch(
            async (events) => {
              for (const ev of events) {
                calls.push(ev.deliveryCount);
                if (calls.length === 1) void ev.ack().catch(() => {});
              }
              if (calls.length === 1) await released;
            },
            { maxBatch: 1, signal: stop.signal },
          );
        return (async () => {
          for await (const ev of sink.subscribe({ signal: stop.signal })) {
            calls.push(ev.deliveryCount);
            void ev.ack().catch(() => {});
          }
        })();
      };
      const run = consume();
      try {
        await waitFor(() => claimed && ackHeld, { timeout: 25 * GRACE, what: "the sink's claim of the event being acked" });
        const kept = () => lines.some((l) => /not handed out again/.test(String(l.msg)));
        await waitFor(() => sink.counters.redelivered > 0 || kept(), {
          timeout: 5000,
          what: 'the claimed event handed out or kept',
        });
        letAckGo();
        release();
        await waitFor(async () => Number(((await x.c.cmd('XPENDING', s.key, 'g')) as unknown[])[0]) === 0, {
          timeout: 5000,
          what: 'nothing pending',
        });
        const log = `calls ${JSON.stringify(calls)}; log ${JSON.stringify(lines.map((l) => l.msg))}`;
        expect(calls, log).toEqual([1]);
        expect(sink.counters, log).toMatchObject({ delivered: 1, redelivered: 0, acked: 1, deadLettered: 0, lost: 0 });
      } finally {
        stop.abort();
        letAckGo();
        release();
        await within(
          run.catch(() => {}),
          10_000,
          'the consumer',
        );
        await within(sink.close(), 10_000, 'close');
      }
    },
  );
});
