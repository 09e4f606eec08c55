/**
 * Outside review AF (defect 4; line numbers as of commit b664c82). `dead replay S --id X` exited 0
 * and said X "went meanwhile" when X was still in `S:dead` but its source_stream named another
 * stream: missingDeadLetters (commands/dead.ts ~162) checked only that X was there (and of the
 * sink), while the library's replayDeadLetters skips a letter whose source stream is not S.
 * Expected, per the README: a letter asked for and not replayed is named (stderr, and `notFound`
 * in `--json`) and the command exits 1.
 *
 * The reviewer's explanation: `dead replay <stream> --id X` where X is in
 * `<stream>:dead` but was dead-lettered from another stream (a sink of
 * `payments` whose `deadLetterStream` option is `orders:dead`, or any letter
 * whose `source_stream` is not `<stream>`).
 *
 * README "Command line": "`dead replay --id A --id B` replays the letters it
 * finds and names the others (stderr, and `notFound` in `--json`), then exits
 * 1 if any was not found." The letter asked for is not replayed (the library's
 * replayDeadLetters skips letters whose source_stream is another stream) and
 * stays in the dead-letter stream, yet the command exits 0, names nothing,
 * and says the letter "went meanwhile (another replay, or deleted)", which is
 * false: it is still there. An operator's script sees success.
 *
 * Failed before the fix: 2 of 2 here (the reviewer's case, and a mixed one: exit 0, notFound empty).
 * Fixed: commands/dead.ts (with deadLetterSources in deadLetters.ts) names the letters from another stream as not replayed and exits 1.
 */
import { afterAll, beforeAll, describe, it } from 'vitest';
import { buildCli, cli } from './support/cli.js';
import { connect, type TestClient, uniqueName } from './support/clients.js';

beforeAll(buildCli, 120_000);

describe('dead replay --id of a letter from another source stream', { timeout: 90_000 }, () => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect('ioredis');
  });
  afterAll(() => c?.close());

  it('does not report success when the asked-for letter was not replayed and is still there', async ({ expect }) => {
    const orders = uniqueName('revaf-orders');
    const payments = uniqueName('revaf-payments');
    const key = `pulse:stream:${orders}`;
    await c.cmd('XADD', key, '*', 'n', 'e', 'p', 'x');
    const id = String(
      await c.cmd(
        'XADD',
        `${key}:dead`,
        '*',
        'n',
        'paid',
        'p',
        '{}',
        'source_stream',
        payments,
        'source_sink',
        'billing',
        'source_id',
        '1-1',
        'deliveries',
        '3',
        'reason',
        'max deliveries reached',
      ),
    );
    try {
      // `dead <stream>` lists it: it is a dead letter of this dead-letter stream.
      const listed = await cli(['dead', orders, '--json']);
      expect((JSON.parse(listed.stdout) as { id: string }[]).map((d) => d.id)).toEqual([id]);

      const r = await cli(['dead', 'replay', orders, '--id', id, '--json']);
      const stillThere = Number(await c.cmd('XLEN', `${key}:dead`));
      const out = r.code === 0 ? (JSON.parse(r.stdout) as { replayed: number; notFound: string[] }) : undefined;
      // Either it was replayed (and is gone from the dead-letter stream), or the command says it was not
      // (exit 1, the ID named). Observed: exit 0, {"replayed":0,"notFound":[]}, the letter still there,
      // and stderr "1 dead letter of those asked for went meanwhile (another replay, or deleted)".
      const replayed = out !== undefined && out.replayed === 1 && stillThere === 0;
      const refused = r.code === 1 && r.stderr.includes(id);
      expect(replayed || refused, JSON.stringify({ code: r.code, stdout: r.stdout, stderr: r.stderr, stillThere })).toBe(true);
      // Refused, saying where the letter came from, and left where it was.
      expect(refused, r.stderr).toBe(true);
      expect(r.stderr).toContain(payments);
      expect(r.stderr).not.toContain('went meanwhile');
      expect(stillThere).toBe(1);
    } finally {
      await c.cmd('DEL', key, `${key}:dead`, `pulse:stream:${payments}`);
    }
  });

  it('replays the letters of the stream and names the one from another stream, exiting 1', async ({ expect }) => {
    const orders = uniqueName('revaf-orders');
    const payments = uniqueName('revaf-payments');
    const key = `pulse:stream:${orders}`;
    await c.cmd('XADD', key, '*', 'n', 'e', 'p', 'x');
    const letter = (source: string) =>
      c.cmd(
        'XADD',
        `${key}:dead`,
        '*',
        'n',
        'paid',
        'p',
        '{}',
        'source_stream',
        source,
        'source_sink',
        'billing',
        'source_id',
        '1-1',
        'deliveries',
        '3',
        'reason',
        'max deliveries reached',
      );
    const own = String(await letter(orders));
    const other = String(await letter(payments));
    try {
      const r = await cli(['dead', 'replay', orders, '--id', own, '--id', other, '--json']);
      expect(r.code, r.stderr).toBe(1);
      const out = JSON.parse(r.stdout) as { replayed: number; notFound: string[] };
      expect(out.replayed).toBe(1);
      expect(out.notFound).toEqual([other]);
      expect(r.stderr).toContain(other);
      expect(r.stderr).toContain(payments);
      expect(r.stderr).not.toContain('went meanwhile');
      const left = (await c.cmd('XRANGE', `${key}:dead`, '-', '+')) as [string, unknown][];
      expect(left.map(([id]) => String(id))).toEqual([other]);
    } finally {
      await c.cmd('DEL', key, `${key}:dead`, `pulse:stream:${payments}`);
    }
  });
});
