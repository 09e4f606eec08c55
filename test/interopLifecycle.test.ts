/**
 * Go Pulse v1.10's stream lifecycle record (`pulse:stream:<name>:lifecycle`)
 * against real Go processes, both Node clients: streams only Node wrote are
 * readable by Go readers and sinks, the record is the one a Go producer with
 * the same options writes, our destroy keeps Go and Node on one key, and a Go
 * `Destroy` (after which Go moves to `...:generation:2`) is reported, not
 * silent. The frame (versions, clients, skips) is test/support/goSuite.ts.
 */
import { beforeAll, expect, it } from 'vitest';
import { replayDeadLetters, Stream, type StreamOptions } from '../packages/pulse-streaming/src/index.js';
import { recordingLogger, type TestClient, take, uniqueName, waitFor } from './support/clients.js';
import { interopEvents, type Norm, normAdded, normGo, normNode } from './support/goFixtures.js';
import { type GoAddSpec, type GoLine, type GoProcess, runGo, startGo } from './support/goInterop.js';
import { describeGoVersions } from './support/goSuite.js';

const T = 60_000;

type Cmd = TestClient['cmd'];

/** A hash as an object, whichever shape the client returns it in. */
async function hash(cmd: Cmd, key: string): Promise<Record<string, string>> {
  const raw = (await cmd('HGETALL', key)) as unknown;
  const out: Record<string, string> = {};
  if (Array.isArray(raw)) for (let i = 0; i + 1 < raw.length; i += 2) out[String(raw[i])] = String(raw[i + 1]);
  else if (raw && typeof raw === 'object') for (const [k, v] of Object.entries(raw)) out[k] = String(v);
  return out;
}

const lifecycleKey = (name: string): string => `pulse:stream:${name}:lifecycle`;

