/** The shell: sign-in, navigation, the connection's state, and the pages. */
import { useEffect, useMemo, useState } from 'preact/hooks';
import type { LiveStatus } from '../../shared/client';
import { Calendar } from './calendar';
import { GroupPage, GroupsHome } from './group';
import { connect, demoUsers, saveSession, savedSession, sessionFromToken, signIn, type Connected, type DemoUser, type Session } from './session';
import { Avatar, useOnline } from './ui';

type Route = { page: 'calendar' } | { page: 'groups' } | { page: 'group'; id: string };

function parseRoute(hash: string): Route {
  const m = /^#\/groups\/([0-9a-f-]{36})/i.exec(hash);
  if (m) return { page: 'group', id: m[1]!.toLowerCase() };
  if (hash.startsWith('#/groups')) return { page: 'groups' };
  return { page: 'calendar' };
}

function useRoute(): Route {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = () => setHash(location.hash);
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return parseRoute(hash);
}

export function App() {
  const [session, setSession] = useState<Session | null>(savedSession);
  const route = useRoute();
  const conn = useMemo<Connected | null>(() => (session ? connect(session, (s) => saveSession(s)) : null), [session?.token]);
  useEffect(() => () => conn?.close(), [conn]);

  if (!session || !conn) {
    return (
      <SignIn
        onSignedIn={(s) => {
          saveSession(s);
          setSession(s);
        }}
      />
    );
  }
  return (
    <div class="shell">
      <TopBar
        conn={conn}
        route={route}
        onSignOut={() => {
          saveSession(null);
          setSession(null);
        }}
      />
      <ConnectionBanner conn={conn} />
      <main id="main" class="page">
        {route.page === 'calendar' && <Calendar conn={conn} />}
        {route.page === 'groups' && <GroupsHome conn={conn} />}
        {route.page === 'group' && <GroupPage key={route.id} conn={conn} groupId={route.id} />}
      </main>
    </div>
  );
}

function useLiveStatus(conn: Connected): LiveStatus {
  const [status, setStatus] = useState(conn.live.status);
  useEffect(() => conn.live.onStatus(setStatus), [conn]);
  return status;
}

const STATUS_TEXT: Record<LiveStatus, string> = {
  connecting: 'Connecting…',
  online: 'Live',
  reconnecting: 'Reconnecting…',
  offline: 'Offline',
  unauthorized: 'Signed out',
};

function TopBar({ conn, route, onSignOut }: { conn: Connected; route: Route; onSignOut: () => void }) {
  const status = useLiveStatus(conn);
  const online = useOnline();
  const shown: LiveStatus = online ? status : 'offline';
  const user = conn.session.user;
  return (
    <header class="topbar">
      <a class="skip" href="#main">Skip to content</a>
      <a class="brand" href="#/" aria-label="Slotwise home">
        <span class="brand-mark" aria-hidden="true" />
        Slotwise
      </a>
      <nav aria-label="Main" class="tabs">
        <a href="#/" aria-current={route.page === 'calendar' ? 'page' : undefined}>Calendar</a>
        <a href="#/groups" aria-current={route.page !== 'calendar' ? 'page' : undefined}>Group bookings</a>
      </nav>
      <div class="topbar-end">
        <span class={`pill pill-${shown}`} role="status" aria-live="polite" data-testid="live-status" data-status={shown}>
          <span class="dot" aria-hidden="true" />
          {STATUS_TEXT[shown]}
        </span>
        <span class="me">
          <Avatar id={user.userId} name={user.name} />
          <span class="me-name">{user.name}</span>
        </span>
        <button type="button" class="btn btn-ghost btn-sm" onClick={onSignOut}>Switch user</button>
      </div>
    </header>
  );
}

function ConnectionBanner({ conn }: { conn: Connected }) {
  const status = useLiveStatus(conn);
  const online = useOnline();
  if (!online) {
    return <div class="banner banner-offline" role="alert">You are offline. Availability will catch up as soon as the network is back.</div>;
  }
  if (status === 'reconnecting') {
    return <div class="banner banner-warn" role="status">Connection lost. Reconnecting… what you see may be out of date until then.</div>;
  }
  if (status === 'unauthorized') {
    return <div class="banner banner-offline" role="alert">Your session ended. <a href="#/" onClick={() => location.reload()}>Sign in again</a>.</div>;
  }
  return null;
}

function SignIn({ onSignedIn }: { onSignedIn: (s: Session) => void }) {
  const [users, setUsers] = useState<DemoUser[] | null>(null);
  const [refused, setRefused] = useState<string | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    demoUsers()
      .then((r) => ('users' in r ? setUsers(r.users) : setRefused(r.refused)))
      .catch(() => setRefused('The server could not be reached.'));
  }, []);
  const choose = async (u: DemoUser) => {
    setBusy(u.userId);
    setError(null);
    try {
      onSignedIn(await signIn(u.userId));
    } catch (err) {
      setError((err as Error).message);
      setBusy(null);
    }
  };
  return (
    <main class="signin">
      <div class="signin-card">
        <div class="brand brand-lg">
          <span class="brand-mark" aria-hidden="true" />
          Slotwise
        </div>
        <h1>Book rooms, desks and gear, live.</h1>
        {refused ? (
          <p class="muted">This server runs outside development mode, so it offers no demo people: sign in with a user token.</p>
        ) : (
          <p class="muted">
            This is the development demo: pick a person to sign in as. Open a second window as someone else to watch holds,
            bookings and group edits arrive in real time.
          </p>
        )}
        {!users && !refused && <p class="muted" aria-busy="true">Loading demo users…</p>}
        {users && (
          <ul class="user-list" aria-label="Demo users">
            {users.map((u) => (
              <li key={u.userId}>
                <button type="button" class="user-card" onClick={() => choose(u)} disabled={busy !== null} data-user={u.userId}>
                  <Avatar id={u.userId} name={u.name} size="lg" />
                  <span class="user-card-text">
                    <strong>{u.name}</strong>
                    <span class="muted">{u.role === 'organizer' ? 'Organizer' : 'Member'}</span>
                  </span>
                  <span class="user-card-go" aria-hidden="true">{busy === u.userId ? '…' : '→'}</span>
                </button>
              </li>
            ))}
          </ul>
        )}
        {refused && <TokenSignIn onSignedIn={onSignedIn} />}
        {error && <p class="notice notice-error" role="alert">{error}</p>}
      </div>
    </main>
  );
}

/** Outside development mode: sign in with a user token made with the tenant's API key. */
function TokenSignIn({ onSignedIn }: { onSignedIn: (s: Session) => void }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<string | null>(null);
  return (
    <form
      class="stack token-form"
      onSubmit={(e) => {
        e.preventDefault();
        try {
          onSignedIn(sessionFromToken(token));
        } catch (err) {
          setError((err as Error).message);
        }
      }}
    >
      <label class="field">
        <span>User token</span>
        <textarea rows={3} required value={token} onInput={(e) => setToken((e.target as HTMLTextAreaElement).value)} placeholder="eyJhbGciOiJIUzI1NiIs…" />
      </label>
      <p class="muted small">Make one with the tenant's API key: <code>POST /v1/tokens</code> (see the README).</p>
      <button type="submit" class="btn btn-primary">Sign in</button>
      {error && <p class="notice notice-error" role="alert">{error}</p>}
    </form>
  );
}
