/** A start of the embedded Postgres that failed for a reason the user can act on: main prints the message alone, without a stack. */
export class EmbeddedPostgresError extends Error {}
