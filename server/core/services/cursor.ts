/** Opaque keyset cursors over (createdAt, id). */
import { DomainError } from '../errors';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Encodes the last row of a page as the next page's cursor. */
export function encodeCursor(row: { createdAt: number; id: string }): string {
  return Buffer.from(JSON.stringify([row.createdAt, row.id])).toString('base64url');
}

/** Decodes a cursor; 400 when it was not made by encodeCursor. */
export function decodeCursor(cursor: string | undefined): { createdAt: number; id: string } | null {
  if (!cursor) return null;
  try {
    const [createdAt, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    // Exactly what encodeCursor makes: a time a Date can hold and a UUID (anything else would reach Postgres as a 500).
    if (Number.isSafeInteger(createdAt) && Math.abs(createdAt) <= 8.64e15 && typeof id === 'string' && UUID.test(id)) return { createdAt, id };
  } catch {
    // fall through to the 400 below
  }
  throw new DomainError('validation-failed', 'cursor is not valid', { errors: [{ path: 'cursor', message: 'not a cursor from this API' }] });
}
