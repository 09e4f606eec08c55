/** consoleLogger: the logger for users without pino (README "Logging"). */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consoleLogger, InvalidArgumentError, Stream } from '../packages/pulse-streaming/src/index.js';
import { CLIENT_KINDS, connect, type TestClient, uniqueName, waitFor } from './support/clients.js';

type Level = 'debug' | 'info' | 'warn' | 'error';

function recordingConsole(): { console: Record<Level, (line: string) => void>; lines: Array<[Level, string]> } {
  const lines: Array<[Level, string]> = [];
  const at = (level: Level) => (line: string) => lines.push([level, line]);
  return { console: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }, lines };
}

describe('consoleLogger', () => {
  it('writes one line per message with its level, message and context as key=value', () => {
    const rec = recordingConsole();
    const log = consoleLogger({ console: rec.console });
    log.warn({ stream: 'orders', lost: 3, why: 'trimmed before read', ids: ['1-0'] }, 'events lost');
    expect(rec.lines).toEqual([['warn', 'warn events lost stream=orders lost=3 why="trimmed before read" ids=["1-0"]']]);
  });

  it("drops lines below its level ('info' by default)", () => {
    const rec = recordingConsole();
    consoleLogger({ console: rec.console }).debug({}, 'hidden');
    consoleLogger({ console: rec.console, level: 'error' }).warn({}, 'hidden too');
    consoleLogger({ console: rec.console, level: 'debug' }).debug({}, 'shown');
    expect(rec.lines).toEqual([['debug', 'debug shown']]);
  });

  it('child loggers add their bindings to every line', () => {
    const rec = recordingConsole();
    consoleLogger({ console: rec.console }).child({ sink: 'billing' }).child({ consumer: 'c1' }).info({ n: 1 }, 'hi');
    expect(rec.lines).toEqual([['info', 'info hi sink=billing consumer=c1 n=1']]);
  });

  it('one line per message even when a value holds a newline', () => {
    const rec = recordingConsole();
    consoleLogger({ console: rec.console }).error({ err: new Error('a\nb') }, 'failed');
    expect(rec.lines).toEqual([['error', 'error failed err="a\\nb"']]);
  });

  it('rejects an unknown level with InvalidArgumentError', () => {
    expect(() => consoleLogger({ level: 'loud' as never })).toThrow(InvalidArgumentError);
  });
});

describe.each(CLIENT_KINDS)('consoleLogger on a stream (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(() => c.close());

  it('prints the losses of trimmed events as warnings', async () => {
    const rec = recordingConsole();
    const s = new Stream(uniqueName('log'), c.redis, { maxLen: 10, logger: consoleLogger({ console: rec.console }) });
    const sink = await s.newSink('g', { blockMs: 100 });
    await Promise.all(Array.from({ length: 500 }, (_, i) => s.add('e', String(i))));
    const sub = sink.subscribe();
    // Each warning names the count it reports: together they are the sink's count.
    const reported = (): number =>
      rec.lines.filter(([level]) => level === 'warn').reduce((n, [, line]) => n + Number(/ count=(\d+)/.exec(line)?.[1] ?? 0), 0);
    await waitFor(() => sink.counters.lost > 0 && reported() === sink.counters.lost, { what: 'trimmed events reported' });
    expect(rec.lines.some(([level, line]) => level === 'warn' && /trimmed/.test(line) && line.includes(`stream=${s.name}`))).toBe(
      true,
    );
    sink.unsubscribe(sub);
    await sink.close();
    await s.destroy();
  });
});
