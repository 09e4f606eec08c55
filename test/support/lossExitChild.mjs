// Child for lossExitWarning.test.ts: argv = url, 'reader' | 'sink'; prints NAME <stream> first. A consumer without a logger falls
// behind maxLen twice within a minute: the first loss is a process warning at once, the second is
// held back for the interval and said by close(). The program then does what many do: close, exit.
import { Redis } from 'ioredis';
import { Stream } from '../../packages/pulse-streaming/dist/esm/index.js';

const [url, kind] = process.argv.slice(2);
const redis = new Redis(url);
const stream = new Stream(`lossExit-${kind}-${process.pid}`, redis, { maxLen: 100 });
console.log(`NAME ${stream.name}`);
const small = { startAt: 'oldest', bufferSize: 10, maxPolled: 10 };
const c = kind === 'reader' ? await stream.newReader(small) : await stream.newSink('g', small);
const it = c[Symbol.asyncIterator]();
const take = async (n) => {
  for (let i = 0; i < n; i++) {
    const { value } = await it.next();
    if (value.ack) await value.ack();
  }
};
const lostMore = async (than) => {
  while (c.counters.lost <= than) await new Promise((r) => setTimeout(r, 10));
};
const burst = async () => {
  for (let i = 0; i < 500; i++) await stream.add('e', String(i));
};
await burst();
await take(30);
await lostMore(0);
const first = c.counters.lost;
await burst();
await take(30);
await lostMore(first);
await c.close();
// Nothing awaited after close(): the parent destroys the stream.
console.log(`CLOSED lost=${c.counters.lost}`);
redis.disconnect();
process.exit(0);
