/**
 * Outside review AF (defect 2; line numbers as of commit b664c82). The error
 * messages that list the names a typo could have meant printed those names
 * raw to stderr: `pending --consumer <typo>` (inspect.ts requireConsumer ~293,
 * via nameList ~279) lists the consumer names of XINFO CONSUMERS, and
 * `dead replay --sink <typo>` (commands/dead.ts ~180, "its sinks: ...") the
 * sink names of XINFO GROUPS. Anyone who can create a consumer group or a
 * consumer chooses those names, so an escape sequence in one acted on the
 * operator's terminal. Expected: each name escaped as stdout shows it.
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
 * Fixed: inspect.ts nameList escapes each name with displayText, for every message that lists names.
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

describe('errors that list sink or consumer names show them escaped', { timeout: 90_000 }, () => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect('ioredis');
  });
  afterAll(() => c?.close());

  // inspect.ts requireConsumer: the error lists `nameList(consumers)`, the consumer names from
  // XINFO CONSUMERS as they are, and main.ts report() writes it to stderr unescaped.
  it('pending --consumer <typo> lists the sink consumers escaped in its error', async ({ expect }) => {
    const name = uniqueName('revaf-esc');
    const key = `pulse:stream:${name}`;
    await c.cmd('XADD', key, '*', 'n', 'e', 'p', 'x');
    await c.cmd('XGROUP', 'CREATE', key, 'billing', '0');
    await c.cmd('XGROUP', 'CREATECONSUMER', key, 'billing', `w${ESC}`);
    try {
      const r = await cli(['pending', name, 'billing', '--consumer', 'nobody']);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toContain('has no consumer');
      expect(controls(r.stderr)).toEqual([]);
      // Shown escaped (as displayText does), not dropped.
      expect(r.stderr).toContain('\\u001b]0;pwned\\u0007');
    } finally {
      await c.cmd('DEL', key);
    }
  });

  // commands/dead.ts deadReplayCommand: "its sinks: ${nameList(sinks)}" with the sink names of
  // XINFO GROUPS as they are.
  it('dead replay --sink <typo> lists the stream sinks escaped in its error', async ({ expect }) => {
    const name = uniqueName('revaf-esc');
    const key = `pulse:stream:${name}`;
    await c.cmd('XADD', key, '*', 'n', 'e', 'p', 'x');
    await c.cmd('XGROUP', 'CREATE', key, `g${ESC}`, '0');
    try {
      const r = await cli(['dead', 'replay', name, '--sink', 'nosuch']);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toContain('has no sink "nosuch"');
      expect(controls(r.stderr)).toEqual([]);
      // Shown escaped (as displayText does), not dropped.
      expect(r.stderr).toContain('\\u001b]0;pwned\\u0007');
    } finally {
      await c.cmd('DEL', key);
    }
  });
});
