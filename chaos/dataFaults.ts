/** Faults in what flows: trimming under a slow consumer, a poison event, a slow handler, bad entries. */
import { createHash, randomBytes } from 'node:crypto';
import type { WorkerProc } from './consumers.js';
import { pause, waitUntil } from './harness.js';
import { byProfile, claimedAfter, ms, stopWhileOwning, warmedUp } from './measure.js';
import { longestGap } from './oracle.js';
import type { ScenarioDef } from './run.js';

interface TrimmingOptions {
  name: string;
  title: string;
  /** The first delivery of every event whose sequence number is a multiple of this fails (the sink nacks it). */
  failEvery?: number;
}

/**
 * Slow consumers against maxLen trimming. One of the two is stopped (SIGSTOP)
 * near the end until the other has taken over what it owned, so some events
 * are trimmed while pending and found by the other's reclaim, not only before
 * the group read them; after SIGCONT the stopped one still handles what it
 * had buffered (handled and reported lost: counted once, shown apart).
 */
function trimming(o: TrimmingOptions): ScenarioDef {
  return {
    name: o.name,
    title: o.title,
    options: { maxLen: 100, expectReportedLost: true },
    limitMs: { short: 40_000, full: 150_000 },
    async body(run, profile) {
      const grace = 500;
      const events = byProfile(profile, 4000, 40_000);
      const rate = 2000;
      const cfg = run.config({
        graceMs: grace,
        concurrency: 1,
        workMs: [1, 3],
        bufferSize: 10,
        maxPolled: 10,
        ...(o.failEvery ? { failEvery: o.failEvery } : {}),
      });
      const workers = await Promise.all([run.worker('c1', cfg), run.worker('c2', cfg)]);
      const c2 = workers[1] as WorkerProc;
      run.producer.start({ rate, total: events, maxMs: 120_000, maxInFlight: 50 });
      // Stop c2 near the end of publishing and keep it stopped until c1 has claimed (or found trimmed) all it owned.
      await waitUntil(() => run.producer.published >= events * 0.8, 60_000, 10);
      const { stoppedAt, owned } = await stopWhileOwning(run, c2);
      const released = await claimedAfter(run, c2.consumer, stoppedAt, 30_000);
      c2.signal('SIGCONT');
      run.note(
        `c2 stopped owning ${owned.length} events, released after ${released === undefined ? 'never (30 s)' : ms(released)}`,
      );
      await run.producer.done;
      const caughtUp = await waitUntil(
        async () =>
          (await run.admin.caughtUp(run.key, run.sinkName)) && (await run.admin.pendingCount(run.key, run.sinkName)) === 0,
        30_000,
        50,
      );
      // Nothing pending any more, but events may still wait in a subscription buffer: let the handlers finish them.
      const accounted = () => {
        const lostIds = new Set(workers.flatMap((w) => w.stats?.lostIds ?? []));
        let handled = 0;
        for (const id of run.oracle.handled.keys()) if (run.oracle.published.has(id)) handled++;
        let overlap = 0;
        for (const id of lostIds) if (run.oracle.handled.has(id)) overlap++;
        return handled + run.reportedLost() - overlap >= run.oracle.published.size;
      };
      await waitUntil(accounted, byProfile(profile, 3000, 10_000), 50);
      await run.stopWorkers();
      const s = run.oracle.summary();
      const lostCount = run.reportedLost();
      const lostIds = new Set(workers.flatMap((w) => w.stats?.lostIds ?? []));
      const overlap = [...lostIds].filter((id) => run.oracle.handled.has(id));
      const unaccounted = s.published - s.handled - lostCount + overlap.length;
      run.lostShown = unaccounted;
      const finals = workers.filter((w) => w.stats?.final).length;
      run.check('final counters of both consumers', finals === 2, `${finals}/2`);
      run.check(
        'the consumers caught up',
        caughtUp,
        caughtUp ? 'group at the last entry, nothing pending' : 'not caught up in 30 s',
      );
      run.check(
        'handled + reported-trimmed = published, exactly',
        unaccounted === 0,
        `${s.handled} handled + ${lostCount} reported lost - ${overlap.length} both = ${s.handled + lostCount - overlap.length} vs ${s.published} published (${unaccounted} neither handled nor reported lost)`,
      );
      run.check('some events were trimmed while pending', lostIds.size > 0, `${lostIds.size}`);
      if (o.failEvery) {
        const failedThenTrimmed = [...run.oracle.failed.keys()].filter((id) => !run.oracle.handled.has(id));
        const silent = failedThenTrimmed.filter((id) => !lostIds.has(id));
        run.note(
          `${run.oracle.failed.size} first deliveries failed and were nacked; ${failedThenTrimmed.length} of them never handled again, ${silent.length} of those not reported lost by ID${silent.length > 0 ? ` (e.g. ${silent.slice(0, 3).join(' ')})` : ''}`,
        );
      }
      const how = new Map<string, number>();
      for (const id of overlap) {
        const lost = run.oracle.lostReported.get(id);
        const handled = run.oracle.handled.get(id) ?? [];
        for (const h of handled) {
          const when = lost === undefined ? '?' : h.at <= lost.at ? 'before' : 'after';
          const k = `handled by ${h.slot}${h.slot === c2.slot && h.at > stoppedAt ? ' after SIGCONT' : ''} ${when} ${lost?.slot ?? '?'} reported it lost ('${lost?.msg ?? '?'}')`;
          how.set(k, (how.get(k) ?? 0) + 1);
        }
      }
      run.note(
        `${overlap.length} events both handled and reported lost${overlap.length > 0 ? `: ${[...how].map(([k, n]) => `${n} ${k}`).join('; ')}` : ''}`,
      );
      run.note(
        `reported lost: ${lostCount - lostIds.size} trimmed before the group read them, ${lostIds.size} trimmed while pending; ${s.duplicated} duplicates; handled ${((100 * s.handled) / Math.max(1, s.published)).toFixed(1)}%`,
      );
      return `${overlap.length} both handled and reported lost`;
    },
  };
}

