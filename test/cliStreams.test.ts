/**
 * `pulse-streaming streams`, `stream <name>` and `destroy` read a stream's
 * figures without its entries: XINFO STREAM returns the first and last
 * entries whole, megabytes per stream with 1 MB payloads. Measured on a
 * private server with INFO stats `total_net_output_bytes` (every byte the
 * server wrote to any client).
 */
import { afterAll, beforeAll, describe, it } from 'vitest';
import { buildCli, cli } from './support/cli.js';
import { connect, type TestClient, uniqueName } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

const MB = 1024 * 1024;
/** Far below one payload: handshakes, listings, figures and INFO replies only. */
const MAX_OUTPUT_BYTES = 64 * 1024;

beforeAll(buildCli, 120_000);

describe('CLI stream figures with large payloads', { timeout: 90_000 }, () => {
  let srv: RedisServer;
  let c: TestClient;
  beforeAll(async () => {
    srv = await RedisServer.start();
    c = await connect('ioredis', srv.url);
  });
  afterAll(async () => {
    await c?.close();
    await srv?.stop();
  });

  async function outputBytes(): Promise<number> {
    const info = String(await c.cmd('INFO', 'stats'));
    return Number(/total_net_output_bytes:(\d+)/.exec(info)?.[1]);
  }

  /** Runs the CLI against the private server; returns its output and the bytes the server sent meanwhile. */
  async function measured(args: string[]): Promise<{ stdout: string; bytes: number }> {
    const before = await outputBytes();
    const r = await cli(args, { redis: srv.url });
    if (r.code !== 0) throw new Error(`${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    return { stdout: r.stdout, bytes: (await outputBytes()) - before };
  }

  it('streams, stream and destroy are correct and do not fetch the 1 MB entries', async ({ expect }) => {
    const big = 'x'.repeat(MB);
    const streams: Array<{ name: string; first: string; last: string }> = [];
    for (let i = 0; i < 3; i++) {
      const name = uniqueName('big');
      const key = `pulse:stream:${name}`;
      const first = String(await c.cmd('XADD', key, '*', 'n', 'a', 'p', big));
      await c.cmd('XADD', key, '*', 'n', 'b', 'p', big);
      const last = String(await c.cmd('XADD', key, '*', 'n', 'c', 'p', big));
      streams.push({ name, first, last });
    }
    const [one, two] = streams as [(typeof streams)[0], (typeof streams)[0]];
    await c.cmd('XGROUP', 'CREATE', `pulse:stream:${one.name}`, 'billing', '0');
    await c.cmd('PEXPIRE', `pulse:stream:${two.name}`, '600000');

    const list = await measured(['streams', '--json']);
    const found = JSON.parse(list.stdout) as Array<Record<string, unknown>>;
    expect(found.map((s) => s.name)).toEqual(streams.map((s) => s.name).sort());
    for (const s of streams) {
      const got = found.find((f) => f.name === s.name);
      expect(got).toMatchObject({
        key: `pulse:stream:${s.name}`,
        length: 3,
        firstId: s.first,
        firstTime: new Date(Number(s.first.split('-')[0])).toISOString(),
        lastId: s.last,
        lastTime: new Date(Number(s.last.split('-')[0])).toISOString(),
        sinks: s === one ? ['billing'] : [],
        isDeadLetterStream: false,
      });
      expect(got?.ttlMs === null).toBe(s !== two);
    }
    expect(list.bytes).toBeLessThan(MAX_OUTPUT_BYTES);

    const human = await measured(['streams']);
    expect(human.stdout).toMatch(new RegExp(`${one.name}\\s+3\\s+${one.first}\\s`));
    expect(human.bytes).toBeLessThan(MAX_OUTPUT_BYTES);

    const detail = await measured(['stream', one.name, '--json']);
    expect(JSON.parse(detail.stdout)).toMatchObject({ length: 3, firstId: one.first, lastId: one.last });
    expect(detail.bytes).toBeLessThan(MAX_OUTPUT_BYTES);

    const destroyed = await measured(['destroy', two.name, '--yes']);
    expect(destroyed.stdout).toContain(two.name);
    expect(Number(await c.cmd('EXISTS', `pulse:stream:${two.name}`))).toBe(0);
    expect(destroyed.bytes).toBeLessThan(MAX_OUTPUT_BYTES);
  });

  it('an empty stream and one whose entries were all deleted have no first or last entry', async ({ expect }) => {
    const emptied = uniqueName('emptied');
    const id = String(await c.cmd('XADD', `pulse:stream:${emptied}`, '*', 'n', 'a', 'p', '1'));
    await c.cmd('XDEL', `pulse:stream:${emptied}`, id);
    const r = await cli(['streams', '--json'], { redis: srv.url });
    expect(r.code, r.stderr).toBe(0);
    const got = (JSON.parse(r.stdout) as Array<Record<string, unknown>>).find((f) => f.name === emptied);
    expect(got).toMatchObject({ length: 0, firstId: null, firstTime: null, lastId: null, lastTime: null });
  });
});
