/**
 * The integrations' dispatchers (webhooks, e-mail) read the stored event feed
 * past a cursor of their own, in one statement: the cursor's row locked (or
 * skipped: another node is at it), the events after it, the dispatcher's work
 * on them, and the cursor moved past every event read. Only committed changes
 * have events, and the feed stores them in seq order, batch after batch, so
 * no smaller seq can appear after a read: each event is dispatched once.
 */

/**
 * The statement: `$1` is how many events at most; `eventColumns` are read
 * from `events e` into the CTE `ev`; `work` is more CTEs over `ev` (or
 * none); `answer` is what the statement returns beside `locked` (0: another
 * node holds the cursor) and `events` (how many were read).
 */
export function afterCursor(o: { cursor: 'integration_cursor' | 'mail_cursor'; eventColumns: string; work: string; answer: string }): string {
  return `
      WITH c AS (SELECT seq FROM ${o.cursor} WHERE id FOR UPDATE SKIP LOCKED),
      ev AS (SELECT ${o.eventColumns} FROM events e, c WHERE e.seq > c.seq ORDER BY e.seq LIMIT $1),${o.work ? `\n      ${o.work},` : ''}
      moved AS (UPDATE ${o.cursor} SET seq = (SELECT max(seq) FROM ev) WHERE id AND EXISTS (SELECT 1 FROM ev) RETURNING seq)
      SELECT (SELECT count(*) FROM c)::int AS locked, (SELECT count(*) FROM ev)::int AS events, (SELECT count(*) FROM moved) AS moved,
        ${o.answer}`;
}
