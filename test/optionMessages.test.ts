/**
 * The message of a number option given a value of another type (from plain
 * JavaScript: options read from env vars or a JSON config are strings): the
 * option is refused before any Redis call with an `InvalidArgumentError`
 * that says the value's type, `maxLen must be an integer >= 0, got string
 * "100"`. It used to say `got 100`, which reads as a valid value. Outside
 * review K.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, type TestClient, uniqueName } from './support/clients.js';
import { refusal } from './support/refusal.js';

describe.each(CLIENT_KINDS)('option values of the wrong type (%s)', (kind) => {
  let client: TestClient;
  beforeAll(async () => {
    client = await connect(kind);
  });
  afterAll(async () => {
    await client.close();
  });

  it('a numeric string is said to be a string, not shown as the number it looks like', async () => {
    const name = uniqueName('optmsg');
    const stream = new Stream(name, client.redis);
    const cases: Array<[string, () => unknown]> = [
      ['maxLen', () => new Stream(name, client.redis, { maxLen: '100' as unknown as number })],
      ['ttlMs', () => new Stream(name, client.redis, { ttlMs: '60000' as unknown as number })],
      ['blockMs', () => stream.newReader({ blockMs: '100' as unknown as number })],
      ['ackGracePeriodMs', () => stream.newSink('billing', { ackGracePeriodMs: '30000' as unknown as number })],
      ['maxDeliveries', () => stream.newSink('billing', { maxDeliveries: '5' as unknown as number })],
    ];
    const bad: string[] = [];
    for (const [option, fn] of cases) {
      const message = await refusal(fn);
      expect(message).toContain(option);
      // e.g. `maxLen must be an integer >= 0, got string "100"`; it used to say `..., got 100`.
      if (!/string|"\d+"|'\d+'/.test(message)) bad.push(message);
    }
    expect(bad).toEqual([]);
    // Refused before any Redis call: the stream key was never created.
    expect(await client.cmd('EXISTS', `pulse:stream:${name}`)).toBe(0);
  });
});
