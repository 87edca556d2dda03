/**
 * Judging client updates: each is tried on a scratch copy of the document,
 * so a refused one never touches the live doc.
 */
import * as Y from 'yjs';
import { checkChange, checkLayout, docToJson } from '../../../shared/group-doc';

export type Role = 'organizer' | 'participant';
export type UpdateVerdict = { ok: true } | { ok: false; code: 4413 | 4400 | 4403; reason: string };

const OK: UpdateVerdict = { ok: true };
const reject = (code: 4400 | 4403, reason: string): UpdateVerdict => ({ ok: false, code, reason });
/** True when the doc holds content waiting for dependencies it has not seen. */
export const hasPending = (doc: Y.Doc) => doc.store.pendingStructs !== null || doc.store.pendingDs !== null;

/** Runs `change` and returns what it changed in the doc as one update (null when nothing). */
export function capture(doc: Y.Doc, change: () => void): Uint8Array | null {
  const out: Uint8Array[] = [];
  const grab = (u: Uint8Array) => void out.push(u);
  doc.on('update', grab);
  try {
    change();
  } finally {
    doc.off('update', grab);
  }
  return out.length === 0 ? null : out.length === 1 ? out[0]! : Y.mergeUpdates(out);
}

/**
 * Decides a client update on a scratch copy of the document, so a refused one
 * never touches the live doc: it must decode, depend on nothing unknown, keep
 * the layout, leave `server` alone, respect the role, and leave a valid draft.
 */
export function judgeUpdate(live: Y.Doc, update: Uint8Array, who: { userId: string; role: Role }): UpdateVerdict {
  const scratch = new Y.Doc();
  try {
    Y.applyUpdate(scratch, Y.encodeStateAsUpdate(live));
    const before = docToJson(scratch);
    try {
      Y.applyUpdate(scratch, update);
    } catch {
      return reject(4400, 'the update cannot be decoded');
    }
    // Content waiting for unknown dependencies is invisible to the checks below and would slip in later.
    if (hasPending(scratch) && !hasPending(live)) return reject(4400, 'the update depends on content the server does not have');
    const layout = checkLayout(scratch);
    if (layout.length) return reject(4400, layout[0]!);
    return checkChange(before, docToJson(scratch), who);
  } finally {
    scratch.destroy();
  }
}

