// Child of fatalExit.test.ts: argv = url, client kind, what ('sink' or 'reader': a for await loop | 'process': a sink's).
// A sink or reader is stopped by a fatal error (its stream key turned into a string: WRONGTYPE). The program
// prints how the loop ended and what subscribe() and addStream() throw then, quits its client
// without calling close(), prints QUIT, and must then exit on its own.
import { Stream } from '../../packages/pulse-streaming/dist/esm/index.js';

const [url, kind, what] = process.argv.slice(2);
let client;
if (kind === 'ioredis') {
  const { Redis } = await import('ioredis');
  client = new Redis(url);
} else {
  const { createClient } = await import('redis');
  client = createClient({ url });
  await client.connect();
}
const s = new Stream(`fatal-exit-${process.pid}`, client);
await s.add('e', 'x');
const sink =
  what === 'reader'
    ? await s.newReader({ blockMs: 100, startAt: 'oldest' })
    : await s.newSink('g', { blockMs: 100, startAt: 'oldest', ackGracePeriodMs: 1000 });
let handled;
const first = new Promise((r) => (handled = r));
const loop =
  what === 'process'
    ? sink
        .process(async () => handled())
        .then(
          () => 'resolved',
          (e) => e,
        )
    : (async () => {
        try {
          for await (const ev of sink) {
            if (what !== 'reader') await ev.ack();
            handled();
          }
          return 'done';
        } catch (e) {
          return e;
        }
      })();
await first;
// The stream key becomes a string: every read is refused for good (WRONGTYPE).
await s.destroy();
await (kind === 'ioredis' ? client.set(s.key, 'not a stream') : client.set(s.key, 'not a stream'));
let t;
const ended = await Promise.race([loop, new Promise((r) => (t = setTimeout(() => r('no end in 10 s'), 10_000)))]);
clearTimeout(t);
const show = (e) => (e instanceof Error ? `${e.name} ${e.code} ${e.message}` : String(e));
console.log(`ENDED ${show(ended)}`);
console.log(`ISCLOSED ${sink.isClosed()}`);
const thrown = (e) => `${e.name} cause=${e.cause instanceof Error ? `${e.cause.name} ${e.cause.code}` : 'none'}`;
try {
  sink.subscribe();
  console.log('SUBSCRIBE ok');
} catch (e) {
  console.log(`SUBSCRIBE ${thrown(e)}`);
}
await sink.addStream(new Stream(`fatal-exit-other-${process.pid}`, client)).then(
  () => console.log('ADDSTREAM ok'),
  (e) => console.log(`ADDSTREAM ${thrown(e)}`),
);
await (kind === 'ioredis' ? client.quit() : client.close());
console.log('QUIT');
// What is left open, should the program not exit on its own.
setTimeout(() => {
  console.log(`LEFT ${JSON.stringify(process.getActiveResourcesInfo())}`);
  process.exit(3);
}, 6000).unref();
