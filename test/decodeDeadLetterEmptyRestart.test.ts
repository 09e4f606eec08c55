/**
 * The dead letter of an event that does not decode, while Redis restarts
 * without persistence (empty) and a producer then creates the stream again:
 * Redis no longer has the event, so it is dead-lettered from the copy the
 * sink holds or, when its dead letter met the group gone, counted lost;
 * never dropped without a word. Its dead letter met NOGROUP and stopped
 * ("the read path reports what went with it", which counted nothing), or
 * took it for an event another consumer had: see nackAfterEmptyRestart.
 */
import { describe, expect, it, type TestContext } from 'vitest';
import { type Codec, type Logger, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, type ClientKind, connect, recordingLogger, uniqueName, waitFor, within } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

type Events = { e: { a: number } };

async function run(ctx: TestContext, kind: ClientKind, downWhenSent: boolean) {
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
  const name = uniqueName('decodeEmpty');
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
  await c.cmd('XADD', `pulse:stream:${name}`, '*', 'n', 'e', 'p', 'bad');
  await inDecodeP; // read: pending for this consumer, only in this sink's hands
  if (downWhenSent) {
    await server.kill();
    release(); // the dead letter fails: Redis is down
    await waitFor(() => lines.some((l) => /dead letter of an event that does not decode failed/.test(String(l.msg))), {
      timeout: 10_000,
      what: 'the dead letter failed',
    });
    await server.restart(); // empty: "bad" is neither in the stream nor pending
  } else {
    await server.restart(); // empty: "bad" is neither in the stream nor pending
    release();
  }
  await waitFor(() => s.add('e', { a: 1 }).catch(() => undefined), { timeout: 10_000, what: 'add after the restart' });
  await waitFor(() => seen.includes(1), { timeout: 10_000, what: 'the event added after the restart' });
  // Dead-lettered from the bytes the sink holds, or counted lost: said either way, never "taken by another consumer".
  await waitFor(() => sink.counters.deadLettered + sink.counters.lost === 1, {
    timeout: 6000,
    what: 'the event that does not decode dead-lettered or counted lost',
  }).catch((err: unknown) => {
    throw new Error(
      `${(err as Error).message}: counters ${JSON.stringify(sink.counters)}; log: ${lines.map((l) => `${String(l.msg)} ${JSON.stringify(l)}`).join(' | ')}`,
    );
  });
  expect(lines.some((l) => /another consumer took it/.test(String(l.msg)))).toBe(false);
}

describe.concurrent.each(CLIENT_KINDS)(
  'dead letter of an event that does not decode, Redis restarted empty under it (%s)',
  (kind) => {
    it(
      'Redis back before the dead letter: dead-lettered from the bytes held or counted lost',
      (ctx) => run(ctx, kind, false),
      40_000,
    );
    it(
      'Redis down when the dead letter is sent: dead-lettered from the bytes held or counted lost',
      (ctx) => run(ctx, kind, true),
      40_000,
    );
  },
);
