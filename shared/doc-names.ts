/** Names of group booking documents (no Yjs import, so the core can use them). */
import { z } from 'zod';

export const DOC_PREFIX = 'group-booking:';

/** The Yjs document name of a group booking. */
export const docName = (groupId: string): string => DOC_PREFIX + groupId;

/** The group booking id of a document name, or null when it is not a group booking document. */
export function groupIdOf(name: string): string | null {
  if (!name.startsWith(DOC_PREFIX)) return null;
  const id = name.slice(DOC_PREFIX.length);
  return z.uuid().safeParse(id).success ? id : null;
}