export const maxLenTrimming = trimming({
  name: 'maxlen-trimming',
  title: 'slow consumers (one stopped near the end), fast producer, maxLen 100',
});

/** The same with a handler that fails some first deliveries: a nacked event trimmed meanwhile must still be reported lost. */
export const maxLenTrimmingNack = trimming({
  name: 'maxlen-trimming-nack',
  title: 'as maxlen-trimming, and every 10th event fails its first delivery (nack)',
  failEvery: 10,
});

// ---------------------------------------------------------------------------

/** A poison event with maxDeliveries 3. */
export const poison: ScenarioDef = {
  name: 'poison',
  title: 'poison event (handler always throws), maxDeliveries 3',
  limitMs: { short: 30_000, full: 90_000 },
  async body(run, profile) {
    const grace = byProfile(profile, 300, 500);
    const maxDeliveries = 3;
    const events = byProfile(profile, 400, 4000);
    const poisonSeqs = new Set(byProfile(profile, [80], [300, 1500, 3000]));
    const cfg = run.config({ graceMs: grace, concurrency: 2, workMs: [0, 2], maxDeliveries, poisonName: 'poison' });
    await Promise.all([run.worker('c1', cfg), run.worker('c2', cfg)]);
    run.producer.start({
      rate: 200,
      total: events,
      maxMs: 60_000,
      maxInFlight: 20,
      eventName: (seq) => (poisonSeqs.has(seq) ? 'poison' : 'ev'),
    });
    const deadAt = new Map<string, number>();
    let polling = true;
    const poller = (async () => {
      for (let i = 0; i < 5000 && polling; i++) {
        try {
          for (const d of await run.deadLetterSources()) if (!deadAt.has(d.sourceId)) deadAt.set(d.sourceId, Date.now());
        } catch {
          // try again
        }
        await pause(25);
      }
    })();
    await run.producer.done;
    await waitUntil(() => run.oracle.allDone(), byProfile(profile, 15_000, 30_000), 50);
    // A fourth delivery would come after the grace period: give it the time to show up.
    await pause(3 * grace);
    polling = false;
    await poller;
    const dead = await run.deadLetterSources();
    await run.pendingEmpty(5 * grace);
    await run.stopWorkers();
    const poisonIds = () => [...run.oracle.published].filter(([, p]) => p.name === 'poison').map(([id]) => id);

    const ids = poisonIds();
    const bad: string[] = [];
    let flowing = 0;
    let worst = 0;
    for (const id of ids) {
      const failed = run.oracle.failed.get(id) ?? [];
      const dcs = failed.map((h) => h.dc).sort((a, b) => a - b);
      const letters = dead.filter((d) => d.sourceId === id);
      const ok =
        failed.length === maxDeliveries &&
        dcs.join(',') === '1,2,3' &&
        !run.oracle.handled.has(id) &&
        letters.length === 1 &&
        letters[0]?.deliveries === maxDeliveries &&
        letters[0]?.sourceSink === run.sinkName;
      if (!ok)
        bad.push(
          `${id}: ${failed.length} deliveries (deliveryCount ${dcs.join(',')}), ${letters.length} dead letters${letters[0] ? ` (deliveries ${letters[0].deliveries})` : ''}`,
        );
      const first = Math.min(...failed.map((h) => h.at));
      const end = deadAt.get(id) ?? Date.now();
      worst = Math.max(worst, end - first);
      run.note(
        `${id}: deliveries at ${failed.map((h) => `+${h.at - first}`).join(', ')} ms, dead letter seen at +${end - first} ms`,
      );
      for (const list of run.oracle.handled.values()) if (list.some((h) => h.at > first && h.at < end)) flowing++;
    }
    const otherDead = dead.filter((d) => !ids.includes(d.sourceId));
    run.check('poison events published', ids.length === poisonSeqs.size, `${ids.length}`);
    run.check(
      `exactly ${maxDeliveries} deliveries, then one dead letter`,
      bad.length === 0,
      bad.length === 0 ? `${ids.length} poison events` : bad.join('; '),
    );
    run.check('no other event dead-lettered', otherDead.length === 0, `${otherDead.length}`);
    run.check('other events keep flowing meanwhile', flowing > 0, `${flowing} events handled while poison events were retried`);
    return `${ms(worst)} from first delivery to dead letter (3 x grace = ${ms(3 * grace)})`;
  },
};

