/**
 * The Redis clients the library accepts, described by what it calls on them
 * (the same checks it makes at run time), so that neither client library is
 * needed to compile against this one.
 */

/**
 * An ioredis `Redis` or `Cluster` (v6), or a client with the same API such as
 * iovalkey's. The library never closes it.
 */
export interface IoRedisClient {
  callBuffer(...args: never[]): unknown;
  duplicate(...args: never[]): unknown;
}

/**
 * A node-redis client or cluster (`createClient`, `createCluster`; v5 and
 * v6), connected. The library never closes it.
 */
export interface NodeRedisClient {
  sendCommand(...args: never[]): unknown;
  duplicate(...args: never[]): unknown;
}

/** Any client accepted by the library: see {@link IoRedisClient} and {@link NodeRedisClient}. */
export type RedisClient = IoRedisClient | NodeRedisClient;
