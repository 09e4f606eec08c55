/**
 * A sink refuses the arguments a reader refuses (API.md "Sink": members "as for Reader"):
 * `addStream(stream, 'oldest')` was taken as no options (the stream started at the sink's own
 * startAt, not where the caller meant) and `subscribe(5)` was accepted without a word.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, type TestClient, uniqueName } from './support/clients.js';

describe.concurrent.each(CLIENT_KINDS)('sink arguments refused as a reader refuses them (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  it("addStream(stream, 'oldest'): options that are not an object are an InvalidArgumentError (reader: yes)", async () => {
    const s = new Stream(uniqueName('sink-args'), c.redis);
    const other = new Stream(uniqueName('sink-args'), c.redis);
    const reader = await s.newReader();
    const sink = await s.newSink('g');
    try {
      await expect(reader.addStream(other, 'oldest' as never)).rejects.toBeInstanceOf(InvalidArgumentError);
      let err: unknown;
      try {
        await sink.addStream(other, 'oldest' as never);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(InvalidArgumentError);
    } finally {
      await reader.close();
      await sink.close();
      await s.destroy();
      await other.destroy();
    }
  });

  it('subscribe(5): options that are not an object are an InvalidArgumentError (reader: yes)', async () => {
    const s = new Stream(uniqueName('sink-args'), c.redis);
    const reader = await s.newReader();
    const sink = await s.newSink('g');
    try {
      expect(() => reader.subscribe(5 as never)).toThrow(InvalidArgumentError);
      expect(() => sink.subscribe(5 as never)).toThrow(InvalidArgumentError);
    } finally {
      await reader.close();
      await sink.close();
      await s.destroy();
    }
  });
});
