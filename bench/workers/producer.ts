/** Producer process: for each run, publishes its events (library `add` windows, or raw pipelined XADD) and says `done`. */
import { Stream } from '../../packages/pulse-streaming/src/index.js';
import { connectClient } from '../clients.js';
import { publishRaw, publishWithLibrary } from '../producers.js';
import { makePayload, streamKey } from '../rawStreams.js';
import { serveWorker, tell } from './child.js';

serveWorker(async (config) => {
  if (config.role !== 'producer') throw new Error('producer worker started with a consumer config');
  const payload = makePayload(config.payloadBytes);
  const client = await connectClient(config.kind, config.url, 'bench:producer');
  await tell({ type: 'ready' });
  return {
    run: async (run) => {
      const t0 = performance.now();
      if (run.side === 'library') {
        await publishWithLibrary(new Stream(run.stream, client.redis, { maxLen: 0 }), run.events, payload, config.window);
      } else {
        await publishRaw(client, streamKey(run.stream), run.events, payload, config.window, 'pipeline');
      }
      await tell({ type: 'done', elapsedMs: performance.now() - t0 });
    },
    close: async () => {
      client.close();
    },
  };
});
