/** A hash slot migration left open (keys moved, as a reshard in progress leaves it), for the tests of sinks during one. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { RedisCluster } from './redisCluster.js';
import { type RedisServer, rawCommand } from './redisServer.js';

const run = promisify(execFile);

/** Opens the migration of `slot` to `to` and moves its keys, leaving it open; resolves to its end (SETSLOT NODE). */
export async function startMigration(
  cluster: RedisCluster,
  slot: number,
  from: RedisServer,
  to: RedisServer,
): Promise<() => Promise<void>> {
  const fromId = await cluster.idOf(from);
  const toId = await cluster.idOf(to);
  await rawCommand(to.port, `CLUSTER SETSLOT ${slot} IMPORTING ${fromId}`);
  await rawCommand(from.port, `CLUSTER SETSLOT ${slot} MIGRATING ${toId}`);
  const { stdout } = await run('redis-cli', ['-p', String(from.port), 'CLUSTER', 'GETKEYSINSLOT', String(slot), '100']);
  const keys = stdout.split('\n').filter((k) => k.length > 0);
  if (keys.length > 0)
    await run('redis-cli', ['-p', String(from.port), 'MIGRATE', '127.0.0.1', String(to.port), '', '0', '5000', 'KEYS', ...keys]);
  return async () => {
    for (const n of await cluster.masters()) await rawCommand(n.port, `CLUSTER SETSLOT ${slot} NODE ${toId}`);
  };
}
