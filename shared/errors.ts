/**
 * The one error catalogue. Every failure a client can see has a stable `code`,
 * an HTTP status and a title; edges render it (problem+json, socket ack, close code).
 */
export const errorCatalogue = {
  'validation-failed': { status: 400, title: 'The request is not valid' },
  'malformed-request': { status: 400, title: 'The request is not valid HTTP' },
  'request-timeout': { status: 408, title: 'The request was not received in time' },
  'headers-too-large': { status: 431, title: 'The request line and headers are larger than 16 KiB' },
  'malformed-json': { status: 400, title: 'The request body is not valid JSON' },
  'unauthorized': { status: 401, title: 'A valid credential is required' },
  'forbidden': { status: 403, title: 'This credential may not do that' },
  'not-found': { status: 404, title: 'Not found' },
  'slot-unavailable': { status: 409, title: 'The requested seats are not available' },
  'schedule-conflict': { status: 409, title: 'The change would drop slots that hold seats' },
  'capacity-conflict': { status: 409, title: 'Seats already taken exceed the new capacity' },
  'block-conflict': { status: 409, title: 'Seats are taken inside the blocked range' },
  'resource-cycle': { status: 409, title: 'A resource cannot be its own ancestor' },
  'resource-in-use': { status: 409, title: 'The resource has live holds or bookings' },
  'hold-not-active': { status: 409, title: 'The hold is no longer active' },
  'booking-cancelled': { status: 409, title: 'The booking is cancelled' },
  'group-state': { status: 409, title: 'The group booking is not in a state that allows this' },
  'hold-expired': { status: 410, title: 'The hold has expired' },
  'precondition-failed': { status: 412, title: 'The resource was changed by someone else' },
  'precondition-required': { status: 428, title: 'If-Match is required' },
  'payload-too-large': { status: 413, title: 'The request body is larger than 64 KiB' },
  'unsupported-media-type': { status: 415, title: 'Send application/json' },
  'idempotency-key-reuse': { status: 422, title: 'The Idempotency-Key was used with another request' },
  'draft-invalid': { status: 422, title: 'The group booking draft is incomplete or invalid' },
  'grid-misaligned': { status: 422, title: 'Times must fall on the slot grid' },
  'outside-hours': { status: 422, title: 'The range is outside opening hours' },
  'notice-too-short': { status: 422, title: 'The start is sooner than the minimum notice' },
  'too-far-ahead': { status: 422, title: 'The start is further ahead than allowed' },
  'extend-limit': { status: 422, title: 'A hold lives at most 30 minutes in total' },
  // Protection (docs/security.md): each carries `limit` (which bound) and, where waiting helps, `retryAfter` (seconds).
  'limit-exceeded': { status: 422, title: 'The request exceeds a server limit' },
  'last-api-key': { status: 409, title: 'A tenant must keep one live API key' },
  'api-key-inactive': { status: 409, title: 'The API key is revoked or expired' },
  'webhook-url-refused': { status: 422, title: 'Webhooks cannot be delivered to this URL' },
  'rate-limited': { status: 429, title: 'Too many requests' },
  'too-many-concurrent': { status: 429, title: 'Too many requests in progress' },
  'too-many-connections': { status: 429, title: 'Too many connections' },
  'hold-quota': { status: 429, title: 'Too many holds' },
  'unavailable': { status: 503, title: 'The service is temporarily unavailable' },
  'overloaded': { status: 503, title: 'The server is busy; retry shortly' },
  'deadline-exceeded': { status: 503, title: 'The request did not finish in time' },
  // Payments (docs/api.md "Payments").
  'payment-required': { status: 422, title: 'This booking has a price: send payment.token' },
  'payment-declined': { status: 402, title: 'The payment was declined' },
  'payment-failed': { status: 502, title: 'The payment provider failed; nothing was booked' },
  'internal': { status: 500, title: 'Internal error' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ErrorCode = keyof typeof errorCatalogue;

/** The RFC 9457 problem body every edge sends. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
  errors?: { path: string; message: string }[];
  [extra: string]: unknown;
}

/** Builds the problem body for a catalogue code. */
export function problem(code: ErrorCode, detail?: string, extra: Record<string, unknown> = {}): Problem {
  const entry = errorCatalogue[code];
  return {
    type: `https://slotwise.dev/problems/${code}`,
    title: entry.title,
    status: entry.status,
    detail: detail ?? entry.title,
    code,
    ...extra,
  };
}