await describeGoVersions((g) => {
  const { bin, lifecycle, on } = g;
  let c: TestClient;
  beforeAll(() => {
    c = g.c;
  });
  const one = (name: string): GoAddSpec[] => [{ name, payload: Buffer.from(`${name}-payload`) }];
  const norms = (specs: readonly GoAddSpec[], ids: ReadonlyArray<string | undefined>): Norm[] =>
    specs.map((sp, i) => normAdded(sp, ids[i] ?? 'missing'));
  const goRead = (name: string, extra: string[] = []): Promise<GoLine[]> =>
    runGo(bin, ['read', ...on(name), '-start', 'oldest', ...extra], undefined, 'event');
  const goSink = (name: string, extra: string[] = []): Promise<GoLine[]> =>
    runGo(bin, ['sink', ...on(name), '-sink', uniqueName('go'), '-start', 'oldest', ...extra], undefined, 'event');

  it(
    'a Go reader and a Go sink read streams only Node wrote: a lone add, merged adds with a TTL, a stream a Node sink created',
    async () => {
      // A lone awaited add without TTL is a plain XADD.
      const lone = new Stream(uniqueName('lone'), c.redis);
      const id = await lone.add('solo', 'x');
      const [read, sunk] = await Promise.all([goRead(lone.name), goSink(lone.name)]);
      expect([read.map((l) => l.id), sunk.map((l) => l.id)]).toEqual([[id], [id]]);

      // Adds of one tick with a TTL are one call of the addEvents script.
      const merged = new Stream(uniqueName('merged'), c.redis, { maxLen: 500, ttlMs: 600_000 });
      const specs = interopEvents();
      const ids = await Promise.all(
        specs.map((sp) => merged.add(sp.name, sp.payload, sp.topic ? { topic: sp.topic } : undefined)),
      );
      const want = norms(specs, ids);
      const opts = ['-maxlen', '500', '-ttl-ms', '600000', '-count', String(specs.length)];
      const [mRead, mSunk] = await Promise.all([goRead(merged.name, opts), goSink(merged.name, opts)]);
      expect(mRead.map(normGo)).toEqual(want);
      expect(mSunk.map(normGo)).toEqual(want);

      // A Node sink's group creation made the stream; the event comes from outside the library.
      const bySink = new Stream(uniqueName('bysink'), c.redis);
      const sink = await bySink.newSink('node');
      const raw = String(await c.cmd('XADD', bySink.key, '*', 'n', 'raw', 'p', 'r'));
      expect((await goRead(bySink.name)).map((l) => l.id)).toEqual([raw]);
      // So did adding a stream to a sink.
      const added = new Stream(uniqueName('addstream'), c.redis);
      await sink.addStream(added);
      const raw2 = String(await c.cmd('XADD', added.key, '*', 'n', 'raw', 'p', 'r'));
      expect((await goRead(added.name)).map((l) => l.id)).toEqual([raw2]);
      await sink.close();

      // Dead letters replayed into a stream that does not exist create it.
      const target = new Stream(uniqueName('replayed'), c.redis);
      const deadKey = `${target.key}:dead`;
      await c.cmd('XADD', deadKey, '*', 'n', 'dl', 'p', 'd', 'source_stream', target.name, 'source_sink', 'gone');
      const replayed = await replayDeadLetters(target);
      expect(replayed).toHaveLength(1);
      expect((await goRead(target.name)).map((l) => l.id)).toEqual(replayed);
      for (const s of [lone, merged, bySink, added, target]) await s.destroy();
      await c.cmd('DEL', deadKey);
    },
    T,
  );

  it.runIf(lifecycle)(
    'the record is the one a Go producer with the same options writes (defaults, maxLen and TTLs, unbounded)',
    async () => {
      const cases: Array<{ node: StreamOptions; go: string[] }> = [
        { node: {}, go: [] },
        { node: { maxLen: 500, ttlMs: 60_000 }, go: ['-maxlen', '500', '-ttl-ms', '60000'] },
        { node: { maxLen: 20, ttlMs: 5000, slidingTtl: true }, go: ['-maxlen', '20', '-ttl-ms', '5000', '-sliding'] },
      ];
      for (const cs of cases) {
        const ours = new Stream(uniqueName('ours'), c.redis, cs.node);
        const theirs = uniqueName('theirs');
        await ours.add('e', 'p');
        await runGo(bin, ['add', ...on(theirs), ...cs.go], one('e'), 'added');
        const want = await hash(c.cmd, lifecycleKey(theirs));
        want.physical_key = ours.key;
        expect({ options: cs.node, record: await hash(c.cmd, lifecycleKey(ours.name)) }).toEqual({
          options: cs.node,
          record: want,
        });
        await ours.destroy();
        await c.cmd('DEL', `pulse:stream:${theirs}`, lifecycleKey(theirs), lifecycleKey(ours.name));
      }
      // maxLen 0 (no trimming) is Go's unbounded retention.
      const unbounded = new Stream(uniqueName('unbounded'), c.redis, { maxLen: 0 });
      await unbounded.add('e', 'p');
      expect((await hash(c.cmd, lifecycleKey(unbounded.name))).retention_config).toBe(
        'v=2|max=0|mode=none|value=0|sliding=false',
      );
      await unbounded.destroy();
      await c.cmd('DEL', lifecycleKey(unbounded.name));

      // Go holds its handles to the record: explicit options that differ are refused, none adopt it.
      const held = new Stream(uniqueName('held'), c.redis, { maxLen: 50 });
      const id = await held.add('e', 'p');
      await expect(goRead(held.name, ['-maxlen', '5000'])).rejects.toThrow(/retention configuration mismatch/);
      expect((await goRead(held.name, ['-maxlen', '50'])).map((l) => l.id)).toEqual([id]);
      expect((await goRead(held.name)).map((l) => l.id)).toEqual([id]);
      // Without a record, a Go sink with explicit options trims the stream it adopts to its MaxLen.
      const bare = uniqueName('bare');
      for (let i = 0; i < 10; i++) await c.cmd('XADD', `pulse:stream:${bare}`, '*', 'n', 'e', 'p', String(i));
      await runGo(bin, ['sink', ...on(bare), '-sink', uniqueName('go'), '-maxlen', '3', '-count', '0']);
      expect(Number(await c.cmd('XLEN', `pulse:stream:${bare}`))).toBe(3);
      await held.destroy();
      await c.cmd('DEL', lifecycleKey(held.name), `pulse:stream:${bare}`, lifecycleKey(bare));
    },
    T,
  );

  it(
    'after our destroy, Go and Node still share the name: Go reads what Node adds next and the reverse',
    async () => {
      const name = uniqueName('afterdestroy');
      const s = new Stream(name, c.redis);
      const before = await s.add('before', 'b');
      await goRead(name);
      // A Go sink and a Go reader that live through our destroy.
      const live = ['-start', 'oldest', '-count', '3'];
      const goSinkProc = startGo(bin, ['sink', ...on(name), '-sink', uniqueName('go'), ...live]);
      const goReader = startGo(bin, ['read', ...on(name), ...live]);
      await Promise.all([goSinkProc.waitForOp('event'), goReader.waitForOp('event')]);
      await s.destroy();
      // Gone with its entries. The live Go sink may create the key again at once (its group, on
      // NOGROUP, with MKSTREAM: seen once in CI), so the check is that nothing from before is left.
      expect(Number(await c.cmd('XLEN', s.key))).toBe(0);
      if (lifecycle) {
        const record = await hash(c.cmd, lifecycleKey(name));
        expect([record.state, record.generation, record.physical_key]).toEqual(['active', '1', s.key]);
      }
      // The same instance (its record step already done) and a new one.
      const again = await s.add('again', 'a');
      const fresh = await new Stream(name, c.redis).add('fresh', 'f');
      expect((await goRead(name, ['-count', '2'])).map((l) => l.id)).toEqual([again, fresh]);
      const liveIds = async (p: GoProcess): Promise<Array<string | undefined>> =>
        (await p.done).filter((l) => l.op === 'event').map((l) => l.id);
      expect({ sink: await liveIds(goSinkProc), reader: await liveIds(goReader) }).toEqual({
        sink: [before, again, fresh],
        reader: [before, again, fresh],
      });

      const reader = await s.newReader({ startAt: 'oldest' });
      const sub = reader.subscribe();
      const [fromGo] = await runGo(bin, ['add', ...on(name)], one('from-go'), 'added');
      expect((await take(sub, 3, 15_000)).map(normNode)).toEqual([
        normAdded({ name: 'again', payload: Buffer.from('a') }, again),
        normAdded({ name: 'fresh', payload: Buffer.from('f') }, fresh),
        normAdded(one('from-go')[0] as GoAddSpec, fromGo?.id ?? 'missing'),
      ]);
      await reader.close();
      // Go's Destroy of a stream Node made needs no Go producer first.
      await runGo(bin, ['destroy', ...on(name)], undefined, 'destroyed');
      expect(Number(await c.cmd('EXISTS', s.key))).toBe(0);
      await c.cmd('DEL', lifecycleKey(name));
    },
    T,
  );

  it.runIf(lifecycle)(
    "after Go's Destroy a Node producer warns that Go moved to generation 2 (logger, else a process warning)",
    async () => {
      const name = uniqueName('diverged');
      const first = new Stream(name, c.redis);
      await first.add('before', 'b');
      await runGo(bin, ['destroy', ...on(name)], undefined, 'destroyed');
      await runGo(bin, ['add', ...on(name)], one('go-next'), 'added');

      const rec = recordingLogger();
      const logged = new Stream(name, c.redis, { logger: rec.logger });
      await logged.add('after', 'a');
      await logged.add('after', 'a');
      const warns = rec.lines.filter((l) => l.level === 'warn' && /Go Pulse destroyed it/.test(l.msg ?? ''));
      expect(warns).toHaveLength(1);
      expect(warns[0]?.obj).toMatchObject({ state: 'active', generation: '2', physicalKey: `${first.key}:generation:2` });

      const warnings: Error[] = [];
      const onWarning = (w: Error): void => {
        warnings.push(w);
      };
      process.on('warning', onWarning);
      try {
        await new Stream(name, c.redis).add('after', 'a');
        await waitFor(() => warnings.some((w) => (w as Error & { code?: string }).code === 'PULSE_GO_STREAM_DESTROYED'), {
          what: 'process warning',
        });
      } finally {
        process.off('warning', onWarning);
      }
      // The way back to one shared key (README): with no Go service on the name,
      // delete Go's record (and its generation's stream); the next writer makes it generation 1 again.
      await c.cmd('DEL', lifecycleKey(name), `${first.key}:generation:2`);
      const back = new Stream(name, c.redis, { logger: rec.logger });
      const id = await back.add('back', 'b');
      expect(await hash(c.cmd, lifecycleKey(name))).toMatchObject({ state: 'active', generation: '1', physical_key: first.key });
      const [fromGo] = await runGo(bin, ['add', ...on(name)], one('go-back'), 'added');
      expect((await goRead(name, ['-start', `after:${id}`])).map((l) => l.id)).toEqual([fromGo?.id]);
      expect(Number(await c.cmd('EXISTS', `${first.key}:generation:2`))).toBe(0);
      expect(rec.lines.filter((l) => l.level === 'warn')).toHaveLength(1);
      await first.destroy();
      await c.cmd('DEL', lifecycleKey(name));
    },
    T,
  );

  it(
    'a Go sink started before a Node producer (it creates the record with its options) keeps working with it',
    async () => {
      const name = uniqueName('gofirst');
      const goSinkProc = startGo(bin, ['sink', ...on(name), '-sink', uniqueName('go'), '-start', 'oldest', '-count', '2']);
      await goSinkProc.waitForOp('ready');
      const s = new Stream(name, c.redis, { maxLen: 50 });
      const ids = [await s.add('a', '1'), await s.add('b', '2')];
      expect((await goSinkProc.done).filter((l) => l.op === 'event').map((l) => l.id)).toEqual(ids);
      if (lifecycle) expect((await hash(c.cmd, lifecycleKey(name))).retention_config).toContain('max=1000|');
      await s.destroy();
      await c.cmd('DEL', lifecycleKey(name));
    },
    T,
  );
});
