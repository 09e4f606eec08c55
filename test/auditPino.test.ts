/**
 * Audit: README "pino works as is" (the logger option takes a pino instance).
 */
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, type TestClient, take, uniqueName, waitFor } from './support/clients.js';

describe.each(CLIENT_KINDS)('audit: pino as the logger (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  it('a pino instance is accepted and a loss is a warn line with the stream, sink and count', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const dest = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const l of chunk.toString().split('\n')) if (l.trim() !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
        cb();
      },
    });
    const logger = pino({ level: 'debug' }, dest);
    const s = new Stream(uniqueName('pino'), c.redis, { maxLen: 0, logger });
    const sink = await s.newSink('g', { blockMs: 100, startAt: 'oldest' });
    try {
      const ids: string[] = [];
      for (let i = 0; i < 4; i++) ids.push(await s.add('e', `${i}`));
      await s.remove(ids[1] as string, ids[2] as string);
      const got = await take(sink.subscribe(), 2);
      await sink.ack(...got);
      await waitFor(() => lines.some((l) => l.level === 40 && l.count === 2), { what: 'a pino warn line' }).catch((e) => {
        throw new Error(`${e} counters=${JSON.stringify(sink.counters)} lines=${JSON.stringify(lines)}`);
      });
      const warn = lines.find((l) => l.level === 40 && l.count === 2);
      expect(warn?.stream).toBe(s.name);
      expect(warn?.sink).toBe('g');
      expect(typeof warn?.msg).toBe('string');
    } finally {
      await sink.close();
      await s.destroy();
    }
  });
});
