/**
 * README "Redis permissions": the two ACL rules it gives are complete. An
 * application user with the first publishes, consumes through a sink (acks,
 * redelivery, dead letters, replay), reads and destroys, and Redis refused it
 * no command (ACL LOG stays empty); a user with the read-only rule reads with
 * a Reader and inspects with the CLI, and its add is refused, typed, with
 * nothing stored.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { PulseError, readDeadLetters, replayDeadLetters, type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { buildCli, cli } from './support/cli.js';
import { CLIENT_KINDS, take, waitFor, within } from './support/clients.js';
import { env, rejectionOf } from './support/fatalEnv.js';

/**
 * The two rules of README "Redis permissions", read from the README itself so
 * that the test checks what users copy: the rules after `ACL SETUSER <user> on >secret`,
 * each on one line (redis-cli takes each line pasted as a command: a rule
 * split over two ran its first half only, and refused the second).
 */
function readmeRules(): { app: string[]; viewer: string[] } {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const section = readme.slice(readme.indexOf('## Redis permissions'), readme.indexOf('## Command line'));
  const rules = [...section.matchAll(/```\nACL SETUSER (\w+) on >secret ([^`\n]+)\n```/g)].map(
    (m) => [m[1], (m[2] ?? '').split(/\s+/).filter(Boolean)] as const,
  );
  const of = (user: string): string[] => {
    const found = rules.find(([u]) => u === user);
    if (!found) throw new Error(`README "Redis permissions" has no rule for ${user}`);
    return found[1];
  };
  return { app: of('app'), viewer: of('viewer') };
}

const { app: APP, viewer: READ_ONLY } = readmeRules();

/** Commands Redis refused since the last `ACL LOG RESET`, as `command: reason` lines. */
async function refused(admin: { cmd(...args: string[]): Promise<unknown> }): Promise<string[]> {
  const log = (await admin.cmd('ACL', 'LOG')) as unknown[];
  return log.map((entry) => {
    const flat = Array.isArray(entry)
      ? entry.map(String)
      : Object.entries(entry as object)
          .flat()
          .map(String);
    const at = (k: string) => flat[flat.indexOf(k) + 1];
    return `${at('object')}: ${at('reason')} (${at('context')})`;
  });
}

describe.concurrent.each(CLIENT_KINDS)('Redis permissions (%s)', (kind) => {
  it('the application rule covers add (dedupId, headers, TTL, maxLen), a sink with redelivery and dead letters, replay, a reader and destroy', async (ctx) => {
    const e = await env(ctx, kind);
    const { client } = await e.user(...APP);
    await e.admin.cmd('ACL', 'LOG', 'RESET');
    const s = new Stream(e.name, client.redis, { logger: e.logger, maxLen: 1000, ttlMs: 60_000 });
    const sink = await s.newSink('g', { blockMs: 100, ackGracePeriodMs: 1000, maxDeliveries: 2 });
    const reader = await s.newReader({ blockMs: 100 });
    const sub = reader.subscribe();
    const first = await s.add('e', 'poison', { dedupId: 'd1', headers: { k: 'v' } });
    expect(await s.add('e', 'poison', { dedupId: 'd1' })).toBe(first);
    await s.add('e', 'ok');
    expect((await take(sub, 2)).map((ev) => ev.text())).toEqual(['poison', 'ok']);
    const seen: string[] = [];
    const run = sink.process(
      async (ev: SinkEvent) => {
        seen.push(ev.text());
        if (ev.text() === 'poison') throw new Error('fails every time');
      },
      { retry: false },
    );
    const dead = await waitFor(
      async () => {
        const letters = await readDeadLetters(s);
        return letters.length === 1 ? letters : undefined;
      },
      { timeout: 15_000, what: 'the poison event dead-lettered' },
    );
    expect(dead[0]?.headers).toEqual({ k: 'v' });
    expect(seen.filter((t) => t === 'poison')).toHaveLength(2);
    expect(seen).toContain('ok');
    expect(await replayDeadLetters(s)).toHaveLength(1);
    await waitFor(() => seen.filter((t) => t === 'poison').length >= 3, { timeout: 15_000, what: 'the replayed event' });
    await within(sink.close(), 8000, 'sink close');
    await within(
      run.catch(() => {}),
      8000,
      'process',
    );
    await within(reader.close(), 8000, 'reader close');
    await s.destroy();
    expect(await e.admin.cmd('EXISTS', s.key)).toBe(0);
    expect(await refused(e.admin)).toEqual([]);
    // Only what the poison event says: no retried command, no refusal.
    const expected =
      /^(handler failed: event nacked|handler failed on its last allowed delivery \(maxDeliveries\): moving the event to the dead letters|event dead-lettered)$/;
    expect(e.lines.filter((l) => (l.level === 'warn' || l.level === 'error') && !expected.test(String(l.msg)))).toEqual([]);
  });

  it('the read-only rule reads with a Reader; its add is refused with NOPERM and stores nothing', async (ctx) => {
    const e = await env(ctx, kind);
    const { client } = await e.user(...READ_ONLY);
    const admin = new Stream(e.name, e.admin.redis);
    await admin.add('e', 'before');
    const s = new Stream(e.name, client.redis, { logger: e.logger });
    const reader = await s.newReader({ startAt: 'oldest', blockMs: 100 });
    const sub = reader.subscribe();
    await admin.add('e', 'after');
    expect((await take(sub, 2)).map((ev) => ev.text())).toEqual(['before', 'after']);
    await within(reader.close(), 8000, 'reader close');
    const err = await rejectionOf(s.add('e', 'refused'), 10_000, 'add');
    expect(err).toBeInstanceOf(PulseError);
    expect((err as PulseError).code).toBe('NOPERM');
    expect(await e.admin.cmd('XLEN', s.key)).toBe(2);
    // README: +eval gives a viewer no way to write (Redis checks a script's commands against the ACL).
    const written = await client.cmd('EVAL', "return redis.call('XADD', KEYS[1], '*', 'n', 'x')", '1', s.key).then(
      () => 'written',
      (e: Error) => e.message,
    );
    expect(written).toMatch(/can't run this command|NOPERM/);
    expect(await e.admin.cmd('XLEN', s.key)).toBe(2);
  });
});

describe('Redis permissions: the CLI', () => {
  it('inspects with the read-only rule: streams, stream, sinks, pending, dead', async (ctx) => {
    buildCli();
    const e = await env(ctx, 'ioredis');
    const { user } = await e.user(...READ_ONLY);
    const admin = new Stream(e.name, e.admin.redis);
    const sink = await admin.newSink('g', { startAt: 'oldest', blockMs: 100 });
    await admin.add('e', '{"n":1}');
    await sink.close();
    const url = new URL(e.server.url);
    url.username = user;
    url.password = 'pw';
    await e.admin.cmd('ACL', 'LOG', 'RESET');
    const runs = await Promise.all(
      [
        ['streams', '--json'],
        ['stream', e.name],
        ['sinks', e.name],
        ['pending', e.name, 'g'],
        ['dead', e.name],
      ].map((args) => cli(args, { redis: url.toString() })),
    );
    for (const r of runs) expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    expect(JSON.parse(runs[0]?.stdout ?? '')).toMatchObject([{ name: e.name, length: 1 }]);
    expect(await refused(e.admin)).toEqual([]);
  });
});
