/**
 * A sink (or reader) stopped by a fatal error (its stream key turned into a string: WRONGTYPE) must hold nothing
 * open, and say why it is closed. Review B found that such a sink ended its subscriptions and said
 * isClosed(), but kept its control and read connections open (a program that then quit its client
 * without calling close() never exited, where one with a reader did), and that subscribe() and
 * addStream() then threw a ClosedError without the error as its cause, as if the user had closed it.
 * The reader cases pin the same README promise ("When Redis refuses for good") for readers, which
 * kept it already.
 * Each case runs in a child process (test/support/fatalExitChild.mjs, on dist: `npm run build`),
 * whose exit on its own is the assertion; its output serves both tests of the case.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { CLIENT_KINDS } from './support/clients.js';
import { RedisServer } from './support/redisServer.js';
import { type Child, spawnChild } from './support/spawnChild.js';

const CASES = CLIENT_KINDS.flatMap((kind) => (['sink', 'process', 'reader'] as const).map((what) => ({ kind, what })));

const runs = new Map<string, Promise<{ child: Child; code: number | null | 'timeout' }>>();
const servers: RedisServer[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
});

/** The child of one case, run once for both tests: its output, and how it exited. */
function run(kind: string, what: string): Promise<{ child: Child; code: number | null | 'timeout' }> {
  const key = `${kind} ${what}`;
  let r = runs.get(key);
  if (r === undefined) {
    r = (async () => {
      const server = await RedisServer.start();
      servers.push(server);
      const child = spawnChild('fatalExitChild.mjs', [server.url, kind, what]);
      await child.waitLine('QUIT', 20_000);
      // Exits on its own within this (the child prints what is left and exits with 3 after 6 s).
      return { child, code: await child.exited(8000) };
    })();
    runs.set(key, r);
  }
  return r;
}

describe.concurrent('a sink or reader stopped by a fatal error', () => {
  it.for(CASES)(
    '$kind $what: ends with the error, isClosed(), and the program exits after quitting its client without close()',
    async ({ kind, what }) => {
      const { child, code } = await run(kind, what);
      expect(await child.waitLine('ENDED', 10)).toMatch(/^ENDED PulseError WRONGTYPE /);
      expect(await child.waitLine('ISCLOSED', 10)).toBe('ISCLOSED true');
      expect(child.out()).not.toContain('LEFT');
      expect(code).toBe(0);
    },
  );

  it.for(CASES)(
    '$kind $what: subscribe() and addStream() after it throw ClosedError with the error as its cause',
    async ({ kind, what }) => {
      const { child } = await run(kind, what);
      expect(await child.waitLine('SUBSCRIBE', 10)).toMatch(/^SUBSCRIBE ClosedError cause=PulseError WRONGTYPE$/);
      expect(await child.waitLine('ADDSTREAM', 10)).toMatch(/^ADDSTREAM ClosedError cause=PulseError WRONGTYPE$/);
    },
  );
});
