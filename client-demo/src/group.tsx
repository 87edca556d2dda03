/** Group bookings: create one, and edit it together (Yjs) with presence, the server's status and the shared countdown. */
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { GroupSession, GroupStatus, Peer, Schemas } from '../../shared/client';
import type { GroupDocJson } from '../../shared/group-doc';
import type { Problem } from '../../shared/errors';
import { demoUsers, type Connected, type DemoUser } from './session';
import { countdown, formatRange } from './time';
import { Avatar, colorOf, useTick } from './ui';

type Resource = Schemas['Resource'];
/** What this page reads of a group booking (the document's GroupBooking schema is not satisfiable yet: issue 10, item 1). */
interface GroupBooking {
  id: string;
  docName: string;
  title: string;
  members: { userId: string; role: 'organizer' | 'participant' }[];
}

const RECENT = 'slotwise.groups';
function recentGroups(): { id: string; title: string }[] {
  try {
    return JSON.parse(localStorage.getItem(RECENT) ?? '[]');
  } catch {
    return [];
  }
}
function remember(id: string, title: string) {
  const list = [{ id, title }, ...recentGroups().filter((g) => g.id !== id)].slice(0, 10);
  localStorage.setItem(RECENT, JSON.stringify(list));
}

/** The list page: start a group booking, or open a recent one. */
export function GroupsHome({ conn }: { conn: Connected }) {
  const [title, setTitle] = useState('Team lunch');
  const [users, setUsers] = useState<DemoUser[]>([]);
  const [roles, setRoles] = useState<Record<string, 'organizer' | 'participant' | ''>>({});
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const me = conn.session.user.userId;
  useEffect(() => {
    demoUsers().then((r) => {
      if (!('users' in r)) return;
      const others = r.users.filter((u) => u.userId !== me);
      setUsers(others);
      setRoles(Object.fromEntries(others.map((u) => [u.userId, u.role === 'organizer' ? 'organizer' : 'participant'])));
    });
  }, [me]);

  const create = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    const members = Object.entries(roles).filter(([, r]) => r).map(([userId, role]) => ({ userId, role: role as 'organizer' | 'participant' }));
    const { data, error: err } = await conn.sw.rest.POST('/v1/group-bookings', { body: { title, members } });
    setBusy(false);
    if (!data) return setError((err as Problem)?.detail ?? 'could not create the group booking');
    remember(data.id, data.title);
    location.hash = `#/groups/${data.id}`;
  };

  const recent = recentGroups();
  return (
    <div class="groups-home">
      <section class="card" aria-labelledby="new-group">
        <h1 id="new-group">New group booking</h1>
        <p class="muted">Plan a booking together: everyone you add edits the same draft live, and an organizer holds and confirms it.</p>
        <form onSubmit={create} class="stack">
          <label class="field">
            <span>Title</span>
            <input required maxLength={200} value={title} onInput={(e) => setTitle((e.target as HTMLInputElement).value)} name="title" />
          </label>
          <fieldset class="field">
            <legend>Invite</legend>
            {users.map((u) => (
              <div class="invite-row" key={u.userId}>
                <Avatar id={u.userId} name={u.name} size="sm" />
                <span class="grow">{u.name}</span>
                <select aria-label={`Role of ${u.name}`} value={roles[u.userId] ?? ''} onChange={(e) => setRoles({ ...roles, [u.userId]: (e.target as HTMLSelectElement).value as 'organizer' })}>
                  <option value="">Not invited</option>
                  <option value="organizer">Organizer</option>
                  <option value="participant">Participant</option>
                </select>
              </div>
            ))}
          </fieldset>
          <button type="submit" class="btn btn-primary" disabled={busy}>{busy ? 'Creating…' : 'Create and open'}</button>
          {error && <p class="notice notice-error" role="alert">{error}</p>}
        </form>
      </section>
      <section class="card" aria-labelledby="recent-groups">
        <h2 id="recent-groups">Recent in this browser</h2>
        {recent.length === 0 ? <p class="muted small">Group bookings you create or open appear here. Someone else's? Open the link they share.</p> : (
          <ul class="link-list">
            {recent.map((g) => <li key={g.id}><a href={`#/groups/${g.id}`}>{g.title}</a></li>)}
          </ul>
        )}
      </section>
    </div>
  );
}

