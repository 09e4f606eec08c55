/**
 * Outside review AF (item 3). The --json output of the CLI went through
 * JSON.stringify alone (format.ts printJson, commands/tail.ts eventJson,
 * commands/dead.ts printLettersJson), which escapes the C0 controls but
 * leaves DEL, the C1 controls U+0080-U+009F (U+009B is CSI, U+009D OSC on
 * terminals that take 8-bit controls), U+2028/U+2029 and the bidi controls
 * as they are. Anyone who can write to a stream chooses a payload, event
 * name, header or sink name, so `tail --json` on a terminal passed those
 * characters on. Expected: they are written as \uXXXX in the JSON text,
 * which stays valid JSON and parses to the same data.
 *
 * Failed before the fix: all three (tail --json, dead --json, stream --json:
 * the characters were in stdout raw).
 * Fixed: format.ts jsonText escapes every character of UNSAFE that
 * JSON.stringify leaves; printJson, eventJson and printLettersJson write
 * their JSON through it.
 */
import { afterAll, beforeAll, describe, it } from 'vitest';
import { buildCli, cli, lines } from './support/cli.js';
import { connect, type TestClient, uniqueName } from './support/clients.js';

beforeAll(buildCli, 120_000);

/** CSI (8-bit), NEL, OSC (8-bit), DEL, the line separators, RLO, ALM, RLI. */
const HOSTILE = '\u009b31mred\u0085\u009d0;title\u007f\u2028\u2029\u202e\u061c\u2067end';

/** The characters JSON.stringify leaves raw that must not reach a terminal. */
function raw(text: string): string[] {
  return [...text].filter((ch) => /[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/.test(ch));
}

describe('--json output escapes C1, line-separator and bidi controls', { timeout: 90_000 }, () => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect('ioredis');
  });
  afterAll(() => c?.close());

  it('tail --json', async ({ expect }) => {
    const name = uniqueName('revaf-json');
    const key = `pulse:stream:${name}`;
    await c.cmd('XADD', key, '*', 'n', `ev${HOSTILE}`, 'p', `pay${HOSTILE}`);
    try {
      const r = await cli(['tail', name, '--from', 'oldest', '--count', '1', '--json']);
      expect(r.code, r.stderr).toBe(0);
      expect(raw(r.stdout)).toEqual([]);
      expect(r.stdout).toContain('\\u009b31mred');
      const [line] = lines(r.stdout);
      const ev = JSON.parse(line as string) as { event: string; payload: string; encoding: string };
      expect(ev.event).toBe(`ev${HOSTILE}`);
      expect(ev.encoding).toBe('utf8');
      expect(ev.payload).toBe(`pay${HOSTILE}`);
    } finally {
      await c.cmd('DEL', key);
    }
  });

  it('dead <stream> --json', async ({ expect }) => {
    const name = uniqueName('revaf-json');
    const key = `pulse:stream:${name}`;
    await c.cmd('XADD', key, '*', 'n', 'e', 'p', 'x');
    await c.cmd(
      'XADD',
      `${key}:dead`,
      '*',
      'n',
      'poison',
      'p',
      `pay${HOSTILE}`,
      'source_stream',
      name,
      'source_sink',
      'g',
      'source_id',
      '1-0',
      'deliveries',
      '3',
      'reason',
      `why${HOSTILE}`,
    );
    try {
      const r = await cli(['dead', name, '--json']);
      expect(r.code, r.stderr).toBe(0);
      expect(raw(r.stdout)).toEqual([]);
      const letters = JSON.parse(r.stdout) as { payload: string; reason: string }[];
      expect(letters).toHaveLength(1);
      expect(letters[0]?.payload).toBe(`pay${HOSTILE}`);
      expect(letters[0]?.reason).toBe(`why${HOSTILE}`);
    } finally {
      await c.cmd('DEL', key, `${key}:dead`);
    }
  });

  it('stream <stream> --json (printJson)', async ({ expect }) => {
    const name = uniqueName('revaf-json');
    const key = `pulse:stream:${name}`;
    await c.cmd('XADD', key, '*', 'n', 'e', 'p', 'x');
    await c.cmd('XGROUP', 'CREATE', key, `g${HOSTILE}`, '0');
    try {
      const r = await cli(['stream', name, '--json']);
      expect(r.code, r.stderr).toBe(0);
      expect(raw(r.stdout)).toEqual([]);
      expect(r.stdout).toContain(`g${'\\u009b'}31mred`);
      expect(JSON.stringify(JSON.parse(r.stdout))).toContain(`g${HOSTILE}`);
    } finally {
      await c.cmd('DEL', key);
    }
  });
});
