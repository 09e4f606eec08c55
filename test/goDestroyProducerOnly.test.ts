/**
 * A process that only publishes (no sink of the stream) notices a Go
 * `Destroy` too: it reads Go's lifecycle record again at most once per
 * `goLifecycleTiming.producerRecheckMs` while it publishes (60 s by default,
 * lowered here, so this file is isolated) and warns once
 * (`PULSE_GO_STREAM_DESTROYED`). Before, only sinks looked again, and a
 * producer kept writing where no Go service reads without a word.
 * Go's Destroy done by hand: the key deleted, the record at generation 2.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Stream } from '../packages/pulse-streaming/src/index.js';
import { goLifecycleTiming } from '../packages/pulse-streaming/src/internal/goLifecycle.js';
import { CLIENT_KINDS, connect, recordingLogger, type TestClient, uniqueName, waitFor } from './support/clients.js';
import { forThisFile } from './support/forThisFile.js';

const RECHECK_MS = 300;
forThisFile(goLifecycleTiming, 'producerRecheckMs', RECHECK_MS);

describe.each(CLIENT_KINDS)('a publishing-only instance meets a record Go moved elsewhere (%s)', (kind) => {
  let c: TestClient;
  beforeAll(async () => {
    c = await connect(kind);
  });
  afterAll(async () => {
    await c?.close();
  });

  it('warns once, within the recheck interval of its adds', async () => {
    const rec = recordingLogger();
    const s = new Stream(uniqueName('prodsplit'), c.redis, { logger: rec.logger });
    const said = () => rec.lines.filter((l) => l.level === 'warn' && /Go Pulse destroyed it/.test(l.msg ?? ''));
    try {
      await s.add('before', 'b');
      // Adds while the record is ours: nothing said.
      for (let i = 0; i < 5; i++) {
        await s.add('e', `x${i}`);
        await new Promise((r) => setTimeout(r, RECHECK_MS / 2));
      }
      expect(said()).toHaveLength(0);
      // What Go's Destroy and Go's next writer do.
      await c.cmd('DEL', s.key);
      await c.cmd('HSET', `${s.key}:lifecycle`, 'generation', '2', 'state', 'active', 'physical_key', `${s.key}:generation:2`);
      await waitFor(
        async () => {
          await s.add('after', 'a');
          return said().length > 0;
        },
        { timeout: 10_000, interval: 50, what: 'a warning that Go moved the stream' },
      );
      // Once per instance.
      for (let i = 0; i < 4; i++) {
        await s.add('e', `y${i}`);
        await new Promise((r) => setTimeout(r, RECHECK_MS / 2));
      }
      expect(said()).toHaveLength(1);
      expect(said()[0]?.obj).toMatchObject({ generation: '2', physicalKey: `${s.key}:generation:2` });
    } finally {
      await s.destroy();
      await c.cmd('DEL', `${s.key}:lifecycle`);
    }
  });
});
