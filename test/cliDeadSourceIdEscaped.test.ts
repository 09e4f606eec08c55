/**
 * Outside review AF (defect 1; line numbers as of commit b664c82). `dead list`
 * and `dead show` printed a dead letter's `source_id` as it was
 * (commands/dead.ts ~103 `d.sourceId || '-'` and ~133 `['source id', d.sourceId || '-']`),
 * while the cells beside it (event, topic, sink, reason) go through
 * displayText. A letter's fields are written by whoever can XADD to
 * `<stream>:dead`, so a source_id holding an OSC or SGR sequence acted on the
 * operator's terminal. Expected: the source ID is shown escaped, as every
 * other text from Redis is.
 *
 * The reviewer's explanation: attacker-controlled text must not reach an
 * operator's terminal as control sequences. format.ts says C0/C1 controls,
 * DEL, line separators and bidi overrides "must not reach a terminal as they
 * are", and the existing test (cli.test.ts, "never writes terminal control
 * characters from stream, sink or consumer names") holds stdout of some
 * commands to it. Anything in Redis is attacker-controlled: any application
 * with write access can XADD to `<stream>:dead` or create consumer groups and
 * consumers.
 *
 * Every assertion checks that the output holds no C0 control other than
 * newline/tab, no DEL and no C1 control; the bytes should be shown escaped
 * (as displayText does: `\u001b...`).
 *
 * Failed before the fix: 2 of 2 here (both cases).
 * Fixed: commands/dead.ts shows the source ID through displayText in `dead list` and `dead show`.
 */
import { afterAll, beforeAll, describe, it } from 'vitest';
import { buildCli, cli } from './support/cli.js';
import { connect, type TestClient, uniqueName } from './support/clients.js';

beforeAll(buildCli, 120_000);

/** An OSC that sets the terminal title, then an SGR colour: both would act on a terminal. */
const ESC = '\u001b]0;pwned\u0007\u001b[31mRED\u001b[0m';

function controls(text: string): string[] {
  return [...text].filter((ch) => {
    const code = ch.charCodeAt(0);
    return (code < 0x20 && ch !== '\n' && ch !== '\t') || (code >= 0x7f && code <= 0x9f);
  });
}

describe('dead list/show: a source_id from Redis is shown escaped', { timeout: 90_000 }, () => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect('ioredis');
  });
  afterAll(() => c?.close());

  async function deadLetterWithSourceId(): Promise<{ name: string; id: string; cleanup: () => Promise<unknown> }> {
    const name = uniqueName('revaf-esc');
    const key = `pulse:stream:${name}`;
    await c.cmd('XADD', key, '*', 'n', 'e', 'p', 'x');
    const id = String(
      await c.cmd(
        'XADD',
        `${key}:dead`,
        '*',
        'n',
        'poison',
        'p',
        'x',
        'source_stream',
        name,
        'source_sink',
        'billing',
        // A letter whose source_id was written by someone else than the library.
        'source_id',
        `1-1${ESC}`,
        'deliveries',
        '5',
        'reason',
        'gave up',
      ),
    );
    return { name, id, cleanup: () => c.cmd('DEL', key, `${key}:dead`) };
  }

  // commands/dead.ts deadListCommand: the SOURCE ID cell is `d.sourceId || '-'`, not displayText(d.sourceId)
  // (the cells beside it, event, topic, sink and reason, are escaped).
  it('dead list shows a source_id escaped, never as terminal control sequences', async ({ expect }) => {
    const { name, cleanup } = await deadLetterWithSourceId();
    try {
      const r = await cli(['dead', 'list', name]);
      expect(r.code, r.stderr).toBe(0);
      expect(controls(r.stdout)).toEqual([]);
      // Shown escaped (as displayText does), not dropped.
      expect(r.stdout).toContain('\\u001b]0;pwned\\u0007');
    } finally {
      await cleanup();
    }
  });

  // commands/dead.ts deadShowCommand: ['source id', d.sourceId || '-'] is printed as it is.
  it('dead show shows a source_id escaped, never as terminal control sequences', async ({ expect }) => {
    const { name, id, cleanup } = await deadLetterWithSourceId();
    try {
      const r = await cli(['dead', 'show', name, id]);
      expect(r.code, r.stderr).toBe(0);
      expect(controls(r.stdout)).toEqual([]);
      // Shown escaped (as displayText does), not dropped.
      expect(r.stdout).toContain('\\u001b]0;pwned\\u0007');
    } finally {
      await cleanup();
    }
  });
});
