/**
 * A sink instance in its own process (its wall clock skewed by the
 * LD_PRELOAD shim when the parent sets it). `node clockSkewChild.mjs '<json>'`:
 * lib, url, kind, stream, sink, graceMs, mode: 'ack' (process(), acks),
 * 'retry' (process(), the first delivery throws; retry delayMs), 'hold'
 * (for await, never acks), 'stuck' (for await, stuck in the body of the first event). Prints {type:'ready', consumer}, {type:'recv', id,
 * n, t: Date.now()} per delivery, {type:'error', err}.
 */
import { pathToFileURL } from 'node:url';

const cfg = JSON.parse(process.argv[2] ?? '{}');
const out = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);
process.on('unhandledRejection', (err) => out({ type: 'error', err: String(err) }));
const { Stream } = await import(pathToFileURL(cfg.lib).href);
let client;
if (cfg.kind === 'ioredis') {
  const { Redis } = await import('ioredis');
  client = new Redis(cfg.url, { maxRetriesPerRequest: 3 });
  client.on('error', () => {});
} else {
  const { createClient } = await import('redis');
  client = createClient({ url: cfg.url, socket: { reconnectStrategy: (n) => Math.min(n * 50, 500) } });
  client.on('error', () => {});
  await client.connect();
}
const stream = new Stream(cfg.stream, client);
const sink = await stream.newSink(cfg.sink, { ackGracePeriodMs: cfg.graceMs, blockMs: 100, startAt: 'oldest' });
out({ type: 'ready', consumer: sink.consumerName });
if (cfg.mode === 'stuck') {
  // Takes one event, then its loop body never returns: the rest stay buffered.
  for await (const ev of sink) {
    out({ type: 'recv', id: ev.id, n: ev.deliveryCount, t: Date.now() });
    await new Promise(() => {});
  }
} else if (cfg.mode === 'hold') {
  for await (const ev of sink) out({ type: 'recv', id: ev.id, n: ev.deliveryCount, t: Date.now() });
} else {
  await sink.process(
    async (ev) => {
      out({ type: 'recv', id: ev.id, n: ev.deliveryCount, t: Date.now() });
      if (cfg.mode === 'retry' && ev.deliveryCount === 1) throw new Error('first try fails');
    },
    { retry: { delayMs: cfg.retryMs ?? 200, jitter: 0 } },
  );
}
