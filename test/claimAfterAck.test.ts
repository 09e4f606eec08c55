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
import { describe, it } from 'vitest';
import type { SinkEvent } from '../packages/pulse-streaming/src/index.js';
import { claimRace, claimRead, GRACE, handleBy, scriptNaming } from './support/claimRace.js';
import { CLIENT_KINDS, waitFor } from './support/clients.js';

describe.concurrent.each(CLIENT_KINDS)('a claim answered after the handler ack it raced (%s)', (kind) => {
  it.for(['process', 'processBatch'] as const)(
    '%s: the acked event is not handed out again',
    {
      timeout: 30_000,
    },
    async (how, ctx) => {
      const { x, sink, id, ...race } = await claimRace(ctx, kind, 'claim-after-ack');
      let release = () => {};
      const released = new Promise<void>((r) => (release = r));
      // The handler's keep-alives (scripts naming the event, on the user's client) wait until the
      // read below is let go: the event goes idle past the grace period while its handler runs.
      let touchesHeld = true;
      let readLetGo = () => {};
      const readDone = new Promise<void>((r) => (readLetGo = r));
      x.userHook = async (args) => {
        if (touchesHeld && scriptNaming(args, id)) await readDone;
      };
      // The sink's read of what its claim took: the handler returns and its ack settles first.
      let claimed = false;
      x.hook = async (args) => {
        if (claimed || !claimRead(args, id)) return;
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
      const run = handleBy(sink, how, handle, { signal: stop.signal });
      try {
        await waitFor(() => claimed, { timeout: 25 * GRACE, what: "the sink's claim of the running event" });
        touchesHeld = false;
        readLetGo();
        // Handed out again (before the fix), or kept from the handlers (said on a debug line).
        await race.handedOutOrKept();
        await race.nothingPending();
        const log = race.log(calls);
        ctx.expect(calls, log).toEqual([1]);
        ctx.expect(sink.counters, log).toMatchObject({ delivered: 1, redelivered: 0, acked: 1, deadLettered: 0, lost: 0 });
      } finally {
        readLetGo();
        await race.end(stop, run);
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
describe.concurrent.each(CLIENT_KINDS)('a claim answered while the ack it raced is on the wire (%s)', (kind) => {
  it.for(['subscribe', 'processBatch', 'process'] as const)(
    '%s: the acked event is not handed out again',
    {
      timeout: 30_000,
    },
    async (how, ctx) => {
      const { x, sink, id, ...race } = await claimRace(ctx, kind, 'claim-ack-wire');
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
        if (claimRead(args, id)) claimed = true;
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
        await race.handedOutOrKept();
        letAckGo();
        release();
        await race.nothingPending();
        const log = race.log(calls);
        ctx.expect(calls, log).toEqual([1]);
        ctx.expect(sink.counters, log).toMatchObject({ delivered: 1, redelivered: 0, acked: 1, deadLettered: 0, lost: 0 });
      } finally {
        letAckGo();
        release();
        await race.end(stop, run);
      }
    },
  );
});
