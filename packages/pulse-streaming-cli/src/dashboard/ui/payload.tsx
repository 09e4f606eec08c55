/**
 * A payload shown as text, pretty JSON or hex: always as text nodes (Preact
 * escapes every string), never as HTML. Long payloads come cut to a preview;
 * "show all" fetches the whole one.
 */
import { useState } from 'preact/hooks';
import type { PayloadView } from './api.js';
import { bytes } from './format.js';

type Mode = 'text' | 'json' | 'hex';

/** Bytes a hex dump shows: 64 KiB is 4,096 lines already; more would freeze the page for nothing. */
const HEX_MAX = 64 * 1024;

function bytesOf(p: PayloadView): Uint8Array {
  if (p.base64 !== undefined) return Uint8Array.from(atob(p.base64), (c) => c.charCodeAt(0));
  return new TextEncoder().encode(p.text ?? '');
}

/** A classic hex dump: offset, 16 bytes in hex, and their printable ASCII. */
export function hexDump(b: Uint8Array): string {
  const lines: string[] = [];
  for (let i = 0; i < b.length; i += 16) {
    const row = b.subarray(i, i + 16);
    const hex = [...row].map((x) => x.toString(16).padStart(2, '0')).join(' ');
    const ascii = [...row].map((x) => (x >= 32 && x < 127 ? String.fromCharCode(x) : '.')).join('');
    lines.push(`${i.toString(16).padStart(8, '0')}  ${hex.padEnd(47)}  ${ascii}`);
  }
  return lines.join('\n');
}

function prettyJson(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  const t = text.trim();
  if (!(t.startsWith('{') || t.startsWith('['))) return undefined;
  try {
    return JSON.stringify(JSON.parse(t), null, 2);
  } catch {
    return undefined;
  }
}

/** A payload with its modes; `loadAll` fetches the whole payload when this one is cut. */
export function Payload({ payload, loadAll }: { payload: PayloadView; loadAll?: () => Promise<PayloadView> }) {
  const [full, setFull] = useState<PayloadView | undefined>(undefined);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<string | undefined>(undefined);
  const p = full ?? payload;
  const json = p.truncated ? undefined : prettyJson(p.text);
  const modes: Mode[] = p.text === undefined ? ['hex'] : json === undefined ? ['text', 'hex'] : ['json', 'text', 'hex'];
  const [chosen, setMode] = useState<Mode | undefined>(undefined);
  const mode = chosen !== undefined && modes.includes(chosen) ? chosen : (modes[0] as Mode);
  const raw = mode === 'hex' ? bytesOf(p) : undefined;
  const shown = raw !== undefined ? hexDump(raw.subarray(0, HEX_MAX)) : mode === 'json' ? (json as string) : (p.text as string);

  const showAll = async (): Promise<void> => {
    if (loadAll === undefined) return;
    setLoading(true);
    try {
      setFull(await loadAll());
      setError(undefined);
    } catch (err) {
      setError(String((err as Error).message ?? err));
    } finally {
      setLoading(false);
    }
  };

  return (
    <div class="payload">
      <div class="payload-bar">
        {modes.map((m) => (
          <button type="button" class={m === mode ? 'mode on' : 'mode'} onClick={() => setMode(m)} key={m}>
            {m === 'json' ? 'JSON' : m === 'hex' ? 'Hex' : 'Text'}
          </button>
        ))}
        <span class="muted">{bytes(p.size)}</span>
        {p.truncated && loadAll !== undefined && (
          <button type="button" class="link" onClick={() => void showAll()} disabled={loading}>
            {loading ? 'loading…' : `show all (${bytes(p.size)})`}
          </button>
        )}
        {error !== undefined && <span class="error">{error}</span>}
      </div>
      <pre class="payload-body">
        {shown}
        {p.truncated && (
          <span class="muted">
            {'\n'}… cut at {bytes(p.base64 !== undefined ? bytesOf(p).length : new TextEncoder().encode(p.text ?? '').length)}
          </span>
        )}
      </pre>
    </div>
  );
}
