/**
 * A document's rows in yjs_updates as one node writes them. Every update is
 * stored before it is published (so a node loading later finds all that was
 * published); updates that arrive while an INSERT runs are merged into the
 * next one, so a busy document costs one row (and one publish) per database
 * round trip rather than per keystroke; the rows are compacted now and then.
 */
import * as Y from 'yjs';
import type { Logger } from '../../core/ports';
import type { DocumentStore } from '../../core/store';

/** Updates waiting for one INSERT: whatever arrives while the previous one runs goes in the next. */
interface Batch {
  updates: Uint8Array[];
  done: Promise<void>;
  resolve(): void;
  reject(err: unknown): void;
}

export interface UpdateLogDeps {
  store: DocumentStore;
  log: Logger;
  /** Compact after this many appends on this node. */
  compactAfter: number;
  /** Compact after this many bytes stored, by any node, since this node last compacted. */
  compactAfterBytes: number;
  /** Sends a stored update to the other nodes (never rejects). */
  publish(update: Uint8Array): Promise<void>;
  /** Keeps the document loaded until `work` settles. */
  track(work: Promise<unknown>): void;
  /** The live doc, merged into every compaction; null once it is destroyed. */
  live(): Y.Doc | null;
  /** The encoded size of (at least) the live doc, learned while compacting. */
  measured(bytes: number): void;
}

/** One document's stored updates, written, published and compacted by this node. */
export class UpdateLog {
  private loadedRows = 0;
  private appended = 0;
  private storedBytes = 0;
  /** The live doc holds content whose insert failed; the next compaction stores it. */
  private dirty = false;
  private compacting = false;
  private batch: Batch | null = null;
  private writing = false;

  constructor(readonly name: string, private readonly deps: UpdateLogDeps) {}

  /** The rows the document was loaded from. */
  loaded(updates: Uint8Array[]): void {
    this.loadedRows = updates.length;
    this.storedBytes = updates.length > 1 ? updates.reduce((n, u) => n + u.byteLength, 0) : 0;
  }

  /** Another node stored `bytes`: they count towards compacting, so the rows stay bounded whoever writes. */
  storedElsewhere(bytes: number): void {
    this.storedBytes += bytes;
  }

  /** Whether unloading should compact first (something appended, unsaved or several rows). */
  get needsCompaction(): boolean {
    return this.appended > 0 || this.dirty || this.loadedRows > 1;
  }

  /** Queues `update` to be stored, then published; resolves once it is stored. */
  append(update: Uint8Array): Promise<void> {
    if (!this.batch) {
      let resolve!: () => void;
      let reject!: (err: unknown) => void;
      const done = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
      this.batch = { updates: [], done, resolve, reject };
    }
    this.batch.updates.push(update);
    const { done } = this.batch;
    if (!this.writing) {
      this.writing = true;
      this.deps.track(this.drain());
    }
    return done;
  }

  /** Writes batches until none is waiting; never rejects (each batch's waiters see its outcome). */
  private async drain(): Promise<void> {
    try {
      while (this.batch) {
        const batch = this.batch;
        this.batch = null;
        const update = batch.updates.length === 1 ? batch.updates[0]! : Y.mergeUpdates(batch.updates);
        try {
          await this.store(update);
          batch.resolve();
        } catch (err) {
          batch.reject(err);
        }
      }
    } finally {
      this.writing = false;
    }
  }

  private async store(update: Uint8Array): Promise<void> {
    try {
      // Visible to every node once this returns; the WAL flush may follow (the store's append says why that is enough).
      await this.deps.store.append(this.name, update);
    } catch (err) {
      this.dirty = true;
      throw err;
    }
    this.appended++;
    this.storedBytes += update.byteLength;
    await this.deps.publish(update);
    // By count, and by bytes: edits that insert and delete leave the document small but pile up rows.
    // Several nodes may compact at once now and then; one of them wins (see compact).
    if ((this.appended >= this.deps.compactAfter || this.storedBytes >= this.deps.compactAfterBytes) && !this.compacting) {
      this.compacting = true;
      const work = this.compact().catch((err) => this.deps.log.warn({ err, docName: this.name }, 'yjs: compaction failed'));
      this.deps.track(work.finally(() => void (this.compacting = false)));
    }
  }

  /**
   * Merges the stored rows (plus the live state) into one. Read and delete
   * share one REPEATABLE READ snapshot, so the DELETE removes exactly the rows
   * merged, never one another node committed meanwhile with a lower id.
   */
  async compact(): Promise<void> {
    const wasDirty = this.dirty;
    this.dirty = false;
    this.appended = 0;
    this.storedBytes = 0;
    try {
      // Persistence work on the Yjs connections of its own (as appends are): neither requests nor the hold sweeper wait for it.
      const read = await this.deps.store.compact(this.name, (updates) => {
        if (updates.length <= 1 && !wasDirty) return null;
        const scratch = new Y.Doc();
        const live = this.deps.live();
        scratch.transact(() => {
          for (const u of updates) Y.applyUpdate(scratch, u);
          if (live) Y.applyUpdate(scratch, Y.encodeStateAsUpdate(live));
        });
        const merged = Y.encodeStateAsUpdate(scratch);
        scratch.destroy();
        // An exact measure (of at least the live doc) for free.
        if (live) this.deps.measured(merged.byteLength);
        return merged;
      });
      // null: another node compacted the same rows first; nothing lost, and what made this one dirty stays to do.
      if (read === null) this.dirty ||= wasDirty;
      else this.loadedRows = Math.min(read, 1);
    } catch (err) {
      this.dirty ||= wasDirty;
      throw err;
    }
  }
}