/**
 * Entries of a stream: the paged list (newest first, "older" pages by the
 * last ID shown) and the live tail (server-sent events of new entries).
 */
import { useEffect, useState } from 'preact/hooks';
import { type EntryView, eventData, get, qs, reopening } from './api.js';
import { shown, time } from './format.js';
import { Payload } from './payload.js';

const PAGE = 25;
/** Entries the live tail keeps on screen. */
const TAIL_KEEP = 200;

function Entry({ stream, e }: { stream: string; e: EntryView }) {
  const headers = Object.entries(e.headers);
  return (
    <li class="entry" data-id={e.id}>
      <div class="entry-head">
        <code>{e.id}</code> <span class="muted">{time(e.time)}</span> <b class="event-name">{shown(e.event)}</b>
        {e.topic !== null && <span class="tag">{shown(e.topic)}</span>}
        {headers.map(([k, v]) => (
          <span class="tag header" key={k}>
            {shown(k)}: {shown(v)}
          </span>
        ))}
      </div>
      <Payload payload={e.payload} loadAll={async () => (await get<EntryView>('entry', { name: stream, id: e.id })).payload} />
    </li>
  );
}

/** The entries of `stream`, newest first, a page at a time. */
export function Entries({ stream, refresh }: { stream: string; refresh: string }) {
  const [cursors, setCursors] = useState<string[]>([]);
  const before = cursors[cursors.length - 1];
  const [page, setPage] = useState<{ entries: EntryView[]; next: string | null } | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  useEffect(() => {
    let live = true;
    get<{ entries: EntryView[]; next: string | null }>('entries', { name: stream, before, count: PAGE }).then(
      (p) => {
        if (!live) return;
        setPage(p);
        setError(undefined);
      },
      (err: Error) => {
        if (live) setError(err.message);
      },
    );
    return () => {
      live = false;
    };
    // The first page follows the stream's refreshes; older pages stay put.
  }, [stream, before, before === undefined ? refresh : '']);

  return (
    <div class="card">
      <div class="toolbar">
        <h2>Entries</h2>
        <span class="muted">newest first</span>
        <span class="pager">
          <button type="button" disabled={cursors.length === 0} onClick={() => setCursors([])}>
            « Newest
          </button>
          <button type="button" disabled={cursors.length === 0} onClick={() => setCursors(cursors.slice(0, -1))}>
            ‹ Newer
          </button>
          <button type="button" disabled={!page?.next} onClick={() => page?.next && setCursors([...cursors, page.next])}>
            Older ›
          </button>
        </span>
      </div>
      {error !== undefined && <p class="error">{error}</p>}
      {page !== undefined && page.entries.length === 0 && <p class="muted">No entries.</p>}
      <ul class="entries" id="entries">
        {page?.entries.map((e) => (
          <Entry stream={stream} e={e} key={e.id} />
        ))}
      </ul>
    </div>
  );
}

/** Warnings of the tail's reader kept on screen (the newest). */
const NOTES_KEEP = 5;

/**
 * The live tail of `stream`: entries added while the page is open, newest first.
 * Its badge says `live` only while the server's reads of Redis work: `reconnecting`
 * with the error while they fail and are retried (`outage` ... `recovered`).
 */
export function Tail({ stream }: { stream: string }) {
  const [on, setOn] = useState(true);
  const [entries, setEntries] = useState<EntryView[]>([]);
  const [skipped, setSkipped] = useState(0);
  const [status, setStatus] = useState('connecting');
  const [problem, setProblem] = useState('');
  const [notes, setNotes] = useState<string[]>([]);
  useEffect(() => {
    if (!on) return;
    setStatus('connecting');
    setProblem('');
    // Opened again when it closed for good (a tail that could not start while Redis was down answered 500): see reopening.
    return reopening(
      `api/tail?${qs({ name: stream })}`,
      (source) => {
        const live = (): void => {
          setStatus('live');
          setProblem('');
        };
        source.addEventListener('ready', live);
        source.addEventListener('recovered', live);
        source.addEventListener('outage', (ev) => {
          setStatus('reconnecting');
          setProblem(`Redis: ${eventData<{ error: string }>(ev).error}`);
        });
        source.addEventListener('warning', (ev) =>
          setNotes((old) => [...old, eventData<{ message: string }>(ev).message].slice(-NOTES_KEEP)),
        );
        source.addEventListener('entries', (ev) => {
          const batch = eventData<{ entries: EntryView[]; skipped: number }>(ev);
          setEntries((old) => [...batch.entries.reverse(), ...old].slice(0, TAIL_KEEP));
          if (batch.skipped > 0) setSkipped((n) => n + batch.skipped);
        });
        source.addEventListener('failure', (ev) => {
          setStatus('failed');
          setProblem(eventData<{ error: string }>(ev).error);
        });
        // Retried by the browser (a dropped stream), or by `reopening` (a refused one).
        source.addEventListener('error', () => setStatus('reconnecting'));
      },
      (why) => {
        setStatus('reconnecting');
        setProblem(why);
      },
    );
  }, [stream, on]);

  return (
    <div class="card" id="tail">
      <div class="toolbar">
        <h2>Live tail</h2>
        <span class={`status ${on ? status : 'paused'}`} id="tail-status">
          {on ? status : 'paused'}
        </span>
        {on && problem !== '' && (
          <span class="muted" id="tail-problem">
            {shown(problem)}
          </span>
        )}
        <button type="button" onClick={() => setOn(!on)}>
          {on ? 'Pause' : 'Resume'}
        </button>
        <button
          type="button"
          onClick={() => {
            setEntries([]);
            setSkipped(0);
          }}
        >
          Clear
        </button>
        {skipped > 0 && <span class="muted">{skipped} not shown (too fast)</span>}
      </div>
      {notes.length > 0 && (
        <ul class="tail-notes" id="tail-notes">
          {notes.map((n, i) => (
            // By position: the same warning may come twice.
            <li key={i}>{shown(n)}</li>
          ))}
        </ul>
      )}
      {entries.length === 0 ? (
        <p class="muted">Waiting for new events…</p>
      ) : (
        <ul class="entries">
          {entries.map((e) => (
            <Entry stream={stream} e={e} key={e.id} />
          ))}
        </ul>
      )}
    </div>
  );
}
