/** What end users may see of another customer's hold or booking in live events. */

const KEPT = ['id', 'status', 'resourceIds', 'start', 'end', 'seats', 'expiresAt', 'version', 'createdAt', 'updatedAt'] as const;

function strip(x: unknown): unknown {
  if (!x || typeof x !== 'object') return x;
  const src = x as Record<string, unknown>;
  return Object.fromEntries(KEPT.filter((k) => k in src).map((k) => [k, src[k]]));
}

/**
 * Event data without personal details: holds and bookings keep their times,
 * seats and status but lose customer, attendees, metadata and owner; group
 * events lose member ids. REST shows those only to the owner and the tenant.
 */
export function publicData(data: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(data)) {
    if (k === 'hold' || k === 'booking' || k === 'previous') out[k] = strip(v);
    else if (k === 'group') out[k] = { id: (v as { id?: unknown })?.id };
    else if (k === 'userId' || k === 'members' || k === 'customer' || k === 'metadata') continue;
    else out[k] = v;
  }
  return out;
}
