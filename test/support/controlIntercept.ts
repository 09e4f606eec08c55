/**
 * For outside review AA's tests: a user client (ioredis or node-redis) on a private redis-server
 * whose duplicates (the sink's own connections) are kept, with a hook run
 * before each command a duplicate named `...:control` sends (and one before
 * each the user's client itself sends, `userHook`). The hook may
 * act on the real server (CLIENT KILL of that connection, a destroy() of the
 * stream) before the command goes out: nothing of Redis is mocked.
 */
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import type { TestContext } from 'vitest';
import { type RedisClient, type SinkEvent, Stream } from '../../packages/pulse-streaming/src/index.js';
import { type ClientKind, connect, recordingLogger, type TestClient, uniqueName, within } from './clients.js';
import { RedisServer } from './redisServer.js';

export type Hook = (args: readonly unknown[]) => Promise<void> | void;

export interface Intercepted {
  readonly server: RedisServer;
  /** The user's client, handed to `new Stream`. */
  readonly redis: RedisClient;
  /** Another client of the same server, for setup and assertions. */
  readonly c: TestClient;
  /** Set to act before the control connection's next commands. */
  hook: Hook | undefined;
  /** Set to act once a command of the control connection is answered, before the library sees the reply. */
  answered: Hook | undefined;
  /** Set to act before the user's client's next commands (acks, nacks: the library sends them there). */
  userHook: Hook | undefined;
  /** Kills the sink's control connection (by its name) from `c`: a real connection drop. */
  killControl(): Promise<void>;
}

export async function intercepted(ctx: TestContext, kind: ClientKind): Promise<Intercepted> {
  const server = await RedisServer.start();
  ctx.onTestFinished(() => server.stop());
  const c = await connect(kind, server.url);
  ctx.onTestFinished(() => c.close());
  const out: Intercepted = {
    server,
    redis: undefined as unknown as RedisClient,
    c,
    hook: undefined,
    answered: undefined,
    userHook: undefined,
    async killControl() {
      const list = String(await c.cmd('CLIENT', 'LIST')).split('\n');
      const line = list.find((l) => / name=pulse:sink:\S*:control /.test(l));
      const id = line ? /\bid=(\d+)/.exec(line)?.[1] : undefined;
      if (id === undefined) throw new Error('no control connection');
      await c.cmd('CLIENT', 'KILL', 'ID', id);
    },
  };
  const isControl = (name: unknown) => typeof name === 'string' && name.endsWith(':control');
  // The library passes an ioredis command's arguments as one array (ioredis flattens it): hooks see them flat.
  const flat = (x: unknown[]): unknown[] => (x.length === 2 && Array.isArray(x[1]) ? [x[0], ...x[1]] : x);
  if (kind === 'ioredis') {
    const redis = new Redis(server.url, { lazyConnect: true, maxRetriesPerRequest: 3 });
    redis.on('error', () => {});
    await redis.connect();
    const duplicate = redis.duplicate.bind(redis);
    const userCall = redis.callBuffer.bind(redis) as (...x: unknown[]) => Promise<unknown>;
    Object.assign(redis, {
      callBuffer: async (...x: unknown[]) => {
        if (out.userHook) await out.userHook(flat(x).map((v) => (Buffer.isBuffer(v) ? v.toString() : v)));
        return userCall(...x);
      },
      duplicate: (...a: Parameters<typeof duplicate>) => {
        const d = duplicate(...a);
        if (isControl(d.options.connectionName)) {
          const callBuffer = d.callBuffer.bind(d) as (...x: unknown[]) => Promise<unknown>;
          Object.assign(d, {
            callBuffer: async (...x: unknown[]) => {
              if (out.hook) await out.hook(flat(x));
              const reply = await callBuffer(...x);
              if (out.answered) await out.answered(flat(x));
              return reply;
            },
          });
        }
        return d;
      },
    });
    ctx.onTestFinished(() => redis.disconnect());
    Object.assign(out, { redis });
  } else {
    const redis = createClient({ url: server.url, socket: { reconnectStrategy: (n: number) => Math.min(n * 50, 500) } });
    redis.on('error', () => {});
    await redis.connect();
    const duplicate = redis.duplicate.bind(redis) as (...a: unknown[]) => typeof redis;
    const userSend = redis.sendCommand.bind(redis) as (...x: unknown[]) => Promise<unknown>;
    Object.assign(redis, {
      sendCommand: async (...x: unknown[]) => {
        if (out.userHook) await out.userHook((x[0] as unknown[]).map((v) => (Buffer.isBuffer(v) ? v.toString() : v)));
        return userSend(...x);
      },
      duplicate: (...a: unknown[]) => {
        const d = duplicate(...a);
        const name = (a[0] as { name?: unknown } | undefined)?.name;
        if (isControl(name)) {
          const send = d.sendCommand.bind(d) as (...x: unknown[]) => Promise<unknown>;
          Object.assign(d, {
            sendCommand: async (...x: unknown[]) => {
              const args = (x[0] as unknown[]).map((v) => (Buffer.isBuffer(v) ? v.toString() : v));
              if (out.hook) await out.hook(args);
              const reply = await send(...x);
              if (out.answered) await out.answered(args);
              return reply;
            },
          });
        }
        return d;
      },
    });
    ctx.onTestFinished(() => {
      redis.destroy();
    });
    Object.assign(out, { redis });
  }
  return out;
}

