/** Plain domain types used by services and repositories. Times are epoch milliseconds (UTC). */
import type { Rules } from '../../shared/schemas';

/** Who is calling, after authentication. */
export type Principal =
  | { kind: 'admin' }
  /** A tenant API key; `expiresAt` is set once the key was rotated (null: until revoked). */
  | { kind: 'tenant'; tenantId: string; keyId: string; expiresAt: number | null }
  /** A user token; `tokenId` is its `jti`, by which it can be revoked. */
  | { kind: 'user'; tenantId: string; userId: string; name: string; role: 'member' | 'organizer'; tokenId: string; expiresAt: number };

export type TenantPrincipal = Exclude<Principal, { kind: 'admin' }>;

export interface ResourceRow {
  id: string;
  tenantId: string;
  parentId: string | null;
  name: string;
  kind: string;
  capacity: number;
  timezone: string;
  slotMinutes: number;
  rules: Rules;
  metadata: Record<string, unknown>;
  version: number;
  archivedAt: number | null;
  /** The price per booking (payments), or null/absent: free. */
  price?: { amount: number; currency: string } | null;
  createdAt: number;
  updatedAt: number;
}

export interface SlotRow {
  id: number;
  resourceId: string;
  start: number;
  end: number;
  capacity: number;
  seatsTaken: number;
  blocked: boolean;
}

export type HoldStatus = 'held' | 'confirmed' | 'released' | 'expired';
export interface HoldRow {
  id: string;
  tenantId: string;
  ownerId: string | null;
  resourceIds: string[];
  start: number;
  end: number;
  seats: number;
  status: HoldStatus;
  expiresAt: number;
  bookingId: string | null;
  createdAt: number;
}

export type BookingStatus = 'confirmed' | 'cancelled';
export interface BookingRow {
  id: string;
  tenantId: string;
  holdId: string | null;
  ownerId: string | null;
  resourceIds: string[];
  start: number;
  end: number;
  seats: number;
  status: BookingStatus;
  customer: { name: string; email?: string };
  attendees: { name: string; email?: string }[];
  metadata: Record<string, unknown>;
  version: number;
  cancelReason: string | null;
  /** The payment of the booking (payments), or null/absent: none. */
  payment?: BookingPaymentState | null;
  createdAt: number;
  updatedAt: number;
}

/** A booking's payment as stored on the booking. */
export interface BookingPaymentState {
  status: 'authorized' | 'captured' | 'capture_pending' | 'voided';
  amount: number;
  currency: string;
  reference: string;
  /** The capture sweep's own: failed capture (or void) attempts so far, and when it tries next (epoch ms). Not shown to clients. */
  captureAttempts?: number;
  nextCaptureAt?: number;
}

/** A request for seats on several resources over one range. */
export interface SeatRequest {
  resourceIds: string[];
  start: number;
  end: number;
  seats: number;
}

/** Source of "now", injectable so tests and rules agree on time. */
export interface Clock {
  now(): number;
}
