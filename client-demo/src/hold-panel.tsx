/** Your hold: its countdown on the server's clock, extend, release, confirm; or why a slot could not be held. */
import { useState } from 'preact/hooks';
import type { Booking, Hold, Schemas } from '../../shared/client';
import type { Problem } from '../../shared/errors';
import type { Connected } from './session';
import { countdown, formatRange } from './time';
import { useTick } from './ui';

type Resource = Schemas['Resource'];

export interface ActiveHold {
  hold: Hold;
  resource: Resource;
  /** The hold's first lifetime: what Extend asks for again. */
  ttlSeconds: number;
  ended: 'expired' | 'released' | null;
  booking: Booking | null;
}

export interface Conflict {
  request: { resourceIds: string[]; start: string; end: string; seats: number };
  resource: Resource;
  problem: Problem;
  /** Nearest free options of the same length and seats (null while loading). */
  alternatives: { start: string; end: string }[] | null;
}

interface Props {
  conn: Connected;
  active: ActiveHold | null;
  setActive: (a: ActiveHold | null) => void;
  conflict: Conflict | null;
  /** The refused slots have the seats now (someone let go). */
  freeAgain: boolean;
  onDismissConflict: () => void;
  onChoose: (start: string) => void;
}

export function HoldPanel({ conn, active, setActive, conflict, freeAgain, onDismissConflict, onChoose }: Props) {
  return (
    <aside class="panel" aria-label="Your booking">
      {conflict && <ConflictCard conflict={conflict} freeAgain={freeAgain} onDismiss={onDismissConflict} onChoose={onChoose} />}
      {active ? <HoldCard conn={conn} active={active} setActive={setActive} /> : !conflict && <Hint />}
    </aside>
  );
}

function Hint() {
  return (
    <div class="card card-hint">
      <h2>Hold a slot</h2>
      <p class="muted">Choose a free slot in the calendar. It is yours for a few minutes while you confirm; everyone else sees it taken at once.</p>
    </div>
  );
}

function HoldCard({ conn, active, setActive }: { conn: Connected; active: ActiveHold; setActive: (a: ActiveHold | null) => void }) {
  const { live, sw, session } = conn;
  const { hold, resource } = active;
  const [name, setName] = useState(session.user.name);
  const [email, setEmail] = useState(`${session.user.userId}@example.com`);
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  useTick(250);
  const when = formatRange(hold.start, hold.end, resource.timezone);
  const left = sw.clock.msUntil(hold.expiresAt);
  const total = Math.max(1, Date.parse(hold.expiresAt) - Date.parse(hold.createdAt));

  const run = async (what: string, fn: () => Promise<void>) => {
    setBusy(what);
    setError(null);
    try {
      await fn();
    } finally {
      setBusy(null);
    }
  };

  if (active.booking) {
    const b = active.booking;
    return (
      <div class={`card ${b.status === 'cancelled' ? 'card-muted' : 'card-success'}`} data-testid="booking-card">
        <h2>{b.status === 'cancelled' ? 'Booking cancelled' : 'Booked'}</h2>
        <p><strong>{resource.name}</strong><br />{when} · {b.seats} seat{b.seats === 1 ? '' : 's'}</p>
        <p class="muted small">Booking {b.id.slice(0, 8)} for {b.customer.name}</p>
        {b.status === 'confirmed' && (
          <button type="button" class="btn btn-ghost" disabled={busy !== null} onClick={() => run('cancel', async () => {
            const { data, error: e } = await sw.rest.POST('/v1/bookings/{id}/cancel', { params: { path: { id: b.id } }, body: { reason: 'cancelled in the demo' } });
            if (data) setActive({ ...active, booking: data });
            else setError((e as Problem)?.detail ?? 'could not cancel');
          })}>Cancel booking</button>
        )}
        <button type="button" class="btn btn-link" onClick={() => setActive(null)}>Done</button>
        {error && <p class="notice notice-error" role="alert">{error}</p>}
      </div>
    );
  }

  if (active.ended || left <= 0) {
    const expired = active.ended !== 'released';
    return (
      <div class="card card-muted" data-testid="hold-ended">
        <h2>{expired ? 'Your hold expired' : 'Hold released'}</h2>
        <p>{resource.name}, {when}</p>
        <p class="muted small">{expired ? 'The seats went back to everyone. Choose the slot again to hold it anew.' : 'The seats are free again.'}</p>
        <button type="button" class="btn btn-ghost" onClick={() => setActive(null)}>OK</button>
      </div>
    );
  }

  const urgent = left < Math.min(30_000, total * 0.2);
  return (
    <div class="card card-hold" data-testid="hold-card">
      <div class="card-head">
        <h2>Your hold</h2>
        <span class={`countdown${urgent ? ' countdown-urgent' : ''}`} role="timer" aria-label={`${countdown(left)} left`} data-testid="countdown">
          {countdown(left)}
        </span>
      </div>
      <div class="progress" aria-hidden="true"><span style={{ width: `${Math.min(100, (left / total) * 100)}%` }} /></div>
      <p><strong>{resource.name}</strong><br />{when} · {hold.seats} seat{hold.seats === 1 ? '' : 's'}</p>
      <p class="muted small">Held for you until {new Date(Date.parse(hold.expiresAt) - conn.sw.clock.offsetMs).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' })} (your clock).</p>
      <div class="row">
        <button type="button" class="btn btn-ghost" disabled={busy !== null} onClick={() => run('extend', async () => {
          const ack = await live.holdExtend({ holdId: hold.id, ttlSeconds: active.ttlSeconds });
          if (ack.ok) setActive({ ...active, hold: ack.data });
          else setError(ack.error.detail);
        })}>{busy === 'extend' ? 'Extending…' : 'Extend'}</button>
        <button type="button" class="btn btn-ghost" disabled={busy !== null} onClick={() => run('release', async () => {
          const ack = await live.holdRelease({ holdId: hold.id });
          if (ack.ok) setActive({ ...active, ended: 'released' });
          else setError(ack.error.detail);
        })}>{busy === 'release' ? 'Releasing…' : 'Release'}</button>
      </div>
      <form class="confirm-form" onSubmit={(e) => {
        e.preventDefault();
        void run('confirm', async () => {
          const ack = await live.holdConfirm({ holdId: hold.id, customer: { name, email } });
          if (ack.ok) setActive({ ...active, booking: ack.data });
          else setError(ack.error.detail);
        });
      }}>
        <h3>Confirm the booking</h3>
        <label class="field">
          <span>Name</span>
          <input required maxLength={200} value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} autocomplete="name" />
        </label>
        <label class="field">
          <span>E-mail</span>
          <input required type="email" value={email} onInput={(e) => setEmail((e.target as HTMLInputElement).value)} autocomplete="email" />
        </label>
        <button type="submit" class="btn btn-primary" disabled={busy !== null}>{busy === 'confirm' ? 'Confirming…' : 'Confirm booking'}</button>
      </form>
      {error && <p class="notice notice-error" role="alert">{error}</p>}
    </div>
  );
}

