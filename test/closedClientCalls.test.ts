/**
 * Every call that needs the user's client says `ClosedError` when that
 * client is closed (ioredis after `quit()`, node-redis never connected or
 * after `quit()`), before any Redis command, as `add` does: `newSink`,
 * `newReader`, `remove`, `destroy`, `readDeadLetters`, `replayDeadLetters`.
 * They rejected with a plain `PulseError` carrying the client's "The client
 * is closed" or "Connection is closed", so code that tells a shutdown apart
 * with `instanceof ClosedError` did not (outside review K).
 */
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import { describe, expect, it } from 'vitest';
import { ClosedError, readDeadLetters, replayDeadLetters, Stream } from '../packages/pulse-streaming/src/index.js';
import { sharedUrl, uniqueName, waitFor } from './support/clients.js';

/** Each call, with what it is called, on a stream whose client is closed. */
function calls(s: Stream): [string, () => Promise<unknown>][] {
  return [
    ['newSink', () => s.newSink('g')],
    ['newReader', () => s.newReader()],
    ['remove', () => s.remove('1-1')],
    ['destroy', () => s.destroy()],
    ['readDeadLetters', () => readDeadLetters(s)],
    ['replayDeadLetters', () => replayDeadLetters(s)],
  ];
}

async function outcomes(s: Stream): Promise<[string, string][]> {
  const out: [string, string][] = [];
  for (const [name, call] of calls(s)) {
    try {
      await call();
      out.push([name, 'resolved']);
    } catch (err) {
      out.push([name, err instanceof ClosedError ? 'ClosedError' : `${(err as Error).name}: ${(err as Error).message}`]);
    }
  }
  return out;
}

const expected = (s: Stream) => calls(s).map(([name]) => [name, 'ClosedError']);

describe('calls on a closed client say ClosedError', () => {
  it('ioredis, after quit()', async () => {
    const redis = new Redis(sharedUrl());
    await redis.quit();
    // ioredis 6 still says 'connecting' for a moment after quit() resolves, as when connect()
    // revives a quit client: only 'end' tells a closed client (see userClosed in ioPublisher.ts).
    await waitFor(() => redis.status === 'end', { what: "ioredis' status 'end'" });
    const s = new Stream(uniqueName('closed'), redis);
    expect(await outcomes(s)).toEqual(expected(s));
  });

  it('node-redis, never connected', async () => {
    const client = createClient({ url: sharedUrl() });
    const s = new Stream(uniqueName('closed'), client);
    expect(await outcomes(s)).toEqual(expected(s));
  });

  it('node-redis, after quit()', async () => {
    const client = createClient({ url: sharedUrl() });
    await client.connect();
    await client.quit();
    const s = new Stream(uniqueName('closed'), client);
    expect(await outcomes(s)).toEqual(expected(s));
  });
});