// ---------------------------------------------------------------------------

/** A handler 10x slower than the producer. */
export const backpressure: ScenarioDef = {
  name: 'backpressure',
  title: 'handler 10x slower than the producer',
  limitMs: { short: 40_000, full: 240_000 },
  async body(run, profile) {
    const duration = byProfile(profile, 5000, 60_000);
    const rate = 500;
    const bufferSize = 100;
    const maxPolled = 50;
    const cfg = run.config({
      mode: 'subscribe',
      graceMs: 1000,
      bufferSize,
      maxPolled,
      workMs: [20, 20],
      sample: true,
    });
    const w: WorkerProc = await run.worker('c1', cfg);
    run.producer.start({ rate, total: (rate * duration) / 1000, maxMs: duration, maxInFlight: 20, payloadBytes: 4096 });
    await run.producer.done;
    const slowHandled = run.oracle.handled.size;
    await waitUntil(() => w.stats !== undefined, 2000);
    const slow = w.stats;
    w.send({ t: 'work', workMs: [0, 0] });
    const drainStart = Date.now();
    await run.drain(byProfile(profile, 20_000, 120_000));
    const drainMs = Date.now() - drainStart;
    await run.pendingEmpty(5000);
    await run.stopWorkers();
    const final = w.stats;
    const growth = ((final?.rssMax ?? 0) - (final?.rssBaseline ?? 0)) / 2 ** 20;
    const growthSlow = ((slow?.rssMax ?? 0) - (slow?.rssBaseline ?? 0)) / 2 ** 20;
    const sizeMax = final?.sizeMax ?? Number.NaN;
    run.check('RSS growth under 50 MB', growth < 50, `${growthSlow.toFixed(1)} MB while slow, ${growth.toFixed(1)} MB overall`);
    run.check(
      'buffered events never exceed bufferSize + maxPolled',
      sizeMax <= bufferSize + maxPolled,
      `max ${sizeMax} (bound ${bufferSize + maxPolled})`,
    );
    run.check('no duplicates', run.oracle.summary().duplicated === 0, `${run.oracle.summary().duplicated}`);
    run.note(
      `slow phase: ${run.producer.published} published, ${slowHandled} handled in ${ms(duration)}; backlog drained in ${ms(drainMs)}`,
    );
    return `backlog drained in ${ms(drainMs)}`;
  },
};

// ---------------------------------------------------------------------------

const sha1 = (b: Buffer): string => createHash('sha1').update(b).digest('hex');

interface BadEntry {
  kind: string;
  fields: Buffer[];
  expect: { en: string; len: number; sha: string };
}