/**
 * Three events of `s` read by a consumer that died (`dead`, idle a minute),
 * and `act` run once just before the sink's read of the entries its claim
 * took (the XRANGE starting at the first claimed ID). Resolves to their IDs
 * and whether `act` ran yet.
 */
export async function orphansThen(
  x: Intercepted,
  s: { readonly key: string; add(name: string, payload: string): Promise<unknown> },
  act: () => Promise<unknown>,
): Promise<{ ids: string[]; fired: () => boolean }> {
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) ids.push((await s.add('e', `p${i}`)) as string);
  await x.c.cmd('XGROUP', 'CREATE', s.key, 'g', '0');
  await x.c.cmd('XREADGROUP', 'GROUP', 'g', 'dead', 'COUNT', 10, 'STREAMS', s.key, '>');
  await x.c.cmd('XCLAIM', s.key, 'g', 'dead', 0, ...ids, 'IDLE', 60_000, 'JUSTID');
  let fired = false;
  x.hook = async (args) => {
    if (!fired && String(args[0]).toUpperCase() === 'XRANGE' && String(args[2]) === ids[0]) {
      fired = true;
      await act();
    }
  };
  return { ids, fired: () => fired };
}

/**
 * A sink (`graceMs`) with a recording logger on a new stream of `x`'s user
 * client, one event it handed out and that was then deleted from the stream
 * (XDEL: still pending, gone), and `act` run once just before the user's
 * client sends the XACK of that event. The caller closes the sink.
 */
export async function deletedInHand(x: Intercepted, prefix: string, graceMs: number, act: (s: Stream) => Promise<unknown>) {
  const { logger, lines } = recordingLogger();
  const s = new Stream(uniqueName(prefix), x.redis, { logger, maxLen: 0 });
  const sink = await s.newSink('g', { ackGracePeriodMs: graceMs, blockMs: 100 });
  const it0 = sink.subscribe()[Symbol.asyncIterator]();
  const id = String(await s.add('e', 'only'));
  const ev = (await within(it0.next(), 5000, 'the event')).value as SinkEvent;
  await x.c.cmd('XDEL', s.key, id);
  let fired = false;
  x.userHook = async (args) => {
    if (!fired && String(args[0]).toUpperCase() === 'XACK' && args.includes(id)) {
      fired = true;
      await act(s);
    }
  };
  return { s, sink, ev, lines, fired: () => fired };
}
