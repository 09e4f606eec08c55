/**
 * The CLI on entry IDs whose time is past what a JS Date holds (8.64e15 ms),
 * and on a stream `streams` cannot read (outside review C). Redis takes any
 * ID up to 2^64 - 1, and a producer that sets explicit IDs in nanoseconds
 * writes such times: one of them made `streams` exit 1 with "Invalid time
 * value" and list no stream at all, and `stream`, `tail` and `dead` fail the
 * same way. They now show the raw time (`<ms> ms`) and null in JSON; and a
 * stream that `streams` cannot read is listed with its error, the others still.
 * The CLI has one client (ioredis); a test server of its own, since `streams`
 * lists every stream of the server and the ACL test adds a user.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { buildCli, cli, lines } from './support/cli.js';
import { RedisServer } from './support/redisServer.js';

beforeAll(buildCli, 120_000);

/** Past JS Date's range (8.64e15 ms), well within Redis's (2^64 - 1). */
const FAR_ID = '9000000000000000-0';
const FAR_TIME = '9000000000000000 ms';
const MAX_ID = '18446744073709551615-5';

describe.concurrent('CLI on a stream with a far-future entry ID', { timeout: 60_000 }, () => {
  let server: RedisServer;
  let redis: Redis;
  beforeAll(async () => {
    server = await RedisServer.start();
    redis = new Redis(server.url);
    await redis.xadd('pulse:stream:orders', '*', 'n', 'created', 'p', '{"id":1}');
    await redis.xadd('pulse:stream:nanos', FAR_ID, 'n', 'created', 'p', 'x');
    // The largest ID Redis takes: a number would print its time rounded (18446744073709552000).
    await redis.xadd('pulse:stream:nanos', MAX_ID, 'n', 'created', 'p', 'z');
    const letter = [
      'n',
      'e',
      'p',
      'y',
      'source_stream',
      'nanos',
      'source_sink',
      's',
      'source_id',
      '1-0',
      'deliveries',
      '3',
      'reason',
      'r',
    ];
    await redis.xadd('pulse:stream:nanos:dead', FAR_ID, ...letter);
    // A user that may read the orders stream only: the other streams fail for it.
    await redis.call('ACL', 'SETUSER', 'ordersonly', 'on', 'nopass', '+@all', '~pulse:stream:orders*');
  }, 60_000);
  afterAll(async () => {
    redis?.disconnect();
    await server?.stop();
  });

  it('streams lists every stream and shows the raw time (text), null times (--json), exit 0', async ({ expect }) => {
    const text = await cli(['streams'], { redis: server.url });
    expect({ code: text.code, stderr: text.stderr }).toEqual({ code: 0, stderr: '' });
    const nanos = lines(text.stdout).find((l) => l.startsWith('nanos '));
    expect(nanos).toContain(`${FAR_ID}  ${FAR_TIME}`);
    expect(text.stdout).toMatch(/^orders /m);
    const json = await cli(['streams', '--json'], { redis: server.url });
    expect(json.code, json.stderr).toBe(0);
    const listed = JSON.parse(json.stdout) as { name: string; firstId: string; firstTime: string | null }[];
    expect(listed.map((s) => [s.name, s.firstTime === null])).toEqual([
      ['nanos', true],
      ['nanos:dead', true],
      ['orders', false],
    ]);
  });

  it('stream <name> shows the raw times', async ({ expect }) => {
    const r = await cli(['stream', 'nanos'], { redis: server.url });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`first entry   ${FAR_ID}  ${FAR_TIME}`);
    expect(r.stdout).toContain(`${MAX_ID}  18446744073709551615 ms`);
    expect(r.stdout).toMatch(/dead letters\s+1 /);
  });

  it('tail prints the event: the raw time in text, createdAt null in --json', async ({ expect }) => {
    const text = await cli(['tail', 'nanos', '--from', 'oldest', '--count', '1'], { redis: server.url });
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toBe(`${FAR_TIME} ${FAR_ID} created x\n`);
    const json = await cli(['tail', 'nanos', '--from', 'oldest', '--count', '1', '--json'], { redis: server.url });
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ id: FAR_ID, createdAt: null, payload: 'x' });
  });

  it('dead list, --json and show work on the letter', async ({ expect }) => {
    const list = await cli(['dead', 'nanos'], { redis: server.url });
    expect(list.code, list.stderr).toBe(0);
    expect(lines(list.stdout)[1]).toMatch(new RegExp(`^${FAR_ID}\\s+${FAR_TIME}\\s+e\\s`));
    const json = await cli(['dead', 'nanos', '--json'], { redis: server.url });
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject([{ id: FAR_ID, deadAt: null, payload: 'y' }]);
    const show = await cli(['dead', 'show', 'nanos', FAR_ID], { redis: server.url });
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).toMatch(new RegExp(`dead at\\s+${FAR_TIME}`));
  });

  it('streams lists a stream it cannot read with its error, and the others', async ({ expect }) => {
    const url = server.url.replace('redis://', 'redis://ordersonly@');
    const text = await cli(['streams'], { redis: url });
    expect(text.code, text.stderr).toBe(0);
    expect(text.stderr).toMatch(/2 streams could not be read/);
    expect(lines(text.stdout).find((l) => l.startsWith('nanos '))).toMatch(/\?.*error: .*NOPERM/);
    expect(lines(text.stdout).find((l) => l.startsWith('orders '))).toMatch(/^orders\s+1\s/);
    const json = await cli(['streams', '--json'], { redis: url });
    expect(json.code, json.stderr).toBe(0);
    const listed = JSON.parse(json.stdout) as { name: string; length?: number; error?: string }[];
    expect(listed.map((s) => [s.name, s.error === undefined ? s.length : 'error'])).toEqual([
      ['nanos', 'error'],
      ['nanos:dead', 'error'],
      ['orders', 1],
    ]);
  });
});
