// Child for sinkRetention.test.ts (node --expose-gc): argv = url kind. Uses and closes 5 sinks,
// each on its own stream with a TTL of an hour (destroyed after), and prints
// COLLECTED <how many of the 5 closed sinks were garbage-collected>.
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import { Stream } from '../../packages/pulse-streaming/dist/esm/index.js';

const SINKS = 5;
const [url, kind] = process.argv.slice(2);
const redis = kind === 'ioredis' ? new Redis(url) : createClient({ url });
redis.on('error', () => {});
if (kind !== 'ioredis') await redis.connect();
const gc = async () => {
  for (let i = 0; i < 6; i++) {
    globalThis.gc();
    await new Promise((r) => setTimeout(r, 20));
  }
};
const refs = [];
const payload = 'p'.repeat(10_000);
for (let i = 0; i < SINKS; i++) {
  const stream = new Stream(`sinkRetention-${kind}-${process.pid}-${i}`, redis, { ttlMs: 3_600_000 });
  for (let j = 0; j < 20; j++) await stream.add('e', payload);
  const sink = await stream.newSink('g', { startAt: 'oldest', blockMs: 100 });
  const first = (await sink[Symbol.asyncIterator]().next()).value;
  await first.ack();
  // A trim check applied (it arms the check due just before the stream's expiry).
  await new Promise((r) => setTimeout(r, 100));
  await sink.close();
  await stream.destroy();
  refs.push(new WeakRef(sink));
}
await new Promise((r) => setTimeout(r, 300));
await gc();
console.log(`COLLECTED ${refs.filter((r) => r.deref() === undefined).length}`);
await redis.quit();
