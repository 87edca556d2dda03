/**
 * Group bookings: a collaborative draft (a Yjs document) with members. Hold,
 * confirm and cancel read the converged document, validate it, call the same
 * seat machinery as single holds inside one transaction that also locks the
 * group row (so two organizers holding at once get one hold), and write the
 * outcome into the document's server map.
 */
import { z } from 'zod';
import type { EventRow, GroupRole, GroupRow, Unit } from '../store';
import { docName, groupIdOf } from '../../../shared/doc-names';
import type { GroupBooking, GroupBookingCreate } from '../../../shared/schemas';
import { bookingDto, holdDto } from '../dto';
import { DomainError, notFound } from '../errors';
import type { CoreDeps, GroupDocContent, GroupDocs } from '../ports';
import { holdDecision } from '../rules';
import type { Principal, TenantPrincipal } from '../types';
import { cancelBookingIn } from './bookings';
import { confirmHoldIn, createHoldIn, releaseHoldIn, type HoldService } from './holds';
import { amountOf } from './payments';

const iso = (ms: number) => new Date(ms).toISOString();
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** What a draft must hold before seats can be held for it. */
export function draftRequest(doc: GroupDocContent): { resourceIds: string[]; start: number; end: number; seats: number } {
  const d = doc.draft;
  const problems: { path: string; message: string }[] = [];
  const start = typeof d.start === 'string' ? Date.parse(d.start) : NaN;
  const end = typeof d.end === 'string' ? Date.parse(d.end) : NaN;
  if (Number.isNaN(start)) problems.push({ path: 'draft.start', message: 'set a start time' });
  if (Number.isNaN(end)) problems.push({ path: 'draft.end', message: 'set an end time' });
  if (!Number.isNaN(start) && !Number.isNaN(end) && end <= start) problems.push({ path: 'draft.end', message: 'end must be after start' });
  const ids = Array.isArray(d.resourceIds) ? d.resourceIds.filter((x): x is string => typeof x === 'string') : [];
  if (ids.length === 0 || ids.length > 20 || !ids.every((x) => UUID.test(x)) || new Set(ids).size !== ids.length) {
    problems.push({ path: 'draft.resourceIds', message: 'choose 1 to 20 distinct resources' });
  }
  const participants = Object.keys(doc.participants).length;
  const seats = typeof d.seats === 'number' ? d.seats : participants;
  if (!Number.isInteger(seats) || seats < 1 || seats > 10_000) problems.push({ path: 'draft.seats', message: 'add participants or set seats (1 to 10000)' });
  if (problems.length) throw new DomainError('draft-invalid', problems.map((p) => `${p.path}: ${p.message}`).join('; '), { errors: problems });
  return { resourceIds: ids, start, end, seats };
}

/** Builds the group booking service. */
const EMAIL = z.email().max(320);
const isEmail = (v: unknown): v is string => EMAIL.safeParse(v).success;

