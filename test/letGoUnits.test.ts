/**
 * The record of events a sink instance let go of (letGo.ts): bounded per
 * instance across its streams, oldest forgotten first, an event let go of
 * again kept by its newer entry, and the range a loss says.
 */
import { describe, expect, it } from 'vitest';
import { forgetLetGo, heldAgain, LET_GO_KEPT, LetGoLog, sayLetGo } from '../packages/pulse-streaming/src/internal/letGo.js';
import type { SinkStream } from '../packages/pulse-streaming/src/internal/sinkState.js';

const stream = () => ({ letGo: new Map<string, number>() }) as unknown as SinkStream;
const ids = (from: number, n: number) => Array.from({ length: n }, (_, i) => `${from + i}-0`);

describe('LetGoLog', () => {
  it('keeps at most LET_GO_KEPT events across the streams of an instance, the oldest forgotten first', () => {
    const log = new LetGoLog();
    const a = stream();
    const b = stream();
    log.add(a, ids(1, LET_GO_KEPT));
    log.add(b, ids(1, 10));
    expect(a.letGo.size + b.letGo.size).toBe(LET_GO_KEPT);
    expect(a.letGo.has('1-0')).toBe(false);
    expect(a.letGo.has('11-0')).toBe(true);
    expect(b.letGo.size).toBe(10);
    // Many more: still bounded (the order array is compacted, not grown for ever).
    for (let i = 0; i < 5; i++) log.add(b, ids(100_000 + i * LET_GO_KEPT, LET_GO_KEPT));
    expect(a.letGo.size + b.letGo.size).toBe(LET_GO_KEPT);
  });

  it('an event let go of again is kept by its newer entry when the older one is dropped', () => {
    const log = new LetGoLog();
    const a = stream();
    log.add(a, ['1-0']);
    log.add(a, ids(2, LET_GO_KEPT - 2));
    log.add(a, ['1-0']);
    // The first entry of 1-0 is the oldest and goes; 1-0 stays by its second one.
    log.add(a, ['x-1', 'x-2']);
    expect(a.letGo.has('1-0')).toBe(true);
  });

  it('forgets an event delivered to the instance again; says the range a loss took, sorted, and forgets it', () => {
    const log = new LetGoLog();
    const a = stream();
    log.add(a, ['5-0', '3-0', '9-0', '1-0']);
    heldAgain(a, '9-0');
    const said = sayLetGo(a, '1-0', '9-0');
    expect(said?.text).toMatch(/^2 event\(s\) this instance read and let go of unhandled .*\(3-0, 5-0\)$/);
    expect(said?.ids).toEqual(['3-0', '5-0']);
    expect([...a.letGo.keys()]).toEqual(['1-0']);
    expect(sayLetGo(a, '1-0', '9-0')).toBeUndefined();
    expect(sayLetGo(a, '0-0', undefined)).toBeUndefined();
  });

  it('names the first five IDs and how many more', () => {
    const log = new LetGoLog();
    const a = stream();
    log.add(a, ids(1, 8));
    const said = sayLetGo(a, '0-0', '99-0');
    expect(said?.text).toMatch(/\(1-0, 2-0, 3-0, 4-0, 5-0 and 3 more\)$/);
    expect(said?.ids).toHaveLength(8);
  });

  it('says "at least" when the bound made it forget events the loss may have taken, once', () => {
    const log = new LetGoLog();
    const a = stream();
    log.add(a, ids(1, LET_GO_KEPT + 3));
    // 1-0, 2-0 and 3-0 were forgotten.
    const said = sayLetGo(a, '0-0', `${LET_GO_KEPT + 10}-0`);
    expect(said?.text).toMatch(/^at least 16384 event\(s\) .*no longer remembers, may be among them too$/);
    log.add(a, ['99999999-0']);
    expect(sayLetGo(a, '0-0', '99999999-0')?.text).toMatch(/^1 event\(s\)/);
    // Before anything it remembers, only forgotten ones: said as such.
    const b = stream();
    log.add(b, ids(1, LET_GO_KEPT + 1));
    expect(sayLetGo(b, '0-0', '1-0')?.text).toMatch(/long before, and no longer remembers, may be among them$/);
  });

  it('forgets what was let go of a key that went, keeping what came from a key created anew', () => {
    const log = new LetGoLog();
    const a = stream();
    log.add(a, ['1-0', '5-0', '9-0']);
    forgetLetGo(a, '5-0');
    expect([...a.letGo.keys()]).toEqual(['5-0', '9-0']);
    forgetLetGo(a, undefined);
    expect(a.letGo.size).toBe(0);
  });
});
