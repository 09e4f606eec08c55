/**
 * A node-redis Sentinel client (`createSentinel()`) is refused: a compile-time
 * error (`RedisClient`'s `sendCommand` is a function-typed property, checked
 * strictly) and an InvalidArgumentError at `new Stream` that says what to
 * pass instead. Outside review M: it was accepted (it has `sendCommand` and
 * `duplicate`), but its `sendCommand(isReadonly, args, options)` put
 * malformed commands on the wire: add, newSink... all rejected with
 * "ERR Protocol error: invalid multibulk length".
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSentinel } from 'redis';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, Stream } from '../packages/pulse-streaming/src/index.js';
import { uniqueName, waitFor } from './support/clients.js';
import { freePort, RedisServer, rawCommand } from './support/redisServer.js';

describe('node-redis sentinel client', () => {
  it('is refused with an InvalidArgumentError naming what to pass instead', async () => {
    const master = await RedisServer.start();
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'pulse-sentinel-'));
    const conf = join(dir, 'sentinel.conf');
    writeFileSync(
      conf,
      `port ${port}\nbind 127.0.0.1\nprotected-mode no\ndir ${dir}\nsentinel monitor mymaster 127.0.0.1 ${master.port} 1\n`,
    );
    let proc: ChildProcess | undefined;
    try {
      proc = spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' });
      await waitFor(() => rawCommand(port, 'PING', 300).then((r) => r === '+PONG'), { what: 'sentinel up' });
      const sentinel = createSentinel({ name: 'mymaster', sentinelRootNodes: [{ host: '127.0.0.1', port }] });
      sentinel.on('error', () => {});
      await sentinel.connect();
      try {
        // A real Sentinel, connected to its master: refused by the constructor, so before any command.
        // @ts-expect-error a Sentinel's sendCommand takes (isReadonly, args): not a RedisClient
        expect(() => new Stream(uniqueName('sentinel'), sentinel)).toThrow(InvalidArgumentError);
        // @ts-expect-error as above
        expect(() => new Stream(uniqueName('sentinel'), sentinel)).toThrow(/createSentinel.*not supported.*client of the master/);
      } finally {
        await sentinel.close();
      }
    } finally {
      if (proc?.pid !== undefined) proc.kill('SIGKILL');
      await master.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