const FIELD_LABEL: Record<string, string> = { title: 'Title', start: 'Start', end: 'End', resources: 'Resources', seats: 'Seats', participants: 'Participants', notes: 'Notes' };
const STATUS_LABEL: Record<string, string> = { draft: 'Draft', held: 'Held', confirmed: 'Confirmed', cancelled: 'Cancelled', expired: 'Hold expired' };
const DOC_STATUS: Record<GroupStatus, string> = { connecting: 'Connecting…', online: 'Live', reconnecting: 'Reconnecting…', offline: 'Offline', refused: 'Closed' };

/** One group booking, edited together. */
export function GroupPage({ conn, groupId }: { conn: Connected; groupId: string }) {
  const { sw, session } = conn;
  const [group, setGroup] = useState<GroupBooking | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [resources, setResources] = useState<Resource[]>([]);
  const [doc, setDoc] = useState<GroupDocJson | null>(null);
  const [peers, setPeers] = useState<Peer[]>([]);
  const [status, setStatus] = useState<GroupStatus>('connecting');
  const [busy, setBusy] = useState<string | null>(null);
  const [actionError, setActionError] = useState<string | null>(null);
  const [copied, setCopied] = useState(false);
  const gs = useRef<GroupSession | null>(null);
  useTick(500);

  useEffect(() => {
    sw.rest.GET('/v1/group-bookings/{id}', { params: { path: { id: groupId } } }).then(({ data, error }) => {
      if (!data) return setLoadError((error as Problem)?.code === 'not-found' ? 'This group booking does not exist, or you are not one of its members.' : (error as Problem)?.detail ?? 'could not load');
      const g = data as unknown as GroupBooking;
      setGroup(g);
      remember(g.id, g.title);
    });
    sw.rest.GET('/v1/resources', { params: { query: { limit: 200 } } }).then(({ data }) => data && setResources(data.items));
  }, [groupId]);

  useEffect(() => {
    if (!group) return;
    const s = sw.group(group.docName);
    gs.current = s;
    s.setPresence({ user: { id: session.user.userId, name: session.user.name, color: colorOf(session.user.userId) }, field: null });
    const offChange = s.onChange((json) => setDoc(json));
    const offPresence = s.onPresence(setPeers);
    const offStatus = s.onStatus(setStatus);
    s.synced.then(() => {
      setDoc(s.json());
      setPeers(s.peers());
    });
    return () => {
      offChange();
      offPresence();
      offStatus();
      s.destroy();
      gs.current = null;
    };
  }, [group?.docName]);

  const role = group?.members.find((m) => m.userId === session.user.userId)?.role ?? null;
  const organizer = role === 'organizer';
  const bookable = useMemo(() => {
    const parents = new Set(resources.map((r) => r.parentId));
    return resources.filter((r) => !parents.has(r.id));
  }, [resources]);

  if (loadError) return <p class="notice notice-error" role="alert">{loadError}</p>;
  if (!group || !doc || !gs.current) {
    return <p class="muted" aria-busy="true">{status === 'refused' ? 'You cannot open this group booking.' : 'Opening the group booking…'}</p>;
  }
  const s = gs.current;
  const server = doc.server;
  const draft = doc.draft;
  const resourceIds = (draft.resourceIds as string[] | undefined) ?? [];
  const editable = organizer && status !== 'refused';
  const inField = (field: string) => peers.filter((p) => !p.self && (p.field === field || p.field?.startsWith(field + ':')));
  const focus = (field: string) => ({ onFocus: () => s.setField(field), onBlur: () => s.setField(null) });

  const act = async (what: 'hold' | 'confirm' | 'cancel') => {
    setBusy(what);
    setActionError(null);
    const path = { params: { path: { id: group.id } }, body: {} };
    const call = what === 'hold' ? sw.rest.POST('/v1/group-bookings/{id}/hold', path)
      : what === 'confirm' ? sw.rest.POST('/v1/group-bookings/{id}/confirm', path)
      : sw.rest.POST('/v1/group-bookings/{id}/cancel', path);
    const { error } = await call;
    setBusy(null);
    if (error) setActionError(describeProblem(error as Problem));
  };

  const left = server.expiresAt ? sw.clock.msUntil(server.expiresAt) : 0;
  const participantCount = Object.keys(doc.participants).length;
  const shareUrl = `${location.origin}/#/groups/${group.id}`;

  return (
    <div class="group-layout">
      <section class="group-main" aria-labelledby="group-title">
        <div class="group-head">
          <div>
            <p class="eyebrow">Group booking</p>
            <h1 id="group-title" data-testid="group-title">{String(draft.title ?? group.title)}</h1>
          </div>
          <span class={`pill pill-${status === 'online' ? 'online' : status === 'refused' ? 'offline' : 'reconnecting'}`} role="status" data-testid="doc-status">
            <span class="dot" aria-hidden="true" />{DOC_STATUS[status]}
          </span>
        </div>
        {status === 'refused' && <p class="notice notice-error" role="alert">The server closed this document: {s.refusal?.reason || `code ${s.refusal?.code}`}.</p>}
        {!organizer && <p class="notice">You are a participant: organizers edit the draft; you can edit the notes and your own entry.</p>}

        <div class="form-grid">
          <Field label="Title" htmlFor="g-title" peers={inField('title')} wide>
            <TextInput value={String(draft.title ?? '')} disabled={!editable} {...focus('title')} name="title" id="g-title"
              validate={(v) => (v.trim().length >= 1 && v.length <= 200 ? null : 'A title of 1 to 200 characters')}
              onCommit={(v) => s.editDraft({ title: v })} />
          </Field>
          <Field label="Start" htmlFor="g-start" peers={inField('start')} hint={`your time (${Intl.DateTimeFormat().resolvedOptions().timeZone})`}>
            <input type="datetime-local" step={1800} name="start" id="g-start" disabled={!editable} value={toLocalInput(draft.start as string | null)} {...focus('start')}
              onChange={(e) => s.editDraft({ start: fromLocalInput((e.target as HTMLInputElement).value) })} />
          </Field>
          <Field label="End" htmlFor="g-end" peers={inField('end')}>
            <input type="datetime-local" step={1800} name="end" id="g-end" disabled={!editable} value={toLocalInput(draft.end as string | null)} {...focus('end')}
              onChange={(e) => s.editDraft({ end: fromLocalInput((e.target as HTMLInputElement).value) })} />
          </Field>
          <Field label="Resources" peers={inField('resources')} wide>
            <div class="chips" role="group" aria-labelledby="label-resources">
              {bookable.map((r) => (
                <label key={r.id} class={`chip${resourceIds.includes(r.id) ? ' chip-on' : ''}`}>
                  <input type="checkbox" disabled={!editable} checked={resourceIds.includes(r.id)} {...focus('resources')} data-resource={r.name}
                    onChange={(e) => s.editDraft({ resourceIds: (e.target as HTMLInputElement).checked ? [...resourceIds, r.id] : resourceIds.filter((x) => x !== r.id) })} />
                  {r.name}
                </label>
              ))}
            </div>
          </Field>
          <Field label="Seats" htmlFor="g-seats" peers={inField('seats')} hint={`Blank: one per participant (${participantCount})`}>
            <input type="number" min={1} max={10000} name="seats" id="g-seats" disabled={!editable} value={draft.seats == null ? '' : String(draft.seats)} {...focus('seats')}
              onChange={(e) => {
                const v = (e.target as HTMLInputElement).value;
                const n = Number(v);
                s.editDraft({ seats: v === '' ? null : Number.isInteger(n) && n >= 1 && n <= 10000 ? n : (draft.seats as number | null) ?? null });
              }} />
          </Field>
          <Field label="Participants" peers={inField('participants')} wide>
            <Participants session={s} doc={doc} editable={editable} myId={session.user.userId} focus={focus} />
          </Field>
          <Field label="Notes" htmlFor="g-notes" peers={inField('notes')} wide>
            <NotesArea session={s} {...focus('notes')} disabled={status === 'refused'} />
          </Field>
        </div>
      </section>

      <aside class="panel" aria-label="Status and people">
        <div class="card">
          <h2>Here now</h2>
          <ul class="peers" data-testid="peers">
            {peers.map((p) => (
              <li key={p.clientId} data-user={p.user.id}>
                <Avatar id={p.user.id} name={p.user.name} size="sm" />
                <span>{p.user.name}{p.self ? ' (you)' : ''}</span>
                <span class="muted small">{p.field ? `in ${FIELD_LABEL[p.field.split(':')[0]!] ?? p.field}` : 'viewing'}</span>
              </li>
            ))}
          </ul>
          <p class="muted small">Members: {group.members.map((m) => `${m.userId} (${m.role})`).join(', ')}</p>
          {organizer && <Invite conn={conn} group={group} onChanged={setGroup} />}
          <div class="share">
            <input readonly value={shareUrl} aria-label="Link to this group booking" data-testid="share-link" onFocus={(e) => (e.target as HTMLInputElement).select()} />
            <button type="button" class="btn btn-ghost btn-sm" onClick={() => navigator.clipboard?.writeText(shareUrl).then(() => setCopied(true))}>{copied ? 'Copied' : 'Copy'}</button>
          </div>
        </div>

        <div class={`card status-card status-${server.status ?? 'draft'}`} data-testid="server-status" data-status={server.status ?? 'draft'}>
          <div class="card-head">
            <h2>Status</h2>
            <span class={`status-badge status-badge-${server.status ?? 'draft'}`}>{STATUS_LABEL[server.status ?? 'draft'] ?? server.status}</span>
          </div>
          {server.status === 'held' && server.expiresAt && (
            <p>
              Seats held for everyone for <span class={`countdown${left < 15_000 ? ' countdown-urgent' : ''}`} role="timer" data-testid="group-countdown">{countdown(left)}</span>
            </p>
          )}
          {draft.start && draft.end && <p class="muted small">{formatRange(draft.start as string, draft.end as string, Intl.DateTimeFormat().resolvedOptions().timeZone)}</p>}
          {server.error && <p class="notice notice-error">{server.error}</p>}
          {organizer ? (
            <div class="row">
              {(server.status ?? 'draft') !== 'held' && server.status !== 'confirmed' && (
                <button type="button" class="btn btn-primary" disabled={busy !== null} onClick={() => act('hold')}>{busy === 'hold' ? 'Holding…' : 'Hold seats'}</button>
              )}
              {server.status === 'held' && (
                <>
                  <button type="button" class="btn btn-primary" disabled={busy !== null} onClick={() => act('confirm')}>{busy === 'confirm' ? 'Confirming…' : 'Confirm booking'}</button>
                  <button type="button" class="btn btn-ghost" disabled={busy !== null} onClick={() => act('cancel')}>Release</button>
                </>
              )}
              {server.status === 'confirmed' && (
                <button type="button" class="btn btn-ghost" disabled={busy !== null} onClick={() => act('cancel')}>Cancel booking</button>
              )}
            </div>
          ) : (
            <p class="muted small">Organizers hold and confirm.</p>
          )}
          {actionError && <p class="notice notice-error" role="alert">{actionError}</p>}
        </div>
      </aside>
    </div>
  );
}

