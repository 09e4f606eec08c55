/**
 * Interoperability with real Go Pulse processes (goa.design/pulse/streaming),
 * both directions, for each Go Pulse version pinned in interop/go/versions
 * and both Node clients. The Go side is interop/go/main.go, built once per
 * version and cached (test/support/goInterop.ts, goSuite.ts); it prints what it added or
 * received as JSON lines, which are compared with what the Node side added or
 * received: IDs, order, names, topics, payload bytes (by hash) and times.
 *
 * Without a Go toolchain, or when the module proxy does not serve a pinned
 * version, that version's tests are reported as skipped with the reason in
 * their title. A version that fails to compile fails.
 */
import { beforeAll, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { connect, type TestClient, take, uniqueName, waitFor } from './support/clients.js';
import {
  allKeyTypes,
  fieldNames,
  interopEvents,
  type Norm,
  normAdded,
  normGo,
  normNode,
  pendingByGroup,
} from './support/goFixtures.js';
import { type GoAddSpec, payloadOf, runGo, startGo } from './support/goInterop.js';
import { describeGoVersions } from './support/goSuite.js';
import { RedisServer } from './support/redisServer.js';

const T = 60_000;

await describeGoVersions((g) => {
  const { bin, lifecycle, kind, on, goOpen } = g;
  let c: TestClient;
  beforeAll(() => {
    c = g.c;
  });
  const addAll = (s: Stream, specs: readonly GoAddSpec[]): Promise<Array<string | undefined>> =>
    Promise.all(specs.map((sp) => s.add(sp.name, sp.payload, sp.topic ? { topic: sp.topic } : undefined)));
  const norms = (specs: readonly GoAddSpec[], ids: ReadonlyArray<string | undefined>): Norm[] =>
    specs.map((sp, i) => normAdded(sp, ids[i] ?? 'missing'));

  it(
    'Go producer -> Node reader and Node sink: every event in order, exact bytes, names, topics, createdAt',
    async () => {
      const name = uniqueName('go2node');
      const s = new Stream(name, c.redis, { maxLen: 10_000 });
      const reader = await s.newReader({ startAt: 'oldest' });
      const rsub = reader.subscribe();
      const specs = interopEvents();
      // Go's add creates the key (so its TTL option applies); the sink comes after, from the oldest entry.
      const added = await runGo(bin, ['add', ...on(name), '-maxlen', '10000', '-ttl-ms', '600000'], specs, 'added');
      const want = norms(
        specs,
        added.map((l) => l.id),
      );
      const sink = await s.newSink('node', { startAt: 'oldest', ackGracePeriodMs: 20_000 });
      const ssub = sink.subscribe();

      expect((await take(rsub, specs.length, 15_000)).map(normNode)).toEqual(want);
      const got = await take(ssub, specs.length, 15_000);
      expect(got.map(normNode)).toEqual(want);
      await sink.ack(...got);
      expect(((await c.cmd('XPENDING', s.key, 'node')) as unknown[])[0]).toBe(0);
      // Go's layout is the one we read: n, p, and t only with a topic.
      for (const [i, sp] of specs.entries()) {
        expect(await fieldNames(c.cmd, s.key, want[i]?.id ?? '')).toEqual(sp.topic ? ['n', 'p', 't'] : ['n', 'p']);
      }
      expect(Number(await c.cmd('PTTL', s.key))).toBeGreaterThan(0);
      await reader.close();
      await sink.close();
      await s.destroy();
    },
    T,
  );

  it(
    'Node producer -> Go reader and Go sink: merged batches and lone XADDs, with and without topics, maxLen and TTL on both sides',
    async () => {
      const name = uniqueName('node2go');
      // With a TTL every add is a call of the addEvents script; without, an
      // awaited lone add is a plain XADD and adds of one tick are merged.
      const scripted = new Stream(name, c.redis, { maxLen: 10_000, ttlMs: 600_000 });
      const plain = new Stream(name, c.redis, { maxLen: 10_000 });
      const specs = interopEvents();
      const merged = await addAll(scripted, specs);
      const mergedNoTtl = await addAll(plain, specs);
      const lone: Array<string | undefined> = [];
      for (const sp of specs) lone.push(await plain.add(sp.name, sp.payload, sp.topic ? { topic: sp.topic } : undefined));
      const want = [...norms(specs, merged), ...norms(specs, mergedNoTtl), ...norms(specs, lone)];

      const args = [...on(name), '-maxlen', '10000', '-ttl-ms', '600000', '-start', 'oldest', '-count', String(want.length)];
      const goSinkName = uniqueName('go');
      // Held open: Go v1.1 destroys a sink's group when its last consumer closes (SEMANTICS.md section 2).
      const goSink = startGo(bin, ['sink', ...args, '-sink', goSinkName, '-hold'], undefined, true);
      try {
        await goSink.waitForOp('ready');
        const read = await runGo(bin, ['read', ...args], undefined, 'event');
        const sunk = await goSink.waitForOp('event', want.length);
        await goSink.waitForOp('done');
        expect(read.map(normGo)).toEqual(want);
        expect(sunk.map(normGo)).toEqual(want);
        expect(sunk.every((l) => l.stream === name && l.sink === goSinkName)).toBe(true);
        expect(((await c.cmd('XPENDING', scripted.key, goSinkName)) as unknown[])[0]).toBe(0);
        expect(Number(await c.cmd('PTTL', scripted.key))).toBeGreaterThan(0);
        goSink.release();
        await goSink.done;
      } finally {
        goSink.kill();
      }
      await scripted.destroy();
    },
    T,
  );

  it(
    "a Go sink and a Node sink on one stream each get every event; Go's keys and ours never collide",
    async () => {
      const server = await RedisServer.start();
      const pc = await connect(kind, server.url);
      try {
        const name = uniqueName('both');
        const s = new Stream(name, pc.redis);
        const ours = `{${s.key}}`;
        const specs = interopEvents();
        const keyTypes = (): Promise<Map<string, string>> => allKeyTypes(pc.cmd);

        // Phase 1: Go's sink alone on the stream, fed by Node. It stays open
        // to the end: Go v1.1 destroys a sink's group when its last consumer closes.
        const goSink = startGo(
          bin,
          ['sink', ...on(name, server.url), '-sink', 'go-sink', '-start', 'oldest', '-count', String(2 * specs.length), '-hold'],
          undefined,
          true,
        );
        try {
          await goSink.waitForOp('ready');
          const first = norms(specs, await addAll(s, specs));
          expect((await goSink.waitForOp('event', specs.length)).map(normGo)).toEqual(first);
          const goKeys = await keyTypes();
          goKeys.delete(s.key);
          expect([...goKeys.keys()].filter((k) => k.startsWith('{pulse:stream:'))).toEqual([]);

          // Phase 2: a Node sink joins; Go adds more; both sinks get them all.
          const nodeSink = await s.newSink('node-sink', { startAt: 'oldest' });
          const nsub = nodeSink.subscribe();
          const added = await runGo(bin, ['add', ...on(name, server.url)], specs, 'added');
          const second = norms(
            specs,
            added.map((l) => l.id),
          );
          expect((await goSink.waitForOp('event', 2 * specs.length)).map(normGo)).toEqual([...first, ...second]);
          await goSink.waitForOp('done');
          const nodeGot = await take(nsub, 2 * specs.length, 15_000);
          expect(nodeGot.map(normNode)).toEqual([...first, ...second]);
          await nodeSink.ack(...nodeGot);

          const after = await keyTypes();
          for (const [k, type] of after) {
            if (k === s.key || goKeys.has(k)) continue;
            // Ours: under the stream's hash tag, or sink-wide under the Node sink's (issue 20).
            const mine = k.startsWith(`${ours}:`) || k.startsWith('{pulse:sink:node-sink}:');
            expect(mine, `key ${k} (${type}) is neither Go's nor under ${ours} or the Node sink's tag`).toBe(true);
          }
          // Go's keys that are still there were not rewritten as another type.
          for (const [k, type] of goKeys) if (after.has(k)) expect(after.get(k)).toBe(type);
          expect(await pendingByGroup(pc.cmd, s.key)).toEqual({ 'go-sink': 0, 'node-sink': 0 });
          goSink.release();
          await goSink.done;
          await nodeSink.close();
        } finally {
          goSink.kill();
        }
      } finally {
        await pc.close();
        await server.stop();
      }
    },
    T,
  );

  it(
    "start positions: Go's oldest / newest / after-ID / at-a-time and ours land on the same first event (Go's <ms>-0 start excepted)",
    async () => {
      const name = uniqueName('start');
      const s = new Stream(name, c.redis);
      const t0 = Date.now() - 60_000;
      const ids = [`${t0}-0`, `${t0}-1`, `${t0 + 1000}-0`, `${t0 + 1000}-5`, `${t0 + 2000}-0`];
      for (const id of ids) await c.cmd('XADD', s.key, id, 'n', 'e', 'p', id);
      await goOpen(name);
      type Case = { go: string; node: 'oldest' | Date | { after: string }; node1st: string; go1st: string };
      const cases: Case[] = [
        { go: 'oldest', node: 'oldest', node1st: ids[0] ?? '', go1st: ids[0] ?? '' },
        { go: `after:${ids[1]}`, node: { after: ids[1] ?? '' }, node1st: ids[2] ?? '', go1st: ids[2] ?? '' },
        // SEMANTICS.md section 1: Go starts a time at `<ms>-0`, exclusive, so
        // it skips an entry with that exact ID; ours starts just before it.
        { go: `at:${t0 + 1000}`, node: new Date(t0 + 1000), node1st: ids[2] ?? '', go1st: ids[3] ?? '' },
      ];
      // One case at a time: a dozen Go processes at once on a loaded 2-core machine
      // once left one waiting past its timeout.
      for (const [i, cs] of cases.entries()) {
        const reader = await s.newReader({ startAt: cs.node });
        const sink = await s.newSink(`node-${i}`, { startAt: cs.node });
        const [goRead, goSunk, [r], [k]] = await Promise.all([
          runGo(bin, ['read', ...on(name), '-start', cs.go], undefined, 'event'),
          runGo(bin, ['sink', ...on(name), '-sink', uniqueName(`go-${i}`), '-start', cs.go], undefined, 'event'),
          take(reader.subscribe(), 1, 15_000),
          take(sink.subscribe(), 1, 15_000),
        ]);
        expect({ case: cs.go, node: [r?.id, k?.id], go: [goRead[0]?.id, goSunk[0]?.id] }).toEqual({
          case: cs.go,
          node: [cs.node1st, cs.node1st],
          go: [cs.go1st, cs.go1st],
        });
        await reader.close();
        await sink.close();
      }

      // Newest: the first event is one added after the reader or sink exists.
      const reader = await s.newReader();
      const sink = await s.newSink('node-newest');
      const goSink = startGo(bin, ['sink', ...on(name), '-sink', uniqueName('go-newest'), '-start', 'newest']);
      const goReader = startGo(bin, ['read', ...on(name), '-start', 'newest']);
      await Promise.all([goSink.waitForOp('ready'), goReader.waitForOp('ready')]);
      const rsub = reader.subscribe();
      const ssub = sink.subscribe();
      // Go's reader resolves "$" at its first XREAD, not when NewReader
      // returns: keep adding until it has read one, then check it is new.
      const after: string[] = [];
      await waitFor(
        async () => {
          after.push((await s.add('new', 'x')) ?? '');
          return goReader.lines.some((l) => l.op === 'event');
        },
        { timeout: 15_000, interval: 50, what: "Go reader's first event" },
      );
      const [goR] = (await goReader.done).filter((l) => l.op === 'event');
      const [goS] = (await goSink.done).filter((l) => l.op === 'event');
      expect(after).toContain(goR?.id);
      expect(goS?.id).toBe(after[0]);
      expect((await take(rsub, 1))[0]?.id).toBe(after[0]);
      expect((await take(ssub, 1))[0]?.id).toBe(after[0]);
      await reader.close();
      await sink.close();
      await s.destroy();
    },
    T,
  );

  // The last four at once: the first of them mostly waits for Go's ack grace period (3 s), the others
  // (a Go process or two each, on streams of their own) run meanwhile; at most five Go processes at once.
  it.concurrent(
    "Go's sink: what its first read brings before Subscribe waits for its ack grace period (README, Go services)",
    async () => {
      const name = uniqueName('gofirst');
      const s = new Stream(name, c.redis, { maxLen: 0 });
      await s.add('e', 'one');
      await s.add('e', 'two');
      const sinkName = uniqueName('go');
      const go = startGo(bin, [
        'sink',
        ...on(name),
        '-sink',
        sinkName,
        '-start',
        'oldest',
        '-count',
        '2',
        '-subscribe-delay-ms',
        '1000',
        '-ack-grace-ms',
        '3000',
        '-timeout-ms',
        '15000',
      ]);
      // Subscribed 1 s after NewSink, whose first read took both: they are delivered (pending)
      // but on no channel, so nothing came, and nothing comes before the grace period has passed
      // (3 s: 2 s after the subscribe, for this side to see 'ready' and look; was 5 s with the
      // subscribe at 2 s).
      await go.waitForOp('ready');
      const pending = (await c.cmd('XPENDING', s.key, sinkName)) as unknown[];
      expect(Number(pending[0])).toBe(2);
      expect(go.lines.filter((l) => l.op === 'event')).toEqual([]);
      // Then Go claims them again (for the same consumer) and they come.
      const got = (await go.done).filter((l) => l.op === 'event');
      expect(got.map((l) => payloadOf(l).toString())).toEqual(['one', 'two']);
      await s.destroy();
    },
    T,
  );

  it.concurrent(
    'Go reads entries that carry h.* header fields (as ours will write them) and ignores those fields',
    async () => {
      const name = uniqueName('headers');
      const s = new Stream(name, c.redis);
      const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
      const id1 = String(
        await c.cmd(
          'XADD',
          s.key,
          '*',
          'n',
          'traced',
          'p',
          'body-1',
          't',
          'tp',
          'h.traceparent',
          traceparent,
          'h.tenant',
          'acme',
        ),
      );
      const id2 = String(await c.cmd('XADD', s.key, '*', 'n', 'untopiced', 'p', 'body-2', 'h.x-only', 'v'));
      await goOpen(name);
      const want = [
        normAdded({ name: 'traced', topic: 'tp', payload: Buffer.from('body-1') }, id1),
        normAdded({ name: 'untopiced', payload: Buffer.from('body-2') }, id2),
      ];
      const args = [...on(name), '-start', 'oldest', '-count', '2'];
      const [read, sunk] = await Promise.all([
        runGo(bin, ['read', ...args], undefined, 'event'),
        runGo(bin, ['sink', ...args, '-sink', uniqueName('go')], undefined, 'event'),
      ]);
      expect(read.map(normGo)).toEqual(want);
      expect(sunk.map(normGo)).toEqual(want);
      await s.destroy();
    },
    T,
  );

  it.concurrent(
    "Go's Destroy removes what ours expects; from Go v1.10 on, Go's next incarnation of the name is a key Node does not read",
    async () => {
      const name = uniqueName('godestroy');
      const s = new Stream(name, c.redis);
      const sink = await s.newSink('node', { startAt: 'oldest' });
      const sub = sink.subscribe();
      await s.add('before', 'b');
      await sink.ack(...(await take(sub, 1)));
      await goOpen(name);
      await runGo(bin, ['destroy', ...on(name)], undefined, 'destroyed');
      expect(Number(await c.cmd('EXISTS', s.key))).toBe(0);
      const [again] = await runGo(bin, ['add', ...on(name)], [{ name: 'after', payload: Buffer.from('a') }], 'added');
      if (lifecycle) {
        // Documented difference: Go v1.10 gives the recreated stream a key of
        // its own; Node producers and readers stay on pulse:stream:<name>.
        const generation2 = `${s.key}:generation:2`;
        expect(String(await c.cmd('HGET', `${s.key}:lifecycle`, 'physical_key'))).toBe(generation2);
        expect(Number(await c.cmd('EXISTS', s.key))).toBe(0);
        expect((await c.cmd('XRANGE', generation2, '-', '+')) as unknown[]).toHaveLength(1);
      } else {
        // The live Node sink recreates its group when a producer recreates the key.
        const [got] = await take(sub, 1, 15_000);
        expect([got?.id, got?.eventName]).toEqual([again?.id, 'after']);
        await sink.ack(...(got ? [got] : []));
      }
      await sink.close();
      await s.destroy();
      if (lifecycle) await c.cmd('DEL', `${s.key}:generation:2`, `${s.key}:lifecycle`);
    },
    T,
  );

  it.concurrent(
    'our destroy removes the stream, its groups and our keys; a Go sink of the same name then starts afresh',
    async () => {
      const name = uniqueName('nodedestroy');
      const s = new Stream(name, c.redis);
      const ours = `{${s.key}}`;
      const node = await s.newSink('node', { startAt: 'oldest' });
      const goName = uniqueName('go');
      await s.add('used', 'u');
      await runGo(bin, ['sink', ...on(name), '-sink', goName, '-start', 'oldest'], undefined, 'event');
      await node.close();
      await s.destroy();
      expect(Number(await c.cmd('EXISTS', s.key))).toBe(0);
      // Only the obituary stays: what destroy took from the sink, kept 10 min for a live instance to report.
      const left = ((await c.cmd('KEYS', `${ours}*`)) as unknown[]).map(String);
      expect(left).toEqual([`${ours}:sink:node:obituary`]);
      expect(Number(await c.cmd('PTTL', `${ours}:sink:node:obituary`))).toBeGreaterThan(0);
      if (lifecycle) {
        // Go's lifecycle record stays (it is Go's) and still points at the key we share.
        expect(String(await c.cmd('HGET', `${s.key}:lifecycle`, 'physical_key'))).toBe(s.key);
      }
      const goSink = startGo(bin, ['sink', ...on(name), '-sink', goName, '-start', 'oldest']);
      await goSink.waitForOp('ready');
      const fresh = await s.add('fresh', 'f');
      const [first] = (await goSink.done).filter((l) => l.op === 'event');
      expect([first?.id, first?.name]).toEqual([fresh, 'fresh']);
      await s.destroy();
    },
    T,
  );
});
