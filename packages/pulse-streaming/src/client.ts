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
  pipeline(...args: never[]): unknown;
  on(...args: never[]): unknown;
}

/**
 * A node-redis client or cluster (`createClient`, `createCluster`; v5 and
 * v6), connected. The library never closes it. Not a Sentinel
 * (`createSentinel`): pass a client of the master.
 */
export interface NodeRedisClient {
  /**
   * Takes a first argument that is both a string array and a string: what a
   * client's `sendCommand(args)` and a cluster's `sendCommand(firstKey, ...)`
   * both accept, and a Sentinel's `sendCommand(isReadonly, ...)` does not
   * (its commands would go out malformed). A property, not a method: under
   * `strict` TypeScript checks a function-typed property's parameters
   * strictly, a method's loosely (which would let a Sentinel through).
   */
  readonly sendCommand: (first: string & string[], ...rest: never[]) => unknown;
  duplicate(...args: never[]): unknown;
  on(...args: never[]): unknown;
}

/** Any client accepted by the library: see {@link IoRedisClient} and {@link NodeRedisClient}. */
export type RedisClient = IoRedisClient | NodeRedisClient;
