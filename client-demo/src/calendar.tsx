/** The resource tree, the live week calendar, and the hold you are making. */
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { AvailabilityView, DomainEvent, Schemas } from '../../shared/client';
import { HoldPanel, type ActiveHold, type Conflict } from './hold-panel';
import type { Connected } from './session';
import {
  addDays, formatDay, formatRange, formatWeek, hhmm, mondayOf, openSlotMinutes, type LocalDate, type Schedule, zonedToUtc,
} from './time';
import { useTick } from './ui';

type Resource = Schemas['Resource'];

interface Activity {
  key: string;
  text: string;
  at: number;
  kind: string;
}

const EVENT_TEXT: Record<string, string> = {
  'hold.created': 'held',
  'hold.extended': 'extended a hold on',
  'hold.released': 'released',
  'hold.expired': 'hold expired on',
  'booking.confirmed': 'booked',
  'booking.cancelled': 'cancelled',
  'booking.rescheduled': 'rescheduled',
  'booking.updated': 'updated',
};

/** The calendar page. */
export function Calendar({ conn }: { conn: Connected }) {
  const { sw, live } = conn;
  const [resources, setResources] = useState<Resource[] | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [selectedId, setSelectedId] = useState<string | null>(() => localStorage.getItem('slotwise.resource'));
  const [weekOffset, setWeekOffset] = useState(0);
  const [schedule, setSchedule] = useState<Schedule | null | 'none'>(null);
  const [view, setView] = useState<AvailabilityView | null>(null);
  const [, setVersion] = useState(0);
  const [seats, setSeats] = useState(1);
  const [lengthSlots, setLengthSlots] = useState(1);
  const [active, setActive] = useState<ActiveHold | null>(null);
  const [conflict, setConflict] = useState<Conflict | null>(null);
  const [busy, setBusy] = useState(false);
  const [activity, setActivity] = useState<Activity[]>([]);
  const activeRef = useRef<ActiveHold | null>(null);
  const autoAdvanced = useRef(false);
  activeRef.current = active;
  useTick(1000);

  useEffect(() => {
    sw.rest.GET('/v1/resources', { params: { query: { limit: 200 } } }).then(({ data, error }) => {
      if (!data) return setLoadError((error as { detail?: string })?.detail ?? 'could not load resources');
      setResources(data.items);
    });
  }, [sw]);

  const children = useMemo(() => {
    const m = new Map<string | null, Resource[]>();
    for (const r of resources ?? []) m.set(r.parentId, [...(m.get(r.parentId) ?? []), r]);
    return m;
  }, [resources]);
  const bookable = useMemo(() => (resources ?? []).filter((r) => !children.has(r.id)), [resources, children]);
  const selected = bookable.find((r) => r.id === selectedId) ?? bookable[0] ?? null;
  const byId = useMemo(() => new Map((resources ?? []).map((r) => [r.id, r])), [resources]);
  const tz = selected?.timezone ?? 'UTC';

  const monday = useMemo(() => addDays(mondayOf(sw.clock.now(), tz), weekOffset * 7), [tz, weekOffset]);
  const days = useMemo(() => Array.from({ length: 7 }, (_, i) => addDays(monday, i)), [monday]);
  const range = useMemo(() => ({ from: new Date(zonedToUtc(monday, 0, tz)).toISOString(), to: new Date(zonedToUtc(addDays(monday, 7), 0, tz)).toISOString() }), [monday, tz]);

  useEffect(() => {
    if (!selected) return;
    setSchedule(null);
    sw.rest.GET('/v1/resources/{id}/schedule', { params: { path: { id: selected.id } } }).then(({ data, response }) => {
      setSchedule(response.status === 200 && data ? ((data as { schedule: Schedule }).schedule) : 'none');
    });
  }, [selected?.id]);

  // The live view of the visible week: one watch, replaced when the resource or the week changes.
  useEffect(() => {
    if (!selected) return;
    let stopped = false;
    let stop = () => {};
    setView(null);
    live
      .watch({ resourceIds: [selected.id], from: range.from, to: range.to }, (v) => {
        if (stopped) return;
        setView(v);
        setVersion((n) => n + 1);
      })
      .then((w) => {
        if (stopped) w.stop();
        else stop = () => w.stop();
      })
      .catch((err) => setLoadError(String(err.message ?? err)));
    return () => {
      stopped = true;
      stop();
    };
  }, [selected?.id, range.from, range.to]);

  // What others do, and what happens to our own hold.
  useEffect(
    () =>
      live.onEvent((e: DomainEvent, replayed) => {
        const item = e.hold ?? e.booking;
        const mine = activeRef.current;
        if (mine && e.hold && e.hold.id === mine.hold.id) {
          if (e.type === 'hold.expired') setActive({ ...mine, ended: 'expired' });
          else if (e.type === 'hold.extended' || e.type === 'hold.created') setActive({ ...mine, hold: { ...mine.hold, expiresAt: e.hold.expiresAt } });
        }
        if (!item) return;
        const r = byId.get(item.resourceIds[0] ?? '');
        const what = EVENT_TEXT[e.type] ?? e.type;
        const text = `${replayed ? '(while away) ' : ''}${capitalize(what)} ${r?.name ?? 'a resource'} · ${formatRange(item.start, item.end, r?.timezone ?? tz)} · ${item.seats} seat${item.seats === 1 ? '' : 's'}`;
        setActivity((list) => [{ key: `${e.seq}`, text, at: Date.now(), kind: e.type }, ...list].slice(0, 12));
      }),
    [live, byId, tz],
  );

  const select = (id: string) => {
    setSelectedId(id);
    localStorage.setItem('slotwise.resource', id);
    setConflict(null);
    setSeats(1);
    setLengthSlots(1);
  };

  async function hold(start: number, resource: Resource) {
    const end = start + lengthSlots * resource.slotMinutes * 60_000;
    const request = { resourceIds: [resource.id], start: new Date(start).toISOString(), end: new Date(end).toISOString(), seats };
    setBusy(true);
    setConflict(null);
    const ack = await live.holdCreate(request);
    setBusy(false);
    if (!ack.ok) {
      setConflict({ request, problem: ack.error, resource, alternatives: null });
      if (ack.error.code === 'slot-unavailable' || ack.error.code === 'outside-hours') {
        const alternatives = await nearestFree(request, resource);
        setConflict((c) => (c && c.request === request ? { ...c, alternatives } : c));
      }
      return;
    }
    const previous = activeRef.current;
    setActive({ hold: ack.data, resource, ttlSeconds: Math.round((Date.parse(ack.data.expiresAt) - Date.parse(ack.data.createdAt)) / 1000), ended: null, booking: null });
    // One hold at a time in this page: a new one replaces the one before.
    if (previous && !previous.ended && !previous.booking) void live.holdRelease({ holdId: previous.hold.id });
  }

  /** The free options nearest the refused request (same length and seats), a few days either side. */
  async function nearestFree(request: { start: string; end: string; seats: number }, resource: Resource) {
    const start = Date.parse(request.start);
    const duration = (Date.parse(request.end) - start) / 60_000;
    const from = new Date(Math.max(sw.clock.now(), start - 2 * 86_400_000)).toISOString();
    const to = new Date(start + 3 * 86_400_000).toISOString();
    const { data } = await sw.rest.GET('/v1/availability', { params: { query: { resourceIds: resource.id, from, to, duration, seats: request.seats } } });
    const options = (data as Schemas['AvailabilityOptions'] | undefined)?.options ?? [];
    return options
      .filter((o) => o.start !== request.start)
      .sort((a, b) => Math.abs(Date.parse(a.start) - start) - Math.abs(Date.parse(b.start) - start))
      .slice(0, 4)
      .sort((a, b) => Date.parse(a.start) - Date.parse(b.start));
  }

  if (loadError) return <p class="notice notice-error" role="alert">{loadError}</p>;
  if (!resources) return <p class="muted" aria-busy="true">Loading resources…</p>;
  if (!selected) return <EmptyTenant />;

  const open = schedule && schedule !== 'none' ? days.map((d) => new Set(openSlotMinutes(schedule, d, selected.slotMinutes))) : days.map(() => new Set<number>());
  // Late in the week (a Saturday evening, say) nothing is left to book: start at next week, once.
  if (!autoAdvanced.current && weekOffset === 0 && schedule && schedule !== 'none') {
    autoAdvanced.current = true;
    const nowMs = sw.clock.now();
    const anyLeft = days.some((d, i) => [...open[i]!].some((m) => zonedToUtc(d, m, tz) + selected.slotMinutes * 60_000 > nowMs));
    if (!anyLeft) queueMicrotask(() => setWeekOffset(1));
  }
  const rows = [...new Set(open.flatMap((s) => [...s]))].sort((a, b) => a - b);
  const slots = view?.slots.get(selected.id);
  const now = sw.clock.now();
  const mine = active && !active.ended && !active.booking && active.hold.resourceIds.includes(selected.id) ? active.hold : null;

  return (
    <div class="calendar-layout">
      <aside class="sidebar" aria-label="Resources">
        <h2 class="sidebar-title">Resources</h2>
        <ResourceTree parentId={null} children={children} selectedId={selected.id} onSelect={select} />
        <section class="activity" aria-labelledby="activity-title">
          <h2 class="sidebar-title" id="activity-title">Live activity</h2>
          {activity.length === 0 ? (
            <p class="muted small">Holds and bookings on this resource appear here as they happen.</p>
          ) : (
            <ul class="activity-list" aria-live="polite">
              {activity.map((a) => (
                <li key={a.key} class={`activity-${a.kind.replace('.', '-')}`}>
                  <span>{a.text}</span>
                  <time class="muted small">{new Date(a.at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' })}</time>
                </li>
              ))}
            </ul>
          )}
        </section>
      </aside>

      <section class="week" aria-labelledby="week-title">
        <div class="week-head">
          <div>
            <h1 id="week-title">{selected.name}</h1>
            <p class="muted">
              {String((selected.metadata as { description?: string })?.description ?? selected.kind)} · {selected.capacity} seat{selected.capacity === 1 ? '' : 's'} ·
              {' '}times in {tz.replace('_', ' ')}
            </p>
          </div>
          <div class="week-controls">
            <label class="field-inline">
              Seats
              <select value={seats} onChange={(e) => setSeats(Number((e.target as HTMLSelectElement).value))}>
                {Array.from({ length: Math.min(selected.capacity, 10) }, (_, i) => i + 1).map((n) => <option key={n} value={n}>{n}</option>)}
              </select>
            </label>
            <label class="field-inline">
              Length
              <select value={lengthSlots} onChange={(e) => setLengthSlots(Number((e.target as HTMLSelectElement).value))}>
                {[1, 2, 3, 4].map((n) => <option key={n} value={n}>{n * selected.slotMinutes} min</option>)}
              </select>
            </label>
            <div class="week-nav" role="group" aria-label="Week">
              <button type="button" class="btn btn-ghost btn-icon" onClick={() => setWeekOffset((w) => w - 1)} aria-label="Previous week" disabled={weekOffset <= 0}>‹</button>
              <button type="button" class="btn btn-ghost btn-sm" onClick={() => setWeekOffset(0)} disabled={weekOffset === 0}>This week</button>
              <button type="button" class="btn btn-ghost btn-icon" onClick={() => setWeekOffset((w) => w + 1)} aria-label="Next week" data-testid="next-week">›</button>
            </div>
          </div>
        </div>
        <p class="week-range" aria-live="polite">{formatWeek(monday)}</p>

        {schedule === 'none' ? (
          <p class="notice">This resource has no opening hours yet.</p>
        ) : (
          <div class="grid-wrap" aria-busy={view === null || schedule === null}>
            <table class="grid" data-testid="week-grid">
              <caption class="sr-only">Seats free per slot in the week of {formatWeek(monday)}. Choose a free slot to hold it.</caption>
              <thead>
                <tr>
                  <th scope="col" class="grid-corner"><span class="sr-only">Time</span></th>
                  {days.map((d) => {
                    const f = formatDay(d);
                    const today = isToday(d, now, tz);
                    return (
                      <th scope="col" key={d.d} class={today ? 'today' : undefined}>
                        <span class="grid-weekday">{f.weekday}</span>
                        <span class="grid-date">{f.label}</span>
                      </th>
                    );
                  })}
                </tr>
              </thead>
              <tbody>
                {rows.map((m) => (
                  <tr key={m}>
                    <th scope="row" class="grid-time">{hhmm(m)}</th>
                    {days.map((d, i) => {
                      const start = zonedToUtc(d, m, tz);
                      const iso = new Date(start).toISOString();
                      const slot = slots?.get(iso);
                      const isOpen = open[i]!.has(m);
                      const inMine = mine !== null && start >= Date.parse(mine.start) && start < Date.parse(mine.end);
                      const state = !isOpen ? 'closed' : start + selected.slotMinutes * 60_000 <= now ? 'past' : inMine ? 'mine' : !view ? 'loading' : slot && slot.remaining > 0 ? 'free' : 'full';
                      const label = `${formatRange(iso, new Date(start + selected.slotMinutes * 60_000).toISOString(), tz)}: ${cellText(state, slot?.remaining ?? 0, selected.capacity, mine?.seats ?? 0)}`;
                      if (state === 'closed' || state === 'past' || state === 'loading') {
                        return <td key={i} class={`cell cell-${state}`} data-start={iso} data-state={state} aria-label={label} />;
                      }
                      const partial = state === 'free' && slot!.remaining < selected.capacity;
                      return (
                        <td key={i} class={`cell cell-${state}${partial ? ' cell-partial' : ''}`}>
                          <button type="button" class="cell-btn" data-start={iso} data-state={state} aria-label={label} disabled={busy || state === 'mine'} onClick={() => hold(start, selected)}>
                            {state === 'free' && (selected.capacity === 1 ? 'Free' : `${slot!.remaining}/${selected.capacity}`)}
                            {state === 'full' && 'Taken'}
                            {state === 'mine' && 'Your hold'}
                          </button>
                        </td>
                      );
                    })}
                  </tr>
                ))}
              </tbody>
            </table>
            <Legend />
          </div>
        )}
      </section>

      <HoldPanel conn={conn} active={active} setActive={setActive} conflict={conflict} freeAgain={conflict !== null && freeAgain(conflict, slots, selected)} onDismissConflict={() => setConflict(null)} onChoose={(start) => hold(Date.parse(start), conflict!.resource)} />
    </div>
  );
}

/** True when every slot of a refused request now has the seats it asked for (someone let go meanwhile). */
function freeAgain(conflict: Conflict, slots: Map<string, { remaining: number }> | undefined, resource: Resource): boolean {
  if (!slots || conflict.resource.id !== resource.id) return false;
  const step = resource.slotMinutes * 60_000;
  for (let t = Date.parse(conflict.request.start); t < Date.parse(conflict.request.end); t += step) {
    if ((slots.get(new Date(t).toISOString())?.remaining ?? 0) < conflict.request.seats) return false;
  }
  return true;
}

function cellText(state: string, remaining: number, capacity: number, mySeats: number): string {
  if (state === 'free') return `${remaining} of ${capacity} seat${capacity === 1 ? '' : 's'} free`;
  if (state === 'full') return 'taken, no seats free; choose it to see the nearest free times';
  if (state === 'mine') return `held by you (${mySeats} seat${mySeats === 1 ? '' : 's'})`;
  return state;
}

const capitalize = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

/** True when `d` is today in `tz`. */
function isToday(d: LocalDate, now: number, tz: string): boolean {
  const [y, m, day] = new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date(now)).split('-').map(Number);
  return d.y === y && d.m === m && d.d === day;
}

function ResourceTree({ parentId, children, selectedId, onSelect }: { parentId: string | null; children: Map<string | null, Resource[]>; selectedId: string; onSelect: (id: string) => void }) {
  const list = children.get(parentId) ?? [];
  return (
    <ul class={parentId === null ? 'tree' : 'tree-children'}>
      {list.map((r) => {
        const kids = children.get(r.id);
        return (
          <li key={r.id}>
            {kids ? (
              <span class="tree-group">{r.name}</span>
            ) : (
              <button type="button" class="tree-item" aria-current={r.id === selectedId ? 'true' : undefined} onClick={() => onSelect(r.id)} data-resource={r.name}>
                <span>{r.name}</span>
                <span class="badge" aria-label={`${r.capacity} seats`}>{r.capacity}</span>
              </button>
            )}
            {kids && <ResourceTree parentId={r.id} children={children} selectedId={selectedId} onSelect={onSelect} />}
          </li>
        );
      })}
    </ul>
  );
}

function Legend() {
  return (
    <ul class="legend" aria-label="Legend">
      <li><span class="swatch cell-free" aria-hidden="true" />Free</li>
      <li><span class="swatch cell-partial" aria-hidden="true" />Partly taken</li>
      <li><span class="swatch cell-full" aria-hidden="true" />Taken</li>
      <li><span class="swatch cell-mine" aria-hidden="true" />Your hold</li>
      <li><span class="swatch cell-closed" aria-hidden="true" />Closed or past</li>
    </ul>
  );
}

function EmptyTenant() {
  return (
    <div class="empty">
      <h1>No resources yet</h1>
      <p class="muted">Create one with the API (see the README walk-through) and it appears here.</p>
    </div>
  );
}
