/**
 * `tail` and `add` of the real CLI binary: one line per event whatever the
 * payload holds, payloads that cannot be mistaken for one another, one JSON
 * shape, headers on demand, lines cut to the width, the exit code of Ctrl-C, and the trailing
 * newline of a payload read from stdin.
 */
import { afterAll, beforeAll, describe, it } from 'vitest';
import { buildCli, cli, lines } from './support/cli.js';
import { connect, type TestClient, uniqueName, waitFor } from './support/clients.js';

beforeAll(buildCli, 120_000);

const ESC = String.fromCharCode(27);

describe.concurrent('CLI tail and add', { timeout: 90_000 }, () => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect('ioredis');
  });
  afterAll(() => c?.close());

  /** A stream with awkward payloads: multi-line, a terminal escape, text that looks like bytes, bytes, long text. */
  async function awkward(): Promise<{ name: string; ids: string[] }> {
    const name = uniqueName('clitail');
    const key = `pulse:stream:${name}`;
    const payloads: (string | Buffer)[] = [
      '{"a":1}',
      'first line\nsecond line',
      `red ${ESC}[31mX`,
      'base64:AAH/',
      Buffer.from([0, 1, 255]),
      'x'.repeat(3000),
    ];
    const ids: string[] = [];
    for (const [i, p] of payloads.entries()) ids.push(String(await c.cmd('XADD', key, '*', 'n', `e${i}`, 'p', p)));
    return { name, ids };
  }

  it('prints one line per event, escaped, and never shows text as if it were bytes', async ({ expect }) => {
    const { name, ids } = await awkward();
    try {
      const r = await cli(['tail', name, '--from', 'oldest', '--count', String(ids.length)]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).not.toContain(ESC);
      const out = lines(r.stdout);
      expect(out).toHaveLength(ids.length);
      for (const [i, id] of ids.entries()) expect(out[i]).toContain(` ${id} e${i} `);
      expect(out[0]).toMatch(/ \{"a":1\}$/);
      expect(out[1]).toMatch(/ "first line\\nsecond line"$/);
      expect(out[2]).toMatch(/ "red \\u001b\[31mX"$/);
      // Text that starts with base64: is quoted; only bytes are shown as base64:<data>.
      expect(out[3]).toMatch(/ "base64:AAH\/"$/);
      expect(out[4]).toMatch(/ base64:AAH\/$/);
      // A pipe without COLUMNS gets the whole line.
      expect(out[5]).toContain('x'.repeat(3000));
    } finally {
      await c.cmd('DEL', `pulse:stream:${name}`);
    }
  });

  it('says what the reader found trimmed as its own warning lines, not Node process warnings', async ({ expect }) => {
    const name = uniqueName('clitail-trim');
    const key = `pulse:stream:${name}`;
    const first = String(await c.cmd('XADD', key, '*', 'n', 'e', 'p', '0'));
    for (let i = 1; i < 100; i++) await c.cmd('XADD', key, '*', 'n', 'e', 'p', String(i));
    await c.cmd('XTRIM', key, 'MAXLEN', 10);
    try {
      const r = await cli(['tail', name, '--after', first, '--count', '5']);
      expect(r.code, r.stderr).toBe(0);
      expect(lines(r.stdout)).toHaveLength(5);
      // Without a logger the library said it as `(node:PID) [PULSE_EVENTS_MAYBE_LOST] PulseWarning: ...`
      // (and losses at most once a minute): an outside trial's tail that fell behind went mostly unsaid.
      expect(r.stderr).not.toMatch(/\(node:\d+\)|PulseWarning|--trace-warnings/);
      expect(lines(r.stderr)).toEqual([expect.stringMatching(/^warning: .*90 removed from the stream/)]);
    } finally {
      await c.cmd('DEL', key);
    }
  });

  it('cuts lines to the width unless --full', async ({ expect }) => {
    const { name, ids } = await awkward();
    try {
      const cut = await cli(['tail', name, '--from', 'oldest', '--count', String(ids.length)], { env: { COLUMNS: '80' } });
      expect(cut.code, cut.stderr).toBe(0);
      const out = lines(cut.stdout);
      expect(out).toHaveLength(ids.length);
      for (const l of out) expect(Array.from(l).length).toBeLessThanOrEqual(80);
      expect(out[5]).toMatch(/ xxx+…$/);
      const full = await cli(['tail', name, '--from', 'oldest', '--count', String(ids.length), '--full'], {
        env: { COLUMNS: '80' },
      });
      expect(lines(full.stdout)[5]).toContain('x'.repeat(3000));
    } finally {
      await c.cmd('DEL', `pulse:stream:${name}`);
    }
  });

  it('shows headers with --headers, escaped as any text, and only then', async ({ expect }) => {
    const name = uniqueName('clitail');
    const key = `pulse:stream:${name}`;
    try {
      await c.cmd('XADD', key, '*', 'n', 'plain', 'p', 'a');
      await c.cmd(
        'XADD',
        key,
        '*',
        'n',
        'traced',
        'p',
        'b',
        'h.traceparent',
        '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
        'h.note',
        `x${ESC}[31m\ny`,
      );
      const shown = await cli(['tail', name, '--from', 'oldest', '--count', '2', '--headers']);
      expect(shown.code, shown.stderr).toBe(0);
      const [plain, traced] = lines(shown.stdout);
      expect(plain).toMatch(/ plain a$/);
      expect(traced).toMatch(
        / traced \{traceparent=00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01, note="x\\u001b\[31m\\ny"\} b$/,
      );
      expect(shown.stdout).not.toContain(ESC);
      const hidden = await cli(['tail', name, '--from', 'oldest', '--count', '2']);
      expect(lines(hidden.stdout)[1]).toMatch(/ traced b$/);
    } finally {
      await c.cmd('DEL', key);
    }
  });

  it('gives every event the same JSON keys, with an encoding that restores the exact bytes', async ({ expect }) => {
    const { name, ids } = await awkward();
    try {
      const r = await cli(['tail', name, '--from', 'oldest', '--count', String(ids.length), '--json']);
      expect(r.code, r.stderr).toBe(0);
      const events = lines(r.stdout).map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(events).toHaveLength(ids.length);
      for (const ev of events) {
        expect(Object.keys(ev)).toEqual(['id', 'stream', 'event', 'topic', 'headers', 'createdAt', 'encoding', 'payload']);
        expect(ev.headers).toEqual({});
        expect(ev.topic).toBeNull();
      }
      expect(events.map((e) => e.encoding)).toEqual(['utf8', 'utf8', 'utf8', 'utf8', 'base64', 'utf8']);
      expect(events[3]?.payload).toBe('base64:AAH/');
      expect(events[4]?.payload).toBe('AAH/');
      const raw = (await (c.redis as import('ioredis').Redis).xrangeBuffer(`pulse:stream:${name}`, '-', '+')) as Array<
        [Buffer, Buffer[]]
      >;
      for (const [i, ev] of events.entries()) {
        const bytes = Buffer.from(String(ev.payload), ev.encoding as BufferEncoding);
        expect(bytes.equals(raw[i]?.[1][3] ?? Buffer.alloc(0))).toBe(true);
      }
    } finally {
      await c.cmd('DEL', `pulse:stream:${name}`);
    }
  });

  it('ends with the total it did not print: an entry deleted before it read it (README: said on stderr)', async ({ expect }) => {
    const name = uniqueName('clitail-total');
    const key = `pulse:stream:${name}`;
    try {
      const r = await cli(['tail', name, '--count', '2'], {
        started: async () => {
          await waitFor(async () => String(await c.cmd('CLIENT', 'LIST')).includes(`name=pulse:reader:${name} `), {
            timeout: 30_000,
            what: 'the tail reader connection',
          });
          // Entries added while the tail waits, the first deleted in the same step (one script):
          // the tail cannot read it.
          const script = `local a = redis.call('XADD', KEYS[1], '*', 'n', 'e', 'p', 'a')
redis.call('XADD', KEYS[1], '*', 'n', 'e', 'p', 'b')
redis.call('XDEL', KEYS[1], a)`;
          await c.cmd('EVAL', script, 1, key);
          await c.cmd('XADD', key, '*', 'n', 'e', 'p', 'c');
        },
      });
      expect(r.code, r.stderr).toBe(0);
      expect(lines(r.stdout).map((l) => l.split(' ').pop())).toEqual(['b', 'c']);
      expect(lines(r.stderr)).toContain(
        'warning: 1 event in all were trimmed or deleted before this tail read them (not printed)',
      );
    } finally {
      await c.cmd('DEL', key);
    }
  });

  it('exits 130 on Ctrl-C and 143 on SIGTERM, as the help says', async ({ expect }) => {
    const name = uniqueName('clitail');
    // That the help says 130: cli.test.ts, on the program's help.
    for (const [signal, code] of [
      ['SIGINT', 130],
      ['SIGTERM', 143],
    ] as const) {
      const r = await cli(['tail', name], {
        started: async (send) => {
          await waitFor(async () => String(await c.cmd('CLIENT', 'LIST')).includes(`name=pulse:reader:${name} `), {
            timeout: 30_000,
            what: 'the tail reader connection',
          });
          send(signal);
        },
      });
      expect(r.code, signal).toBe(code);
      expect(r.stderr).not.toContain('error');
    }
  });

  it('drops exactly one trailing newline from a payload read from stdin, unless --keep-newline', async ({ expect }) => {
    const name = uniqueName('cliadd');
    try {
      const inputs: Array<[string, string[]]> = [
        ['{"id":1}\n', []],
        ['crlf\r\n', []],
        ['two\n\n', []],
        ['none', []],
        ['kept\n', ['--keep-newline']],
      ];
      for (const [input, flags] of inputs) {
        const r = await cli(['add', name, 'e', '-', ...flags], { input });
        expect(r.code, r.stderr).toBe(0);
      }
      const stored = ((await c.cmd('XRANGE', `pulse:stream:${name}`, '-', '+')) as Array<[string, string[]]>).map((e) => e[1][3]);
      expect(stored).toEqual(['{"id":1}', 'crlf', 'two\n', 'none', 'kept\n']);
      // That add's help says so: cliErrors.test.ts, which runs every command's --help.
      // Go Pulse's record of the stream, as add's help says: Go readers refuse a stream without it.
      expect(await c.cmd('HGET', `pulse:stream:${name}:lifecycle`, 'state')).toBe('active');
    } finally {
      await c.cmd('DEL', `pulse:stream:${name}`, `pulse:stream:${name}:lifecycle`);
    }
  });
});
