/**
 * The layout of a group booking's Yjs document, shared by the server (which
 * validates every client update against it) and the browser (which edits it).
 *
 *   getMap('draft')         title, start, end, resourceIds (Y.Array), seats
 *   getMap('participants')  participant id → Y.Map {name, email?, status?}
 *   getText('notes')
 *   getMap('server')        written only by the server
 */
import * as Y from 'yjs';
import { z } from 'zod';

export { canonicalDocName, DOC_PREFIX, docName, groupIdOf } from './doc-names';
export const DRAFT = 'draft';
export const PARTICIPANTS = 'participants';
export const NOTES = 'notes';
export const SERVER = 'server';
/** The only top-level types a group booking document may contain. */
export const ROOT_TYPES: readonly string[] = [DRAFT, PARTICIPANTS, NOTES, SERVER];

export const LIMITS = {
  title: 200,
  resourceIds: 20,
  seats: 10_000,
  participants: 1_000,
  participantId: 200,
  name: 200,
  email: 320,
  status: 40,
  notes: 20_000,
} as const;

export const GROUP_STATUSES = ['draft', 'held', 'confirmed', 'cancelled', 'expired'] as const;
export type GroupDocStatus = (typeof GROUP_STATUSES)[number];

// Absent keys read as "not set yet", like null: a Y.Map key exists only once written.
const Instant = z.iso.datetime({ offset: true, message: 'must be an RFC 3339 time with Z or an offset' }).nullable().optional();

export const DraftSchema = z.strictObject({
  title: z.string().min(1).max(LIMITS.title),
  start: Instant,
  end: Instant,
  resourceIds: z.array(z.uuid({ message: 'must be a UUID' })).max(LIMITS.resourceIds).optional(),
  seats: z.number().int().min(1).max(LIMITS.seats).nullable().optional(),
});

// Lenient on purpose: a form may store what the user typed so far, but it must look like an address.
const EmailIsh = z.union([z.literal(''), z.string().max(LIMITS.email).regex(/^[^\s@]+@[^\s@]+$/, 'must look like an e-mail address')]);

export const ParticipantSchema = z.strictObject({
  name: z.string().max(LIMITS.name),
  email: EmailIsh.optional(),
  status: z.string().max(LIMITS.status).optional(),
});

export const ParticipantsSchema = z
  .record(z.string().min(1).max(LIMITS.participantId), ParticipantSchema)
  .refine((m) => Object.keys(m).length <= LIMITS.participants, `at most ${LIMITS.participants} participants`);

export const NotesSchema = z.string().max(LIMITS.notes);

export const ServerStateSchema = z.object({
  status: z.enum(GROUP_STATUSES).optional(),
  holdId: z.string().nullable().optional(),
  expiresAt: z.string().nullable().optional(),
  bookingId: z.string().nullable().optional(),
  error: z.string().nullable().optional(),
});

/** Everything a client may write, validated as a whole after each update. */
export const ClientStateSchema = z.object({ draft: DraftSchema, participants: ParticipantsSchema, notes: NotesSchema });

export type GroupDraft = z.infer<typeof DraftSchema>;
export type GroupParticipant = z.infer<typeof ParticipantSchema>;
export type GroupServerState = z.infer<typeof ServerStateSchema>;

/**
 * The plain JSON of a document. Fields are partial: a document is only as
 * complete as what has been written (use `validateDraft` to know more).
 */
export interface GroupDocJson {
  draft: Partial<GroupDraft> & Record<string, unknown>;
  participants: Record<string, Partial<GroupParticipant> & Record<string, unknown>>;
  notes: string;
  server: GroupServerState & Record<string, unknown>;
}

/** The plain JSON of a group booking document. */
export function docToJson(doc: Y.Doc): GroupDocJson {
  return {
    draft: doc.getMap(DRAFT).toJSON(),
    participants: doc.getMap(PARTICIPANTS).toJSON(),
    notes: doc.getText(NOTES).toString(),
    server: doc.getMap(SERVER).toJSON(),
  } as GroupDocJson;
}

