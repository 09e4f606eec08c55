// Child for processHungExit.test.ts: argv = url, client kind, stream, mode ('process' or 'batch'), hang ('hang' or 'return').
// A sink runs the handler on the stream's one event; the handler never returns when asked to hang.
// Once it started, the program shuts down as a service does on SIGTERM (abort, sink.close(),
// client quit), prints CLOSED, and must then exit on its own: a promise that never settles does
// not keep Node alive, a library timer must not either.
import { Stream } from '../../packages/pulse-streaming/dist/esm/index.js';

const [url, kind, name, mode, hang] = process.argv.slice(2);
let client;
if (kind === 'ioredis') {
  const { Redis } = await import('ioredis');
  client = new Redis(url);
} else {
  const { createClient } = await import('redis');
  client = createClient({ url });
  await client.connect();
}
// Each step prints a line so that a child that never prints CLOSED says where it stopped.
console.log('CONNECTED');
const sink = await new Stream(name, client).newSink('sink', { ackGracePeriodMs: 400, blockMs: 100, startAt: 'oldest' });
console.log('SINK');
const ac = new AbortController();
let started;
const handling = new Promise((r) => (started = r));
const handler = async () => {
  started();
  if (hang === 'hang') await new Promise(() => {});
};
const options = { signal: ac.signal };
void (mode === 'batch' ? sink.processBatch(handler, options) : sink.process(handler, options)).catch(() => {});
await handling;
console.log('HANDLING');
ac.abort();
await sink.close();
console.log('SINK CLOSED');
await client.quit();
console.log('CLOSED');
setTimeout(() => {
  console.log(`LEFT ${JSON.stringify(process.getActiveResourcesInfo())}`);
  process.exit(3);
}, 8000).unref();
