/** Faults between the consumers and Redis: Redis stopped or restarted, connections killed. */
import { pause, waitUntil } from './harness.js';
import { byProfile, ms, progressAfter, warmedUp } from './measure.js';
import { longestGap } from './oracle.js';
import type { ScenarioDef } from './run.js';

type RedisFault = 'pause-1s' | 'pause-3grace' | 'restart-sigterm' | 'restart-sigkill';

interface RedisFaultOptions {
  /** Grace period instead of the profile's (500 ms short, 1 s full). */
  graceMs?: number;
  /** How long Redis stays down before a restart, instead of the profile's (500 ms short, 2 s full). */
  downMs?: number;
  name?: string;
  title?: string;
}

function redisFault(fault: RedisFault, o: RedisFaultOptions = {}): ScenarioDef {
  const titles: Record<RedisFault, string> = {
    'pause-1s': 'SIGSTOP of Redis for 1 s',
    'pause-3grace': 'SIGSTOP of Redis for 3 x grace',
    'restart-sigterm': 'Redis restarted (SIGTERM) while publishing',
    'restart-sigkill': 'Redis restarted (SIGKILL, AOF fsync always) while publishing',
  };
  return {
    name: o.name ?? `redis-${fault}`,
    title: o.title ?? titles[fault],
    limitMs: { short: 40_000, full: 90_000 },
    async body(run, profile) {
      const grace = o.graceMs ?? byProfile(profile, 500, 1000);
      const downMs = o.downMs ?? byProfile(profile, 500, 2000);
      const cfg = run.config({ graceMs: grace, concurrency: 4, workMs: [0, 2] });
      const slots = ['c1', 'c2', 'r1'];
      await Promise.all([run.worker('c1', cfg), run.worker('c2', cfg), run.worker('r1', { ...cfg, mode: 'reader' })]);
      const after = byProfile(profile, 1000, 5000);
      run.producer.start({ rate: 200, total: 1_000_000, maxMs: 60_000, maxInFlight: 20 });
      await warmedUp(run, slots, 10);

      const faultAt = Date.now();
      if (fault === 'pause-1s' || fault === 'pause-3grace') {
        run.server.pause();
        await pause(fault === 'pause-1s' ? 1000 : 3 * grace);
        run.server.resume();
      } else {
        await run.server.kill(fault === 'restart-sigterm' ? 'SIGTERM' : 'SIGKILL');
        await pause(downMs);
        await run.server.restart();
      }
      const back = Date.now();
      const progressed = await waitUntil(() => slots.every((s) => progressAfter(run, s, back) !== undefined), 15_000, 25);
      const times = slots.map((s) => progressAfter(run, s, back));
      const worst = progressed ? Math.max(...times.map((t) => t ?? 0)) : Number.POSITIVE_INFINITY;
      await pause(after);
      await run.producer.stop();
      await run.drain(byProfile(profile, 15_000, 30_000));
      await run.pendingEmpty(10 * grace);
      await run.stopWorkers();

      run.check(
        'progress within 5 s of Redis returning',
        worst <= run.limit(5000),
        `${slots.map((s, i) => `${s} ${times[i] === undefined ? 'never' : ms(times[i] as number)}`).join(', ')} (limit ${ms(run.limit(5000))})`,
      );
      const r = run.oracle.readerReport('r1');
      run.check(
        'the reader gets every event once, in order',
        r.missing === 0 && r.repeated === 0 && r.outOfOrder === 0,
        `seen ${r.seen}, missing ${r.missing}, repeated ${r.repeated}, out of order ${r.outOfOrder}`,
      );
      run.note(
        `Redis away ${ms(back - faultAt)}; producer: ${run.producer.failures} failed adds retried (${run.oracle.summary().unconfirmed} handled events from unconfirmed adds)`,
      );
      return `${Number.isFinite(worst) ? ms(worst) : 'never'} until every consumer handled a new event`;
    },
  };
}

export const redisPause1s = redisFault('pause-1s');
export const redisPause3Grace = redisFault('pause-3grace');
export const redisRestartTerm = redisFault('restart-sigterm');
export const redisRestartKill = redisFault('restart-sigkill');
/** Backoff with a short grace period: keep-alive, reclaim and read retries together stay under the limit. */
export const redisDownShortGrace = redisFault('restart-sigkill', {
  name: 'redis-down-short-grace',
  title: 'Redis down 2 s (SIGKILL, restart), consumers with a 200 ms grace period',
  graceMs: 200,
  downMs: 2000,
});

// ---------------------------------------------------------------------------

/** CLIENT KILL of the library's connections every 500 ms. */
export const clientKill: ScenarioDef = {
  name: 'client-kill',
  title: 'CLIENT KILL of the blocked connections every 500 ms',
  limitMs: { short: 40_000, full: 120_000 },
  async body(run, profile) {
    const grace = byProfile(profile, 500, 1000);
    const duration = byProfile(profile, 5000, 30_000);
    const window = byProfile(profile, 2000, 5000);
    const cfg = run.config({ graceMs: grace, concurrency: 4, workMs: [0, 2] });
    const slots = ['c1', 'c2', 'c3', 'r1'];
    await Promise.all([
      run.worker('c1', cfg),
      run.worker('c2', cfg),
      run.worker('c3', cfg),
      run.worker('r1', { ...cfg, mode: 'reader' }),
    ]);
    run.producer.start({ rate: 200, total: 1_000_000, maxMs: duration + 30_000, maxInFlight: 20 });
    await warmedUp(run, slots, 10);

    const from = Date.now();
    let killed = 0;
    let ticks = 0;
    let allNormal = 0;
    for (let i = 0; i < duration / 500 + 10 && Date.now() - from < duration; i++) {
      await pause(500);
      ticks++;
      try {
        if (ticks % 4 === 0) {
          // Every 2 s: every normal connection but the admin's (user clients and the producer too).
          killed += Number(await run.admin.call(['CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes']));
          allNormal++;
        } else {
          for (const c of await run.admin.clients()) {
            if (!c.name.startsWith('pulse:')) continue;
            killed += Number(await run.admin.call(['CLIENT', 'KILL', 'ID', c.id]).catch(() => 0));
          }
        }
      } catch (err) {
        run.note(`tick ${ticks}: ${(err as Error).message}`);
      }
    }
    const to = Date.now();
    await run.producer.stop();
    await run.drain(byProfile(profile, 15_000, 30_000));
    await run.pendingEmpty(10 * grace);
    await run.stopWorkers();

    const gaps = slots.map((s) => longestGap(run.oracle.timesOf(s), from, to));
    const worst = Math.max(...gaps);
    run.check(
      `every consumer makes progress in every ${ms(window)} window`,
      worst <= run.limit(window),
      `${slots.map((s, i) => `${s} longest gap ${ms(gaps[i] ?? 0)}`).join(', ')} (limit ${ms(run.limit(window))})`,
    );
    const r = run.oracle.readerReport('r1');
    run.check(
      'the reader gets every event once, in order',
      r.missing === 0 && r.repeated === 0 && r.outOfOrder === 0,
      `seen ${r.seen}, missing ${r.missing}, repeated ${r.repeated}, out of order ${r.outOfOrder}`,
    );
    run.check(
      'connections were killed',
      killed >= ticks,
      `${killed} connections in ${ticks} ticks (${allNormal} of them all normal clients)`,
    );
    return `longest gap ${ms(worst)} for one consumer (window ${ms(window)})`;
  },
};
