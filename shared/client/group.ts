/**
 * A group booking's shared document over the stock y-websocket provider,
 * with the layout of shared/group-doc.ts, typed edits, presence (who is here
 * and which field they are in) and the connection's state. The provider
 * reconnects by itself and resyncs on every connection (sync step 1 both
 * ways); a 44xx close is final, and is reported as `refused` with its reason.
 */
import { WebsocketProvider } from 'y-websocket';
import * as Y from 'yjs';
import { DRAFT, NOTES, PARTICIPANTS, SERVER, docToJson, type GroupDocJson } from '../group-doc';

export type GroupStatus = 'connecting' | 'online' | 'reconnecting' | 'offline' | 'refused';

/** What one client shows the others. */
export interface Presence {
  user: { id: string; name: string; color: string };
  /** The field being edited (`title`, `start`, `notes`, `participant:<id>`, …), or null. */
  field: string | null;
}

/** A presence with the awareness client id it came from. */
export interface Peer extends Presence {
  clientId: number;
  self: boolean;
}

export interface GroupOptions {
  baseUrl: string;
  docName: string;
  token: string;
  /** Node has no global WebSocket before v22: pass `ws` there. */
  WebSocket?: unknown;
}

export type DraftEdit = {
  title?: string;
  start?: string | null;
  end?: string | null;
  seats?: number | null;
  resourceIds?: string[];
};

/** One open group booking document. */
export class GroupSession {
  readonly doc = new Y.Doc();
  readonly provider: WebsocketProvider;
  /** Resolves on the first full sync with the server. */
  readonly synced: Promise<void>;
  refusal: { code: number; reason: string } | null = null;
  private statusNow: GroupStatus = 'connecting';
  private everSynced = false;
  private readonly statusListeners = new Set<(s: GroupStatus) => void>();

  constructor(opts: GroupOptions) {
    const wsBase = opts.baseUrl.replace(/^http/, 'ws') + '/yjs';
    this.provider = new WebsocketProvider(wsBase, opts.docName, this.doc, {
      params: { token: opts.token },
      disableBc: true,
      maxBackoffTime: 5_000,
      ...(opts.WebSocket ? { WebSocketPolyfill: opts.WebSocket as typeof WebSocket } : {}),
    });
    this.synced = new Promise((resolve) => {
      const onSync = (synced: boolean) => {
        if (!synced) return;
        this.everSynced = true;
        this.setStatus('online');
        resolve();
      };
      this.provider.on('sync', onSync);
    });
    this.provider.on('status', ({ status }) => {
      if (status === 'connected') return; // online once synced
      if (status === 'disconnected') this.setStatus(isOffline() ? 'offline' : 'reconnecting');
      else if (status === 'connecting' && this.statusNow !== 'offline') this.setStatus(this.everSynced ? 'reconnecting' : 'connecting');
    });
    this.provider.on('closed', (event) => {
      this.refusal = event;
      this.setStatus('refused');
    });
  }

  get status(): GroupStatus {
    return this.statusNow;
  }

  /** Calls `cb` with every status change; returns the unsubscribe. */
  onStatus(cb: (s: GroupStatus) => void): () => void {
    this.statusListeners.add(cb);
    return () => this.statusListeners.delete(cb);
  }

  get draft(): Y.Map<unknown> {
    return this.doc.getMap(DRAFT);
  }
  get participants(): Y.Map<Y.Map<unknown>> {
    return this.doc.getMap(PARTICIPANTS);
  }
  get notes(): Y.Text {
    return this.doc.getText(NOTES);
  }
  get server(): Y.Map<unknown> {
    return this.doc.getMap(SERVER);
  }

  /** The document as plain JSON. */
  json(): GroupDocJson {
    return docToJson(this.doc);
  }

  /** Calls `cb` after every change of the document (local or remote); returns the unsubscribe. */
  onChange(cb: (json: GroupDocJson, local: boolean) => void): () => void {
    const handler = (_update: Uint8Array, origin: unknown) => cb(this.json(), origin !== this.provider);
    this.doc.on('update', handler);
    return () => this.doc.off('update', handler);
  }

