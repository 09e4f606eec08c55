/**
 * The check of what blocking reads delivered (`SinkReads.verifyReads`, run by
 * the keep-alive and close()) while Redis cannot be reached: one warning for
 * the call, not one per stream (with many streams and Redis down, a line per
 * stream per keep-alive flooded the log). A private server, stopped mid-test.
 */
import { describe, expect, it } from 'vitest';
import { Stream, silentLogger } from '../packages/pulse-streaming/src/index.js';
import { SinkReads } from '../packages/pulse-streaming/src/internal/sinkRead.js';
import { newSinkStream, type SinkStream, sinkSettings } from '../packages/pulse-streaming/src/internal/sinkState.js';
import { CLIENT_KINDS, connect, uniqueName } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

describe.each(CLIENT_KINDS)('verifyReads with Redis unreachable (%s)', (kind) => {
  it('one warning for all the streams it could not check, with their count', async (ctx) => {
    const server = await RedisServer.start();
    ctx.onTestFinished(() => server.stop());
    const c = await connect(kind, server.url);
    ctx.onTestFinished(() => c.close());
    const streams = Array.from({ length: 5 }, () => new Stream(uniqueName('v'), c.redis as never));
    const control = await (streams[0] as Stream).driver.openOwned('test:verify', silentLogger);
    ctx.onTestFinished(() => control.close());
    const states: SinkStream[] = streams.map((s) => {
      const st = newSinkStream('sink', sinkSettings({}), s);
      st.unverified = { from: '0-0', to: '1-0' };
      return st;
    });
    const warned: Array<{ obj: Record<string, unknown>; msg: string }> = [];
    const logger = { ...silentLogger, warn: (obj: Record<string, unknown>, msg: string) => warned.push({ obj, msg }) };
    const reads = new SinkReads({
      name: 'sink',
      consumerName: 'c1',
      settings: sinkSettings({}),
      cluster: false,
      control,
      logger: logger as never,
      streams: new Map(states.map((s) => [s.stream.key, s])),
      loops: () => ({ groupOf: () => 0, reconnects: () => 0 }),
      deliver: () => {},
      countLost: () => {},
      maybeLost: () => {},
      checked: () => {},
      streamGone: async () => {},
      fail: (err) => {
        throw err;
      },
    });
    await server.stop();
    await reads.verifyReads(states);
    const lines = warned.filter((w) => w.msg === 'could not check the last reads for trimmed events');
    expect(lines).toHaveLength(1);
    expect(lines[0]?.obj.streamCount).toBe(5);
  });
});
