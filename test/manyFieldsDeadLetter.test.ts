/**
 * Outside review AI (defect 1; line numbers as of commit 41e36ff): an entry written by another producer (raw XADD, Go, another
 * version) with many fields (here 4000 `h.*` headers: a valid stream entry
 * that Redis takes and pulse reads) cannot be dead-lettered: the scripts that
 * move it (`deadLetterOne` in settle.ts, the claim script in scripts.ts) build
 * the XADD with `unpack(args)`, which Lua refuses past ~8000 values ("too many
 * results to unpack"). That reply is taken as a refusal "for good", and the
 * whole sink stops: one foreign entry ends `process()` and the sink, and
 * since the entry stays pending, every instance that claims it after the
 * grace period stops the same way.
 *
 * Expected: the entry is dead-lettered (reason `decode:` / max deliveries)
 * like any other, with all its fields, the events after it are handled, and
 * the sink keeps running.
 * Failed before the fix: 4 of 4 (both clients): process() rejected, the sink stopped.
 * Fixed: the scripts leave an entry with more fields than one Lua call takes
 * (`LUA_CALL_MAX_ARGS`) to the client's two-step move (added, then acked).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, type TestClient, uniqueName, waitFor } from './support/clients.js';

const WAIT = { timeout: 8000 };

/** `h.x0 v h.x1 v ...`: the fields of `n` headers. */
function manyHeaders(n: number): string[] {
  const fields: string[] = [];
  for (let i = 0; i < n; i++) fields.push(`h.x${i}`, 'v');
  return fields;
}

describe.concurrent.each(CLIENT_KINDS)('an entry with many fields (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  async function deadLetters(streamName: string): Promise<Array<Record<string, string>>> {
    const raw = (await c.cmd('XRANGE', `pulse:stream:${streamName}:dead`, '-', '+')) as Array<[string, unknown]>;
    return raw.map(([, fields]) => {
      const arr = (fields as unknown[]).map(String);
      const out: Record<string, string> = {};
      for (let i = 0; i + 1 < arr.length; i += 2) out[arr[i] as string] = arr[i + 1] as string;
      return out;
    });
  }

  it('process() on a typed stream: a foreign entry with 4000 headers that does not decode is dead-lettered, the sink runs on', async (ctx) => {
    const s = new Stream<{ e: { id: number } }>(uniqueName('revAImany'), c.redis, { codec: 'json', maxLen: 0 });
    ctx.onTestFinished(async () => {
      await s.destroy().catch(() => {});
      await c.cmd('DEL', `pulse:stream:${s.name}:dead`);
    });
    const bad = String(await c.cmd('XADD', s.key, '*', 'n', 'e', 'p', '{not json', ...manyHeaders(4000)));
    const good = await s.add('e', { id: 1 });
    const sink = await s.newSink('k', { startAt: 'oldest', blockMs: 100, ackGracePeriodMs: 1000 });
    ctx.onTestFinished(() => sink.close());
    const handled: string[] = [];
    const ac = new AbortController();
    let outcome = 'running';
    const run = sink
      .process((ev) => void handled.push(ev.id), { signal: ac.signal })
      .then(
        () => {
          outcome = 'resolved';
        },
        (err: unknown) => {
          outcome = `rejected: ${String(err)}`;
        },
      );
    await waitFor(async () => outcome !== 'running' || ((await deadLetters(s.name)).length === 1 && handled.length === 1), {
      ...WAIT,
      what: 'the bad entry dead-lettered and the good one handled, or process() ending',
    });
    // Before a fix: rejected with "... ERR ... too many results to unpack ...", and the sink is closed.
    expect(outcome).toBe('running');
    expect(sink.isClosed()).toBe(false);
    const letters = await deadLetters(s.name);
    expect(letters.map((l) => [l.source_id, l.reason?.startsWith('decode:')])).toEqual([[bad, true]]);
    expect(Object.keys(letters[0] ?? {}).filter((k) => k.startsWith('h.'))).toHaveLength(4000);
    expect(handled).toEqual([good]);
    ac.abort();
    await run;
  });

  it('maxDeliveries: a foreign entry with 4000 headers never acked is dead-lettered, the sink keeps delivering', async (ctx) => {
    const s = new Stream(uniqueName('revAImany'), c.redis, { maxLen: 0 });
    ctx.onTestFinished(async () => {
      await s.destroy().catch(() => {});
      await c.cmd('DEL', `pulse:stream:${s.name}:dead`);
    });
    const poison = String(await c.cmd('XADD', s.key, '*', 'n', 'poison', 'p', 'x', ...manyHeaders(4000)));
    const sink = await s.newSink('k', { startAt: 'oldest', blockMs: 100, ackGracePeriodMs: 300, maxDeliveries: 2 });
    ctx.onTestFinished(() => sink.close());
    const acked: string[] = [];
    let outcome = 'running';
    const loop = (async () => {
      for await (const ev of sink) {
        // The poison is never acked: after 2 deliveries it must go to the dead-letter stream.
        if (ev.eventName !== 'poison') {
          await ev.ack();
          acked.push(ev.id);
        }
      }
    })().then(
      () => {
        outcome = 'ended';
      },
      (err: unknown) => {
        outcome = `ended: ${String(err)}`;
      },
    );
    await waitFor(async () => outcome !== 'running' || (await deadLetters(s.name)).length === 1, {
      ...WAIT,
      what: 'the poison dead-lettered, or the loop ending',
    });
    // Before a fix: the claim script fails ("too many results to unpack") and the sink stops.
    expect(outcome).toBe('running');
    const later = await s.add('later', 'y');
    await waitFor(() => outcome !== 'running' || acked.includes(later), { ...WAIT, what: 'the event added after it' });
    expect(outcome).toBe('running');
    const [letter] = await deadLetters(s.name);
    expect([letter?.source_id, letter?.deliveries]).toEqual([poison, '2']);
    expect(Object.keys(letter ?? {}).filter((k) => k.startsWith('h.'))).toHaveLength(4000);
    await sink.close();
    await loop;
  });
});
