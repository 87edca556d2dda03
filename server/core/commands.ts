/**
 * The commands both edges carry (REST routes and Socket.IO events): each
 * names who may send it, its input schema and what it runs, so the two edges
 * parse, authorize and run a command the same way (through the pipeline's
 * `run`) and cannot drift apart.
 */
import { z } from 'zod';
import { HoldConfirm, HoldCreate, HoldExtend, type Booking, type Hold } from '../../shared/schemas';
import type { Audience } from './pipeline';
import type { HoldService } from './services/holds';
import type { TenantPrincipal } from './types';

export interface Command<S extends z.ZodType = z.ZodType, O = unknown> {
  /** The Socket.IO event name, also what an idempotency fingerprint names. */
  name: string;
  audience: Audience & 'tenant-or-user';
  input: S;
  /** Runs the parsed input; `target` is the id the command acts on (a path parameter, or the payload's holdId). */
  run(p: TenantPrincipal, input: z.output<S>, target: string): Promise<O>;
}

const command = <S extends z.ZodType, O>(name: string, input: S, run: Command<S, O>['run']): Command<S, O> =>
  ({ name, audience: 'tenant-or-user', input, run });

/** A command without input fields (its target is all it needs). */
const Nothing = z.strictObject({});

/** The hold commands: take, extend, release and confirm. */
export function holdCommands(holds: HoldService) {
  return {
    create: command<typeof HoldCreate, Hold>('hold.create', HoldCreate, (p, b) => holds.create(p, { ...b, start: Date.parse(b.start), end: Date.parse(b.end) })),
    extend: command<typeof HoldExtend, Hold>('hold.extend', HoldExtend, (p, b, id) => holds.extend(p, id, b.ttlSeconds)),
    release: command<typeof Nothing, Hold>('hold.release', Nothing, (p, _b, id) => holds.release(p, id)),
    confirm: command<typeof HoldConfirm, { booking: Booking; created: boolean }>('hold.confirm', HoldConfirm, (p, b, id) => holds.confirm(p, id, b)),
  };
}

export type HoldCommands = ReturnType<typeof holdCommands>;
