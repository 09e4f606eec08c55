/**
 * An instance without the stream's lease, its handler holding an event as
 * the stream's key is deleted, then nacking it (outside review X, both
 * clients).
 *
 * An event pending at the last check, the instance's read blocked: counted
 * lost once. The DEL ended the blocked read with "UNBLOCKED the stream key no
 * longer exists", taken for a node change: the instance then remembered all
 * it had read as Redis-lost and its nack counted the event again, on top of
 * the estimate that had it (12/12 at 4569a65; a deleted key is no longer a
 * node change since f900dbb).
 *
 * An event read after the last check, the instance's read not blocked (its
 * buffer full, as under load): never silent. The lease holder's estimate
 * comes from its own last check: made before the event was added, it did
 * not count it, and the nack (resolving since it counts what Redis lost)
 * counted nothing either (6/6 before). Which of the two checks came last
 * cannot be told, so counting it on the nack could count it twice: it is
 * said to be maybe lost. The event the instance had buffered, read after
 * its own check, is counted by it (no estimate has it).
 */
import { describe, expect, it, type TestContext } from 'vitest';
import { type SinkEvent, Stream } from '../packages/pulse-streaming/src/index.js';
import { sinkKeys, sinkWideKeys } from '../packages/pulse-streaming/src/internal/keys.js';
import { CLIENT_KINDS, recordingLogger, stays, take, uniqueName, waitFor } from './support/clients.js';
import { ownServer } from './support/ownServer.js';

// The other instance reports once the holder has said nothing for a grace period (holderWatch.ts):
// the case where the holder reads nothing waits that long. 2 s leaves the holder, whose blocked read
// the DEL ends at once, room to mark its report first on a loaded machine.
const GRACE = 2000;
// Long: the keep-alive check (every grace / 4) must not run between the read of `y` and the DEL.
const LONG_GRACE = 8000;

