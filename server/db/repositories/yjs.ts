/** The persisted updates of Yjs documents: an append-only log per document, compacted now and then. */
import { named, type Queryable } from '../pool';

// pg hands bytea back as a Buffer; Yjs wants plain Uint8Arrays over exactly the update's bytes.
const bytes = (b: Buffer): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.byteLength);

export const yjsRepository = {
  /** Appends one update to a document's log; returns its id. */
  async append(q: Queryable, docName: string, update: Uint8Array): Promise<number> {
    const { rows } = await q.query(named('yjs.append', 'INSERT INTO yjs_updates (doc_name, update) VALUES ($1, $2) RETURNING id', [docName, Buffer.from(update.buffer, update.byteOffset, update.byteLength)]));
    return rows[0].id;
  },

  /** Every stored update of a document in id order, and the highest id read (0 when none). */
  async load(q: Queryable, docName: string): Promise<{ updates: Uint8Array[]; lastId: number }> {
    const { rows } = await q.query('SELECT id, update FROM yjs_updates WHERE doc_name = $1 ORDER BY id', [docName]);
    return { updates: rows.map((r) => bytes(r.update)), lastId: rows.length ? Number(rows[rows.length - 1].id) : 0 };
  },

  /**
   * Replaces the rows of a document with id <= upToId by one merged update, in
   * one statement. Rows appended concurrently (id > upToId, or not yet visible
   * to this statement) survive; the caller guarantees `merged` covers the rest.
   */
  async compact(q: Queryable, docName: string, upToId: number, merged: Uint8Array): Promise<void> {
    await q.query(
      `WITH gone AS (DELETE FROM yjs_updates WHERE doc_name = $1 AND id <= $2)
       INSERT INTO yjs_updates (doc_name, update) VALUES ($1, $3)`,
      [docName, upToId, Buffer.from(merged.buffer, merged.byteOffset, merged.byteLength)],
    );
  },

  /** True when the document has at least one stored update. */
  async exists(q: Queryable, docName: string): Promise<boolean> {
    const { rows } = await q.query('SELECT EXISTS (SELECT 1 FROM yjs_updates WHERE doc_name = $1) AS found', [docName]);
    return rows[0].found === true;
  },
};
