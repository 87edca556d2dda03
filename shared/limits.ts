/**
 * Bounds that the REST and live edges validate and the core enforces again,
 * shared with clients so they can stay under them (docs/api.md#limits).
 */

/** An availability query or live subscription spans at most this many days (`to - from`). */
export const MAX_AVAILABILITY_DAYS = 62;
/** Distinct resources one availability query or live subscription may name. */
export const MAX_AVAILABILITY_RESOURCES = 100;
