/**
 * A claim of the sink's own that takes back an event its handler still runs (its keep-alive came
 * late) keeps it where it is (claimHeldHere.test.ts), but the claim had raised its delivery count
 * in Redis. That count is what `maxDeliveries` goes by: a handler that then failed got one attempt
 * fewer than configured (with `maxDeliveries: 2`, its event was dead-lettered at the first retry
 * that never ran). The count a kept event was claimed with is set back.
 *
 * Made certain with nothing of Redis mocked: the handler's keep-alives (scripts naming the event,
 * on the user's client) are held back until the sink's claim kept the event.
 *
 * Failed before the fix (both clients): XPENDING said 2 deliveries while the first handler ran,
 * and the event was dead-lettered after that one handler call.
 */
import { describe, it } from 'vitest';
import { claimRace, GRACE, scriptNaming } from './support/claimRace.js';
import { CLIENT_KINDS, waitFor } from './support/clients.js';

describe.concurrent.each(CLIENT_KINDS)('an event a claim of ours kept while its handler ran (%s)', (kind) => {
  it('keeps its delivery count: maxDeliveries 2 still allows the retry', { timeout: 30_000 }, async (ctx) => {
    const { x, sink, id, s, lines, ...race } = await claimRace(ctx, kind, 'claim-held-count', {
      sinkOptions: { maxDeliveries: 2 },
    });
    let touchesHeld = true;
    let letTouchesGo = () => {};
    const touchesGo = new Promise<void>((r) => (letTouchesGo = r));
    x.userHook = async (args) => {
      if (touchesHeld && scriptNaming(args, id)) await touchesGo;
    };
    let fail = (_: Error) => {};
    const failed = new Promise<never>((_, reject) => (fail = reject));
    const calls: number[] = [];
    const stop = new AbortController();
    const run = sink.process(
      async (ev) => {
        calls.push(ev.deliveryCount);
        if (calls.length === 1) await failed;
      },
      { signal: stop.signal, retry: { delayMs: 10, maxDelayMs: 10 } },
    );
    try {
      const kept = () => lines.some((l) => /not handed out again/.test(String(l.msg)));
      await waitFor(() => kept(), { timeout: 25 * GRACE, what: "the sink's claim keeping the running event" });
      const pending = async () => ((await x.c.cmd('XPENDING', s.key, 'g', '-', '+', 10)) as unknown[][])[0]?.[3];
      // The claim's reply and the count set back come in one step of the sink's: wait for the latter.
      await waitFor(async () => Number(await pending()) === 1, { timeout: 3000, what: 'the delivery count set back to 1' });
      touchesHeld = false;
      letTouchesGo();
      fail(new Error('handler fails once'));
      await waitFor(() => calls.length === 2 || sink.counters.deadLettered > 0, {
        timeout: 25 * GRACE,
        what: 'the retry or a dead letter',
      });
      await race.nothingPending();
      const log = race.log(calls);
      ctx.expect(calls, log).toEqual([1, 2]);
      ctx.expect(sink.counters, log).toMatchObject({ deadLettered: 0, redelivered: 1, lost: 0 });
    } finally {
      letTouchesGo();
      fail(new Error('stop'));
      await race.end(stop, run);
    }
  });
});
