/**
 * The bytes an add stores are the payload as it was at the add() call: the
 * add is sent on a later turn (merged with the others of its tick), and by
 * then the caller may have reused its buffer, transferred its ArrayBuffer,
 * or changed the value it passed (outside review U, findings 3 and 4).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Codec, type StandardSchemaV1, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, type TestClient, uniqueName } from './support/clients.js';

/** The payloads stored in stream `name`, as text, oldest first. */
async function storedPayloads(c: TestClient, name: string): Promise<string[]> {
  const entries = (await c.cmd('XRANGE', `pulse:stream:${name}`, '-', '+')) as Array<[unknown, unknown[]]>;
  return entries.map(([, fields]) => {
    const f = fields.map(String);
    return f[f.indexOf('p') + 1] ?? '';
  });
}

const asyncSchema: StandardSchemaV1 = {
  '~standard': { version: 1, vendor: 'test', validate: async (v) => ({ value: v }) },
};

describe.concurrent.each(CLIENT_KINDS)('payload bytes are those at the add() call (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  it('a codec that encodes into one reused buffer: each add of a tick stores its own value', async ({ onTestFinished }) => {
    const scratch = new Uint8Array(256);
    const encoder = new TextEncoder();
    const codec: Codec = {
      encode: (v) => scratch.subarray(0, encoder.encodeInto(JSON.stringify(v), scratch).written),
      decode: (b) => JSON.parse(b.toString('utf8')),
    };
    const s = new Stream<{ e: { n: number } }>(uniqueName('scratch'), c.redis, { codec });
    onTestFinished(() => s.destroy());
    await Promise.all([s.add('e', { n: 1 }), s.add('e', { n: 2 }), s.add('e', { n: 3 })]);
    expect(await storedPayloads(c, s.name)).toEqual(['{"n":1}', '{"n":2}', '{"n":3}']);
  });

  it('untyped: a Buffer changed right after add() stores the bytes it had at the call', async ({ onTestFinished }) => {
    const s = new Stream(uniqueName('mutbuf'), c.redis);
    onTestFinished(() => s.destroy());
    const b = Buffer.from('aaaa');
    const added = s.add('e', b);
    b.fill('b');
    await added;
    expect(await storedPayloads(c, s.name)).toEqual(['aaaa']);
  });

  it('untyped: a large Buffer (plain XADD path) changed right after add() stores the bytes at the call', async ({
    onTestFinished,
  }) => {
    const s = new Stream(uniqueName('mutlarge'), c.redis);
    onTestFinished(() => s.destroy());
    const b = Buffer.alloc(16 * 1024, 'a');
    const added = s.add('e', b);
    b.fill('b');
    await added;
    expect(await storedPayloads(c, s.name)).toEqual(['a'.repeat(16 * 1024)]);
  });

  it('untyped: an ArrayBuffer transferred right after add() keeps the payload it had', async ({ onTestFinished }) => {
    const s = new Stream(uniqueName('transfer'), c.redis);
    onTestFinished(() => s.destroy());
    const bytes = new TextEncoder().encode('hello');
    const added = s.add('e', bytes);
    structuredClone(bytes.buffer, { transfer: [bytes.buffer] }); // e.g. posted to a worker
    await added;
    expect(await storedPayloads(c, s.name)).toEqual(['hello']);
  });

  it('an asynchronous schema: the value stored is the value at the add() call, not after later changes', async ({
    onTestFinished,
  }) => {
    const s = new Stream(uniqueName('asyncsnap'), c.redis, { schemas: { order: asyncSchema } });
    onTestFinished(() => s.destroy());
    const order = { id: 1, status: 'created' };
    const first = s.add('order', order);
    order.status = 'paid'; // the caller goes on with its object, as with any call that took a value
    const second = s.add('order', order);
    await Promise.all([first, second]);
    expect(await storedPayloads(c, s.name)).toEqual(['{"id":1,"status":"created"}', '{"id":1,"status":"paid"}']);
  });
});
