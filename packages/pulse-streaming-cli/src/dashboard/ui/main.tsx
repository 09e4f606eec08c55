/**
 * The dashboard page: a small Preact app with hash routes (`#/`,
 * `#/stream/<name>`, `#/pending/<stream>/<sink>`, `#/dead/<stream>`), so it
 * works under any mount path. Every name and payload is rendered as text.
 */
import 'uplot/dist/uPlot.min.css';
import './style.css';
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { type Config, get, savedToken, saveToken } from './api.js';
import { DeadPage } from './dead.js';
import { OverviewPage } from './overview.js';
import { PendingPage } from './pending.js';
import { StreamPage } from './stream.js';

/**
 * `#token=...` (the URL `ui --token` prints): keeps the token for this tab and
 * takes it out of the address bar; it never reaches a request line or a log.
 */
function takeToken(): void {
  const m = /^#token=([^&]+)/.exec(location.hash);
  if (m === null) return;
  let token: string | undefined;
  try {
    token = decodeURIComponent(m[1] as string);
  } catch {
    // Cut or mangled on its way (%E0%A4%A): the page would stop at "Loading..."; the operator types it.
    token = undefined;
  }
  if (token !== undefined) saveToken(token);
  history.replaceState(null, '', `${location.pathname}${location.search}#/`);
  window.dispatchEvent(new Event('pulse-token'));
}

function route(): string[] {
  const parts = location.hash
    .replace(/^#\/?/, '')
    .split('/')
    .filter((p) => p !== '');
  try {
    return parts.map(decodeURIComponent);
  } catch {
    return [];
  }
}

function useRoute(): string[] {
  const [parts, setParts] = useState(route);
  useEffect(() => {
    const on = (): void => {
      takeToken();
      setParts(route());
    };
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return parts;
}

function TokenBox() {
  const [token, setToken] = useState(savedToken);
  const [saved, setSaved] = useState(savedToken() !== '');
  useEffect(() => {
    const on = (): void => {
      setToken(savedToken());
      setSaved(savedToken() !== '');
    };
    window.addEventListener('pulse-token', on);
    return () => window.removeEventListener('pulse-token', on);
  }, []);
  return (
    <form
      class="token"
      onSubmit={(e) => {
        e.preventDefault();
        saveToken(token);
        setSaved(token !== '');
      }}
    >
      <input
        type="password"
        placeholder="token for actions"
        value={token}
        onInput={(e) => setToken((e.target as HTMLInputElement).value)}
        aria-label="dashboard token"
      />
      <button type="submit">{saved ? 'Saved' : 'Use token'}</button>
    </form>
  );
}

function App() {
  const [config, setConfig] = useState<Config | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const parts = useRoute();
  useEffect(() => {
    get<Config>('config').then(setConfig, (err: Error) => setError(err.message));
  }, []);
  useEffect(() => window.scrollTo(0, 0), [parts.join('/')]);

  let page = null;
  if (config !== undefined) {
    const [kind, a, b] = parts;
    if (kind === 'stream' && a) page = <StreamPage name={a} config={config} key={a} />;
    else if (kind === 'pending' && a && b) page = <PendingPage stream={a} sink={b} key={`${a}/${b}`} />;
    else if (kind === 'dead' && a) page = <DeadPage name={a} config={config} key={a} />;
    else page = <OverviewPage />;
  }
  return (
    <>
      <header>
        <a href="#/" class="brand">
          pulse-streaming
        </a>
        {config?.readOnly && (
          <span class="tag" id="read-only">
            read-only
          </span>
        )}
        <span class="spacer" />
        {config?.tokenRequired && !config.readOnly && <TokenBox />}
        <a href="metrics" class="header-link">
          /metrics
        </a>
      </header>
      <main>
        {error !== undefined && <p class="error">{error}</p>}
        {page}
      </main>
    </>
  );
}

takeToken();
const root = document.getElementById('app') as HTMLElement;
root.textContent = ''; // the "Loading…" placeholder: render() adds to what is there
render(<App />, root);