// Both clients at once, each on a server of its own; the tests of one client one after the other.
describe.concurrent.each(CLIENT_KINDS)('a pending event held by a non-holder, its stream deleted, nacked (%s)', (kind) => {
  // Its own server: `CLIENT LIST` must see this test's reads only (the tests of this block run one at a time).
  const own = ownServer(kind);

  async function setup(ctx: TestContext) {
    const { logger, lines } = recordingLogger();
    const s = new Stream(uniqueName('nho'), own.c.redis, { maxLen: 0, logger });
    const sinkName = uniqueName('g');
    const keys = sinkKeys(s.name, sinkName);
    const sinks: Array<Awaited<ReturnType<typeof s.newSink>>> = [];
    ctx.onTestFinished(async () => {
      await Promise.all(sinks.map((x) => x.close().catch(() => {})));
      await s.destroy().catch(() => {});
    });
    const start = async (opts: object) => {
      const x = await s.newSink(sinkName, { startAt: 'oldest', blockMs: 5000, ackGracePeriodMs: GRACE, ...opts });
      sinks.push(x);
      return x;
    };
    const said = () =>
      lines
        .filter((l) => l.level !== 'debug')
        .map((l) => `${l.level} ${l.msg} ${JSON.stringify(l.obj)}`)
        .join('\n');
    return { s, keys, sinkName, start, said, lines };
  }

  for (const holderReads of [true, false]) {
    it.sequential(`holder ${holderReads ? 'reads (and reports)' : 'reads nothing (the other reports)'}: counted lost once`, async (ctx) => {
      const { s, keys, sinkName, start, said } = await setup(ctx);
      const a = await start({});
      await waitFor(async () => String(await own.c.cmd('GET', keys.lease)) === a.consumerName, { what: 'a holds the lease' });
      const b = await start({ bufferSize: 1, maxPolled: 1 });
      await waitFor(async () => (await own.c.cmd('ZSCORE', keys.consumers, b.consumerName)) !== null, { what: "b's sweep" });
      await s.add('e', 'x1');
      const subB = b.subscribe();
      // b reads x1 and checks again (a full read): x1 is pending at that check, held by b's handler.
      const x1 = (await take(subB, 1))[0] as SinkEvent;
      if (holderReads) {
        // a's first read carries a check made now: x1 pending there too (the holder's estimate).
        const subA = a.subscribe();
        void (async () => {
          for await (const ev of subA) await ev.ack().catch(() => {});
        })();
      }
      await waitFor(
        async () =>
          String(await own.c.cmd('CLIENT', 'LIST'))
            .split('\n')
            .filter((l) => l.includes('cmd=xreadgroup') && / flags=\S*b/.test(l)).length === (holderReads ? 2 : 1),
        { what: 'the reads blocked' },
      );
      await own.c.cmd('DEL', s.key);
      await waitFor(() => said().includes('stream key is gone'), { what: 'the key found gone' });
      await x1.nack().catch(() => {});
      // The sink's one report of what went with the key (the holder's, or b's once the holder said nothing).
      await waitFor(async () => (await own.c.cmd('ZSCORE', sinkWideKeys(sinkName).reported, s.key)) !== null, {
        timeout: 2 * GRACE + 4000,
        what: 'the loss reported',
      });
      await waitFor(() => a.counters.lost + b.counters.lost >= 1, { what: 'x1 counted' });
      await stays(() => a.counters.lost + b.counters.lost <= 1, 1000, 'x1 counted once').catch((e: Error) => {
        throw new Error(`${e.message}: lost a=${a.counters.lost} b=${b.counters.lost}\n${said()}`);
      });
      expect(a.counters.lost + b.counters.lost).toBe(1);
    }, 40_000);
  }

  it.sequential('its nack resolves and says the event maybe lost; its buffered event is counted', async (ctx) => {
    const { s, keys, start, said, lines } = await setup(ctx);
    const a = await start({ ackGracePeriodMs: LONG_GRACE });
    await waitFor(async () => String(await own.c.cmd('GET', keys.lease)) === a.consumerName, { what: 'a holds the lease' });
    const b = await start({ bufferSize: 1, maxPolled: 1, ackGracePeriodMs: LONG_GRACE });
    await waitFor(async () => (await own.c.cmd('ZSCORE', keys.consumers, b.consumerName)) !== null, { what: "b's sweep" });
    // a handles what it gets at once; its only check is the one of its first read (the stream empty).
    const subA = a.subscribe();
    void (async () => {
      for await (const ev of subA) await ev.ack().catch(() => {});
    })();
    const subB = b.subscribe();
    const blocked = async () =>
      String(await own.c.cmd('CLIENT', 'LIST'))
        .split('\n')
        .filter((l) => l.includes('cmd=xreadgroup') && / flags=\S*b/.test(l)).length;
    // Events one at a time (whichever instance blocked first gets each) until b's handler holds
    // one (y) and b has another buffered (z): its buffer full, b's loop waits, no read of b blocks.
    let y: SinkEvent | undefined;
    for (let i = 0; i < 20 && !(y && subB.size === 1); i++) {
      await waitFor(async () => (await blocked()) >= 1, { what: 'a read blocked' });
      const [da, db] = [a.counters.delivered, b.counters.delivered];
      await s.add('e', `e${i}`);
      await waitFor(() => a.counters.delivered > da || b.counters.delivered > db, { what: `e${i} read` });
      if (b.counters.delivered > db && !y) y = (await take(subB, 1))[0] as SinkEvent;
    }
    expect(y).toBeDefined();
    expect(subB.size).toBe(1);
    await waitFor(async () => (await blocked()) === 1, { what: "only a's read blocked" });
    await own.c.cmd('DEL', s.key);
    let rejected: unknown;
    await (y as SinkEvent).nack().catch((e: unknown) => {
      rejected = e;
    });
    expect(rejected).toBeUndefined();
    // z (buffered, dropped) is counted; y (held, nacked) is said maybe lost, naming it.
    await waitFor(
      () =>
        a.counters.lost + b.counters.lost >= 1 &&
        lines.some((l) => l.level === 'warn' && /1 event\(s\) nacked after their stream or group was gone/.test(l.msg ?? '')),
      { timeout: LONG_GRACE + 4000, what: 'z counted lost and y said maybe lost' },
    ).catch((e: Error) => {
      throw new Error(`${e.message}: lost a=${a.counters.lost} b=${b.counters.lost}\n${said()}`);
    });
  }, 40_000);
});
