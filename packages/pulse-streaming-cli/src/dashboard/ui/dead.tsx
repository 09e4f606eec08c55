/**
 * Dead letters of a stream: the list (oldest first, paged), each one's
 * payload and origin, and the actions replay and delete, for the selected
 * letters or all of them (hidden in read-only mode).
 */
import { useEffect, useState } from 'preact/hooks';
import { act, type Config, type DeadLetterView, get, type PayloadView } from './api.js';
import { count, link, shown, time } from './format.js';
import { Payload } from './payload.js';

const PAGE = 50;
const REFRESH_MS = 2000;

export function DeadPage({ name, config }: { name: string; config: Config }) {
  const [cursors, setCursors] = useState<string[]>([]);
  const after = cursors[cursors.length - 1];
  const [data, setData] = useState<{ letters: DeadLetterView[]; next: string | null } | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [notice, setNotice] = useState<string | undefined>(undefined);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [reload, setReload] = useState(0);

  useEffect(() => {
    let live = true;
    get<{ letters: DeadLetterView[]; next: string | null }>('dead', { name, after, count: PAGE }).then(
      (d) => {
        if (!live) return;
        setData(d);
        setError(undefined);
      },
      (err: Error) => {
        if (live) setError(err.message);
      },
    );
    return () => {
      live = false;
    };
  }, [name, after, reload]);

  // Dead letters arrive while the page is open: watch the dead-letter stream's
  // length and last ID (cheap) and read the list again when they change.
  useEffect(() => {
    let last: string | undefined;
    let live = true;
    const look = async (): Promise<void> => {
      const now = await get<{ length: number; lastId: string | null }>('dead-head', { name }).then(
        (s) => `${s.length} ${s.lastId}`,
        () => 'unknown',
      );
      if (live && last !== undefined && now !== last) setReload((x) => x + 1);
      last = now;
    };
    void look();
    const timer = setInterval(() => void look(), REFRESH_MS);
    return () => {
      live = false;
      clearInterval(timer);
    };
  }, [name]);

  const toggle = (id: string): void => {
    const next = new Set(selected);
    if (next.has(id)) next.delete(id);
    else next.add(id);
    setSelected(next);
  };

  const run = async (what: 'replay' | 'delete', ids: string[] | undefined): Promise<void> => {
    const n = ids === undefined ? 'every' : String(ids.length);
    if (what === 'delete' && !window.confirm(`Delete ${n} dead letter(s) of ${shown(name)} without replaying them?`)) return;
    // Every letter at once, those of other pages included: as easy to click by mistake as delete.
    if (what === 'replay' && ids === undefined && !window.confirm(`Replay every dead letter of ${shown(name)} into it?`)) return;
    try {
      if (what === 'replay') {
        const r = await act<{ replayed: string[] }>('replay', { stream: name, ...(ids === undefined ? {} : { ids }) });
        setNotice(`replayed ${r.replayed.length} dead letter${r.replayed.length === 1 ? '' : 's'} into ${shown(name)}`);
      } else {
        const r = await act<{ deleted: number; missing: string[] }>('delete-dead', { stream: name, ids });
        // Letters replayed or deleted meanwhile (another page, the CLI) were not deleted here: say so.
        const gone = r.missing.length === 0 ? '' : `; ${r.missing.length} already gone (replayed or deleted meanwhile)`;
        setNotice(`deleted ${r.deleted} dead letter${r.deleted === 1 ? '' : 's'}${gone}`);
      }
      setError(undefined);
      setSelected(new Set());
      setCursors([]);
      setReload((x) => x + 1);
    } catch (err) {
      setError((err as Error).message);
    }
  };

  const actions = !config.readOnly;
  return (
    <section>
      <div class="toolbar">
        <h1>
          <a href="#/">Streams</a> / <a href={link('stream', name)}>{shown(name)}</a> / dead letters
        </h1>
        {actions && (
          <span class="actions">
            <button
              type="button"
              id="replay-selected"
              disabled={selected.size === 0}
              onClick={() => void run('replay', [...selected])}
            >
              Replay selected
            </button>
            <button type="button" id="replay-all" disabled={!data?.letters.length} onClick={() => void run('replay', undefined)}>
              Replay all
            </button>
            <button
              type="button"
              class="danger"
              id="delete-selected"
              disabled={selected.size === 0}
              onClick={() => void run('delete', [...selected])}
            >
              Delete selected
            </button>
          </span>
        )}
      </div>
      {notice !== undefined && (
        <p class="notice" id="notice">
          {notice}
        </p>
      )}
      {error !== undefined && (
        <p class="error" id="error">
          {error}
        </p>
      )}
      {data !== undefined && data.letters.length === 0 && (
        <p class="muted">No dead letters (stream {shown(`${name}:dead`)} is empty or absent).</p>
      )}
      <ul class="entries" id="dead-letters">
        {data?.letters.map((d) => (
          <li class="entry" key={d.id} data-id={d.id}>
            <div class="entry-head">
              {actions && (
                <input type="checkbox" checked={selected.has(d.id)} onChange={() => toggle(d.id)} aria-label={`select ${d.id}`} />
              )}
              <code>{d.id}</code> <span class="muted">{time(d.time)}</span> <b class="event-name">{shown(d.event)}</b>
              {d.topic !== null && <span class="tag">{shown(d.topic)}</span>}
              <span class="muted">
                sink <b>{d.sourceSink ? shown(d.sourceSink) : '–'}</b>, source ID <code>{d.sourceId || '–'}</code>,{' '}
                {count(d.deliveries)} deliveries
              </span>
              {d.reason !== '' && <span class="tag reason">{shown(d.reason)}</span>}
              {actions && (
                <button type="button" class="small replay" onClick={() => void run('replay', [d.id])}>
                  Replay
                </button>
              )}
            </div>
            <Payload
              payload={d.payload}
              loadAll={async () => (await get<{ payload: PayloadView }>('dead-letter', { name, id: d.id })).payload}
            />
          </li>
        ))}
      </ul>
      <div class="pager">
        <button type="button" disabled={cursors.length === 0} onClick={() => setCursors(cursors.slice(0, -1))}>
          ‹ Previous
        </button>
        <button type="button" disabled={!data?.next} onClick={() => data?.next && setCursors([...cursors, data.next])}>
          Next ›
        </button>
      </div>
    </section>
  );
}
