/**
 * One stream: its figures and events/s chart, its sinks with their
 * consumers (pending, lag, idle times), the live tail and the entries, and
 * the destroy action (hidden in read-only mode).
 */
import { useState } from 'preact/hooks';
import { act, type Config, type StreamPageData, useLive } from './api.js';
import { RateChart } from './chart.js';
import { Entries, Tail } from './entries.js';
import { count, duration, link, rate, shown } from './format.js';

function Sinks({ data }: { data: StreamPageData }) {
  if (data.sinkDetails.length === 0) return <p class="muted">No sinks.</p>;
  return (
    <table class="grid" id="sinks">
      <thead>
        <tr>
          <th>Sink / consumer</th>
          <th class="num">Pending</th>
          <th class="num">Lag</th>
          <th>Last delivered</th>
          <th class="num">Idle</th>
          <th class="num">Keep-alive age</th>
        </tr>
      </thead>
      {data.sinkDetails.map((s) => (
        <tbody key={s.name} data-sink={s.name}>
          <tr class="sink">
            <td>
              <b>{shown(s.name)}</b>{' '}
              <span class="muted">
                {s.consumers.length} consumer{s.consumers.length === 1 ? '' : 's'}
              </span>
            </td>
            <td class="num pending">
              <a href={link('pending', data.name, s.name)}>{count(s.pending)}</a>
            </td>
            <td class="num lag">{count(s.lag)}</td>
            <td>
              <code>{s.lastDeliveredId}</code>
            </td>
            <td />
            <td />
          </tr>
          {s.consumers.map((c) => (
            <tr key={c.name} class="consumer">
              <td class="indent">{shown(c.name)}</td>
              <td class="num">{count(c.pending)}</td>
              <td />
              <td />
              <td class="num">{duration(c.idleMs)}</td>
              <td class="num">{duration(c.keepAliveAgeMs)}</td>
            </tr>
          ))}
        </tbody>
      ))}
    </table>
  );
}

function Destroy({ name }: { name: string }) {
  const [error, setError] = useState<string | undefined>(undefined);
  const destroy = async (): Promise<void> => {
    if (!window.confirm(`Destroy stream ${shown(name)}? Its entries and sinks are deleted; its dead letters stay.`)) return;
    try {
      await act('destroy', { stream: name });
      location.hash = '#/';
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return (
    <span>
      <button type="button" class="danger" id="destroy" onClick={() => void destroy()}>
        Destroy stream
      </button>
      {error !== undefined && <span class="error">{error}</span>}
    </span>
  );
}

export function StreamPage({ name, config }: { name: string; config: Config }) {
  const { data, error } = useLive<StreamPageData>({ view: 'stream', name });
  return (
    <section>
      <div class="toolbar">
        <h1>
          <a href="#/">Streams</a> / <span class="name">{shown(name)}</span>
        </h1>
        {!config.readOnly && <Destroy name={name} />}
      </div>
      {error !== undefined && <p class="error">{error}</p>}
      {data === undefined ? (
        <p class="loading">Loading…</p>
      ) : (
        <>
          <div class="figures">
            <Figure label="Length" value={count(data.length)} id="length" />
            <Figure label="Events/s" value={rate(data.rate)} id="rate" />
            <Figure label="Added (total)" value={count(data.entriesAdded)} />
            <Figure label="TTL" value={data.ttlMs === null ? 'none' : duration(data.ttlMs)} />
            <Figure label="First entry" value={data.firstId ?? '–'} />
            <Figure label="Last entry" value={data.lastId ?? '–'} />
            <div class="figure">
              <span class="muted">Dead letters</span>
              <a href={link('dead', name)} id="dead-count">
                {count(data.deadLetters)}
              </a>
            </div>
          </div>
          <div class="card">
            <h2>Events/s</h2>
            <RateChart series={[{ label: name, points: data.rates }]} />
          </div>
          <div class="card">
            <h2>Sinks</h2>
            <Sinks data={data} />
          </div>
        </>
      )}
      <Tail stream={name} />
      <Entries stream={name} refresh={data?.lastId ?? ''} />
    </section>
  );
}

function Figure({ label, value, id }: { label: string; value: string; id?: string }) {
  return (
    <div class="figure">
      <span class="muted">{label}</span>
      <b id={id}>{value}</b>
    </div>
  );
}
