/**
 * Names are attacker-controlled text (README): an outside trial found a stream
 * name the library accepts, `evil<ESC>cname` (ESC c resets a terminal), written
 * raw to the terminal by `dead`, the `destroy` prompt and its confirmation, the
 * `tail` note for a stream not there yet, `dead replay` errors and the
 * "key pulse:stream:..." of `stream`/`pending` errors; a newline in a name cut
 * a message into a line naming another key. Each now shows names as the tables
 * do: quoted, with such characters escaped.
 */
import { describe, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { cli } from './support/cli.js';
import { connect, uniqueName } from './support/clients.js';

const ESC = '\u001b';

describe.concurrent('CLI messages naming a stream with control characters', () => {
  it('write no raw ESC or newline of the name', async () => {
    const c = await connect('ioredis');
    const evil = `${uniqueName('esc')}-evil${ESC}cname`;
    const doomed = `${uniqueName('esc')}-doomed${ESC}c`;
    const absent = `${uniqueName('esc')}-absent${ESC}c`;
    const newline = `${uniqueName('esc')}-a\nb`;
    try {
      await new Stream(evil, c.redis as never).add('e', 'x');
      await new Stream(doomed, c.redis as never).add('e', 'x');
      const tailing = cli(['tail', absent, '--count', '1']);
      const runs = await Promise.all([
        cli(['dead', evil]),
        cli(['destroy', doomed, '--yes']),
        cli(['stream', absent]),
        cli(['stream', newline]),
        cli(['pending', absent, 'billing']),
        cli(['dead', 'replay', evil, '--id', '1-0']),
        (async () => {
          // The tail's note comes at once; it ends with the first event, added until it did.
          const late = new Stream(absent, c.redis as never);
          let done = false;
          void tailing.finally(() => {
            done = true;
          });
          while (!done) {
            await late.add('e', 'y');
            await new Promise((r) => setTimeout(r, 100));
          }
          return tailing;
        })(),
      ]);
      for (const r of runs) {
        const out = `${r.stdout}${r.stderr}`;
        expect(out.includes(ESC), out).toBe(false);
        expect(r.stderr.split('\n').filter((l) => l !== '').length, r.stderr).toBeLessThanOrEqual(1);
      }
    } finally {
      for (const n of [evil, doomed, absent, newline]) await c.cmd('DEL', `pulse:stream:${n}`, `pulse:stream:${n}:dead`);
      await c.close();
    }
  }, 30_000);
});
