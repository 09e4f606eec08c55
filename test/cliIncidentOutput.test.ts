/**
 * CLI output an operator acts on during an incident must not mislead
 * (outside review C): `pending --consumer` asked for --count when every entry
 * of that consumer was shown (it compared with the whole sink's count);
 * `dead replay --id A --id B` exited 0 saying nothing when B was not a dead
 * letter; `stream <name>` said "dead letters 0" when it could not read
 * `<name>:dead`. Also fixed shapes and exit codes: `pending --json` has
 * `dueInMs` on every entry (null when not nacked), and a malformed ID is bad
 * usage (exit 2) in `dead show` and `dead replay --id` as in `tail --after`.
 * The CLI has one client (ioredis); the data is written with ioredis.
 */
import { afterAll, beforeAll, describe, it, type TestContext } from 'vitest';
import { buildCli, cli, lines } from './support/cli.js';
import { connect, type TestClient, uniqueName } from './support/clients.js';

beforeAll(buildCli, 120_000);

const letter = (name: string, sourceId: string): string[] => [
  'n',
  'e',
  'p',
  'x',
  'source_stream',
  name,
  'source_sink',
  'billing',
  'source_id',
  sourceId,
  'deliveries',
  '3',
  'reason',
  'r',
];

describe.concurrent('CLI output during an incident', { timeout: 60_000 }, () => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect('ioredis');
  });
  afterAll(() => c?.close());

  /** A fresh stream name whose keys are deleted when the test ends. */
  function fresh(ctx: TestContext, prefix: string): { name: string; key: string; dead: string } {
    const name = uniqueName(prefix);
    const key = `pulse:stream:${name}`;
    ctx.onTestFinished(async () => {
      await c.cmd('DEL', key, `${key}:dead`);
    });
    return { name, key, dead: `${key}:dead` };
  }

  /** `count` entries in `key` read by `consumer` of group billing (created at 0 when missing). */
  async function deliver(key: string, consumer: string, count: number): Promise<void> {
    for (let i = 0; i < count; i++) await c.cmd('XADD', key, '*', 'n', 'e', 'p', String(i));
    await c.cmd('XGROUP', 'CREATE', key, 'billing', '0', 'MKSTREAM').catch(() => undefined);
    await c.cmd('XREADGROUP', 'GROUP', 'billing', consumer, 'COUNT', String(count), 'STREAMS', key, '>');
  }

  it('pending --consumer asks for --count only when that consumer holds more than shown', async (ctx) => {
    const { name, key } = fresh(ctx, 'pend-consumer');
    await deliver(key, 'alice', 3);
    await deliver(key, 'bob', 5);
    const all = await cli(['pending', name, 'billing', '--consumer', 'alice']);
    ctx.expect(all.code, all.stderr).toBe(0);
    ctx.expect(lines(all.stdout).filter((l) => /^\d+-\d+\s+alice/.test(l))).toHaveLength(3);
    ctx.expect(all.stdout).not.toMatch(/use --count for more/);
    const part = await cli(['pending', name, 'billing', '--consumer', 'alice', '--count', '2']);
    ctx.expect(part.code, part.stderr).toBe(0);
    ctx.expect(part.stdout).toMatch(/\(first 2; use --count for more\)/);
  });

  it('pending --json gives every entry a dueInMs (null when not nacked)', async (ctx) => {
    const { name, key } = fresh(ctx, 'pend-json');
    await deliver(key, 'alice', 2);
    const r = await cli(['pending', name, 'billing', '--json']);
    ctx.expect(r.code, r.stderr).toBe(0);
    const { entries } = JSON.parse(r.stdout) as { entries: Record<string, unknown>[] };
    ctx.expect(entries.map((e) => e.dueInMs)).toEqual([null, null]);
  });

  it('dead replay --id A --id B replays A, names B and exits 1 when B is not a dead letter', async (ctx) => {
    const { name, dead } = fresh(ctx, 'replay-missing');
    const a = String(await c.cmd('XADD', dead, '*', ...letter(name, '1-0')));
    const json = await cli(['dead', 'replay', name, '--id', a, '--id', '1-1', '--json']);
    ctx.expect(json.code).toBe(1);
    ctx.expect(JSON.parse(json.stdout)).toMatchObject({ replayed: 1, notFound: ['1-1'] });
    ctx.expect(json.stderr).toMatch(/not replayed: no dead letter 1-1 .*\(replayed 1 other\)/);
    ctx.expect(await c.cmd('XLEN', dead)).toBe(0);
    // Text: the replay is reported on stdout, the missing ID on stderr.
    const b = String(await c.cmd('XADD', dead, '*', ...letter(name, '2-0')));
    const text = await cli(['dead', 'replay', name, '--id', '1-2', '--id', b]);
    ctx.expect(text.code).toBe(1);
    ctx.expect(text.stdout).toMatch(/^replayed 1 dead letter into stream/);
    ctx.expect(text.stderr).toMatch(/no dead letter 1-2 /);
  });

  it('dead replay --id with every ID found exits 0 with an empty notFound', async (ctx) => {
    const { name, dead } = fresh(ctx, 'replay-all');
    const a = String(await c.cmd('XADD', dead, '*', ...letter(name, '1-0')));
    const r = await cli(['dead', 'replay', name, '--id', a, '--json']);
    ctx.expect(r.code, r.stderr).toBe(0);
    ctx.expect(JSON.parse(r.stdout)).toMatchObject({ replayed: 1, notFound: [] });
  });

  it('a malformed ID is bad usage (exit 2) in dead show, dead replay --id and tail --after', async (ctx) => {
    const { name, key } = fresh(ctx, 'bad-id');
    await c.cmd('XADD', key, '*', 'n', 'e', 'p', 'x');
    const runs = await Promise.all([
      cli(['dead', 'show', name, 'abc']),
      cli(['dead', 'replay', name, '--id', 'abc']),
      cli(['tail', name, '--after', 'abc']),
    ]);
    ctx.expect(runs.map((r) => r.code)).toEqual([2, 2, 2]);
    for (const r of runs) ctx.expect(r.stderr).toMatch(/takes an entry ID like 1700000000000-0/);
  });

  it('stream <name> shows "?" and why when it cannot read the dead-letter stream', async (ctx) => {
    const { name, key, dead } = fresh(ctx, 'dead-type');
    await c.cmd('XADD', key, '*', 'n', 'e', 'p', 'x');
    await c.cmd('SET', dead, 'oops');
    const text = await cli(['stream', name]);
    ctx.expect(text.code, text.stderr).toBe(0);
    const line = lines(text.stdout).find((l) => l.includes('dead letters')) ?? '';
    ctx.expect(line).toMatch(/dead letters\s+\? \(stream .*:dead: the key holds a string, not a stream\)/);
    const json = await cli(['stream', name, '--json']);
    ctx.expect(json.code, json.stderr).toBe(0);
    ctx.expect(JSON.parse(json.stdout)).toMatchObject({
      deadLetterCount: null,
      deadLetterError: 'the key holds a string, not a stream',
    });
  });
});
