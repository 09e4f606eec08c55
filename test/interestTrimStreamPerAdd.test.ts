/**
 * Outside review AM (defect 2; line numbers as of commit 3327f93): under `retention: 'interest'` a lone add (awaited, one
 * at a time) is a plain XADD that does not trim; only one lone add in 50 *of
 * the same Stream instance* runs the trimming script (add.ts
 * LONE_ADDS_PER_TRIM, `#untrimmed` is per instance). A producer that makes a
 * Stream per call (a request handler, a serverless function, a job that
 * publishes a few events and exits) never reaches 50: the stream is never
 * trimmed, whatever `maxLen`, although every sink is done with its entries
 * (README "Retention and losses": "maxLen then applies only to entries every
 * sink is done with"). It grows until Redis is out of memory. Here with no
 * sink at all (the script then trims as 'limits'). TSDoc of `retention`
 * promises the stream passes maxLen "by a little more than with 'limits'";
 * one instance doing the same 600 awaited adds stays within the bound below.
 * Failed before the fix: 2 of 2 (both clients): 600 entries, bound 260.
 * Fixed: lone adds are counted per stream key in the process, from a random start (add.ts loneAddTrims), not per instance from 0.
 */
import { describe, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, uniqueName } from './support/clients.js';

/** maxLen, plus the slack the add script waits for (TRIM_SLACK, 100), a whole stream node (100) and one trim period (50). */
const MAX_LEN = 10;
const BOUND = MAX_LEN + 100 + 100 + 50;
const ADDS = 600;

describe.each(CLIENT_KINDS)("'interest' trimming with a Stream per add (%s)", (kind) => {
  it('awaited adds, each from a new Stream instance, keep the stream near maxLen (no sink)', async (ctx) => {
    const c = await connect(kind);
    ctx.onTestFinished(() => c.close());
    const name = uniqueName('interest');
    ctx.onTestFinished(async () => void (await c.cmd('DEL', `pulse:stream:${name}`)));
    for (let i = 0; i < ADDS; i++) {
      const s = new Stream(name, c.redis, { retention: 'interest', maxLen: MAX_LEN });
      await s.add('e', `p${i}`);
    }
    const len = Number(await c.cmd('XLEN', `pulse:stream:${name}`));
    expect(len).toBeLessThanOrEqual(BOUND);
  }, 40_000);
});
