/**
 * The overview: every pulse stream, a page at a time (the server pages and
 * searches, so 10,000 streams are 50 rows), with its length, events per
 * second, sinks (lag and pending) and dead letters, refreshed live.
 */
import { useEffect, useState } from 'preact/hooks';
import { type Overview, type StreamRow, useLive } from './api.js';
import { RateChart, Sparkline } from './chart.js';
import { count, link, rate, shown } from './format.js';

const PAGE_SIZE = 50;

function Sinks({ row }: { row: StreamRow }) {
  if (row.sinks.length === 0) return <span class="muted">none</span>;
  return (
    <ul class="chips">
      {row.sinks.map((s) => (
        <li key={s.name} class="chip" data-sink={s.name}>
          <a href={link('pending', row.name, s.name)}>{shown(s.name)}</a>{' '}
          <span title="lag: entries not yet delivered to the sink">
            lag <b class="lag">{count(s.lag)}</b>
          </span>{' '}
          <span title="pending: delivered, not yet acked">
            pending <b class="pending">{count(s.pending)}</b>
          </span>{' '}
          <span class="muted" title="consumers">
            ×{s.consumers}
          </span>
        </li>
      ))}
    </ul>
  );
}

export function OverviewPage() {
  const [query, setQuery] = useState('');
  const [typed, setTyped] = useState('');
  const [page, setPage] = useState(0);
  // Search as one types, without a request per key stroke.
  useEffect(() => {
    const t = setTimeout(() => {
      setQuery(typed);
      setPage(0);
    }, 250);
    return () => clearTimeout(t);
  }, [typed]);
  const { data, error } = useLive<Overview>({ view: 'overview', q: query, page, size: PAGE_SIZE });
  const pages = data === undefined ? 1 : Math.max(1, Math.ceil(data.total / data.pageSize));
  const top = data?.streams
    .filter((s) => s.rates.length > 1)
    .sort((a, b) => (b.rate ?? 0) - (a.rate ?? 0))
    .slice(0, 8);

  return (
    <section>
      <div class="toolbar">
        <h1>Streams</h1>
        <input
          type="search"
          placeholder="search stream names"
          value={typed}
          onInput={(e) => setTyped((e.target as HTMLInputElement).value)}
          aria-label="search stream names"
        />
        <span class="muted" id="stream-count">
          {data === undefined ? '' : `${count(data.total)} stream${data.total === 1 ? '' : 's'}`}
        </span>
        <Pager page={data?.page ?? page} pages={pages} onPage={setPage} />
      </div>
      {error !== undefined && <p class="error">{error}</p>}
      {top !== undefined && top.length > 0 && (
        <div class="card">
          <h2>Events/s (busiest on this page)</h2>
          <RateChart series={top.map((s) => ({ label: s.name, points: s.rates }))} />
        </div>
      )}
      {data === undefined ? (
        <p class="loading">Loading…</p>
      ) : data.streams.length === 0 ? (
        <p class="muted">{query === '' ? 'No pulse streams in this Redis.' : 'No stream matches.'}</p>
      ) : (
        <table class="grid" id="streams">
          <thead>
            <tr>
              <th>Stream</th>
              <th class="num">Length</th>
              <th class="num">Events/s</th>
              <th />
              <th>Sinks</th>
              <th class="num">Dead letters</th>
            </tr>
          </thead>
          <tbody>
            {data.streams.map((s) => (
              <tr key={s.name} data-stream={s.name}>
                <td>
                  <a href={link('stream', s.name)} class="name">
                    {shown(s.name)}
                  </a>
                  {s.isDeadLetterStream && <span class="tag">dead letters</span>}
                </td>
                <td class="num length">{count(s.length)}</td>
                <td class="num rate">{rate(s.rate)}</td>
                <td>
                  <Sparkline points={s.rates} />
                </td>
                <td class="sinks">
                  <Sinks row={s} />
                </td>
                <td class="num dead">
                  {s.isDeadLetterStream ? (
                    ''
                  ) : s.deadLetters > 0 ? (
                    <a href={link('dead', s.name)}>{count(s.deadLetters)}</a>
                  ) : (
                    '0'
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

export function Pager({ page, pages, onPage }: { page: number; pages: number; onPage: (p: number) => void }) {
  if (pages <= 1) return null;
  return (
    <span class="pager">
      <button type="button" disabled={page === 0} onClick={() => onPage(page - 1)}>
        ‹ Prev
      </button>
      <span>
        page {page + 1} of {pages}
      </span>
      <button type="button" disabled={page >= pages - 1} onClick={() => onPage(page + 1)}>
        Next ›
      </button>
    </span>
  );
}
