/**
 * A sink's pending entries (XPENDING): who holds each, for how long, delivered
 * how often. Oldest first, a page at a time: "Next" pages by the last ID shown
 * (an entry acked meanwhile neither shifts nor repeats a page), "Previous"
 * goes back to the cursor of the page before.
 */

import { useEffect, useState } from 'preact/hooks';
import { pendingIdleText } from '../../duration.js';
import { get, type PendingData } from './api.js';
import { count, link, shown } from './format.js';

const PAGE = 100;

export function PendingPage({ stream, sink }: { stream: string; sink: string }) {
  // The `after` cursor of every page from the second to this one (empty on the first).
  const [cursors, setCursors] = useState<string[]>([]);
  const after = cursors[cursors.length - 1];
  // With the cursor it was read for: until the new page comes, the old one's
  // `next` must not page again (a double click would repeat a page).
  const [loaded, setLoaded] = useState<{ after: string | undefined; data: PendingData } | undefined>(undefined);
  const data = loaded?.data;
  const next = loaded !== undefined && loaded.after === after ? loaded.data.next : null;
  const [error, setError] = useState<string | undefined>(undefined);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    let t: ReturnType<typeof setTimeout> | undefined;
    // The next look 2 s after this one answers, not every 2 s: a read that takes longer (Redis stalled,
    // its 5 s deadline) was dropped by the next, its error never shown, the last figures left as current.
    get<PendingData>('pending', { name: stream, sink, after, count: PAGE })
      .then(
        (d) => {
          if (!live) return;
          setLoaded({ after, data: d });
          setError(undefined);
        },
        (err: Error) => {
          if (live) setError(err.message);
        },
      )
      .finally(() => {
        if (live) t = setTimeout(() => setTick((x) => x + 1), 2000);
      });
    return () => {
      live = false;
      clearTimeout(t);
    };
  }, [stream, sink, after, tick]);

  return (
    <section>
      <div class="toolbar">
        <h1>
          <a href="#/">Streams</a> / <a href={link('stream', stream)}>{shown(stream)}</a> / sink{' '}
          <span class="name">{shown(sink)}</span> / pending
        </h1>
        <span class="muted">oldest first</span>
        <span class="pager">
          <button type="button" disabled={cursors.length === 0} onClick={() => setCursors([])}>
            « Oldest
          </button>
          <button type="button" disabled={cursors.length === 0} onClick={() => setCursors(cursors.slice(0, -1))}>
            ‹ Previous
          </button>
          <button type="button" disabled={next === null} onClick={() => next !== null && setCursors([...cursors, next])}>
            Next ›
          </button>
        </span>
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
                <span class="muted">{shown(c.name)}</span>
                <b>{count(c.pending)}</b>
              </div>
            ))}
          </div>
          {data.entries.length === 0 ? (
            <p class="muted">{after === undefined ? 'Nothing pending.' : `Nothing pending after ${after}.`}</p>
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
                    <td>{shown(e.consumer)}</td>
                    <td class="num">{pendingIdleText(e)}</td>
                    <td class="num">{count(e.deliveries)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          {data.total > data.entries.length && data.entries.length > 0 && (
            <p class="muted" id="pending-page">
              page {count(cursors.length + 1)}: {count(data.entries.length)} of {count(data.total)}
            </p>
          )}
        </>
      )}
    </section>
  );
}
