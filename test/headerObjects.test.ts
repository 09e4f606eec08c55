/**
 * `headers` that are not a plain object (outside review U, finding 10): a
 * Map or a fetch Headers has no own properties, so read as a record the add
 * succeeded and the headers vanished; a getter that threw escaped raw. Both
 * are now an InvalidArgumentError, nothing added. So are (outside trial of
 * 2026-12-07) properties `Object.keys` leaves out: inherited, symbol-keyed,
 * non-enumerable.
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

  // Outside trial: what Object.keys() leaves out was dropped without a word, the rest stored.
  it.for([
    [
      'a class instance',
      () =>
        new (class H {
          tenant = 'acme';
        })(),
    ],
    ['an object inheriting its headers', () => Object.create({ tenant: 'acme' }) as object],
    ['a symbol-keyed property', () => ({ [Symbol('tenant')]: 'acme', a: 'b' })],
    ['a non-enumerable property', () => Object.defineProperty({ a: 'b' }, 'tenant', { value: 'acme', enumerable: false })],
  ] as const)('headers with %s are refused with InvalidArgumentError, nothing added', async ([, make], { onTestFinished }) => {
    const s = new Stream(uniqueName('hdrhide'), c.redis);
    onTestFinished(() => s.destroy());
    await expect(s.add('e', 'p', { headers: make() as unknown as Record<string, string> })).rejects.toThrow(
      /would not be stored/,
    );
    expect(Number(await c.cmd('EXISTS', `pulse:stream:${s.name}`))).toBe(0);
  });

  it('headers without a prototype, frozen ones and those of an event pass', async ({ onTestFinished }) => {
    const s = new Stream(uniqueName('hdrplain'), c.redis);
    onTestFinished(() => s.destroy());
    const bare = Object.assign(Object.create(null) as Record<string, string>, { tenant: 'acme' });
    const id = await s.add('e', 'p', { headers: bare });
    await s.add('e', 'p', { headers: Object.freeze({ tenant: 'acme' }) });
    const [event] = await s.newReader({ startAt: 'oldest' }).then(async (r) => {
      try {
        for await (const ev of r) return [ev];
        return [];
      } finally {
        await r.close();
      }
    });
    expect(event?.id).toBe(id);
    // An event forwarded as the options of its copy gives its (frozen) headers.
    await s.add('copy', 'p', { headers: event?.headers });
    expect(Number(await c.cmd('XLEN', `pulse:stream:${s.name}`))).toBe(3);
  });

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
