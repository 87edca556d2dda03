/**
 * Development mode only (no ADMIN_TOKEN): demo users of the dev tenant who
 * sign in without a password, and demo resources with opening hours so the
 * browser demo has something to book on a first start.
 */
import { randomUUID } from 'node:crypto';
import { DomainError } from '../errors';
import type { CoreDeps } from '../ports';
import type { CredentialService } from './credentials';
import type { ResourceService } from './resources';

/** The demo users the development sign-in offers. */
export const DEMO_USERS = [
  { userId: 'alice', name: 'Alice Archer', role: 'organizer' },
  { userId: 'bob', name: 'Bob Baker', role: 'organizer' },
  { userId: 'carol', name: 'Carol Chen', role: 'member' },
  { userId: 'dan', name: 'Dan Diaz', role: 'member' },
] as const;
export type DemoUser = (typeof DEMO_USERS)[number];

/** Demo tokens last a working day; the app signs in again when one expires. */
const DEMO_TOKEN_TTL_SECONDS = 12 * 3600;

const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri'] as const;
const OFFICE_HOURS = [{ days: [...WEEKDAYS], start: '08:00', end: '18:00' }, { days: ['sat' as const], start: '10:00', end: '14:00' }];

/** The demo resource tree: grouping nodes (no schedule) with bookable children. */
const DEMO_TREE = [
  {
    name: 'Berlin office', kind: 'site',
    children: [
      { name: 'Focus booth', kind: 'booth', capacity: 1, slotMinutes: 30, metadata: { floor: 2, description: 'A quiet booth for one' } },
      { name: 'Room Ada', kind: 'room', capacity: 8, slotMinutes: 30, metadata: { floor: 2, description: 'Meeting room with a screen' } },
      { name: 'Room Turing', kind: 'room', capacity: 4, slotMinutes: 30, metadata: { floor: 3, description: 'Small meeting room' } },
      { name: 'Hot desks', kind: 'desk', capacity: 12, slotMinutes: 60, metadata: { floor: 3, description: 'Open-plan desks' } },
    ],
  },
  {
    name: 'Equipment', kind: 'group',
    children: [
      { name: 'Projector', kind: 'equipment', capacity: 1, slotMinutes: 60, metadata: { description: 'Portable 4K projector' } },
      { name: 'Cargo bike', kind: 'vehicle', capacity: 2, slotMinutes: 60, metadata: { description: 'Two electric cargo bikes' } },
    ],
  },
] as const;

export interface DemoDeps {
  deps: CoreDeps;
  resources: ResourceService;
  credentials: CredentialService;
  /** The dev tenant, when the node runs in development mode. */
  dev?: { tenantId: string };
  timezone?: string;
}

/** Builds the development-mode service (every call refuses with 403 outside development mode). */
export function demoService({ deps, resources, credentials, dev, timezone = 'Europe/Berlin' }: DemoDeps) {
  const devTenant = () => {
    if (!dev) throw new DomainError('forbidden', 'development sign-in is only available in development mode (ADMIN_TOKEN unset)');
    return dev.tenantId;
  };
  return {
    /** True in development mode. */
    enabled: dev !== undefined,

    /** The demo users and the dev tenant they belong to. */
    users() {
      return { tenantId: devTenant(), users: DEMO_USERS.map((u) => ({ ...u })) };
    },

    /** A user token of the dev tenant for one demo user. */
    async signIn(userId: string) {
      const tenantId = devTenant();
      const user = DEMO_USERS.find((u) => u.userId === userId);
      if (!user) throw new DomainError('not-found', `no demo user ${userId}; the demo users are ${DEMO_USERS.map((u) => u.userId).join(', ')}`);
      const token = await credentials.issueToken(tenantId, { userId: user.userId, name: user.name, role: user.role, ttlSeconds: DEMO_TOKEN_TTL_SECONDS });
      return { ...token, tenantId, user: { ...user } };
    },

    /**
     * Creates the demo resources with opening hours when the dev tenant has
     * none (archived ones count: a tenant that removed them keeps it so). One
     * node seeds: the first to claim the `demo_seed` setting.
     */
    async seedIfEmpty(): Promise<boolean> {
      if (!dev) return false;
      const existing = await resources.list(dev.tenantId, undefined, 1, true);
      if (existing.items.length > 0) return false;
      const mine = randomUUID();
      const claim = await deps.store.primary.settings.getOrInit('demo_seed', { by: mine });
      if (claim.by !== mine) return false;
      for (const group of DEMO_TREE) {
        const parent = await resources.create(dev.tenantId, {
          name: group.name, kind: group.kind, capacity: 1, timezone, slotMinutes: 30, parentId: null,
          rules: { minNoticeMinutes: 0, maxAdvanceDays: 365, bufferBeforeMinutes: 0, bufferAfterMinutes: 0 }, metadata: {},
        });
        for (const child of group.children) {
          const r = await resources.create(dev.tenantId, {
            name: child.name, kind: child.kind, capacity: child.capacity, timezone, slotMinutes: child.slotMinutes, parentId: parent.id,
            rules: { minNoticeMinutes: 0, maxAdvanceDays: 365, bufferBeforeMinutes: 0, bufferAfterMinutes: 0 }, metadata: { ...child.metadata },
          });
          await resources.putSchedule(dev.tenantId, r.id, { timezone, weekly: OFFICE_HOURS, overrides: [] });
        }
      }
      deps.log.info({ tenantId: dev.tenantId }, 'development mode: created the demo resources in the dev tenant');
      return true;
    },
  };
}

export type DemoService = ReturnType<typeof demoService>;
