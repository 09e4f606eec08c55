/**
 * An ioredis client that the user closes (`disconnect()`) while it waits to
 * reconnect (Redis down) stays 'reconnecting' for good and never settles the
 * commands given to it. The library knows that state (`driver.closed()`,
 * README: "also when you disconnect() it while it waits to reconnect"): `add`,
 * `remove`, `destroy`, `newSink` and `newReader` refused at once with a
 * `ClosedError`, but acks, nacks and in-progress touches were sent on that
 * client, and their promises never settled: a shutdown that awaited
 * `ev.ack()` hung for ever. They reject with a `ClosedError` now (an ack of an
 * open sink first tries the sink's own connection, for up to the grace
 * period). Outside review N.
 */
import { Redis } from 'ioredis';
import { describe, expect, it, type TestContext } from 'vitest';
import { ClosedError, type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { take, uniqueName, waitFor, within } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

async function setup(ctx: TestContext): Promise<{ client: Redis; ev: SinkEvent; stream: Stream; close: () => Promise<void> }> {
  const srv = await RedisServer.start();
  ctx.onTestFinished(() => srv.stop());
  const client = new Redis(srv.url, { lazyConnect: true });
  client.on('error', () => {});
  await client.connect();
  ctx.onTestFinished(() => client.disconnect());
  const stream = new Stream(uniqueName('ackclosed'), client);
  const sink = await stream.newSink('g', { startAt: 'oldest', blockMs: 100, ackGracePeriodMs: 1000 });
  ctx.onTestFinished(() => sink.close());
  await stream.add('e', 'x');
  const [ev] = (await take(sink.subscribe(), 1)) as [SinkEvent];
  // Redis goes away; the user's client waits to reconnect, and the user closes it then.
  await srv.kill();
  await waitFor(() => client.status === 'reconnecting', { what: 'client reconnecting' });
  client.disconnect();
  // What the library itself says about that client: closed (adds are refused at once).
  await expect(stream.add('e', 'y')).rejects.toBeInstanceOf(ClosedError);
  return { client, ev, stream, close: () => sink.close() };
}

describe('ioredis client disconnected while reconnecting: settling calls do not hang', () => {
  it('ev.ack() on an open sink rejects with a ClosedError instead of never settling', async (ctx) => {
    const { ev } = await setup(ctx);
    await expect(within(ev.ack(), 4000, 'ack')).rejects.toBeInstanceOf(ClosedError);
  }, 15_000);

  it('ev.ack() after sink.close() rejects with a ClosedError instead of never settling', async (ctx) => {
    const { ev, close } = await setup(ctx);
    await within(close(), 8000, 'close');
    await expect(within(ev.ack(), 4000, 'ack')).rejects.toBeInstanceOf(ClosedError);
  }, 15_000);

  it('ev.nack() after sink.close() rejects with a ClosedError instead of never settling', async (ctx) => {
    const { ev, close } = await setup(ctx);
    await within(close(), 8000, 'close');
    await expect(within(ev.nack(), 4000, 'nack')).rejects.toBeInstanceOf(ClosedError);
  }, 15_000);

  it('ev.inProgress() on an open sink rejects with a ClosedError instead of never settling', async (ctx) => {
    const { ev } = await setup(ctx);
    // Resolving or rejecting are both fine; never settling is not.
    await within(
      ev.inProgress().catch(() => {}),
      4000,
      'inProgress',
    );
  }, 15_000);
});
