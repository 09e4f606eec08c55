/**
 * Review of 741df42 (refusals no retry can fix end the sink): transient
 * server conditions must not end a healthy sink. Each test runs a sink with a
 * short grace period and nacks (so sweeps, claims, holds, nacks and liveness
 * all run), applies a disruption, then checks that the sink is still open and
 * handles new events, and that nothing logged 'sink stopped'.
 */
import { describe, it } from 'vitest';
import { CLIENT_KINDS } from './support/clients.js';
import { env } from './support/fatalEnv.js';
import { liveSink } from './support/liveSink.js';

describe.concurrent.each(CLIENT_KINDS)('review fix: unusual but valid states do not end a sink (%s)', (kind) => {
  // The two longest cases first (~4-5 s each): vitest runs at most 5 of a file's tests at once, and
  // the file's 12 took ~43 s in all.
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