function describeProblem(p: Problem): string {
  const errors = (p.errors ?? []).map((e) => `${e.path}: ${e.message}`).join('; ');
  return `${p.title}${p.detail && p.detail !== p.title ? `: ${p.detail}` : ''}${errors ? ` (${errors})` : ''}`;
}

/** A field of the draft: its label (tied to the input `htmlFor` names), who else is in it, and a hint. */
function Field({ label, htmlFor, peers, wide, hint, children }: { label: string; htmlFor?: string; peers: Peer[]; wide?: boolean; hint?: string; children: preact.ComponentChildren }) {
  const first = peers[0];
  return (
    <div class={`gfield${wide ? ' gfield-wide' : ''}${first ? ' gfield-peer' : ''}`} style={first ? { '--peer': first.user.color } : undefined} data-field={label.toLowerCase()}>
      <div class="gfield-label">
        {htmlFor ? <label for={htmlFor}>{label}</label> : <span id={`label-${label.toLowerCase()}`}>{label}</span>}
        {peers.map((p) => <span key={p.clientId} class="peer-tag" style={{ background: p.user.color }}>{p.user.name.split(' ')[0]}<span class="sr-only"> is editing this</span></span>)}
        {hint && <span class="muted small">{hint}</span>}
      </div>
      {children}
    </div>
  );
}

