// Child for closeDuringReconnect.test.ts: argv = url kind (ioredis|node-redis) what (sink|reader).
// Opens `what` and prints READY. When one of its own connections reports its drop (the parent
// kills the library's connections), it closes `what` at once (with node-redis, the connection is
// then making its new socket), closes its client, prints CLOSED, and must then exit on its own.
// ioredis says nothing of a drop the server made: there a "close" line on stdin closes it.
// On exit it prints EXITING and how long it lived on after CLOSED.
import { createInterface } from 'node:readline';
import { Stream } from '../../packages/pulse-streaming/dist/esm/index.js';

const [url, kind, what] = process.argv.slice(2);
// Only the client the case uses is loaded (four of these start at once: each import is CPU the others wait for).
let redis;
if (kind === 'ioredis') {
  const { Redis } = await import('ioredis');
  redis = new Redis(url, { lazyConnect: true });
  redis.on('error', () => {});
  await redis.connect();
} else {
  const { createClient } = await import('redis');
  redis = createClient({ url });
  redis.on('error', () => {});
  await redis.connect();
}
let onDrop = () => {};
const logger = {
  debug: (_obj, msg) => {
    // Said by the connection's 'error' listener, just before the client reconnects it.
    if (msg === 'redis connection error') queueMicrotask(onDrop);
  },
  info: () => {},
  warn: () => {},
  error: () => {},
  child: () => logger,
};
const stream = new Stream(`closeOnDrop-${what}-${kind}-${process.pid}`, redis, { logger });
let closeIt;
let running;
if (what === 'reader') {
  const reader = await stream.newReader();
  running = (async () => {
    for await (const _ of reader);
  })().catch(() => {});
  closeIt = () => reader.close();
} else {
  const sink = await stream.newSink('s');
  running = (async () => {
    for await (const ev of sink) await ev.ack();
  })().catch(() => {});
  closeIt = () => sink.close();
}
await stream.add('e', 'x');
onDrop = async () => {
  onDrop = () => {};
  await closeIt();
  await running;
  if (kind === 'ioredis') await redis.quit();
  else redis.destroy();
  console.log('CLOSED');
  // How long the process lived on after everything was closed (ms, this process's clock).
  const closedAt = performance.now();
  process.once('exit', () => console.log(`EXITING ${Math.round(performance.now() - closedAt)}`));
  setTimeout(() => {
    console.log(`LEFT ${JSON.stringify(process.getActiveResourcesInfo())}`);
    process.exit(3);
  }, 8000).unref();
};
const rl = createInterface({ input: process.stdin });
rl.once('line', () => {
  rl.close();
  process.stdin.destroy();
  onDrop();
});
console.log('READY');
