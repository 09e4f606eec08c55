/** A sink's pending entries (XPENDING): who holds each, for how long, delivered how often. */

import { useEffect, useState } from 'preact/hooks';
import { get, type PendingData } from './api.js';
import { count, duration, link } from './format.js';

const MAX = 200;

export function PendingPage({ stream, sink }: { stream: string; sink: string }) {
  const [data, setData] = useState<PendingData | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    get<PendingData>('pending', { name: stream, sink, count: MAX }).then(
      (d) => {
        if (!live) return;
        setData(d);
        setError(undefined);
      },
      (err: Error) => {
        if (live) setError(err.message);
      },
    );
    const t = setTimeout(() => setTick((x) => x + 1), 2000);
    return () => {
      live = false;
      clearTimeout(t);
    };
  }, [stream, sink, tick]);

  return (
    <section>
      <div class="toolbar">
        <h1>
          <a href="#/">Streams</a> / <a href={link('stream', stream)}>{stream}</a> / sink <span class="name">{sink}</span> /
          pending
        </h1>
      </div>
      {error !== undefined && <p class="error">{error}</p>}
      {data !== undefined && (
        <>
          <div class="figures">
            <div class="figure">
              <span class="muted">Pending</span>
              <b id="pending-total">{count(data.total)}</b>
            </div>
            {data.consumers.map((c) => (
              <div class="figure" key={c.name}>
                <span class="muted">{c.name}</span>
                <b>{count(c.pending)}</b>
              </div>
            ))}
          </div>
          {data.entries.length === 0 ? (
            <p class="muted">Nothing pending.</p>
          ) : (
            <table class="grid" id="pending">
              <thead>
                <tr>
                  <th>Entry</th>
                  <th>Consumer</th>
                  <th class="num">Idle</th>
                  <th class="num">Deliveries</th>
                </tr>
              </thead>
              <tbody>
                {data.entries.map((e) => (
                  <tr key={e.id}>
                    <td>
                      <code>{e.id}</code>
                    </td>
                    <td>{e.consumer}</td>
                    <td class="num">{duration(e.idleMs)}</td>
                    <td class="num">{count(e.deliveries)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          {data.total > data.entries.length && (
            <p class="muted">
              the oldest {count(data.entries.length)} of {count(data.total)}
            </p>
          )}
        </>
      )}
    </section>
  );
}
