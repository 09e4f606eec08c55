/**
 * The two Redis clients, as the benchmarks use them: the user's client handed
 * to `new Stream`, plus each client's fastest raw command paths for the
 * baselines. Bulk strings come back as Buffers, as they do for the library.
 */
import { Cluster, Redis } from 'ioredis';
import { createClient, createCluster, RESP_TYPES } from 'redis';
import type { RedisClient } from '../packages/pulse-streaming/src/index.js';

export type ClientKind = 'ioredis' | 'node-redis';
export const CLIENT_KINDS: readonly ClientKind[] = ['ioredis', 'node-redis'];

export type Arg = string | Buffer;
export type Command = readonly Arg[];

export interface BenchClient {
  readonly kind: ClientKind;
  /** The client handed to `new Stream`. */
  readonly redis: RedisClient;
  /** One command; bulk strings are Buffers. */
  send(args: Command): Promise<unknown>;
  /** The client's explicit pipeline: ioredis `pipeline().exec()`, node-redis `multi().execAsPipeline()`. */
  pipeline(commands: readonly Command[]): Promise<void>;
  /** Every command sent at once, each with its own promise (the client batches the writes). */
  concurrent(commands: readonly Command[]): Promise<void>;
  close(): void;
}

type NodeRedis = ReturnType<typeof createClient>;
type NodeRedisCluster = ReturnType<typeof createCluster>;

const BUFFERS = { typeMapping: { [RESP_TYPES.BLOB_STRING]: Buffer } };

function connectIoRedis(url: string, name: string): Promise<BenchClient> {
  const redis = new Redis(url, { lazyConnect: true, connectionName: name, maxRetriesPerRequest: 1 });
  redis.on('error', () => {});
  return redis.connect().then(() => ({
    kind: 'ioredis',
    redis,
    send: (args) => redis.callBuffer(...splitCommand(args)),
    pipeline: async (commands) => {
      const p = redis.pipeline();
      for (const c of commands) p.callBuffer(...splitCommand(c));
      const results = (await p.exec()) ?? [];
      for (const [err] of results) if (err) throw err;
    },
    concurrent: async (commands) => {
      await Promise.all(commands.map((c) => redis.callBuffer(...splitCommand(c))));
    },
    close: () => redis.disconnect(),
  }));
}

function connectNodeRedis(url: string, name: string, role: ConnectionRole): Promise<BenchClient> {
  // node-redis gives every command a 5 s timeout by default; a connection for
  // blocking reads goes without, as the library's own read connections do.
  const redis: NodeRedis = createClient(
    role === 'reader' ? { url, name, commandOptions: { timeout: undefined } } : { url, name },
  );
  redis.on('error', () => {});
  return redis.connect().then(() => ({
    kind: 'node-redis',
    redis,
    send: (args) => redis.sendCommand(args, BUFFERS),
    pipeline: async (commands) => {
      const multi = redis.multi();
      for (const c of commands) multi.addCommand([...c]);
      await multi.execAsPipeline();
    },
    concurrent: async (commands) => {
      await Promise.all(commands.map((c) => redis.sendCommand(c, BUFFERS)));
    },
    close: () => redis.destroy(),
  }));
}

function splitCommand(args: Command): [string, ...Arg[]] {
  const [cmd, ...rest] = args;
  if (cmd === undefined) throw new Error('empty command');
  return [String(cmd), ...rest];
}

/** `user`: a client as a user creates it; `reader`: a dedicated connection for blocking reads. */
export type ConnectionRole = 'user' | 'reader';

/** A new connection of the given kind (each call opens one). */
export function connectClient(
  kind: ClientKind,
  url: string,
  name = `bench:${kind}`,
  role: ConnectionRole = 'user',
): Promise<BenchClient> {
  return kind === 'ioredis' ? connectIoRedis(url, name) : connectNodeRedis(url, name, role);
}

/** The key a command is routed by on a cluster: after the subcommand for XGROUP/XINFO, else the first argument. */
function routingKey(args: Command): Arg | undefined {
  return /^(XGROUP|XINFO)$/i.test(String(args[0])) ? args[2] : args[1];
}

/**
 * A cluster client as a user creates it (the test harness' options, see
 * `test/support/clusterClients.ts`), from the ports of its nodes on
 * 127.0.0.1. Commands are routed by their key; `pipeline` sends commands that
 * must share one slot (a cluster pipeline cannot span slots).
 */
export async function connectClusterClient(
  kind: ClientKind,
  ports: readonly number[],
  name = `bench:${kind}`,
): Promise<BenchClient> {
  const rootNodes = ports.map((port) => ({ host: '127.0.0.1', port }));
  if (kind === 'ioredis') {
    const redis = new Cluster(rootNodes, {
      lazyConnect: true,
      redisOptions: { maxRetriesPerRequest: 3, connectionName: name },
    });
    redis.on('error', () => {});
    await redis.connect();
    return {
      kind,
      redis,
      send: (args) => redis.callBuffer(...splitCommand(args)),
      pipeline: async (commands) => {
        const p = redis.pipeline();
        for (const c of commands) p.callBuffer(...splitCommand(c));
        const results = (await p.exec()) ?? [];
        for (const [err] of results) if (err) throw err;
      },
      concurrent: async (commands) => {
        await Promise.all(commands.map((c) => redis.callBuffer(...splitCommand(c))));
      },
      close: () => redis.disconnect(),
    };
  }
  const redis: NodeRedisCluster = createCluster({
    rootNodes: rootNodes.map((n) => ({ url: `redis://${n.host}:${n.port}` })),
    defaults: { name, socket: { reconnectStrategy: (n: number) => Math.min(n * 50, 500) } },
  });
  redis.on('error', () => {});
  await redis.connect();
  // The cluster's sendCommand takes a mutable array; it does not change it.
  const send = (args: Command): Promise<unknown> => redis.sendCommand(routingKey(args), false, args as Arg[], BUFFERS);
  return {
    kind,
    redis,
    send,
    pipeline: async (commands) => {
      const first = commands[0];
      if (first === undefined) return;
      const multi = redis.multi(routingKey(first));
      for (const c of commands) multi.addCommand(routingKey(c), false, [...c]);
      await multi.execAsPipeline();
    },
    concurrent: async (commands) => {
      await Promise.all(commands.map(send));
    },
    close: () => redis.destroy(),
  };
}
