/**
 * Bad input a Reader must refuse with a typed PulseError, as its siblings
 * do (`newReader('x')` and `subscribe(5)` throw InvalidArgumentError
 * "options must be an object"): `addStream(stream, 5)`, and `unsubscribe`
 * of something that is not one of its subscriptions (doing nothing would
 * leave the real subscription reading).
 */
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { InvalidArgumentError, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, type TestClient, uniqueName } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

let srv: RedisServer;
beforeAll(async () => {
  srv = await RedisServer.start();
});
afterAll(async () => {
  await srv?.stop();
});

describe.each(CLIENT_KINDS)('reader bad input (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind, srv.url);
  });
  afterAll(() => c.close());

  it('addStream(stream, 5) rejects with InvalidArgumentError (options must be an object)', async () => {
    const s = new Stream(uniqueName('bi'), c.redis);
    const s2 = new Stream(uniqueName('bi2'), c.redis);
    const reader = await s.newReader();
    onTestFinished(() => reader.close());
    await expect(reader.addStream(s2, 5 as never)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(reader.addStream(s2, null as never)).rejects.toBeInstanceOf(InvalidArgumentError);
    await reader.addStream(s2, {});
  });

  it("unsubscribe of something that is not this reader's subscription throws InvalidArgumentError", async () => {
    const s = new Stream(uniqueName('bu'), c.redis);
    const reader = await s.newReader();
    const other = await s.newReader();
    onTestFinished(() => reader.close());
    onTestFinished(() => other.close());
    const sub = other.subscribe();
    expect(() => reader.unsubscribe({} as never)).toThrow(InvalidArgumentError);
    expect(() => reader.unsubscribe(sub)).toThrow(InvalidArgumentError);
    // Its own subscription, twice: the second call does nothing.
    const own = reader.subscribe();
    reader.unsubscribe(own);
    reader.unsubscribe(own);
    expect((await own.next()).done).toBe(true);
  });
});
