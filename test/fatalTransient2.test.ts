/**
 * Review of 741df42 (refusals no retry can fix end the sink): transient
 * server conditions must not end a healthy sink. Each test runs a sink with a
 * short grace period and nacks (so sweeps, claims, holds, nacks and liveness
 * all run), applies a disruption, then checks that the sink is still open and
 * handles new events, and that nothing logged 'sink stopped'.
 */
import { describe, expect, it } from 'vitest';
import { type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, waitFor, within } from './support/clients.js';
import { env } from './support/fatalEnv.js';

const BLOCK = 100;
const GRACE = 400;

type Env = Awaited<ReturnType<typeof env>>;

async function liveSink(e: Env, streamOptions: Record<string, unknown> = {}) {
  const s = new Stream(e.name, e.admin.redis, { logger: e.logger, ...streamOptions });
  const sink = await s.newSink('g', { blockMs: BLOCK, ackGracePeriodMs: GRACE, maxDeliveries: 50, startAt: 'oldest' });
  const handled = new Map<string, number>();
  const run = sink.process(
    async (ev: SinkEvent) => {
      handled.set(ev.text(), (handled.get(ev.text()) ?? 0) + 1);
      // Every third event fails its first delivery: nacks and claims keep running.
      if (ev.deliveryCount === 1 && Number(ev.text().split('-')[1]) % 3 === 0) throw new Error('first try fails');
    },
    { retry: false, concurrency: 4 },
  );
  const runOutcome = run.then(
    () => 'resolved',
    (err: unknown) => `rejected: ${String(err)}`,
  );
  let seq = 0;
  const addSome = async (n: number, tag: string): Promise<string[]> => {
    const out: string[] = [];
    for (let i = 0; i < n; i++) {
      const p = `${tag}-${seq++}`;
      await s.add('e', p);
      out.push(p);
    }
    return out;
  };
  const healthy = async (what: string) => {
    const later = await addSome(10, `after-${what}`);
    await waitFor(() => later.every((p) => handled.has(p)), { timeout: 15_000, what: `events after ${what} handled` });
    const stopped = e.lines.filter((l) => /stopped/.test(String(l.msg)) || l.level === 'error');
    expect({ closed: sink.isClosed(), stopped: stopped.map((l) => [l.msg, JSON.stringify(l.obj).slice(0, 300)]) }).toEqual({
      closed: false,
      stopped: [],
    });
  };
  e.defer(async () => {
    await within(sink.close(), 8000, 'close');
    await within(run, 8000, 'process');
  });
  return { s, sink, handled, addSome, healthy, runOutcome };
}

describe.concurrent.each(CLIENT_KINDS)('review fix: unusual but valid states do not end a sink (%s)', (kind) => {
  it('OOM (maxmemory below use, noeviction) for 1.5 s, then lifted', async (ctx) => {
    const e = await env(ctx, kind);
    const x = await liveSink(e);
    await x.addSome(30, 'pre');
    await new Promise((r) => setTimeout(r, 200));
    await e.admin.cmd('CONFIG', 'SET', 'maxmemory-policy', 'noeviction');
    await e.admin.cmd('CONFIG', 'SET', 'maxmemory', '1');
    await new Promise((r) => setTimeout(r, 1500));
    await e.admin.cmd('CONFIG', 'SET', 'maxmemory', '0');
    await x.healthy('OOM');
  });

  it('stream trimmed to 0 with events pending, repeatedly', async (ctx) => {
    const e = await env(ctx, kind);
    const x = await liveSink(e);
    for (let i = 0; i < 5; i++) {
      await x.addSome(20, `t${i}`);
      await new Promise((r) => setTimeout(r, 30));
      await e.admin.cmd('XTRIM', x.s.key, 'MAXLEN', '0');
      await new Promise((r) => setTimeout(r, 300));
    }
    await x.healthy('XTRIM 0');
  });

  it('group entries-read made unknown (SETID without ENTRIESREAD, XDEL in the middle)', async (ctx) => {
    const e = await env(ctx, kind);
    const x = await liveSink(e);
    for (let i = 0; i < 3; i++) {
      await x.addSome(20, `s${i}`);
      const r = (await e.admin.cmd('XRANGE', x.s.key, '-', '+', 'COUNT', 5)) as unknown[][];
      if (r[2]) await e.admin.cmd('XDEL', x.s.key, String(r[2][0]));
      await e.admin.cmd('XGROUP', 'SETID', x.s.key, 'g', '$');
      await new Promise((r2) => setTimeout(r2, 500));
    }
    await x.healthy('SETID');
  });

  it('IDs near the top of the range (ms 2^64-2)', async (ctx) => {
    const e = await env(ctx, kind);
    const x = await liveSink(e);
    await x.addSome(10, 'pre');
    await new Promise((r) => setTimeout(r, 300));
    await e.admin.cmd('XADD', x.s.key, '18446744073709551614-0', 'n', 'e', 'p', 'big-0');
    await new Promise((r) => setTimeout(r, 1500));
    await x.healthy('huge IDs');
  });

  it('CLIENT PAUSE WRITE 1500', async (ctx) => {
    const e = await env(ctx, kind);
    const x = await liveSink(e);
    await x.addSome(30, 'pre');
    await e.admin.cmd('CLIENT', 'PAUSE', '1500', 'WRITE');
    await new Promise((r) => setTimeout(r, 1700));
    await x.healthy('CLIENT PAUSE');
  });

  it('replica of another server for a while (READONLY, full sync), then primary again', async (ctx) => {
    const e = await env(ctx, kind);
    const other = await env(ctx, kind);
    const x = await liveSink(e);
    await x.addSome(20, 'pre');
    const u = new URL(other.server.url);
    await e.admin.cmd('REPLICAOF', u.hostname, u.port);
    await new Promise((r) => setTimeout(r, 1500));
    await e.admin.cmd('REPLICAOF', 'NO', 'ONE');
    await x.healthy('REPLICAOF');
  });
});
