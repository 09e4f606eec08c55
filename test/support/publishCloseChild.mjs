// Child for exitAfterClose.test.ts: argv = url. An ioredis client (named `user`, retrying every
// 300 ms) adds one event (which opens the library's `pulse:publish` connection) and prints READY.
// On a "close" line on stdin it waits for its client to be reconnecting (the parent made its
// connection drop) and disconnects it there, prints CLOSED, and must then exit on its own.
import { createInterface } from 'node:readline';
import { Redis } from 'ioredis';
import { Stream } from '../../packages/pulse-streaming/dist/esm/index.js';

const [url] = process.argv.slice(2);
const redis = new Redis(url, { lazyConnect: true, connectionName: 'user', retryStrategy: () => 300 });
redis.on('error', () => {});
await redis.connect();
await new Stream(`publishClose-${process.pid}`, redis).add('e', 'x');
console.log('READY');
const rl = createInterface({ input: process.stdin });
rl.once('line', async () => {
  rl.close();
  process.stdin.destroy();
  const until = Date.now() + 5000;
  while (redis.status !== 'reconnecting' && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
  // ioredis emits no 'end' for this: it clears its reconnect timer and stays 'reconnecting'.
  redis.disconnect();
  console.log(`CLOSED ${redis.status}`);
  setTimeout(() => {
    console.log(`LEFT ${JSON.stringify(process.getActiveResourcesInfo())}`);
    process.exit(3);
  }, 8000).unref();
});
