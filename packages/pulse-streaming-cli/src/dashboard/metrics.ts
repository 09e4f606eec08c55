/**
 * `/metrics`: the figures of every pulse stream in the Prometheus text
 * exposition format (version 0.0.4), with the names API.md fixes. A sink
 * whose lag Redis cannot tell (`XINFO GROUPS` reports nil) has no lag sample
 * rather than a made-up one, so an autoscaler never acts on a wrong figure.
 */
import type { StreamFigures } from './collect.js';

/** Content type of the Prometheus text format. */
export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** A label value escaped as the format requires: backslash, double quote and newline. */
export function labelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

interface Family {
  name: string;
  type: 'gauge' | 'counter';
  help: string;
  samples: string[];
}

/** Renders the metrics of `streams`. */
export function renderMetrics(streams: readonly StreamFigures[]): string {
  const family = (name: string, type: Family['type'], help: string): Family => ({ name, type, help, samples: [] });
  const length = family('pulse_stream_length', 'gauge', 'Entries in the stream (XLEN).');
  const added = family(
    'pulse_stream_entries_added_total',
    'counter',
    'Entries ever added to the stream (XINFO STREAM entries-added), trimmed ones included.',
  );
  const lag = family('pulse_sink_lag', 'gauge', 'Entries of the stream not yet delivered to the sink (XINFO GROUPS lag).');
  const pending = family('pulse_sink_pending', 'gauge', 'Entries delivered to the sink and not yet acked.');
  const consumers = family('pulse_sink_consumers', 'gauge', 'Consumers of the sink (consumer group).');
  const dead = family('pulse_dead_letters', 'gauge', 'Entries in the dead-letter stream <stream>:dead.');
  for (const s of streams) {
    const st = `stream="${labelValue(s.name)}"`;
    length.samples.push(`{${st}} ${s.length}`);
    if (s.entriesAdded !== null) added.samples.push(`{${st}} ${s.entriesAdded}`);
    if (!s.isDeadLetterStream) dead.samples.push(`{${st}} ${s.deadLetters}`);
    for (const k of s.sinks) {
      const labels = `{${st},sink="${labelValue(k.name)}"}`;
      if (k.lag !== null) lag.samples.push(`${labels} ${k.lag}`);
      pending.samples.push(`${labels} ${k.pending}`);
      consumers.samples.push(`${labels} ${k.consumers}`);
    }
  }
  const lines: string[] = [];
  for (const f of [length, added, lag, pending, consumers, dead]) {
    lines.push(`# HELP ${f.name} ${f.help}`, `# TYPE ${f.name} ${f.type}`);
    for (const s of f.samples) lines.push(`${f.name}${s}`);
  }
  return `${lines.join('\n')}\n`;
}
