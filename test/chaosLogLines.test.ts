// The chaos consumers read losses and dead letters off the library's log lines.
// A line misread as a loss fails a run that lost nothing: CI once failed
// order-restart-flush with "losses logged but not counted: 1", all 6222 events
// handled, because 'could not check the last reads for trimmed events' (a check
// to try again, logged during the Redis restart) carried count: 1, its number of streams.
import { describe, expect, it } from 'vitest';
import { classifyLine } from '../chaos/logLines.mjs';

describe('chaos log lines', () => {
  it('a check that could not be made is not a loss, whatever its fields', () => {
    const msg = 'could not check the last reads for trimmed events';
    expect(classifyLine(msg, { streams: ['s'], count: 1, err: 'ECONNREFUSED' })).toBeUndefined();
    expect(classifyLine(msg, { streams: ['s'], streamCount: 1, err: 'ECONNREFUSED' })).toBeUndefined();
    expect(classifyLine('could not read what went with the stream', { stream: 's' })).toBeUndefined();
    expect(classifyLine('holding buffered events failed, retrying', { count: 3 })).toBeUndefined();
  });

  it('events said maybe lost because this instance let them go (another may have handled them) are not a loss', () => {
    const msg =
      'Redis lost entries it had acknowledged (...): 2 event(s) this instance read and let go of unhandled (given back, or nacked) were among them and are lost, unless another instance took them before it (1-0, 2-0)';
    expect(classifyLine(msg, { stream: 's', ids: ['1-0', '2-0'] })).toBeUndefined();
  });

  it('losses by ID and by count, dead letters and stale acks are told apart', () => {
    expect(classifyLine('events trimmed or deleted before they were acked', { ids: ['1-0', '2-0'] })).toEqual({
      kind: 'lost',
      ids: ['1-0', '2-0'],
    });
    expect(classifyLine('events trimmed before this sink read them', { count: 200 })).toEqual({
      kind: 'lostCount',
      count: 200,
    });
    expect(classifyLine('events dead-lettered after max deliveries', { ids: ['3-0'] })).toEqual({
      kind: 'dead',
      ids: ['3-0'],
    });
    const stale = '1 of these acked events were no longer pending: acked already, dead-lettered or reported lost';
    expect(classifyLine(stale, { count: 1, ids: ['4-0'] })).toEqual({ kind: 'stale' });
  });
});
