/**
 * bad input a Reader accepts without a typed PulseError, where its
 * siblings reject the same kind of mistake (`newReader('x')` and
 * `subscribe(5)` throw InvalidArgumentError "options must be an object").
 */
import { afterAll, beforeAll, expect, it, onTestFinished } from 'vitest';
import { InvalidArgumentError, Stream } from '../packages/pulse-streaming/src/index.js';
import { connect, type TestClient, uniqueName } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

let srv: RedisServer;
let c: TestClient;
beforeAll(async () => {
  srv = await RedisServer.start();
  c = await connect('ioredis', srv.url);
});
afterAll(async () => {
  await c?.close();
  await srv?.stop();
});

it('addStream(stream, 5) rejects with InvalidArgumentError (options must be an object)', async () => {
  const s = new Stream(uniqueName('bi'), c.redis);
  const s2 = new Stream(uniqueName('bi2'), c.redis);
  const reader = await s.newReader();
  onTestFinished(() => reader.close());
  await expect(reader.addStream(s2, 5 as never)).rejects.toBeInstanceOf(InvalidArgumentError);
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
});
