/**
 * Without a logger, losses are process warnings, at most one a minute per reader or sink; those
 * within the minute are said by close() (README "Retention and losses"). An outside trial's program
 * closed its consumer and called process.exit(0) at once: Node emits a warning on the next tick, so
 * close()'s warning was never printed and 470 of the 860 events counted lost went unsaid. close()
 * now resolves after its warnings are out.
 */
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { sharedUrl } from './support/clients.js';
import { spawnChild } from './support/spawnChild.js';

describe.concurrent('losses said by close() reach stderr when the program exits right after it', () => {
  it.for(['reader', 'sink'])('%s', async (kind, ctx) => {
    const child = spawnChild('lossExitChild.mjs', [sharedUrl(), kind]);
    ctx.onTestFinished(() => void child.proc.kill('SIGKILL'));
    const name = (await child.waitLine('NAME ', 15_000)).slice('NAME '.length);
    ctx.onTestFinished(async () => {
      const redis = new Redis(sharedUrl());
      await new Stream(name, redis).destroy();
      redis.disconnect();
    });
    expect(await child.exited(30_000)).toBe(0);
    const out = child.out();
    const lost = Number(/^CLOSED lost=(\d+)$/m.exec(out)?.[1]);
    // Two warnings: the first loss at once, the second (held for the minute) by close().
    const said = [...out.matchAll(/\[PULSE_EVENTS_LOST\] PulseWarning: .*?: (\d+) events lost/g)].map((m) => Number(m[1]));
    expect(said).toHaveLength(2);
    expect(said.reduce((a, b) => a + b, 0)).toBe(lost);
  });
});
