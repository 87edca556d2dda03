/**
 * Presence (y-protocols awareness) on the server: which entries of a client's
 * awareness update it may speak for, and relaying changes to others.
 *
 * A connection speaks for one client id, its own. The stock WebsocketProvider
 * re-sends every awareness change it applies (other clients' states the server
 * sent it included) and sends null states of others whose presence timed out,
 * so entries for other ids are dropped silently, not treated as an attack.
 */
import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';
import { applyAwarenessUpdate, type Awareness } from 'y-protocols/awareness';

/** How long awareness renewals wait to be relayed together (see relayAwareness). */
export const RENEWAL_RELAY_MS = 3_000;

/** One entry of an awareness update: a client id, its clock and its state as JSON text ('null' when it left). */
export interface PresenceEntry {
  clientId: number;
  clock: number;
  state: string;
}

/** What a connection's awareness update holds for it: its own entry (if any), or a state over the size limit. */
export type PresencePick = { entry: PresenceEntry | null; claimed: number | null } | { tooLarge: number };

const utf8 = new TextDecoder();

/**
 * Picks, from an awareness update (varUint count, then per entry varUint
 * clientID, varUint clock, varString JSON state: y-protocols'
 * encodeAwarenessUpdate), the last entry for `owned`. A connection that owns
 * no id yet claims the first id it sends a non-null state for that `mayClaim`
 * allows (nobody here owns it and no state for it is present). Other entries
 * are skipped unread. Throws when the update cannot be decoded or a kept
 * state is not JSON.
 */
export function pickPresence(update: Uint8Array, owned: number | null, mayClaim: (id: number) => boolean, maxStateBytes: number): PresencePick {
  const decoder = decoding.createDecoder(update);
  let entry: PresenceEntry | null = null;
  let claimed: number | null = null;
  for (let n = decoding.readVarUint(decoder); n > 0; n--) {
    const clientId = decoding.readVarUint(decoder);
    const clock = decoding.readVarUint(decoder);
    const bytes = decoding.readVarUint8Array(decoder);
    if (owned !== null && clientId !== owned) continue;
    if (owned === null && !mayClaim(clientId)) continue;
    if (bytes.byteLength > maxStateBytes) return { tooLarge: bytes.byteLength };
    const state = utf8.decode(bytes);
    const parsed: unknown = JSON.parse(state);
    if (owned === null) {
      // Leaving (null) claims nothing: the stock provider sends null states of others it saw time out.
      if (parsed === null) continue;
      owned = claimed = clientId;
    }
    entry = { clientId, clock, state };
  }
  return { entry, claimed };
}

/**
 * Applies a connection's own entry. An entry whose state is absent here and
 * whose clock is not newer than the one last seen for the id (a provider
 * reconnecting after the server removed its state keeps its old clock) gets
 * the next clock, so it is not ignored until the provider's next renewal.
 */
export function applyPresence(awareness: Awareness, entry: PresenceEntry, origin: unknown): void {
  const seen = awareness.meta.get(entry.clientId)?.clock;
  const clock = seen !== undefined && entry.clock <= seen && !awareness.states.has(entry.clientId) && entry.state !== 'null' ? seen + 1 : entry.clock;
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, 1);
  encoding.writeVarUint(e, entry.clientId);
  encoding.writeVarUint(e, clock);
  encoding.writeVarString(e, entry.state);
  applyAwarenessUpdate(awareness, encoding.toUint8Array(e), origin);
}

type AwarenessChange = { added: number[]; updated: number[]; removed: number[] };

/**
 * Follows an awareness and calls `emit` with the ids whose state really
 * changed, at once, and with mere renewals (same state, newer clock: every
 * client, every 15 s) gathered every RENEWAL_RELAY_MS, so 500 idle clients
 * cost a few messages a minute instead of 33 a second. Changes whose origin
 * `relays` refuses are not emitted. Returns how to stop.
 */
export function relayAwareness(awareness: Awareness, emit: (ids: number[]) => void, relays: (origin: unknown) => boolean = () => true): () => void {
  // 'change' (states that really changed) is emitted just before 'update' (which also lists renewals).
  let changed: Set<number> | null = null;
  const renewed = new Set<number>();
  let timer: NodeJS.Timeout | null = null;
  const onChange = ({ added, updated, removed }: AwarenessChange) => void (changed = new Set([...added, ...updated, ...removed]));
  const onUpdate = ({ added, updated, removed }: AwarenessChange, origin: unknown) => {
    const seen = changed;
    changed = null;
    if (!relays(origin)) return;
    const now = [...added, ...removed, ...updated.filter((id) => seen?.has(id))];
    if (now.length) emit(now);
    for (const id of updated) if (!seen?.has(id)) renewed.add(id);
    if (renewed.size === 0 || timer) return;
    timer = setTimeout(() => {
      timer = null;
      const ids = [...renewed].filter((id) => awareness.getStates().has(id));
      renewed.clear();
      if (ids.length) emit(ids);
    }, RENEWAL_RELAY_MS);
    timer.unref();
  };
  awareness.on('change', onChange);
  awareness.on('update', onUpdate);
  return () => {
    awareness.off('change', onChange);
    awareness.off('update', onUpdate);
    if (timer) clearTimeout(timer);
  };
}
