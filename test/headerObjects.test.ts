/**
 * `headers` that are not a plain object (outside review U, finding 10): a
 * Map or a fetch Headers has no own properties, so read as a record the add
 * succeeded and the headers vanished; a getter that threw escaped raw. Both
 * are now an InvalidArgumentError, nothing added.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, type TestClient, uniqueName } from './support/clients.js';

describe.concurrent.each(CLIENT_KINDS)('headers that are not a plain object (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  // Object.keys() of either is empty: the add succeeded and the headers vanished.
  it.for([
    ['a Map', () => new Map([['tenant', 'acme']])],
    ['a fetch Headers', () => new Headers({ tenant: 'acme' })],
  ] as const)(
    'headers given as %s are refused with InvalidArgumentError, nothing added',
    async ([, make], { onTestFinished }) => {
      const s = new Stream(uniqueName('hdr'), c.redis);
      onTestFinished(() => s.destroy());
      await expect(s.add('e', 'p', { headers: make() as unknown as Record<string, string> })).rejects.toBeInstanceOf(
        InvalidArgumentError,
      );
      expect(Number(await c.cmd('EXISTS', `pulse:stream:${s.name}`))).toBe(0);
    },
  );

  it('a header getter that throws rejects the add with InvalidArgumentError', async ({ onTestFinished }) => {
    const s = new Stream(uniqueName('hdrget'), c.redis);
    onTestFinished(() => s.destroy());
    const headers = {
      get tenant(): string {
        throw new Error('getter');
      },
    };
    await expect(s.add('e', 'p', { headers })).rejects.toBeInstanceOf(InvalidArgumentError);
  });
});
