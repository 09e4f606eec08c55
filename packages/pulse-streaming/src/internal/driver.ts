/**
 * The user's Redis client, wrapped once per client (`driverFor`) in the
 * driver of its kind (ioredisDriver.ts, nodeRedisDriver.ts), and scripts sent
 * by SHA over any connection.
 */
import { ClosedError, InvalidArgumentError } from '../errors.js';
import type { Arg } from './command.js';
import type { Connection } from './connection.js';
import type { Driver } from './driverShared.js';
import { IoRedisDriver, isIoRedis } from './ioredisDriver.js';
import { isNodeRedis, NodeRedisDriver } from './nodeRedisDriver.js';
import { isReplyError } from './redisErrors.js';
import type { Script } from './script.js';

export type { Arg } from './command.js';
export type { Connection, OwnedConnection } from './connection.js';
export type { Driver } from './driverShared.js';

/** Runs a script by SHA, loading it once when Redis does not know it yet. */
export async function evalScript(
  conn: Connection,
  script: Script,
  keys: readonly string[],
  args: readonly Arg[],
): Promise<unknown> {
  const tail = [keys.length, ...keys, ...args];
  try {
    return await conn.send(['EVALSHA', script.sha, ...tail], keys[0]);
  } catch (err) {
    if (!isReplyError(err, 'NOSCRIPT')) throw err;
    return conn.send(['EVAL', script.source, ...tail], keys[0]);
  }
}

const drivers = new WeakMap<object, Driver>();

/** Wraps a user's client. Throws `InvalidArgumentError` for anything that is not a supported client. */
export function driverFor(client: unknown): Driver {
  if (typeof client === 'object' && client !== null) {
    const known = drivers.get(client);
    if (known) return known;
    const driver = isIoRedis(client) ? new IoRedisDriver(client) : isNodeRedis(client) ? new NodeRedisDriver(client) : undefined;
    if (driver) {
      drivers.set(client, driver);
      return driver;
    }
  }
  throw new InvalidArgumentError('redis must be an ioredis Redis/Cluster or a node-redis client/cluster (v5 or later)');
}

/**
 * Throws `ClosedError` when the user's client is closed (quit, disconnected,
 * or a node-redis client never connected): nothing can be sent, so say so
 * before trying, as `add` does, rather than a plain `PulseError` with the
 * client's "The client is closed" from the first command.
 */
export function checkOpen(driver: Driver, what: string): void {
  const closed = driver.closed();
  if (closed !== undefined) throw new ClosedError(`${what}: ${closed}`);
}
