/**
 * Two rollback checks of one stream at once, after Redis came back from an
 * older snapshot: the read path's resync, and the one a dead letter asks for
 * (its event is neither pending nor in the stream: lost by Redis, or taken
 * and trimmed?).
 *
 * Failed before the fix (clean-clone CI at 127137e, decodeDeadLetterRollback
 * with node-redis; 2 of 16 under load in a repeat run; here every time): the
 * first check takes what the sink had read before the reconnect
 * (`readBeforeReconnect`) and reads the stream; the second, meanwhile, found
 * it taken, concluded "no rollback", and the dead letter of the event that
 * does not decode logged "another consumer took it" and wrote nothing: an
 * event only this instance still had was nowhere, `counters.lost` 0. Now a
 * second check waits for the first (sinkRollback.ts `afterReconnect`).
 *
 * Here the first check is held (nothing of Redis is mocked: the control
 * connection's command waits in the client before it is sent) at the read of
 * the stream's last entry before the rollback, until the dead letter's check
 * has either concluded (before the fix) or waits (after).
 */
import { describe, expect, it } from 'vitest';
import { type Codec, type Logger, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, recordingLogger, uniqueName, waitFor, within } from './support/clients.js';
import { intercepted } from './support/controlIntercept.js';

describe.concurrent.each(CLIENT_KINDS)('two rollback checks of a stream at once (%s)', (kind) => {
  it('the dead letter of an event Redis lost waits for the check under way: dead-lettered from the bytes held', async (ctx) => {
    const x = await intercepted(ctx, kind);
    const { logger, lines } = recordingLogger();
    let inDecode!: () => void;
    const inDecodeP = new Promise<void>((r) => {
      inDecode = r;
    });
    let releaseDecode!: () => void;
    const releaseDecodeP = new Promise<void>((r) => {
      releaseDecode = r;
    });
    const codec: Codec = {
      encode: (v) => JSON.stringify(v),
      decode: async (b: Buffer) => {
        if (b.toString('utf8') !== 'bad') return JSON.parse(b.toString('utf8')) as unknown;
        inDecode();
        await releaseDecodeP;
        throw new Error('does not decode');
      },
    };
    const name = uniqueName('rollbackTwice');
    const key = `pulse:stream:${name}`;
    const s = new Stream<{ e: { a: number } }>(name, x.redis, { codec, logger: logger as Logger, maxLen: 0 });
    const sink = await s.newSink('g', { blockMs: 100, ackGracePeriodMs: 1000 });
    const done = sink.process(() => {}).catch(() => {});
    ctx.onTestFinished(async () => {
      await within(sink.close(), 10_000, 'close');
      await done;
    });
    await s.add('e', { a: 0 });
    await waitFor(() => sink.counters.acked === 1, { what: 'a0 acked' });
    await x.c.cmd('SAVE'); // the snapshot: a0, acked
    const bad = String(await x.c.cmd('XADD', key, '*', 'n', 'e', 'p', 'bad'));
    await inDecodeP; // read: pending for this consumer, held only by this sink

    // The first rollback check after the restart reads the snapshot's last entry at or before `bad`: held there.
    let held = false;
    let releaseHeld!: () => void;
    const heldP = new Promise<void>((r) => {
      releaseHeld = r;
    });
    x.hook = async (args) => {
      if (!held && String(args[0]).toUpperCase() === 'XREVRANGE' && String(args[1]) === key && String(args[2]) === bad) {
        held = true;
        await heldP;
      }
    };
    ctx.onTestFinished(() => releaseHeld());
    await x.server.restart(); // from the snapshot: `bad` is neither in the stream nor pending
    await waitFor(() => held, { timeout: 10_000, what: 'the first rollback check under way' });

    releaseDecode(); // the dead letter: its event is gone, so it asks for a rollback check too
    await waitFor(
      () =>
        lines.some(
          (l) =>
            /another consumer took it|dead-lettered/.test(String(l.msg)) || /waits for the one under way/.test(String(l.msg)),
        ),
      { timeout: 10_000, what: 'the second rollback check concluded, or waiting for the first' },
    );
    releaseHeld();

    await waitFor(() => sink.counters.deadLettered === 1, { timeout: 10_000, what: 'the event dead-lettered' }).catch(
      (err: unknown) => {
        throw new Error(`${(err as Error).message}: ${lines.map((l) => `${l.level} ${String(l.msg)}`).join(' | ')}`);
      },
    );
    expect(lines.filter((l) => /another consumer took it/.test(String(l.msg)))).toEqual([]);
    expect(sink.counters.lost).toBe(0);
    const dead = (await x.c.cmd('XRANGE', `${key}:dead`, '-', '+')) as [string, unknown[]][];
    expect(dead).toHaveLength(1);
    expect((dead[0]?.[1] ?? []).map(String).slice(0, 4)).toEqual(['n', 'e', 'p', 'bad']);
  }, 40_000);
});
