/**
 * README "Install": "with node-redis the library asks Redis with CLIENT INFO;
 * an ACL that refuses it leaves the database of the client's options, with a
 * warning". No test had an ACL refusing CLIENT INFO.
 */
import { createClient } from 'redis';
import { describe, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { take, uniqueName, waitFor } from './support/clients.js';
import { env } from './support/fatalEnv.js';

describe('node-redis, CLIENT INFO refused by an ACL', () => {
  it('sinks and readers use the database of the options (2), adds land there, and a warn line says so', async (ctx) => {
    const e = await env(ctx, 'node-redis');
    const user = uniqueName('u').replace(/-/g, '_');
    await e.admin.cmd('ACL', 'SETUSER', user, 'on', '>pw', '~*', '&*', '+@all', '-client|info');
    const url = new URL(e.server.url);
    url.username = user;
    url.password = 'pw';
    url.pathname = '/2';
    const client = createClient({ url: url.toString() });
    await client.connect();
    ctx.onTestFinished(() => client.destroy());
    // The ACL does refuse it.
    await expect(client.sendCommand(['CLIENT', 'INFO'])).rejects.toThrow(/NOPERM|permission/i);
    const s = new Stream(uniqueName('acl'), client, { logger: e.logger, maxLen: 0 });
    const sink = await s.newSink('g', { startAt: 'oldest', blockMs: 100, ackGracePeriodMs: 1000 });
    ctx.onTestFinished(() => sink.close());
    const reader = await s.newReader({ startAt: 'oldest', blockMs: 100 });
    ctx.onTestFinished(() => reader.close());
    const ids = [await s.add('e', 'x'), await s.add('e', 'y')];
    expect((await take(sink.subscribe(), 2)).map((ev) => ev.id)).toEqual(ids);
    expect((await take(reader.subscribe(), 2)).map((ev) => ev.id)).toEqual(ids);
    // Stored in database 2, nothing in database 0.
    const admin2 = createClient({ url: `${e.server.url}/2` });
    await admin2.connect();
    ctx.onTestFinished(() => admin2.destroy());
    expect(Number(await admin2.sendCommand(['XLEN', s.key]))).toBe(2);
    expect(Number(await e.admin.cmd('EXISTS', s.key))).toBe(0);
    await waitFor(() => e.lines.some((l) => l.level === 'warn' && /CLIENT INFO refused/.test(String(l.msg))), {
      timeout: 3000,
      what: 'the CLIENT INFO warning',
    });
  });
});
