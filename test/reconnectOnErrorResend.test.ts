/**
 * ioredis' `reconnectOnError` returning 2 (reconnect, then send the failed
 * command again: its README's recipe for a failover, keyed on `READONLY`)
 * was copied to the library's own connections by `duplicate()`. On a server
 * that is a replica, an add Redis refused (READONLY: not stored) was sent
 * again after the reconnect, then flushed as unanswered by the next one: it
 * rejected as "outcome unknown, the event may or may not be stored", and a
 * caller who trusted that and did not retry lost the event. A sink's reads
 * failed alike, and `READONLY` never reached its log. A command sent again
 * after a reconnect can also land after adds issued since (the order of
 * adds is kept, README; outside review AC's suspicion). The library's
 * connections keep the user's choice to reconnect, not the resend.
 *
 * Failed before the fix: the add rejected with ADD_OUTCOME_UNKNOWN; no READONLY in the sink's log.
 * Fixed: a `reconnectOnError` answer of 2 counts as 1 on the library's connections (`withoutResend`): the command fails with Redis' error.
 */
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { type Logger, Stream } from '../packages/pulse-streaming/src/index.js';
import { recordingLogger, uniqueName, waitFor, within } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';

describe('a user client whose reconnectOnError resends on READONLY (ioredis), on a server that is a replica', () => {
  it('an add rejects with the error instead of being sent again forever; a sink says its reads fail', async (ctx) => {
    const master = await RedisServer.start();
    ctx.onTestFinished(() => master.stop());
    const server = await RedisServer.start();
    ctx.onTestFinished(() => server.stop());
    const redis = new Redis(server.url, {
      lazyConnect: true,
      reconnectOnError: (err: Error) => (err.message.startsWith('READONLY') ? 2 : false),
    });
    redis.on('error', () => {});
    await redis.connect();
    ctx.onTestFinished(() => redis.disconnect());
    const { logger, lines } = recordingLogger();
    const s = new Stream(uniqueName('readonly'), redis, { logger: logger as Logger });
    const sink = await s.newSink('g', { blockMs: 100 });
    ctx.onTestFinished(() => within(sink.close(), 10_000, 'sink close'));
    const sub = sink.subscribe();
    ctx.onTestFinished(() => sink.unsubscribe(sub));
    // The server becomes a replica (of an empty master): every write is refused with READONLY.
    const port = new URL(master.url).port;
    // The master sends its (empty) snapshot at once: Redis' default diskless sync waits 5 s for more
    // replicas first, which met the 5 s wait below about one run in three.
    const m = new Redis(master.url);
    await m.config('SET', 'repl-diskless-sync-delay', '0');
    m.disconnect();
    await redis.call('REPLICAOF', '127.0.0.1', port);
    await waitFor(async () => /master_link_status:up/.test(String(await redis.call('INFO', 'replication'))), {
      timeout: 15_000,
      what: 'the replica linked',
    });
    const outcome = await within(
      s.add('e', 'x').then(
        () => 'stored',
        (e: Error) => `rejected: ${e.message} (${String((e as { code?: unknown }).code)})`,
      ),
      5000,
      'the add settled',
    );
    expect(outcome).toMatch(/^rejected: .*READONLY/);
    await waitFor(() => lines.some((l) => l.level === 'warn' && /READONLY/.test(JSON.stringify(l.obj ?? {}))), {
      what: 'the sink to log its refused reads',
    });
  }, 30_000);
});
