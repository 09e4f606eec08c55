import { Cluster } from 'ioredis';
import { createCluster } from 'redis';
import type { Reader, Sink } from '../../packages/pulse-streaming/src/index.js';
import { slotOf } from '../../packages/pulse-streaming/src/internal/slot.js';
import { type ClientKind, type TestClient, uniqueName } from './clients.js';
import type { RedisCluster } from './redisCluster.js';

/** A cluster client of either library, for `new Stream(name, client.redis)`. */
export function connectCluster(kind: ClientKind, cluster: RedisCluster): Promise<TestClient> {
  return connectClusterPorts(
    kind,
    cluster.rootNodes.map((n) => n.port),
  );
}

/** A cluster client of either library from the ports of its nodes on 127.0.0.1. */
export async function connectClusterPorts(kind: ClientKind, ports: number[]): Promise<TestClient> {
  const rootNodes = ports.map((port) => ({ host: '127.0.0.1', port }));
  if (kind === 'ioredis') {
    const redis = new Cluster(rootNodes, { lazyConnect: true, redisOptions: { maxRetriesPerRequest: 3 } });
    redis.on('error', () => {});
    await redis.connect();
    return {
      kind,
      redis,
      cmd: (c, ...rest) => redis.call(String(c), ...rest),
      close: async () => {
        redis.disconnect();
      },
    };
  }
  const redis = createCluster({
    rootNodes: rootNodes.map((n) => ({ url: `redis://${n.host}:${n.port}` })),
    defaults: { socket: { reconnectStrategy: (n: number) => Math.min(n * 50, 500) } },
  });
  redis.on('error', () => {});
  await redis.connect();
  return {
    kind,
    redis,
    cmd: (...args) => {
      const a = args.map((x) => (typeof x === 'number' ? String(x) : x));
      // Route by the command's first key: after the subcommand for XINFO/XGROUP, after the
      // script and the key count for EVAL, else the first argument.
      const name = String(a[0]);
      const key = /^(XINFO|XGROUP)$/i.test(name) ? a[2] : /^EVAL(SHA)?$/i.test(name) ? a[3] : a[1];
      return redis.sendCommand(key, false, a);
    },
    close: async () => {
      redis.destroy();
    },
  };
}

/** Stream names (prefix `prefix`) whose keys sit in `n` different hash slots. */
export function namesInDistinctSlots(n: number, prefix = 'c'): string[] {
  const out: string[] = [];
  const slots = new Set<number>();
  while (out.length < n) {
    const name = uniqueName(prefix);
    const slot = slotOf(`pulse:stream:${name}`);
    if (slots.has(slot)) continue;
    slots.add(slot);
    out.push(name);
  }
  return out;
}

/**
 * A sink and a reader of one stream, side by side until they end: the IDs each handed out, in
 * order (the sink acks each as it comes), and `done`, which settles once both loops have ended.
 */
export function consumeSinkAndReader(
  sink: Sink,
  reader: Reader,
): { bySink: string[]; byReader: string[]; done: Promise<unknown> } {
  const bySink: string[] = [];
  const byReader: string[] = [];
  const done = Promise.all([
    (async () => {
      for await (const ev of sink) {
        bySink.push(ev.id);
        ev.ack().catch(() => {});
      }
    })(),
    (async () => {
      for await (const ev of reader) byReader.push(ev.id);
    })(),
  ]);
  return { bySink, byReader, done };
}