  /** Sets draft fields in one transaction; `resourceIds` replaces the list (kept a Y.Array, as the layout requires). */
  editDraft(edit: DraftEdit): void {
    this.doc.transact(() => {
      for (const key of ['title', 'start', 'end', 'seats'] as const) if (edit[key] !== undefined) this.draft.set(key, edit[key]);
      if (edit.resourceIds) {
        let list = this.draft.get('resourceIds');
        if (!(list instanceof Y.Array)) {
          list = new Y.Array<string>();
          this.draft.set('resourceIds', list);
        }
        const arr = list as Y.Array<string>;
        const current = arr.toArray();
        // Remove what is gone and append what is new, so two organizers adding different resources both win.
        for (let i = current.length - 1; i >= 0; i--) if (!edit.resourceIds.includes(current[i]!)) arr.delete(i, 1);
        const kept = new Set(arr.toArray());
        const added = edit.resourceIds.filter((id) => !kept.has(id));
        if (added.length) arr.push(added);
      }
    });
  }

  /** Adds or updates a participant (a Y.Map per participant, so fields merge). */
  setParticipant(id: string, fields: { name?: string; email?: string; status?: string }): void {
    this.doc.transact(() => {
      let p = this.participants.get(id);
      if (!(p instanceof Y.Map)) {
        p = new Y.Map<unknown>();
        this.participants.set(id, p);
      }
      for (const [k, v] of Object.entries(fields)) if (v !== undefined) p.set(k, v);
    });
  }

  /** Removes a participant. */
  removeParticipant(id: string): void {
    this.participants.delete(id);
  }

  /** Replaces the notes with `next` by the smallest edit (common prefix and suffix kept), so concurrent typing merges. */
  setNotes(next: string): void {
    const prev = this.notes.toString();
    if (prev === next) return;
    let start = 0;
    while (start < prev.length && start < next.length && prev[start] === next[start]) start++;
    let endPrev = prev.length;
    let endNext = next.length;
    while (endPrev > start && endNext > start && prev[endPrev - 1] === next[endNext - 1]) {
      endPrev--;
      endNext--;
    }
    this.doc.transact(() => {
      if (endPrev > start) this.notes.delete(start, endPrev - start);
      if (endNext > start) this.notes.insert(start, next.slice(start, endNext));
    });
  }

  /** Publishes who we are and which field we are in. */
  setPresence(p: Presence): void {
    this.provider.awareness.setLocalState(p);
  }

  /** Changes only the field of our presence. */
  setField(field: string | null): void {
    const state = this.provider.awareness.getLocalState() as Presence | null;
    if (state && state.field !== field) this.provider.awareness.setLocalState({ ...state, field });
  }

  /** Everyone here (ourselves included), by awareness client id. */
  peers(): Peer[] {
    const out: Peer[] = [];
    for (const [clientId, state] of this.provider.awareness.getStates()) {
      const p = state as Partial<Presence>;
      if (!p?.user || typeof p.user.name !== 'string') continue;
      out.push({ clientId, self: clientId === this.doc.clientID, user: p.user, field: typeof p.field === 'string' ? p.field : null });
    }
    return out;
  }

  /** Calls `cb` whenever someone arrives, leaves or moves to another field. */
  onPresence(cb: (peers: Peer[]) => void): () => void {
    const handler = () => cb(this.peers());
    this.provider.awareness.on('change', handler);
    return () => this.provider.awareness.off('change', handler);
  }

  /** Leaves: our presence is removed everywhere, the connection closes. */
  destroy(): void {
    this.provider.awareness.setLocalState(null);
    this.provider.destroy();
    this.doc.destroy();
  }

  private setStatus(s: GroupStatus): void {
    if (s === this.statusNow || this.statusNow === 'refused') return;
    this.statusNow = s;
    for (const cb of this.statusListeners) cb(s);
  }
}

function isOffline(): boolean {
  return (globalThis as { navigator?: { onLine?: boolean } }).navigator?.onLine === false;
}
