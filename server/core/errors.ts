/** The domain's one error type: a catalogue code plus detail; edges translate it. */
import { errorCatalogue, problem, type ErrorCode, type Problem } from '../../shared/errors';

export class DomainError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly extra: Record<string, unknown>;

  constructor(code: ErrorCode, detail?: string, extra: Record<string, unknown> = {}) {
    super(detail ?? errorCatalogue[code].title);
    this.code = code;
    this.status = errorCatalogue[code].status;
    this.extra = extra;
  }

  /** The RFC 9457 body for this error. */
  toProblem(): Problem {
    return problem(this.code, this.message, this.extra);
  }
}

/** Shorthand for a 404 that does not say whether the thing exists for someone else. */
export const notFound = (what: string) => new DomainError('not-found', `${what} not found`);
