import type { TestProject } from 'vitest/node';
import { RedisCluster } from './redisCluster.js';
import { RedisServer } from './redisServer.js';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
    /** With PULSE_TEST_CLUSTER=1: ports of a shared cluster that `connect()` uses instead. */
    clusterPorts: number[];
  }
}

/**
 * One server shared by ordinary tests, unless REDIS_URL points elsewhere.
 * With PULSE_TEST_CLUSTER=1 the ordinary tests run on a shared local cluster.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  project.provide('clusterPorts', []);
  if (process.env.PULSE_TEST_CLUSTER === '1') {
    const cluster = await RedisCluster.start();
    project.provide(
      'clusterPorts',
      cluster.rootNodes.map((n) => n.port),
    );
    const server = await RedisServer.start();
    project.provide('redisUrl', server.url);
    return async () => {
      await cluster.stop();
      await server.stop();
    };
  }
  const fromEnv = process.env.REDIS_URL;
  if (fromEnv) {
    project.provide('redisUrl', fromEnv);
    return async () => {};
  }
  const server = await RedisServer.start();
  project.provide('redisUrl', server.url);
  return () => server.stop();
}
