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


/**
 * Judges a live document's client updates against a shadow copy kept in step
 * with it. Same verdicts as `judgeUpdate`, but an accepted update costs what
 * it changes, not a copy of the whole document: the copy is made once and
 * rebuilt only after a refusal (the refused update is in it). Profiles of the
 * bench's edit ramp showed the per-update copy dominating, growing with the
 * document.
 */
export class Judge {
  private shadow: Y.Doc | null = null;
  /** The shadow's JSON while nothing changed it since. */
  private json: ReturnType<typeof docToJson> | null = null;
  private applying = false;

  constructor(private readonly live: Y.Doc) {
    live.on('update', this.follow);
  }

  /** Every change to the live doc reaches the shadow too, except the one `accept` applies (already there). */
  private readonly follow = (update: Uint8Array) => {
    if (this.applying || !this.shadow) return;
    try {
      Y.applyUpdate(this.shadow, update);
      this.json = null;
    } catch {
      this.drop();
    }
  };

  /**
   * Judges `update`; when accepted, runs `apply` (which applies it to the live
   * doc) at once. `tooLarge`, given the shadow with the update applied, names
   * a size limit the result would pass (refused 4413), or returns null.
   */
  accept(update: Uint8Array, who: { userId: string; role: Role }, apply: () => void, tooLarge?: (after: Y.Doc) => string | null): UpdateVerdict {
    if (!this.shadow) {
      this.shadow = new Y.Doc();
      Y.applyUpdate(this.shadow, Y.encodeStateAsUpdate(this.live));
    }
    const shadow = this.shadow;
    const before = this.json ?? docToJson(shadow);
    let verdict: UpdateVerdict;
    try {
      Y.applyUpdate(shadow, update);
      if (hasPending(shadow) && !hasPending(this.live)) verdict = reject(4400, 'the update depends on content the server does not have');
      else {
        const layout = checkLayout(shadow);
        verdict = layout.length ? reject(4400, layout[0]!) : checkChange(before, (this.json = docToJson(shadow)), who);
      }
      const over = verdict.ok ? tooLarge?.(shadow) : null;
      if (over) verdict = { ok: false, code: 4413, reason: over };
    } catch {
      verdict = reject(4400, 'the update cannot be decoded');
    }
    if (!verdict.ok) {
      this.drop();
      return verdict;
    }
    this.applying = true;
    try {
      apply();
    } finally {
      this.applying = false;
    }
    return OK;
  }

  /** Lets go of the shadow (the next update rebuilds it). */
  drop(): void {
    this.shadow?.destroy();
    this.shadow = null;
    this.json = null;
  }

  /** Stops following the live doc. */
  destroy(): void {
    this.live.off('update', this.follow);
    this.drop();
  }
}