export type Validation = { ok: true } | { ok: false; errors: { path: string; message: string }[] };

type ClientState = Pick<GroupDocJson, 'draft' | 'participants' | 'notes'>;
const issuesOf = (json: ClientState) => ClientStateSchema.safeParse({ draft: json.draft, participants: json.participants, notes: json.notes }).error?.issues ?? [];
const toErrors = (issues: { path: PropertyKey[]; message: string }[]) => issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message }));

/** Validates everything clients may write (draft, participants, notes) of a document's JSON. */
export function validateDraft(json: ClientState): Validation {
  const issues = issuesOf(json);
  return issues.length ? { ok: false, errors: toErrors(issues) } : { ok: true };
}

export type ChangeVerdict = { ok: true } | { ok: false; code: 4400 | 4403; reason: string };

/**
 * Whether `who` may turn `before` into `after`: nobody but the server writes
 * `server`; participants write only the notes and their own entry; what the
 * change touched must be valid. Pure, so a client can check an edit first.
 */
export function checkChange(before: GroupDocJson, after: GroupDocJson, who: { userId: string; role: 'organizer' | 'participant' }): ChangeVerdict {
  if (!sameJson(before.server, after.server)) return { ok: false, code: 4403, reason: 'only the server writes the server map' };
  if (who.role !== 'organizer') {
    if (!sameJson(before.draft, after.draft)) return { ok: false, code: 4403, reason: 'participants may not edit the draft' };
    for (const k of new Set([...Object.keys(before.participants), ...Object.keys(after.participants)])) {
      if (k !== who.userId && !sameJson(before.participants[k], after.participants[k])) return { ok: false, code: 4403, reason: 'participants may edit only their own entry' };
    }
  }
  // Only problems in the fields this change touched count: a state made invalid by merging concurrent
  // edits (say 21 resourceIds added on two nodes) must not block unrelated edits, like the notes.
  const touched = issuesOf(after).filter(({ path: [section, key] }) => {
    const b = before[section as keyof ClientState] as Record<string, unknown>;
    const a = after[section as keyof ClientState] as Record<string, unknown>;
    return typeof key === 'string' ? !sameJson(b[key], a[key]) : !sameJson(b, a);
  });
  return touched.length ? { ok: false, code: 4400, reason: toErrors(touched).map((e) => `${e.path}: ${e.message}`).join('; ') } : { ok: true };
}

/** Deep equality of JSON-like values, ignoring key order (Y.Map key order depends on arrival order). */
function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null || Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const ob = b as Record<string, unknown>;
  return ka.length === Object.keys(ob).length && ka.every((k) => Object.hasOwn(ob, k) && sameJson((a as Record<string, unknown>)[k], ob[k]));
}

/**
 * Checks what the JSON cannot show: no unknown top-level types, `resourceIds`
 * a Y.Array and participants Y.Maps (so concurrent edits merge per field), and
 * no content hidden where toJSON does not look. Returns the problems found.
 */
export function checkLayout(doc: Y.Doc): string[] {
  const problems: string[] = [];
  for (const name of doc.share.keys()) if (!ROOT_TYPES.includes(name)) problems.push(`unknown top-level type "${name}"`);
  const draft = doc.getMap(DRAFT);
  const participants = doc.getMap(PARTICIPANTS);
  const notes = doc.getText(NOTES);
  // Root maps hold keyed entries only; list items in a map (or keys on the text) would be invisible to toJSON.
  for (const [name, type] of [[DRAFT, draft], [PARTICIPANTS, participants], [SERVER, doc.getMap(SERVER)]] as const) {
    if (type._start !== null) problems.push(`${name} holds list content`);
  }
  if (notes._map.size > 0) problems.push('notes holds keyed content');
  const ids = draft.get('resourceIds');
  if (ids !== undefined && ids !== null && !(ids instanceof Y.Array)) problems.push('draft.resourceIds must be a Y.Array');
  for (const [id, p] of participants) if (!(p instanceof Y.Map)) problems.push(`participants.${id} must be a Y.Map`);
  return problems;
}