/** A text input that writes to the document only valid values, and takes remote values while not being edited. */
function TextInput({ value, onCommit, validate, ...rest }: { value: string; onCommit: (v: string) => void; validate: (v: string) => string | null } & Record<string, unknown>) {
  const [local, setLocal] = useState(value);
  const [problem, setProblem] = useState<string | null>(null);
  const editing = useRef(false);
  useEffect(() => {
    if (!editing.current) setLocal(value);
  }, [value]);
  const { onFocus, onBlur, ...attrs } = rest as { onFocus?: () => void; onBlur?: () => void };
  return (
    <>
      <input {...attrs} value={local} aria-invalid={problem ? 'true' : undefined}
        onFocus={() => { editing.current = true; onFocus?.(); }}
        onBlur={() => { editing.current = false; setLocal(value); setProblem(null); onBlur?.(); }}
        onInput={(e) => {
          const v = (e.target as HTMLInputElement).value;
          setLocal(v);
          const p = validate(v);
          setProblem(p);
          if (!p) onCommit(v);
        }} />
      {problem && <span class="field-error">{problem}</span>}
    </>
  );
}

function Participants({ session, doc, editable, myId, focus }: { session: GroupSession; doc: GroupDocJson; editable: boolean; myId: string; focus: (f: string) => object }) {
  const entries = Object.entries(doc.participants);
  return (
    <div class="participants" role="group" aria-labelledby="label-participants">
      {entries.length === 0 && <p class="muted small">No participants yet.</p>}
      {entries.map(([id, p]) => (
        <div class="participant-row" key={id}>
          <TextInput value={String(p.name ?? '')} disabled={!(editable || id === myId)} placeholder="Name" aria-label="Participant name" {...focus(`participants:${id}`)}
            validate={(v) => (v.length <= 200 ? null : 'At most 200 characters')} onCommit={(v) => session.setParticipant(id, { name: v })} />
          <TextInput value={String(p.email ?? '')} disabled={!(editable || id === myId)} placeholder="E-mail (optional)" aria-label="Participant e-mail" type="email" {...focus(`participants:${id}`)}
            validate={(v) => (v === '' || /^[^\s@]+@[^\s@]+$/.test(v) ? null : 'Not an e-mail address yet')} onCommit={(v) => session.setParticipant(id, { email: v })} />
          {editable && <button type="button" class="btn btn-link btn-sm" aria-label={`Remove ${p.name || 'participant'}`} onClick={() => session.removeParticipant(id)}>Remove</button>}
        </div>
      ))}
      {editable && (
        <button type="button" class="btn btn-ghost btn-sm" onClick={() => session.setParticipant(`p-${Math.random().toString(36).slice(2, 8)}`, { name: '' })}>+ Add participant</button>
      )}
    </div>
  );
}

