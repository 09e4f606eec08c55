/**
 * Outside review R: an event that does not decode, read just before Redis rolls back
 * (restarted from an older snapshot), whose dead letter then finds it
 * neither in the stream nor pending.
 *
 * `process()` dead-letters an event that does not decode (`decodes` ->
 * `#deadLetterIfFailed`, packages/pulse-streaming/src/internal/process.ts:196-213)
 * with `deadLetterNow` (settle.ts:102-162). On a single node the
 * `deadLetterOne` script answers 'notours' for an event pending for no one,
 * and `deadLetterNow` then only logs at info "event not dead-lettered: another
 * consumer took it after the grace period" (settle.ts:157-161): when Redis
 * rolled back under it, nobody took it, the entry is gone and the instance
 * held its only copy. It is neither dead-lettered nor counted lost (unlike a
 * nack, which tells the two apart with `lostByRedis`). And when the dead
 * letter fails because Redis is down (not retried at all: process.ts:202-206
 * "Left pending: redelivered after the grace period, and dead-lettered then"),
 * after a rollback nothing redelivers it either. What the user sees: an event
 * that should be in the dead-letter stream is nowhere, `counters.lost` 0,
 * and an info line blaming another consumer (the rollback warning speaks only
 * of events added after those the sink read). Now the scripts tell "pending
 * for no one and gone" apart; one Redis lost in a rollback is dead-lettered
 * from the copy the instance holds, and a dead letter Redis cannot take is
 * retried until the sink closes. Both clients; Redis back before the dead letter, and down when it is sent.
 *
 * Then with Redis restarted without persistence (empty): the dead letter met
 * NOGROUP and stopped ("the read path reports what went with it", which
 * counted nothing), or took the event for one another consumer had. Now it
 * is dead-lettered from the copy held or, its dead letter meeting the group
 * gone, counted lost; the check behind that is retried while the sink's own
 * connection reconnects (it failed with "The client is offline").
 */
import { describe, expect, it, type TestContext } from 'vitest';
import { type Codec, type Logger, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, type ClientKind, connect, recordingLogger, uniqueName, waitFor, within } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

type Events = { e: { a: number } };

async function run(ctx: TestContext, kind: ClientKind, downWhenSent: boolean, empty = false) {
  const server = await RedisServer.start();
  ctx.onTestFinished(() => server.stop());
  const c = await connect(kind, server.url);
  ctx.onTestFinished(() => c.close());
  const { logger, lines } = recordingLogger();
  // Decoding a payload "bad" waits for the test, then fails.
  let inDecode!: () => void;
  const inDecodeP = new Promise<void>((r) => {
    inDecode = r;
  });
  let release!: () => void;
  const releaseP = new Promise<void>((r) => {
    release = r;
  });
  const codec: Codec = {
    encode: (v) => JSON.stringify(v),
    decode: async (b: Buffer) => {
      if (b.toString('utf8') === 'bad') {
        inDecode();
        await releaseP;
        throw new Error('does not decode');
      }
      return JSON.parse(b.toString('utf8')) as unknown;
    },
  };
  const name = uniqueName('revRdecode');
  const s = new Stream<Events>(name, c.redis, { codec, logger: logger as Logger, maxLen: 0 });
  const sink = await s.newSink('g', { blockMs: 100, ackGracePeriodMs: 1000 });
  const seen: number[] = [];
  const done = sink.process((ev) => void seen.push((ev.data as { a: number }).a)).catch(() => {});
  ctx.onTestFinished(async () => {
    await within(sink.close(), 10_000, 'close');
    await done;
  });
  await s.add('e', { a: 0 });
  await waitFor(() => sink.counters.acked === 1, { what: 'a0 acked' });
  if (!empty) await c.cmd('SAVE'); // the snapshot: a0, acked
  await c.cmd('XADD', `pulse:stream:${name}`, '*', 'n', 'e', 'p', 'bad');
  await inDecodeP; // read: pending for this consumer, only in this sink's hands
  if (downWhenSent) {
    await server.kill();
    release(); // the dead letter fails: Redis is down
    await waitFor(() => lines.some((l) => /dead letter of an event that does not decode failed/.test(String(l.msg))), {
      timeout: 10_000,
      what: 'the dead letter failed',
    });
    await server.restart(); // from the snapshot: "bad" is neither in the stream nor pending
  } else {
    await server.restart(); // from the snapshot: "bad" is neither in the stream nor pending
    release();
  }
  await waitFor(() => s.add('e', { a: 1 }).catch(() => undefined), { timeout: 10_000, what: 'add after the restart' });
  await waitFor(() => seen.includes(1), { timeout: 10_000, what: 'the event added after the restart' });
  if (empty) {
    // Dead-lettered from the bytes the sink holds, or counted lost: said either way.
    await waitFor(() => sink.counters.deadLettered + sink.counters.lost === 1, {
      timeout: 6000,
      what: 'the event that does not decode dead-lettered or counted lost',
    }).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}: counters ${JSON.stringify(sink.counters)}`);
    });
    expect(lines.some((l) => /another consumer took it/.test(String(l.msg)))).toBe(false);
    return;
  }
  // Dead-lettered from the bytes the sink holds (Redis has them no more), never "taken by another consumer".
  await waitFor(() => sink.counters.deadLettered === 1, {
    timeout: 6000,
    what: 'the event that does not decode dead-lettered',
  }).catch((err: unknown) => {
    throw new Error(
      `${(err as Error).message}: counters ${JSON.stringify(sink.counters)}; log: ${lines.map((l) => String(l.msg)).join(' | ')}`,
    );
  });
  expect(lines.some((l) => /another consumer took it/.test(String(l.msg)))).toBe(false);
  expect(sink.counters.lost).toBe(0);
  const dead = (await c.cmd('XRANGE', `pulse:stream:${name}:dead`, '-', '+')) as [string, unknown[]][];
  expect(dead).toHaveLength(1);
  const fields = (dead[0]?.[1] ?? []).map(String);
  expect(fields.slice(0, 4)).toEqual(['n', 'e', 'p', 'bad']);
  expect(fields.some((f) => /^decode: .*does not decode/.test(f))).toBe(true);
}

describe.concurrent.each(CLIENT_KINDS)(
  'dead letter of an event that does not decode, Redis rolled back under it (%s)',
  (kind) => {
    it(
      'Redis back before the dead letter: dead-lettered from the bytes held, not "another consumer took it"',
      (ctx) => run(ctx, kind, false),
      40_000,
    );
    it(
      'Redis down when the dead letter is sent: retried, dead-lettered from the bytes held',
      (ctx) => run(ctx, kind, true),
      40_000,
    );
  },
);

describe.concurrent.each(CLIENT_KINDS)(
  'dead letter of an event that does not decode, Redis restarted empty under it (%s)',
  (kind) => {
    it(
      'Redis back before the dead letter: dead-lettered from the bytes held or counted lost',
      (ctx) => run(ctx, kind, false, true),
      40_000,
    );
    it(
      'Redis down when the dead letter is sent: dead-lettered from the bytes held or counted lost',
      (ctx) => run(ctx, kind, true, true),
      40_000,
    );
  },
);
