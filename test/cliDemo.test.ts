/**
 * The demo of the real CLI binary, on its embedded throwaway Redis: three
 * consumer processes, one SIGKILLed midway, its unacked events redelivered
 * to the others after the grace period, nothing lost, duplicates counted
 * apart from the handled events, and a screen that fits 80 columns.
 */
import { beforeAll, describe, it } from 'vitest';
import { buildCli, cli } from './support/cli.js';

beforeAll(buildCli, 120_000);

/** True while a process with this pid exists. */
function exists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

interface Summary {
  published: number;
  handledUnique: number;
  handledTotal: number;
  duplicates: number;
  redeliveries: number;
  readerReceived: number;
  lost: number;
  ok: boolean;
  killed: { consumer: string; pid: number; heldUnacked: number; redeliveredAfterS: number | null } | null;
  consumers: { consumer: string; pid: number; handled: number; killed: boolean }[];
}

describe.concurrent('CLI demo', () => {
  it('SIGKILLs a consumer process midway, redelivers what it held to the others, and loses nothing', async ({ expect }) => {
    const r = await cli(['demo', '--duration', '4', '--rate', '200', '--json'], { embedded: true, timeoutMs: 60_000 });
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout) as Summary;
    expect(s).toMatchObject({ published: 800, handledUnique: 800, readerReceived: 800, lost: 0, ok: true });

    // Three real processes, one killed, none left behind.
    const pids = s.consumers.map((c) => c.pid);
    expect(new Set(pids).size).toBe(3);
    for (const pid of pids) expect(exists(pid), `consumer pid ${pid}`).toBe(false);
    expect(s.consumers.filter((c) => c.killed).map((c) => c.pid)).toEqual([s.killed?.pid]);

    // It held unacked events; the others got them after the grace period (1.5 s, minus how long they had waited).
    expect(s.killed?.heldUnacked).toBeGreaterThan(0);
    expect(s.killed?.redeliveredAfterS).toBeGreaterThanOrEqual(0.5);
    expect(s.killed?.redeliveredAfterS).toBeLessThan(10);
    expect(s.redeliveries).toBeGreaterThanOrEqual(s.killed?.heldUnacked ?? 1);
    // Handled counts each event once; handling it again is a duplicate, counted apart.
    expect(s.handledTotal).toBe(s.handledUnique + s.duplicates);
    expect(s.duplicates).toBeLessThanOrEqual(s.redeliveries);
    expect(r.stderr).toMatch(new RegExp(`${s.killed?.consumer} \\(pid ${s.killed?.pid}\\) SIGKILLed holding`));
    expect(r.stderr).toMatch(/all \d+ held events? redelivered/);
  }, 90_000);

  it('refuses too few events for its story, and a stream name the library refuses, before anything starts', async ({
    expect,
  }) => {
    // --rate 0.001 --duration 1 ran for over 600 s, past its duration, waiting for events (outside trial).
    const few = await cli(['demo', '--rate', '0.001', '--duration', '1'], { timeoutMs: 20_000 });
    expect([few.code, few.stdout]).toEqual([2, '']);
    expect(few.stderr).toMatch(/the demo needs at least 10/);
    // The banner came before the error.
    const bad = await cli(['demo', '--stream', 'a b'], { timeoutMs: 20_000 });
    expect([bad.code, bad.stdout]).toEqual([2, '']);
  });

  it('explains pending and lag on a terminal screen that fits 80 columns', async ({ expect }) => {
    const r = await cli(['demo', '--duration', '3', '--rate', '100'], {
      embedded: true,
      tty: true,
      timeoutMs: 60_000,
      env: { COLUMNS: '80' },
    });
    expect(r.code, r.stderr).toBe(0);
    const esc = String.fromCharCode(27);
    // The screen after its last redraw, without terminal sequences.
    const frames = r.stdout.split(new RegExp(`${esc}\\[\\d+F${esc}\\[J`));
    const plain = (t: string): string => t.replace(new RegExp(`${esc}\\[[0-9;?]*[a-zA-Z]`, 'g'), '').replace(/\r/g, '');
    const last = plain(frames[frames.length - 1] ?? '');
    const header = plain(frames[0] ?? '');
    for (const line of [...last.split('\n'), ...header.split('\n').filter((l) => !l.startsWith('using a throwaway'))]) {
      expect(Array.from(line).length, line).toBeLessThan(80);
    }
    for (const meaning of [
      'pending              0              delivered to a consumer, not acked yet',
      'lag                  0              not yet delivered to the sink',
      'unique events the consumers handled',
      'handled again after a redelivery',
    ]) {
      expect(last).toContain(meaning);
    }
    expect(header).toContain('Midway one consumer process is killed (SIGKILL) while it holds unacked events:');
    expect(last).toMatch(/SIGKILLed holding \d+ unacked events?\n/);
    expect(last).toMatch(/nothing lost/);
  }, 90_000);
});