/** The notes, bound to the Y.Text: local typing becomes minimal edits, remote edits keep our cursor in place. */
function NotesArea({ session, disabled, onFocus, onBlur }: { session: GroupSession; disabled?: boolean; onFocus: () => void; onBlur: () => void }) {
  const ref = useRef<HTMLTextAreaElement>(null);
  useEffect(() => {
    const el = ref.current!;
    el.value = session.notes.toString();
    const observer = (event: { delta: { retain?: number; insert?: string | object; delete?: number }[]; transaction: { local: boolean } }) => {
      if (event.transaction.local) return;
      let { selectionStart: a, selectionEnd: b } = el;
      let pos = 0;
      for (const op of event.delta) {
        if (op.retain) pos += op.retain;
        else if (typeof op.insert === 'string') {
          const n = op.insert.length;
          if (pos < a) a += n;
          if (pos < b) b += n;
          pos += n;
        } else if (op.delete) {
          if (pos < a) a = Math.max(pos, a - op.delete);
          if (pos < b) b = Math.max(pos, b - op.delete);
        }
      }
      const focused = document.activeElement === el;
      el.value = session.notes.toString();
      if (focused) el.setSelectionRange(a, b);
    };
    session.notes.observe(observer as never);
    return () => session.notes.unobserve(observer as never);
  }, [session]);
  return (
    <textarea ref={ref} rows={5} maxLength={20000} disabled={disabled} name="notes" id="g-notes" placeholder="Agenda, dietary needs, anything everyone should know…"
      onFocus={onFocus} onBlur={onBlur} onInput={(e) => session.setNotes((e.target as HTMLTextAreaElement).value)} />
  );
}

