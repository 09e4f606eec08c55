/**
 * A sink consumer in its own process, for tests that kill consumers with real
 * signals. Run as `node consumerProcess.mjs '<json config>'`:
 *
 * - lib: path of the compiled library entry point (index.js), or of a bundle
 *   of it with the client (consumerProcesses.ts), which then exports the
 *   client's Redis or createClient too
 * - url, kind ('ioredis' | 'node-redis'): the Redis server and client to use
 * - stream, sink, graceMs, blockMs: what to consume, and how
 * - ackDelayMs: ack each event this long after receiving it; -1 never acks
 * - clockSkewMs: shifts this process's Date.now (a host whose clock is off)
 *
 * Prints one JSON object per line on stdout (synchronous on Linux pipes, so a
 * line printed before SIGKILL is not lost): {type:'ready', consumer},
 * {type:'recv', id, n (delivery count), p (payload)}, {type:'ack', id},
 * {type:'error', err}. SIGTERM closes the sink and exits.
 */
import { pathToFileURL } from 'node:url';

const cfg = JSON.parse(process.argv[2] ?? '{}');
if (cfg.clockSkewMs) {
  const realNow = Date.now;
  Date.now = () => realNow() + cfg.clockSkewMs;
}

const out = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);
process.on('unhandledRejection', (err) => out({ type: 'error', err: String(err) }));

const lib = await import(pathToFileURL(cfg.lib).href);
const { Stream } = lib;

let client;
let closeClient;
if (cfg.kind === 'ioredis') {
  const { Redis } = lib.Redis ? lib : await import('ioredis');
  client = new Redis(cfg.url, { maxRetriesPerRequest: 3 });
  client.on('error', () => {});
  closeClient = () => client.disconnect();
} else {
  const { createClient } = lib.createClient ? lib : await import('redis');
  client = createClient({ url: cfg.url, socket: { reconnectStrategy: (n) => Math.min(n * 50, 500) } });
  client.on('error', () => {});
  await client.connect();
  closeClient = () => client.destroy();
}

const stream = new Stream(cfg.stream, client);
const sink = await stream.newSink(cfg.sink, {
  ackGracePeriodMs: cfg.graceMs,
  blockMs: cfg.blockMs ?? 100,
  startAt: 'oldest',
});

let stopping = false;
process.on('SIGTERM', () => {
  if (stopping) return;
  stopping = true;
  sink
    .close()
    .catch((err) => out({ type: 'error', err: String(err) }))
    .finally(() => {
      closeClient();
      process.exit(0);
    });
});

out({ type: 'ready', consumer: sink.consumerName });

const ackDelay = cfg.ackDelayMs ?? 0;
for await (const ev of sink) {
  out({ type: 'recv', id: ev.id, n: ev.deliveryCount, p: ev.text() });
  if (ackDelay < 0) continue;
  const ack = () =>
    ev.ack().then(
      () => out({ type: 'ack', id: ev.id }),
      (err) => out({ type: 'error', err: String(err) }),
    );
  if (ackDelay === 0) await ack();
  else setTimeout(ack, ackDelay);
}
