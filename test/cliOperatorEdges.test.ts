/**
 * What an outside trial of the command line found an operator would hit
 * (session 28), each failing before its fix: options in the Redis URL's
 * query (`?db=`, `?password=`) passed the database and password checks and
 * were printed unmasked; `tail --from` read a time without a zone as local
 * time and took `5` or `2024-02-30` as dates; `dead <typo>` said "no dead
 * letters" with exit 0; `dead --json` stopped at --count without a word; an
 * event name could forge a topic, headers or the payload in a tail line; and
 * SIGHUP left the throwaway redis-server running.
 */
import { spawn } from 'node:child_process';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { buildCli, cli, lines, MAIN, noStack } from './support/cli.js';
import { connect, sharedUrl, type TestClient, uniqueName, waitFor } from './support/clients.js';
import { addDeadLetters } from './support/dashboard.js';

beforeAll(buildCli, 120_000);

describe.concurrent('command line: operator edges', { timeout: 90_000 }, () => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect('ioredis');
  });
  afterAll(() => c?.close());

  // URL query parameters ioredis honours (?db=, ?password=) passed the CLI's checks and masking.
  it('refuses options in the URL query (exit 2, nothing written), and never prints a password given there', async ({
    expect,
  }) => {
    const name = uniqueName('cliq');
    try {
      for (const query of ['?db=99', '?db=abc', '?password=hunter2']) {
        const r = await cli(['add', name, 'e', 'p'], { redis: `${sharedUrl()}${query}` });
        expect(r.code, r.stderr).toBe(2);
        expect(r.stderr).toMatch(/query .* not supported/);
        expect(noStack(r.stderr), r.stderr).toBe(true);
        expect(`${r.stdout}${r.stderr}`).not.toContain('hunter2');
      }
      expect(await c.cmd('EXISTS', `pulse:stream:${name}`)).toBe(0);
    } finally {
      await c.cmd('DEL', `pulse:stream:${name}`, `pulse:stream:${name}:lifecycle`);
    }
  });

  // 2. tail --from accepts V8's legacy date guesses and reads zone-less times in local time.
  it.each([['5'], ['-1'], ['orders 3'], ['2024-02-30']])('tail --from %j is bad usage (exit 2)', async (from) => {
    const r = await cli(['tail', uniqueName('clifrom'), '--from', from, '--count', '1'], { timeoutMs: 8000 });
    expect([r.code, r.stdout], r.stderr).toEqual([2, '']);
  });

  it('reads a --from time without a zone as UTC, the zone of every time the CLI prints', async ({ expect }) => {
    const name = uniqueName('clifrom');
    const key = `pulse:stream:${name}`;
    try {
      await c.cmd('XADD', key, '1700000000000-0', 'n', 'e', 'p', 'a');
      await c.cmd('XADD', key, '1700000001000-0', 'n', 'e', 'p', 'b');
      // `stream` prints the first entry's time as 2023-11-14 22:13:20 (UTC); paste it back:
      const r = await cli(['tail', name, '--from', '2023-11-14 22:13:20', '--count', '2'], {
        env: { TZ: 'America/New_York' },
        timeoutMs: 10_000,
      });
      expect(r.code, r.stderr).toBe(0);
      expect(lines(r.stdout).map((l) => l.split(' ').pop())).toEqual(['a', 'b']);
    } finally {
      await c.cmd('DEL', key);
    }
  });

  // 3. dead <typo> says "no dead letters", exit 0; dead replay/stream/sinks/pending/dead show exit 1.
  it('dead list of a stream that does not exist and has no dead letters fails, as dead replay does', async ({ expect }) => {
    const absent = uniqueName('clinosuch');
    const text = await cli(['dead', absent]);
    expect(text.code, text.stdout).toBe(1);
    expect(text.stderr).toMatch(/no stream .* and no dead letters/);
    const json = await cli(['dead', absent, '--json']);
    expect([json.code, json.stdout]).toEqual([1, '']);
  });

  // 4. tail text lines: an event name (or topic) can forge the [topic] and {headers} fields.
  it('an event name cannot pass for a topic, headers or the payload in a tail line', async ({ expect }) => {
    const name = uniqueName('cliforge');
    const key = `pulse:stream:${name}`;
    try {
      await c.cmd('XADD', key, '*', 'n', 'order.created [eu] {tenant=acme}', 'p', '{"amount":1}');
      await c.cmd('XADD', key, '*', 'n', 'order.created', 't', 'eu', 'h.tenant', 'acme', 'p', '{"amount":1}');
      await c.cmd('XADD', key, '*', 'n', '', 'p', 'refund {"amount":1}');
      await c.cmd('XADD', key, '*', 'n', 'refund', 'p', '{"amount":1}');
      const r = await cli(['tail', name, '--from', 'oldest', '--count', '4', '--headers']);
      expect(r.code, r.stderr).toBe(0);
      const rest = lines(r.stdout).map((l) => l.split(' ').slice(2).join(' '));
      expect(new Set(rest).size, rest.join('\n')).toBe(4); // four different events, four different lines
    } finally {
      await c.cmd('DEL', key);
    }
  });

  // 5. dead --json stops at --count (default 100) without a word; the text output says so.
  it('dead --json says when it listed only the first --count letters', async ({ expect }) => {
    const name = uniqueName('clidjson');
    const dead = `pulse:stream:${name}:dead`;
    try {
      await new Stream(name, c.redis as never).add('e', 'x');
      await addDeadLetters(
        c.redis as Redis,
        name,
        [1, 2, 3].map(() => ({ event: 'e', payload: 'x', sink: 's', sourceId: '1-0' })),
      );
      const r = await cli(['dead', name, '--count', '2', '--json']);
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toHaveLength(2);
      expect(r.stderr).toMatch(/--count/); // e.g. "first 2 of 3 dead letters; use --count for more"
    } finally {
      await c.cmd('DEL', `pulse:stream:${name}`, dead, `pulse:stream:${name}:lifecycle`);
    }
  });

  // SIGHUP (terminal closed, ssh dropped) left the throwaway redis-server running.
  it('removes the throwaway redis-server on SIGHUP', async ({ expect }) => {
    const child = spawn(process.execPath, [MAIN, 'tail', 'x'], {
      env: { ...process.env, REDIS_URL: '', NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const closed = new Promise((r) => child.on('close', r));
    await waitFor(() => /waiting for its first event/.test(stderr), { timeout: 20_000, what: 'the tail waiting' });
    const port = Number(/port (\d+)/.exec(stderr)?.[1]);
    // Its pid, asked while the CLI runs (after, the port may be another test's server).
    const server = await connect('ioredis', `redis://127.0.0.1:${port}`);
    const info = String(await server.cmd('INFO', 'server'));
    await server.close();
    const pid = Number(/process_id:(\d+)/.exec(info)?.[1]);
    expect(pid).toBeGreaterThan(0);
    child.kill('SIGHUP');
    expect(await closed).toBe(129);
    const alive = (): boolean => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    try {
      await waitFor(() => !alive(), { timeout: 5000, what: `the CLI's redis-server (pid ${pid}) gone` });
    } finally {
      // Started by this test's CLI: not left behind if it outlived it.
      if (alive()) process.kill(pid, 'SIGKILL');
    }
  });
});