/** "2027-01-11T09:00" (local) from an instant. */
function toLocalInput(iso: string | null | undefined): string {
  if (!iso) return '';
  const d = new Date(iso);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function fromLocalInput(v: string): string | null {
  if (!v) return null;
  const t = new Date(v);
  return Number.isNaN(t.getTime()) ? null : t.toISOString();
}

/** Organizers add people (a demo user in development mode, else any user id of the tenant). */
function Invite({ conn, group, onChanged }: { conn: Connected; group: GroupBooking; onChanged: (g: GroupBooking) => void }) {
  const [users, setUsers] = useState<DemoUser[] | null>(null);
  const [userId, setUserId] = useState('');
  const [role, setRole] = useState<'organizer' | 'participant'>('participant');
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    demoUsers().then((r) => setUsers('users' in r ? r.users : []));
  }, []);
  const candidates = (users ?? []).filter((u) => !group.members.some((m) => m.userId === u.userId));
  const submit = async (e: Event) => {
    e.preventDefault();
    if (!userId.trim()) return;
    setError(null);
    const { data, error: err } = await conn.sw.rest.POST('/v1/group-bookings/{id}/members', { params: { path: { id: group.id } }, body: { userId: userId.trim(), role } });
    if (!data) return setError((err as Problem)?.detail ?? 'could not add');
    onChanged(data as unknown as GroupBooking);
    setUserId('');
  };
  if (users && users.length > 0 && candidates.length === 0) return null;
  return (
    <form class="invite" onSubmit={submit} aria-label="Invite someone">
      {users && users.length > 0 ? (
        <select aria-label="Person to invite" value={userId} onChange={(e) => setUserId((e.target as HTMLSelectElement).value)}>
          <option value="">Invite…</option>
          {candidates.map((u) => <option key={u.userId} value={u.userId}>{u.name}</option>)}
        </select>
      ) : (
        <input aria-label="User id to invite" placeholder="User id" value={userId} onInput={(e) => setUserId((e.target as HTMLInputElement).value)} />
      )}
      <select aria-label="Role" value={role} onChange={(e) => setRole((e.target as HTMLSelectElement).value as 'organizer')}>
        <option value="participant">Participant</option>
        <option value="organizer">Organizer</option>
      </select>
      <button type="submit" class="btn btn-ghost btn-sm" disabled={!userId.trim()}>Add</button>
      {error && <p class="notice notice-error" role="alert">{error}</p>}
    </form>
  );
}
