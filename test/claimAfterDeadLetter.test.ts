/**
 * SEMANTICS.md section 9: "An event that a consumer moved to the dead-letter stream ... is never
 * handed to a handler afterwards by that consumer." An event that does not decode is dead-lettered
 * by `process()` and `processBatch()` on the user's client (the dead letter acks it); a claim of
 * the sink's own (on its own connection) that ran in Redis before it, its keep-alive late, took it
 * back, and its read came back after the dead letter settled: the event was handed out again
 * (`redelivered` 1, a second decode, a second dead letter refused as "another consumer took it").
 *
 * Made certain with nothing of Redis mocked: the decode fails only when the sink reads what its
 * claim took (the XRANGE on its own connection, held until the dead letter settled), and the
 * event's keep-alives (scripts naming it, on the user's client) are held back until then.
 *
 * Failed before the fix (both clients, process() and processBatch()): redelivered 1.
 */
import { describe, type ExpectStatic, it, type TestContext } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { claimRace, claimRead, GRACE, handleBy, scriptNaming } from './support/claimRace.js';
import { CLIENT_KINDS, type ClientKind, waitFor } from './support/clients.js';

/** An event of a typed stream whose decode fails when `failDecode()` is called, on a claim race fixture. */
async function undecodable(ctx: TestContext, kind: ClientKind, prefix: string) {
  let failDecode = () => {};
  const decodeFails = new Promise<{ issues: Array<{ message: string }> }>(
    (r) => (failDecode = () => r({ issues: [{ message: 'not an order' }] })),
  );
  const schema = { '~standard': { version: 1 as const, vendor: 'test', validate: (_: unknown) => decodeFails } };
  const race = await claimRace(ctx, kind, prefix, {
    // Typed: as an untyped stream for the fixture, which handles events only as the sink hands them out.
    makeStream: (name, redis, logger) =>
      new Stream(name, redis, { logger, maxLen: 0, schemas: { e: schema } }) as unknown as Stream,
    // Added raw: the add itself would wait for the schema.
    add: (st, ic) => ic.c.cmd('XADD', st.key, '*', 'n', 'e', 'p', '{"id":0}'),
  });
  return { ...race, failDecode };
}

/** What section 9 promises once the dead letter landed: dead-lettered once, never handed to a handler. */
async function deadLetteredOnce(
  expect: ExpectStatic,
  race: Awaited<ReturnType<typeof undecodable>>,
  calls: string[],
): Promise<void> {
  await race.nothingPending();
  const log = race.log(calls);
  expect(race.sink.counters, log).toMatchObject({ delivered: 1, redelivered: 0, deadLettered: 1, lost: 0 });
  expect(calls, log).toEqual([]);
  expect(Number(await race.x.c.cmd('XLEN', `${race.s.key}:dead`)), log).toBe(1);
  expect(
    race.lines.filter((l) => /another consumer took it/.test(String(l.msg))),
    log,
  ).toEqual([]);
}

describe.concurrent.each(CLIENT_KINDS)('a claim answered after the dead letter of an event that does not decode (%s)', (kind) => {
  it.for(['process', 'processBatch'] as const)(
    '%s: the dead-lettered event is not handed out again',
    {
      timeout: 30_000,
    },
    async (how, ctx) => {
      const race = await undecodable(ctx, kind, 'claim-after-dead');
      const { x, sink, id } = race;
      let touchesHeld = true;
      let letTouchesGo = () => {};
      const touchesGo = new Promise<void>((r) => (letTouchesGo = r));
      x.userHook = async (args) => {
        if (touchesHeld && scriptNaming(args, id)) await touchesGo;
      };
      let claimed = false;
      x.hook = async (args) => {
        if (claimed || !claimRead(args, id)) return;
        claimed = true;
        touchesHeld = false;
        letTouchesGo();
        race.failDecode();
        await waitFor(() => sink.counters.deadLettered === 1, { timeout: 5000, what: 'the dead letter settled' });
        await new Promise((r) => setImmediate(r));
      };
      const calls: string[] = [];
      const stop = new AbortController();
      const run = handleBy(sink, how, async (evs) => void calls.push(...evs.map((ev) => ev.id)), { signal: stop.signal });
      try {
        await waitFor(() => claimed, { timeout: 25 * GRACE, what: "the sink's claim of the event being decoded" });
        await race.handedOutOrKept();
        await deadLetteredOnce(ctx.expect, race, calls);
      } finally {
        letTouchesGo();
        await race.end(stop, run);
      }
    },
  );

  /**
   * The dead letter still on the wire when the claim's read comes back: the event, settled by it,
   * had left the run's in-progress set at its next keep-alive tick. Failed before (both clients,
   * both ways): handed out again (`redelivered` 1).
   */
  it.for(['process', 'processBatch'] as const)(
    '%s: the event whose dead letter is under way is not handed out',
    {
      timeout: 30_000,
    },
    async (how, ctx) => {
      const race = await undecodable(ctx, kind, 'claim-dead-wire');
      const { x, sink, id } = race;
      // Every script naming the event on the user's client (keep-alives, then the dead letter) waits
      // until the sink's claim took it back and its read was answered; the decode fails at the first.
      let held = true;
      let letGo = () => {};
      const go = new Promise<void>((r) => (letGo = r));
      x.userHook = async (args) => {
        if (!held || !scriptNaming(args, id)) return;
        race.failDecode();
        await go;
      };
      let answered = false;
      x.answered = (args) => {
        if (claimRead(args, id)) answered = true;
      };
      const calls: string[] = [];
      const stop = new AbortController();
      const run = handleBy(sink, how, async (evs) => void calls.push(...evs.map((ev) => ev.id)), { signal: stop.signal });
      try {
        await waitFor(() => answered, { timeout: 25 * GRACE, what: "the sink's read of what its claim took" });
        await race.handedOutOrKept();
        held = false;
        letGo();
        await waitFor(() => sink.counters.deadLettered === 1, { timeout: 5000, what: 'the dead letter' });
        await deadLetteredOnce(ctx.expect, race, calls);
      } finally {
        letGo();
        await race.end(stop, run);
      }
    },
  );
});
