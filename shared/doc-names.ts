/**
 * Names of group booking documents (no Yjs import, so the core can use them).
 *
 * One group booking is one document whatever the spelling of its name: the
 * prefix in any case, the id in upper or lower case (Postgres compares uuids
 * without regard to case, so every spelling authorizes). Everything keyed by
 * a name (the registry, the Redis channel, stored rows, revocation) uses the
 * canonical spelling, `group-booking:<lower-case id>`; a second spelling would
 * be a second document that revoking the first does not reach.
 */
import { z } from 'zod';

export const DOC_PREFIX = 'group-booking:';
const Uuid = z.uuid();

/** The (canonical) Yjs document name of a group booking. */
export const docName = (groupId: string): string => DOC_PREFIX + groupId.toLowerCase();

/** The group booking id (lower case) of a document name in any spelling, or null when it is not a group booking document. */
export function groupIdOf(name: string): string | null {
  if (name.slice(0, DOC_PREFIX.length).toLowerCase() !== DOC_PREFIX) return null;
  const id = name.slice(DOC_PREFIX.length);
  return Uuid.safeParse(id).success ? id.toLowerCase() : null;
}

/** The one spelling of a group booking document's name, or null when `name` names none. */
export function canonicalDocName(name: string): string | null {
  const id = groupIdOf(name);
  return id === null ? null : docName(id);
}
