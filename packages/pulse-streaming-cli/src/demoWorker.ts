/**
 * One consumer of the demo, as a process of its own (the demo starts three
 * and SIGKILLs one): a sink instance on its own Redis connection that
 * handles events and acks them in batches, as a real worker would.
 *
 * It tells the demo what it handled over the IPC channel before it acks it,
 * so an event this process acked is always one the demo counted as handled;
 * an event it handled but had not acked when it was killed is redelivered
 * to another consumer and counted again, as a duplicate.
 *
 * Started by `demoConsumers.ts` with the Redis URL, the stream and the label
 * in the environment (a password never shows in `ps`).
 *
 * With `demo --trace` it handles events with `sink.process()` instead, whose
 * handler calls the library wraps in `process` spans: each call returns
 * once the demo was told about its event, at the next ack round, and
 * process() acks it then.
 */
import { type SinkEvent, Stream } from 'pulse-streaming';
import { connectClient, connectClusterClient } from './clients.js';
import { ACK_EVERY_MS, DEMO_GRACE_MS, DEMO_SINK, type FromWorker, REPORT_EVERY_MS, type ToWorker } from './demoProtocol.js';
import { errorMessage } from './errors.js';
import { runCleanups } from './lifecycle.js';

function send(message: FromWorker): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send || !process.connected) return resolve();
    process.send(message, undefined, {}, () => resolve());
  });
}

async function main(): Promise<void> {
  // Ctrl-C in the terminal reaches the whole process group: the demo stops its consumers itself.
  process.on('SIGINT', () => {});
  const url = process.env.PULSE_DEMO_URL ?? '';
  const streamName = process.env.PULSE_DEMO_STREAM ?? '';
  const label = process.env.PULSE_DEMO_LABEL ?? 'consumer';
  const client =
    process.env.PULSE_DEMO_CLUSTER === '1'
      ? await connectClusterClient(url, `pulse-demo-${label}`)
      : await connectClient(url, `pulse-demo-${label}`);
  const sink = await new Stream(streamName, client, { maxLen: 0 }).newSink(DEMO_SINK, { ackGracePeriodMs: DEMO_GRACE_MS });

  // --trace: the library's spans, sent back to the demo with the reports.
  const tracing = process.env.PULSE_DEMO_TRACE === '1' ? (await import('./demoTrace.js')).startConsumerTracing(label) : undefined;

  let unreported: SinkEvent[] = [];
  let reported: SinkEvent[] = [];
  /** With --trace: the handler calls waiting for their event to be reported, then for the next ack round. */
  let waiting: Array<() => void> = [];
  let told: Array<() => void> = [];
  let handled = 0;

  /** Tells the demo what was handled since the last report; what it was told may then be acked. */
  const report = async (): Promise<void> => {
    const batch = unreported;
    unreported = [];
    const now = waiting;
    waiting = [];
    await send({ type: 'handled', ids: batch.map((e) => e.id), redelivered: sink.counters.redelivered });
    reported.push(...batch);
    told.push(...now);
    const spans = tracing?.take() ?? [];
    if (spans.length > 0) await send({ type: 'spans', spans });
  };
  const ack = async (): Promise<void> => {
    const batch = reported;
    reported = [];
    // With --trace, process() acks each event once its handler returned: as late as the acks here, so
    // that a killed consumer holds as many unacked events either way.
    const release = told;
    told = [];
    for (const r of release) r();
    if (batch.length > 0 && !tracing) await sink.ack(...batch).catch(() => {}); // not acked: redelivered, nothing is lost
  };
  const reporter = setInterval(() => void report(), REPORT_EVERY_MS);
  const acker = setInterval(() => void ack(), ACK_EVERY_MS);

  const processing = new AbortController();
  const consuming = tracing
    ? // process(), whose handler calls the library traces: each returns (and is acked) once the demo was told.
      sink.process(
        (ev) => {
          handled++;
          unreported.push(ev);
          return new Promise<void>((release) => waiting.push(release));
        },
        { concurrency: 10_000, signal: processing.signal },
      )
    : (async () => {
        for await (const ev of sink.subscribe()) {
          handled++;
          unreported.push(ev);
        }
      })();

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      processing.abort();
      if (tracing) {
        clearInterval(acker);
        // process() returns once its handlers did: they wait for a report and an ack round.
        let done = false;
        void consuming.finally(() => (done = true)).catch(() => {});
        while (!done) {
          await report();
          await ack();
          await new Promise((r) => setTimeout(r, 20));
        }
      }
      clearInterval(reporter);
      clearInterval(acker);
      await report();
      await ack();
      await sink.close();
      await consuming.catch(() => {});
      await tracing?.stop();
      await send({ type: 'closed', handled, redelivered: sink.counters.redelivered });
      await runCleanups();
      process.exit(0);
    })();
    return stopping;
  };
  process.on('message', (m: ToWorker) => {
    if (m.type === 'stop') void stop();
  });
  // The demo is gone (it crashed or was killed): stop too, never linger.
  process.on('disconnect', () => void stop());
  await send({ type: 'ready', consumer: sink.consumerName, pid: process.pid });
}

main().catch(async (err: unknown) => {
  await send({ type: 'failed', error: errorMessage(err) });
  await runCleanups();
  process.exit(1);
});
