/**
 * The `pulse-streaming` command-line program, run as a real built binary
 * (`node packages/pulse-streaming-cli/dist/main.js`) against the shared test Redis (`--redis`),
 * and against its embedded default (no --redis, no REDIS_URL). On a Redis
 * Cluster: cliCluster.test.ts; failures and typos: cliErrors.test.ts; tail
 * and add: cliTail.test.ts; the demo: cliDemo.test.ts.
 */
import { Socket } from 'node:net';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { sinkKeys } from '../packages/pulse-streaming/src/internal/keys.js';
import { pendingIdleText } from '../packages/pulse-streaming-cli/src/duration.js';
import { buildCli, cli, lines, noStack } from './support/cli.js';
import { connect, type TestClient, take, uniqueName, waitFor } from './support/clients.js';

/** True when something accepts connections on the port. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = new Socket();
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
    s.connect(port, '127.0.0.1');
  });
}

beforeAll(buildCli, 120_000);

describe.concurrent('pulse-streaming CLI', { timeout: 90_000 }, () => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect('ioredis');
  });
  afterAll(() => c?.close());

  // The help of each command (that dead's names replay, tail's --count): cliErrors.test.ts, which
  // runs every command's --help once.
  it('prints help for the program', async ({ expect }) => {
    const top = await cli(['--help']);
    expect(top.code, top.stderr).toBe(0);
    for (const cmd of ['streams', 'stream', 'sinks', 'tail', 'add', 'pending', 'dead', 'destroy', 'demo']) {
      expect(top.stdout).toContain(cmd);
    }
    // The exit code of Ctrl-C, which cliTail.test.ts checks the tail gives, as the help says.
    expect(top.stdout).toContain('130 interrupted');
  });

  it('rejects an unknown command and a missing argument with one line and exit code 2', async ({ expect }) => {
    const unknown = await cli(['frobnicate']);
    expect(unknown.code, unknown.stderr).toBe(2);
    expect(lines(unknown.stderr)).toEqual([expect.stringContaining("unknown command 'frobnicate'")]);
    const missing = await cli(['stream']);
    expect(missing.code, missing.stderr).toBe(2);
    expect(lines(missing.stderr)).toEqual([expect.stringContaining('missing required argument')]);
    const badOption = await cli(['tail', 'x', '--count', 'many']);
    expect(badOption.code, badOption.stderr).toBe(2);
    expect(lines(badOption.stderr)).toHaveLength(1);
  });

  it('reports an unreachable Redis in one line, fast', async ({ expect }) => {
    const r = await cli(['--redis', 'redis://127.0.0.1:1', 'streams'], { embedded: true });
    expect(r.code, r.stderr).toBe(1);
    expect(lines(r.stderr)).toEqual([expect.stringMatching(/cannot connect to Redis at redis:\/\/127\.0\.0\.1:1.*ECONNREFUSED/)]);
    expect(noStack(r.stderr)).toBe(true);
    const bad = await cli(['--redis', 'not-a-url', 'streams'], { embedded: true });
    expect(bad.code, bad.stderr).toBe(2);
    expect(bad.stderr).toContain('invalid Redis URL');
  });

  it('lists streams with length, sinks and TTL, and shows one stream with its sinks', async ({ expect }) => {
    const name = uniqueName('cli');
    const key = `pulse:stream:${name}`;
    const first = String(await c.cmd('XADD', key, '*', 'n', 'a', 'p', '1'));
    await c.cmd('XADD', key, '*', 'n', 'b', 'p', '2');
    const last = String(await c.cmd('XADD', key, '*', 'n', 'c', 'p', '3'));
    await c.cmd('XGROUP', 'CREATE', key, 'billing', '0');
    await c.cmd('XREADGROUP', 'GROUP', 'billing', 'worker-1', 'COUNT', '2', 'STREAMS', key, '>');
    await c.cmd('PEXPIRE', key, '600000');
    // The library's keep-alive record of worker-1, in server milliseconds.
    const [seconds] = (await c.cmd('TIME')) as [string];
    await c.cmd('ZADD', sinkKeys(name, 'billing').consumers, `${seconds}000`, 'worker-1');
    try {
      const r = await cli(['streams', '--json']);
      expect(r.code, r.stderr).toBe(0);
      const streams = JSON.parse(r.stdout) as Array<Record<string, unknown>>;
      const s = streams.find((x) => x.name === name);
      expect(s).toMatchObject({ key, length: 3, firstId: first, lastId: last, sinks: ['billing'] });
      expect(s?.ttlMs).toBeGreaterThan(0);

      const human = await cli(['streams']);
      expect(human.code, human.stderr).toBe(0);
      expect(human.stdout).toMatch(new RegExp(`${name}\\s+3\\s`));

      const one = await cli(['stream', name, '--json']);
      expect(one.code, one.stderr).toBe(0);
      const details = JSON.parse(one.stdout) as { length: number; sinkDetails: Array<Record<string, unknown>> };
      expect(details.length).toBe(3);
      expect(details.sinkDetails).toEqual([
        expect.objectContaining({
          name: 'billing',
          pending: 2,
          lag: 1,
          consumers: [expect.objectContaining({ name: 'worker-1', pending: 2, keepAliveAgeMs: expect.any(Number) })],
        }),
      ]);

      const sinks = await cli(['sinks', name]);
      expect(sinks.code, sinks.stderr).toBe(0);
      expect(sinks.stdout).toContain('billing');
      expect(sinks.stdout).toContain('worker-1');
    } finally {
      await c.cmd('DEL', key, sinkKeys(name, 'billing').consumers);
    }
  });

  // A nacked event's idle time is set very high (any instance takes it once due): shown as is,
  // it read "24d" for an event due in a minute. Its due time comes from the sink's delays set.
  it('shows a nacked event waiting for its delay as due in its time, not by its idle time', async ({ expect }) => {
    const s = new Stream(uniqueName('clinack'), c.redis);
    const sink = await s.newSink('billing', { startAt: 'oldest', blockMs: 50 });
    try {
      const id = await s.add('e', 'x');
      const [ev] = await take(sink.subscribe()[Symbol.asyncIterator](), 1);
      await ev?.nack({ delayMs: 120_000 });
      const r = await cli(['pending', s.name, 'billing', '--json']);
      expect(r.code, r.stderr).toBe(0);
      type Entry = { id: string; dueInMs?: number; idleMs: number; nacked: boolean };
      const [entry] = (JSON.parse(r.stdout) as { entries: Entry[] }).entries;
      expect(entry?.id).toBe(id);
      expect(entry?.dueInMs).toBeGreaterThan(100_000);
      expect(entry?.dueInMs).toBeLessThanOrEqual(120_000);
      // Since the nack, not Redis' 24.8 days (outside trial, session 28).
      expect(entry?.nacked).toBe(true);
      expect(entry?.idleMs).toBeLessThan(60_000);
      const human = await cli(['pending', s.name, 'billing']);
      expect(human.stdout).toMatch(/nacked, due in 1m/);
      // Once due, and not taken yet (no instance running): how long ago it was nacked.
      expect(pendingIdleText({ idleMs: 5_000, nacked: true, dueInMs: 0 })).toBe('nacked 5.0s ago, due now');
      expect(pendingIdleText({ idleMs: 5_000, nacked: true })).toBe('nacked 5.0s ago, due now');
      expect(pendingIdleText({ idleMs: 5_000, nacked: false })).toBe('5.0s');
    } finally {
      await sink.close();
      await s.destroy();
    }
  });

  it('shows the pending entries of a sink', async ({ expect }) => {
    const name = uniqueName('cli');
    const key = `pulse:stream:${name}`;
    const id = String(await c.cmd('XADD', key, '*', 'n', 'a', 'p', '1'));
    await c.cmd('XGROUP', 'CREATE', key, 'billing', '0');
    await c.cmd('XREADGROUP', 'GROUP', 'billing', 'worker-1', 'STREAMS', key, '>');
    try {
      const r = await cli(['pending', name, 'billing', '--json']);
      expect(r.code, r.stderr).toBe(0);
      const report = JSON.parse(r.stdout) as Record<string, unknown>;
      expect(report).toMatchObject({
        total: 1,
        consumers: [{ name: 'worker-1', pending: 1 }],
        entries: [expect.objectContaining({ id, consumer: 'worker-1', deliveries: 1 })],
      });
      const human = await cli(['pending', name, 'billing']);
      expect(human.stdout).toContain(id);
      const noSink = await cli(['pending', name, 'nope']);
      expect(noSink.code, noSink.stderr).toBe(1);
      expect(lines(noSink.stderr)).toEqual([expect.stringContaining('has no sink "nope"')]);
    } finally {
      await c.cmd('DEL', key);
    }
  });

  it('adds events (with headers and a dedup ID) and tails them, by topic, and stops after --count', async ({ expect }) => {
    const name = uniqueName('cli');
    try {
      const tp = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
      const withHeaders = ['--header', `traceparent=${tp}`, '--header', 'tenant=a=b', '--dedup-id', 'order-1'];
      const a = await cli(['add', name, 'created', '{"order":1}', '--topic', 'eu', ...withHeaders, '--json']);
      expect(a.code, a.stderr).toBe(0);
      const { id } = JSON.parse(a.stdout) as { id: string };
      // The same dedup ID again: nothing added, the first add's ID printed.
      const again = await cli(['add', name, 'created', '{"order":1}', '--dedup-id', 'order-1']);
      expect({ code: again.code, id: again.stdout.trim() }).toEqual({ code: 0, id });
      // Bad usage, said before anything is stored (exit 2).
      const bad = await Promise.all([
        cli(['add', name, 'x', 'p', '--header', 'no-equals-sign']),
        cli(['add', name, 'x', 'p', '--header', 'bad name=v']),
      ]);
      expect(bad.map((r) => [r.code, lines(r.stderr).length])).toEqual([
        [2, 1],
        [2, 1],
      ]);
      expect(bad[0]?.stderr).toContain('--header takes name=value');
      expect(bad[1]?.stderr).toContain('header name "bad name"');
      const b = await cli(['add', name, 'deleted', 'plain text']);
      expect(b.code, b.stderr).toBe(0);
      const idB = b.stdout.trim();
      expect(idB).toMatch(/^\d+-\d+$/);

      const all = await cli(['tail', name, '--from', 'oldest', '--count', '2', '--json']);
      expect(all.code, all.stderr).toBe(0);
      const events = lines(all.stdout).map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(events).toEqual([
        expect.objectContaining({
          id,
          event: 'created',
          topic: 'eu',
          headers: { traceparent: tp, tenant: 'a=b' },
          payload: '{"order":1}',
        }),
        expect.objectContaining({ id: idB, event: 'deleted', topic: null, headers: {}, payload: 'plain text' }),
      ]);

      const eu = await cli(['tail', name, '--from', 'oldest', '--topic', 'eu', '--count', '1', '--json']);
      expect(eu.code, eu.stderr).toBe(0);
      expect(lines(eu.stdout).map((l) => (JSON.parse(l) as { id: string }).id)).toEqual([id]);
    } finally {
      await c.cmd('DEL', `pulse:stream:${name}`);
    }
  });

  it('tails live: an event added after the tail started is printed', async ({ expect }) => {
    const name = uniqueName('cli');
    let added = '';
    try {
      const r = await cli(['tail', name, '--count', '1', '--json'], {
        started: async () => {
          // The reader's own connection exists once its start position is resolved.
          await waitFor(async () => String(await c.cmd('CLIENT', 'LIST')).includes(`name=pulse:reader:${name} `), {
            timeout: 30_000,
            what: 'the tail reader connection',
          });
          added = String(await c.cmd('XADD', `pulse:stream:${name}`, '*', 'n', 'live', 'p', 'now'));
        },
      });
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ id: added, event: 'live', payload: 'now' });
    } finally {
      await c.cmd('DEL', `pulse:stream:${name}`);
    }
  });

  it('never writes terminal control characters from stream, sink or consumer names', async ({ expect }) => {
    const esc = '\u001b]0;pwned\u0007\u001b[31mRED\u001b[0m';
    const name = uniqueName('esc');
    const key = `pulse:stream:${name}`;
    const odd = `${key}${esc}`;
    await c.cmd('XADD', key, '*', 'n', 'e', 'p', 'x');
    await c.cmd('XADD', odd, '*', 'n', 'e', 'p', 'x');
    await c.cmd('XGROUP', 'CREATE', key, `g${esc}`, '0');
    await c.cmd('XREADGROUP', 'GROUP', `g${esc}`, `c${esc}`, 'COUNT', '1', 'STREAMS', key, '>');
    try {
      for (const args of [['streams'], ['stream', name], ['sinks', name], ['pending', name, `g${esc}`]]) {
        const r = await cli(args);
        expect(r.code, `${args[0]}: ${r.stderr}`).toBe(0);
        const control = [...r.stdout].filter((ch) => {
          const code = ch.charCodeAt(0);
          return (code < 0x20 && ch !== '\n' && ch !== '\t') || code === 0x7f;
        });
        expect(control, args[0]).toEqual([]);
      }
      // Shown escaped, so the name can still be read.
      expect((await cli(['sinks', name])).stdout).toContain('g\\u001b]0;pwned');
    } finally {
      await c.cmd('DEL', key, odd);
    }
  });

  it('refuses a key that is not a pulse stream', async ({ expect }) => {
    const name = uniqueName('cli');
    await c.cmd('SET', `pulse:stream:${name}`, 'not a stream');
    try {
      for (const args of [
        ['stream', name],
        ['tail', name, '--count', '1'],
        ['add', name, 'e', 'p'],
        ['pending', name, 's'],
      ]) {
        const r = await cli(args);
        expect(r.code, r.stderr).toBe(1);
        expect(lines(r.stderr)).toEqual([expect.stringContaining('is not a pulse stream')]);
        expect(noStack(r.stderr)).toBe(true);
      }
      const missing = await cli(['stream', `${name}-missing`]);
      expect(missing.code, missing.stderr).toBe(1);
      expect(lines(missing.stderr)).toEqual([expect.stringContaining('does not exist')]);
    } finally {
      await c.cmd('DEL', `pulse:stream:${name}`);
    }
  });

  it('lists, shows and replays dead letters', async ({ expect }) => {
    const name = uniqueName('cli');
    const key = `pulse:stream:${name}`;
    const deadKey = `pulse:stream:${name}:dead`;
    const bytes = Buffer.from([0, 255, 254, 7]);
    const meta = (sink: string, sourceId: string) => [
      'source_stream',
      name,
      'source_sink',
      sink,
      'source_id',
      sourceId,
      'deliveries',
      '5',
      'reason',
      'max deliveries reached',
    ];
    await c.cmd('XADD', key, '*', 'n', 'first', 'p', 'x');
    const d1 = String(
      await c.cmd('XADD', deadKey, '*', 'n', 'poison', 'p', bytes, 't', 'eu', 'h.tenant', 'acme', ...meta('billing', '1-1')),
    );
    const d2 = String(await c.cmd('XADD', deadKey, '*', 'n', 'other', 'p', 'text', ...meta('audit', '1-2')));
    try {
      const list = await cli(['dead', name, '--json']);
      expect(list.code, list.stderr).toBe(0);
      expect(JSON.parse(list.stdout)).toEqual([
        expect.objectContaining({
          id: d1,
          event: 'poison',
          topic: 'eu',
          headers: { tenant: 'acme' },
          sourceSink: 'billing',
          sourceId: '1-1',
          deliveries: 5,
        }),
        expect.objectContaining({ id: d2, event: 'other', headers: {}, sourceSink: 'audit', payload: 'text' }),
      ]);
      const human = await cli(['dead', 'list', name]);
      expect(human.code, human.stderr).toBe(0);
      expect(human.stdout).toContain('max deliveries reached');

      const show = await cli(['dead', 'show', name, d1, '--json']);
      expect(show.code, show.stderr).toBe(0);
      expect(JSON.parse(show.stdout)).toMatchObject({
        id: d1,
        sourceStream: name,
        reason: 'max deliveries reached',
        encoding: 'base64',
        payload: bytes.toString('base64'),
      });
      const shown = await cli(['dead', 'show', name, d1]);
      expect(shown.code, shown.stderr).toBe(0);
      expect(shown.stdout).toMatch(/headers\s+tenant=acme/);
      const notFound = await cli(['dead', 'show', name, '1-1']);
      expect(notFound.code, notFound.stderr).toBe(1);
      expect(lines(notFound.stderr)).toEqual([expect.stringContaining('no dead letter 1-1')]);

      const replay = await cli(['dead', 'replay', name, '--sink', 'billing', '--json']);
      expect(replay.code, replay.stderr).toBe(0);
      const result = JSON.parse(replay.stdout) as { replayed: number; ids: string[] };
      expect(result.replayed).toBe(1);
      expect(result.ids).toHaveLength(1);
      // Back in the source stream with its exact bytes and topic, and gone from the dead-letter stream.
      const back = (await (c.redis as import('ioredis').Redis).xrangeBuffer(key, result.ids[0] ?? '', '+')) as Array<
        [Buffer, Buffer[]]
      >;
      expect(back).toHaveLength(1);
      const fields = back[0]?.[1].map((f) => f.toString('latin1')) ?? [];
      expect(fields).toEqual(['n', 'poison', 'p', bytes.toString('latin1'), 't', 'eu', 'h.tenant', 'acme']);
      // Only the billing letter went back.
      expect(((await c.cmd('XRANGE', deadKey, '-', '+')) as Array<[string]>).map((e) => e[0])).toEqual([d2]);

      const rest = await cli(['dead', 'replay', name]);
      expect(rest.code, rest.stderr).toBe(0);
      expect(rest.stdout).toContain('replayed 1 dead letter');
      expect(await c.cmd('XLEN', deadKey)).toBe(0);
      expect(await c.cmd('XLEN', key)).toBe(3);
      // A stream that does not exist, with no dead letters: an error, as `stream` and `destroy` give.
      for (const json of [[], ['--json']]) {
        const none = await cli(['dead', 'replay', uniqueName('nosuch'), ...json]);
        expect(none.code).toBe(1);
        expect(lines(none.stderr)).toEqual([expect.stringContaining('no stream')]);
      }
    } finally {
      await c.cmd('DEL', key, deadKey);
    }
  });

  it('destroys a stream with --yes, and refuses without it when stdin is not a terminal', async ({ expect }) => {
    const name = uniqueName('cli');
    const key = `pulse:stream:${name}`;
    await c.cmd('XADD', key, '*', 'n', 'a', 'p', '1');
    try {
      const refused = await cli(['destroy', name]);
      expect(refused.code, refused.stderr).toBe(2);
      expect(lines(refused.stderr)).toEqual([expect.stringContaining('--yes')]);
      expect(await c.cmd('EXISTS', key)).toBe(1);

      const done = await cli(['destroy', name, '--yes', '--json']);
      expect(done.code, done.stderr).toBe(0);
      expect(JSON.parse(done.stdout)).toEqual({ destroyed: name });
      expect(await c.cmd('EXISTS', key)).toBe(0);

      const again = await cli(['destroy', name, '--yes']);
      expect(again.code, again.stderr).toBe(1);
      expect(again.stderr).toContain('does not exist');
    } finally {
      await c.cmd('DEL', key);
    }
  });

  it('starts and removes a throwaway redis-server when no Redis is named', async ({ expect }) => {
    const r = await cli(['streams', '--json'], { embedded: true });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([]);
    const port = Number(/port (\d+)/.exec(r.stderr)?.[1]);
    expect(port).toBeGreaterThan(0);
    expect(await listening(port)).toBe(false);

    // add stores what it is given: on the throwaway server the event went with it, after printing
    // an ID and exiting 0 (outside trial). Refused as bad usage, before any server starts.
    const add = await cli(['add', 'demo-stream', 'e', 'p', '--json'], { embedded: true });
    expect([add.code, add.stdout]).toEqual([2, '']);
    expect(add.stderr).toMatch(/add needs your Redis: pass --redis .* or set REDIS_URL/);
    expect(add.stderr).not.toMatch(/throwaway redis-server on port/);
  });

  it('explains how to get Redis when redis-server is not installed', async ({ expect }) => {
    const r = await cli(['streams'], { embedded: true, env: { PATH: '/nonexistent-dir-for-pulse-cli-test' } });
    expect(r.code, r.stderr).toBe(1);
    const [line, ...more] = lines(r.stderr);
    expect(more).toEqual([]);
    expect(line).toContain('sudo apt-get install redis-server');
    expect(line).toContain('brew install redis');
    expect(line).toContain('docker run -p 6379:6379 redis');
    expect(line).toContain('--redis redis://host:6379');
    expect(line).toContain('REDIS_URL');
  });
});