const REASON: Record<string, string> = { full: 'no seats left', blocked: 'closed (blocked)', buffer: 'too close to another booking' };

function ConflictCard({ conflict, freeAgain, onDismiss, onChoose }: { conflict: Conflict; freeAgain: boolean; onDismiss: () => void; onChoose: (start: string) => void }) {
  const { problem, request, resource, alternatives } = conflict;
  const conflicts = (problem.conflicts as { start: string; end: string; remaining: number; reason: string }[] | undefined) ?? [];
  const tz = resource.timezone;
  return (
    <div class="card card-conflict" role="alert" data-testid="conflict">
      <div class="card-head">
        <h2>{problem.code === 'slot-unavailable' ? 'Not available' : problem.title}</h2>
        <button type="button" class="btn btn-link btn-sm" onClick={onDismiss} aria-label="Dismiss">✕</button>
      </div>
      <p>
        {resource.name}, {formatRange(request.start, request.end, tz)} for {request.seats} seat{request.seats === 1 ? '' : 's'}
        {problem.code === 'slot-unavailable' ? ' cannot be held:' : `: ${problem.detail}`}
      </p>
      {freeAgain && (
        <p class="notice notice-ok" role="status">
          It is free again. <button type="button" class="btn btn-primary btn-sm" onClick={() => onChoose(request.start)}>Hold it now</button>
        </p>
      )}
      {conflicts.length > 0 && (
        <ul class="conflict-list">
          {conflicts.map((c) => (
            <li key={c.start + c.reason}>
              {formatRange(c.start, c.end, tz)}: {REASON[c.reason] ?? c.reason}
              {c.reason === 'full' && c.remaining > 0 ? ` (only ${c.remaining} left)` : ''}
            </li>
          ))}
        </ul>
      )}
      <h3>Nearest free times</h3>
      {alternatives === null ? (
        <p class="muted small" aria-busy="true">Looking…</p>
      ) : alternatives.length === 0 ? (
        <p class="muted small">Nothing free within three days. Try another week or fewer seats.</p>
      ) : (
        <ul class="alternatives">
          {alternatives.map((a) => (
            <li key={a.start}>
              <button type="button" class="btn btn-ghost btn-sm" onClick={() => onChoose(a.start)}>{formatRange(a.start, a.end, tz)}</button>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
