/**
 * Helpers of the fatal*.test.ts files: a private redis-server per test,
 * an admin client, clients of restricted ACL users, and a recording logger.
 */
import type { TestContext } from 'vitest';
import { type Logger, PulseError } from '../../packages/pulse-streaming/src/index.js';
import { type ClientKind, connect, recordingLogger, type TestClient, uniqueName, within } from './clients.js';
import { RedisServer } from './redisServer.js';

export async function rejectionOf(p: Promise<unknown>, ms = 10_000, what = 'the call'): Promise<unknown> {
  try {
    await within(p, ms, what);
  } catch (err) {
    if (err instanceof Error && err.message.startsWith(`${what} did not settle`)) throw err;
    return err;
  }
  throw new Error(`expected ${what} to reject`);
}

export async function env(ctx: TestContext, kind: ClientKind, serverArgs: string[] = []) {
  const server = await RedisServer.start({ args: serverArgs });
  const release: Array<() => Promise<unknown>> = [];
  ctx.onTestFinished(async () => {
    for (const f of release.reverse()) await f().catch(() => {});
    await server.stop();
  });
  const admin = await connect(kind, server.url);
  release.push(() => admin.close());
  const { logger, lines } = recordingLogger();
  return {
    server,
    admin,
    lines,
    logger: logger as Logger,
    name: uniqueName('rf'),
    defer(f: () => Promise<unknown>): void {
      release.push(f);
    },
    /** A client of a new ACL user with `rules` (after `on >pw`). */
    async user(...rules: string[]): Promise<{ user: string; client: TestClient }> {
      const user = uniqueName('u').replace(/-/g, '_');
      await admin.cmd('ACL', 'SETUSER', user, 'on', '>pw', ...rules);
      const url = new URL(server.url);
      url.username = user;
      url.password = 'pw';
      const client = await connect(kind, url.toString());
      release.push(() => client.close());
      return { user, client };
    },
    /** Total calls of the named commands so far (INFO commandstats). */
    async calls(names: string[]): Promise<number> {
      const info = String(await admin.cmd('INFO', 'commandstats'));
      let total = 0;
      for (const n of names) {
        const m = new RegExp(`cmdstat_${n}:calls=(\\d+)`).exec(info);
        if (m) total += Number(m[1]);
      }
      return total;
    },
    /** Failed + rejected calls of all commands. */
    async errorCalls(): Promise<number> {
      const info = String(await admin.cmd('INFO', 'commandstats'));
      let total = 0;
      for (const m of info.matchAll(/rejected_calls=(\d+),failed_calls=(\d+)/g)) total += Number(m[1]) + Number(m[2]);
      return total;
    },
  };
}

export function isPulse(err: unknown): err is PulseError {
  return err instanceof PulseError;
}

/** Resolves when `p` rejects, with the error; undefined if it resolved. Bounded. */
export async function outcome(
  p: Promise<unknown>,
  ms: number,
  what: string,
): Promise<{ ok: true } | { ok: false; err: unknown }> {
  try {
    await within(p, ms, what);
    return { ok: true };
  } catch (err) {
    if (err instanceof Error && err.message.startsWith(`${what} did not settle`)) throw err;
    return { ok: false, err };
  }
}
