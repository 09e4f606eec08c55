/**
 * Outside review AI (defect 4; line numbers as of commit 41e36ff): `pulse-streaming add --header __proto__=v` exited 0 and stored the
 * event without the header. `__proto__` is a valid header name (1 to 64 of
 * [A-Za-z0-9_.-]; the library stores and reads it as an own property, and
 * the dashboard shows it), but `parseHeaders` (commands/add.ts) builds the
 * headers with `headers[name] = value`: on a plain object that assignment
 * hits the `__proto__` setter, which ignores a string, so the header is
 * dropped in silence (and `--header __proto__=a --header __proto__=b` is not
 * "given twice" either).
 * Expected: the entry carries `h.__proto__` (or the command refuses it).
 * Failed before the fix: the entry had `h.tenant` only (1 of 1).
 * Fixed: `parseHeaders` defines each header as an own property.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { buildCli, cli } from './support/cli.js';
import { connect, uniqueName } from './support/clients.js';

beforeAll(buildCli, 120_000);

describe('cli add --header __proto__', { timeout: 30_000 }, () => {
  it('an add with --header __proto__=v stores the header (not exit 0 without it)', async () => {
    const c = await connect('ioredis');
    const name = uniqueName('revAIcli');
    const s = new Stream(name, c.redis);
    try {
      const r = await cli(['add', name, 'e', 'p', '--header', '__proto__=v', '--header', 'tenant=acme']);
      const fields = ((await c.cmd('XRANGE', s.key, '-', '+')) as Array<[string, string[]]>).map(([, f]) => f);
      if (r.code === 0) {
        // Stored: then with every header it was given. Before a fix: [n, e, p, p, h.tenant, acme].
        expect(fields).toEqual([['n', 'e', 'p', 'p', 'h.__proto__', 'v', 'h.tenant', 'acme']]);
      } else {
        // Or refused, with nothing stored.
        expect(fields).toEqual([]);
      }
    } finally {
      await s.destroy();
      await c.close();
    }
  });
});