export function groupService(deps: CoreDeps, docs: GroupDocs, holds: HoldService) {
  const { store, clock } = deps;

  /** Loads a group the principal may see; `organizer` demands organizer rights. */
  async function access(q: Unit, p: TenantPrincipal, id: string, organizer: boolean, lock = false): Promise<GroupRow> {
    const g = await q.groups.get(p.tenantId, id, lock);
    if (!g) throw notFound(`group booking ${id}`);
    if (p.kind === 'user') {
      const role = await q.groups.roleOf(p.tenantId, id, p.userId);
      if (!role) throw notFound(`group booking ${id}`);
      if (organizer && role !== 'organizer') throw new DomainError('forbidden', 'only organizers may do this');
    }
    return g;
  }

  async function view(q: Unit, g: GroupRow): Promise<GroupBooking> {
    const [members, document, hold, booking] = await Promise.all([
      q.groups.members(g.id),
      docs.read(g.id),
      g.holdId ? q.holds.get(g.tenantId, g.holdId) : null,
      g.bookingId ? q.bookings.get(g.tenantId, g.bookingId) : null,
    ]);
    return {
      id: g.id,
      docName: docName(g.id),
      title: g.title,
      status: g.status,
      holdId: g.holdId,
      bookingId: g.bookingId,
      members: members.map((m) => ({ userId: m.userId, role: m.role, addedAt: iso(m.addedAt) })),
      document: document as unknown as Record<string, unknown>,
      hold: hold ? holdDto(hold) : null,
      booking: booking ? bookingDto(booking) : null,
      createdAt: iso(g.createdAt),
    };
  }

  return {
    /** Creates a group booking and its document; a creating user becomes an organizer. */
    async create(p: TenantPrincipal, cmd: GroupBookingCreate): Promise<GroupBooking> {
      const members = new Map((cmd.members ?? []).map((m) => [m.userId, m.role as GroupRole]));
      if (p.kind === 'user') members.set(p.userId, 'organizer');
      const resourceIds = cmd.resourceIds ?? [];
      const g = await store.tx(async (q) => {
        const row = await q.groups.insert(p.tenantId, cmd.title, p.kind === 'user' ? p.userId : null, [...members].map(([userId, role]) => ({ userId, role })));
        await q.events.append(p.tenantId, 'group.created', resourceIds, { group: { id: row.id, title: row.title, members: [...members.keys()] } });
        return row;
      });
      await docs.create(g.id, { title: cmd.title, resourceIds });
      return view(store.primary, g);
    },

    /** The document snapshot and server state, for members. */
    async get(p: TenantPrincipal, id: string): Promise<GroupBooking> {
      return view(store.primary, await access(store.primary, p, id, false));
    },

    /** Adds a member or changes their role (organizers). */
    async addMember(p: TenantPrincipal, id: string, userId: string, role: GroupRole): Promise<GroupBooking> {
      const g = await store.tx(async (q) => {
        const row = await access(q, p, id, true, true);
        await q.groups.upsertMember(id, userId, role);
        await q.events.append(p.tenantId, 'group.member.added', [], { groupId: id, userId, role });
        return row;
      });
      return view(store.primary, g);
    },

    /** Removes a member (organizers) and disconnects their live connections on every node. */
    async removeMember(p: TenantPrincipal, id: string, userId: string): Promise<GroupBooking> {
      const g = await store.tx(async (q) => {
        const row = await access(q, p, id, true, true);
        if (!(await q.groups.removeMember(id, userId))) throw notFound(`member ${userId}`);
        await q.events.append(p.tenantId, 'group.member.removed', [], { groupId: id, userId });
        return row;
      });
      await docs.revoke(id, userId);
      return view(store.primary, g);
    },

    /** Holds seats for the converged draft; concurrent calls share one hold. */
    async hold(p: TenantPrincipal, id: string, ttlSeconds?: number): Promise<GroupBooking> {
      await access(store.primary, p, id, true);
      const req = draftRequest(await docs.read(id));
      const ttl = holds.ttlOf(ttlSeconds);
      const { g, changed } = await store.tx(async (q) => {
        const row = await access(q, p, id, true, true);
        if (row.status === 'held') return { g: row, changed: false };
        if (row.status !== 'draft' && row.status !== 'expired') throw new DomainError('group-state', `the group booking is ${row.status}`);
        const h = await createHoldIn(q, p, req, ttl, clock.now(), { groupBookingId: id }, deps.config.holdQuota);
        await q.groups.setState(id, { status: 'held', holdId: h.id, bookingId: null });
        return { g: { ...row, status: 'held' as const, holdId: h.id }, changed: true };
      });
      if (changed) {
        const hold = await store.primary.holds.get(p.tenantId, g.holdId!);
        await docs.setServer(id, { status: 'held', holdId: g.holdId, expiresAt: hold ? iso(hold.expiresAt) : null, bookingId: null, error: null });
      }
      return view(store.primary, g);
    },

    /** Converts the group's hold into a booking with one seat per participant (or `seats`). */
    async confirm(p: TenantPrincipal, id: string, cmd: { customer?: { name: string; email: string }; metadata?: Record<string, unknown> }): Promise<GroupBooking> {
      await access(store.primary, p, id, true);
      const doc = await docs.read(id);
      // A participant's e-mail is kept only when it is one (the document holds what organizers typed).
      const attendees = Object.values(doc.participants).map((x) => ({
        name: typeof x.name === 'string' ? x.name : 'participant',
        ...(isEmail(x.email) ? { email: x.email } : {}),
      }));
      const { g, changed } = await store.tx(async (q) => {
        const row = await access(q, p, id, true, true);
        if (row.status === 'confirmed') return { g: row, changed: false };
        if (row.status !== 'held' || !row.holdId) throw new DomainError('group-state', `the group booking is ${row.status}; hold it first`);
        const h = await q.holds.get(p.tenantId, row.holdId, true);
        if (!h) throw notFound(`hold ${row.holdId}`);
        holdDecision(h, 'confirm', clock.now());
        // Payments: group bookings have no payment step; one of priced resources is refused (docs/api.md "Payments").
        if (deps.payments && amountOf(await q.resources.byIds(p.tenantId, h.resourceIds))) {
          throw new DomainError('payment-required', 'a group booking cannot be paid: its resources are priced; book them through a hold confirm with payment', {
            errors: [{ path: 'draft.resourceIds', message: 'priced resources cannot be confirmed as a group booking' }],
          });
        }
        // Without a customer: the confirming user (or the title) and the first participant's e-mail, if any has one.
        const email = attendees.find((a) => a.email)?.email;
        const customer = cmd.customer ?? { name: p.kind === 'user' ? p.name : row.title, ...(email ? { email } : {}) };
        const b = await confirmHoldIn(q, h, { customer, attendees, metadata: { ...cmd.metadata, groupBookingId: id } }, { groupBookingId: id });
        await q.groups.setState(id, { status: 'confirmed', holdId: h.id, bookingId: b.id });
        return { g: { ...row, status: 'confirmed' as const, bookingId: b.id }, changed: true };
      });
      if (changed) await docs.setServer(id, { status: 'confirmed', bookingId: g.bookingId, expiresAt: null, error: null });
      return view(store.primary, g);
    },

    /** Releases the group's hold or cancels its booking. */
    async cancel(p: TenantPrincipal, id: string, reason: string | null): Promise<GroupBooking> {
      const { g, changed } = await store.tx(async (q) => {
        const row = await access(q, p, id, true, true);
        if (row.status === 'cancelled') return { g: row, changed: false };
        if (row.status === 'held' && row.holdId) {
          const h = await q.holds.get(p.tenantId, row.holdId, true);
          if (h && holdDecision(h, 'release', clock.now()) === 'proceed') await releaseHoldIn(q, h, { groupBookingId: id });
        } else if (row.status === 'confirmed' && row.bookingId) {
          const b = await q.bookings.get(p.tenantId, row.bookingId, true);
          if (b && b.status === 'confirmed') await cancelBookingIn(q, b, reason);
        } else {
          await q.events.append(p.tenantId, 'group.cancelled', [], { groupId: id });
        }
        await q.groups.setState(id, { status: 'cancelled', holdId: row.holdId, bookingId: row.bookingId });
        return { g: { ...row, status: 'cancelled' as const }, changed: true };
      });
      if (changed) await docs.setServer(id, { status: 'cancelled', expiresAt: null, error: null });
      return view(store.primary, g);
    },

    /** Marks groups whose hold expired; runs where the expiry event is published (once per event). */
    async onEvents(events: EventRow[]): Promise<void> {
      const expired = events.filter((e) => e.type === 'hold.expired').map((e) => (e.data.hold as { id: string }).id);
      if (expired.length === 0) return;
      const ids = await store.primary.groups.expireByHolds(expired);
      for (const id of ids) await docs.setServer(id, { status: 'expired', expiresAt: null, error: 'the hold expired before it was confirmed' });
    },

    /** Who may open a document: members of the group in the token's tenant (tenant keys act as organizers). */
    async authorizeDoc(principal: Principal | null, name: string): Promise<{ userId: string; role: GroupRole } | { close: 4401 | 4403 | 4404 }> {
      if (!principal || principal.kind === 'admin') return { close: 4401 };
      const groupId = groupIdOf(name);
      if (!groupId) return { close: 4404 };
      const g = await store.primary.groups.get(principal.tenantId, groupId);
      if (!g) return { close: 4404 };
      if (principal.kind === 'tenant') return { userId: `tenant:${principal.tenantId}`, role: 'organizer' };
      const role = await store.primary.groups.roleOf(principal.tenantId, g.id, principal.userId);
      return role ? { userId: principal.userId, role } : { close: 4403 };
    },
  };
}

export type GroupService = ReturnType<typeof groupService>;