function badEntries(bigOnes: number): BadEntry[] {
  const b = (s: string) => Buffer.from(s);
  const empty = Buffer.alloc(0);
  const out: BadEntry[] = [];
  const add = (kind: string, fields: Buffer[], en: string, payload: Buffer) =>
    out.push({ kind, fields, expect: { en, len: payload.length, sha: sha1(payload) } });
  add('no n, no p', [b('foo'), b('bar')], '', empty);
  add('n only', [b('n'), b('named')], 'named', empty);
  const p1 = randomBytes(64);
  add('p only (binary)', [b('p'), p1], '', p1);
  add('binary field names and values', [randomBytes(8), randomBytes(16), randomBytes(5), randomBytes(30)], '', empty);
  const badName = Buffer.from([0xff, 0xfe, 0x80, 0x41]);
  const p2 = randomBytes(100);
  add('invalid UTF-8 name, binary payload', [b('n'), badName, b('p'), p2], badName.toString('utf8'), p2);
  add('extra fields', [b('n'), b('ev2'), b('p'), b('payload'), b('zz'), b('extra'), b('t'), b('topic')], 'ev2', b('payload'));
  add('empty n and p', [b('n'), empty, b('p'), empty], '', empty);
  for (let i = 0; i < bigOnes; i++) {
    const big = randomBytes(10 * 2 ** 20);
    add('10 MB payload', [b('n'), b('big'), b('p'), big], 'big', big);
  }
  return out;
}

/** Bad input mixed into a live stream. */
export const badInput: ScenarioDef = {
  name: 'bad-input',
  title: 'raw entries without n/p, binary garbage, 10 MB payloads in a live stream',
  limitMs: { short: 40_000, full: 120_000 },
  async body(run, profile) {
    const duration = byProfile(profile, 2500, 10_000);
    const cfg = run.config({ graceMs: 500, concurrency: 2, workMs: [0, 1], maxDeliveries: 3 });
    await Promise.all([run.worker('c1', cfg), run.worker('c2', cfg)]);
    run.producer.start({ rate: 200, total: 1_000_000, maxMs: duration, maxInFlight: 20 });
    await warmedUp(run, ['c1', 'c2'], 5);
    const entries = [...badEntries(byProfile(profile, 1, 3)), ...badEntries(0)];
    const from = Date.now();
    const gapEvery = Math.max(50, (duration - 1000) / entries.length);
    for (const e of entries) {
      await pause(gapEvery);
      const id = String(await run.admin.redis.callBuffer('XADD', run.key, '*', ...e.fields));
      run.oracle.addRaw(id, { kind: e.kind, expect: e.expect });
    }
    await run.producer.done;
    const to = Date.now();
    await run.drain(byProfile(profile, 15_000, 30_000));
    await run.deadLetterSources();
    await run.pendingEmpty(5000);
    await run.stopWorkers();

    const wrong: string[] = [];
    let delivered = 0;
    let deadLettered = 0;
    for (const [id, raw] of run.oracle.raw) {
      const h = run.oracle.handled.get(id)?.[0];
      if (run.oracle.dead.has(id)) deadLettered++;
      if (!h) continue;
      delivered++;
      const x = h.x;
      if (!x || x.en !== raw.expect.en || x.len !== raw.expect.len || x.sha !== raw.expect.sha)
        wrong.push(
          `${raw.kind}: got name ${JSON.stringify(x?.en)} ${x?.len} bytes, expected ${JSON.stringify(raw.expect.en)} ${raw.expect.len} bytes`,
        );
    }
    const normal = ['c1', 'c2'].map((s) =>
      run.oracle
        .reportsOf(s)
        .filter((h) => run.oracle.published.has(h.id))
        .map((h) => h.at),
    );
    const merged = normal.flat().sort((a, b) => a - b);
    const gap = longestGap(merged, from, to);
    const warned = run.oracle.workers.reduce(
      (n, w) => n + (w.stats?.warns['warn: entry without n or p: delivered with defaults'] ?? 0),
      0,
    );
    run.check(
      'every bad entry delivered or dead-lettered',
      delivered + deadLettered >= run.oracle.raw.size,
      `${run.oracle.raw.size} bad entries: ${delivered} delivered, ${deadLettered} dead-lettered`,
    );
    run.check(
      'delivered as they are (missing name: "", missing payload: empty)',
      wrong.length === 0,
      wrong.join('; ') || 'all match',
    );
    run.check(
      'no stall: normal events keep flowing',
      gap <= run.limit(2000),
      `longest gap ${ms(gap)} (limit ${ms(run.limit(2000))})`,
    );
    run.note(`${warned} 'entry without n or p' warnings logged`);
    return `longest gap in normal events ${ms(gap)}`;
  },
};
