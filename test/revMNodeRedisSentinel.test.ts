/**
 * Outside review M (client configurations): a node-redis `createSentinel()`
 * client. The README says "Anything else is a compile-time error (and an
 * InvalidArgumentError at run time)". A RedisSentinel has `sendCommand` and
 * `duplicate`, so it compiles and `new Stream` accepts it as a node-redis
 * client; but its `sendCommand` is `(isReadonly, args, options)`, so every
 * command the library sends is garbage on the wire: add, newSink, ... all
 * reject with "ERR Protocol error: invalid multibulk length". It must either
 * work (add, sink delivery) or be refused at `new Stream` with an
 * InvalidArgumentError.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSentinel } from 'redis';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, Stream } from '../packages/pulse-streaming/src/index.js';
import { take, uniqueName, waitFor } from './support/clients.js';
import { freePort, RedisServer, rawCommand } from './support/redisServer.js';

describe('node-redis sentinel client', () => {
  it('is refused with InvalidArgumentError, or publishes and consumes', async () => {
    const master = await RedisServer.start();
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'revm-sentinel-'));
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
        let s: Stream;
        try {
          s = new Stream(uniqueName('sentinel'), sentinel);
        } catch (err) {
          expect(err).toBeInstanceOf(InvalidArgumentError);
          return;
        }
        // Accepted: then it must work. Now: PulseError "ERR Protocol error: invalid multibulk length".
        const sink = await s.newSink('k', { startAt: 'oldest', blockMs: 100 });
        try {
          const id = await s.add('e', 'x');
          const [ev] = await take(sink.subscribe(), 1, 5000);
          expect(ev?.id).toBe(id);
          await ev?.ack();
        } finally {
          await sink.close();
          await s.destroy();
        }
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
