import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, type TestClient, take, uniqueName } from './support/clients.js';

describe.each(CLIENT_KINDS)('smoke (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  it('adds and reads back bytes through a reader and a sink', async () => {
    const s = new Stream(uniqueName(), c.redis);
    const reader = await s.newReader();
    const sink = await s.newSink('sink', { ackGracePeriodMs: 1000 });
    const rsub = reader.subscribe();
    const ssub = sink.subscribe();
    const payload = Buffer.from([0, 255, 254, 1, 0x80]);
    const id = await s.add('ev', payload, { topic: 'tp' });
    const [r] = await take(rsub, 1);
    const [e] = await take(ssub, 1);
    expect(r?.id).toBe(id);
    expect(r?.payload.equals(payload)).toBe(true);
    expect(e?.payload.equals(payload)).toBe(true);
    expect(e?.topic).toBe('tp');
    expect(e?.sinkName).toBe('sink');
    await e?.ack();
    expect(await c.cmd('XPENDING', s.key, 'sink')).toEqual([0, null, null, null]);
    await reader.close();
    await sink.close();
    await s.destroy();
  });
});
