/** Who is signed in (per tab), and the typed client with its live connection for them. */
import { createSlotwiseClient, must, type LiveClient, type SlotwiseClient } from '../../shared/client';

export interface DemoUser {
  userId: string;
  name: string;
  role: 'member' | 'organizer';
}

export interface Session {
  user: DemoUser;
  tenantId: string;
  token: string;
  expiresAt: string;
}

// Per tab, so two tabs can be two people.
const KEY = 'slotwise.session';

export function savedSession(): Session | null {
  try {
    const s = JSON.parse(sessionStorage.getItem(KEY) ?? 'null') as Session | null;
    return s && Date.parse(s.expiresAt) > Date.now() + 60_000 ? s : null;
  } catch {
    return null;
  }
}

export function saveSession(s: Session | null): void {
  if (s) sessionStorage.setItem(KEY, JSON.stringify(s));
  else sessionStorage.removeItem(KEY);
}

/** A client without a credential, for the development sign-in. */
export const anonymous = createSlotwiseClient({ baseUrl: '' });

/** The demo users, or null outside development mode. */
export async function demoUsers(): Promise<{ users: DemoUser[] } | { refused: string }> {
  const { data, error } = await anonymous.rest.GET('/v1/dev/users');
  if (data) return { users: data.users };
  return { refused: (error as { detail?: string } | undefined)?.detail ?? 'the server offers no demo users' };
}

/** Signs in as a demo user (development mode). */
export async function signIn(userId: string): Promise<Session> {
  const s = await must(anonymous.rest.POST('/v1/dev/tokens', { body: { userId } }));
  return { user: s.user, tenantId: s.tenantId, token: s.token, expiresAt: s.expiresAt };
}

/**
 * A session from a user token made elsewhere (POST /v1/tokens with the
 * tenant's API key), for servers outside development mode. The claims are
 * read, not verified: the server verifies the token on every request.
 */
export function sessionFromToken(token: string): Session {
  const part = token.trim().split('.')[1];
  if (!part) throw new Error('that is not a user token (a JWT from POST /v1/tokens)');
  let claims: { sub?: string; name?: string; role?: string; tid?: string; exp?: number };
  try {
    claims = JSON.parse(atob(part.replace(/-/g, '+').replace(/_/g, '/')));
  } catch {
    throw new Error('that is not a user token (a JWT from POST /v1/tokens)');
  }
  if (!claims.sub || !claims.tid || !claims.exp) throw new Error('the token lacks a user, tenant or expiry');
  if (claims.exp * 1000 < Date.now()) throw new Error('the token has expired');
  return {
    user: { userId: claims.sub, name: claims.name ?? claims.sub, role: claims.role === 'organizer' ? 'organizer' : 'member' },
    tenantId: claims.tid,
    token: token.trim(),
    expiresAt: new Date(claims.exp * 1000).toISOString(),
  };
}

/** The client and live connection of one signed-in user. */
export interface Connected {
  session: Session;
  sw: SlotwiseClient;
  live: LiveClient;
  close(): void;
}

/** Connects as `session`; a token that expires is renewed through the development sign-in. */
export function connect(session: Session, onRenewed: (s: Session) => void): Connected {
  let current = session;
  const sw = createSlotwiseClient({ baseUrl: '', token: () => current.token });
  // WebSocket only: one connection per session, so any node behind a load balancer can take it (no sticky sessions
  // needed; deploy/nginx.conf sends such connections to the least busy node).
  const live = sw.live({ socket: { transports: ['websocket'] } });
  const stop = live.onStatus(async (status) => {
    if (status !== 'unauthorized') return;
    try {
      current = await signIn(current.user.userId);
      onRenewed(current);
      live.socket.connect();
    } catch {
      // Stays unauthorized; the banner says so.
    }
  });
  return {
    get session() {
      return current;
    },
    sw,
    live,
    close() {
      stop();
      live.close();
    },
  };
}
