/**
 * What tenantService.authenticate remembers between requests, bounded: API
 * keys found (their tenant, for a short while) and user tokens verified
 * (their principal, until they expire). Both are LRUs, so neither guessed
 * keys nor many tokens can grow them, and nothing clears them wholesale (the
 * maps they replace were emptied at 10,000 entries, real keys included). A
 * key found unknown is remembered in a small LRU of its own: failed lookups
 * can never push a real key out.
 */
import { LRUCache } from 'lru-cache';
import type { Principal } from '../types';

export interface CredentialCacheOptions {
  /** API keys remembered, and for how long (a revoked key keeps working on a node for up to this). */
  maxKeys?: number;
  keyTtlMs?: number;
  maxUnknownKeys?: number;
  /** Verified tokens remembered, by count and by bytes (a token is a few hundred bytes; a header may be 16 KiB). */
  maxTokens?: number;
  maxTokenBytes?: number;
}

/** Bounded memory of checked credentials (see the file comment). */
export class CredentialCache {
  private readonly keys: LRUCache<string, string>;
  private readonly unknownKeys: LRUCache<string, true>;
  private readonly tokens: LRUCache<string, Principal>;

  constructor({ maxKeys = 10_000, keyTtlMs = 30_000, maxUnknownKeys = 1_000, maxTokens = 10_000, maxTokenBytes = 8 * 1024 * 1024 }: CredentialCacheOptions = {}) {
    this.keys = new LRUCache({ max: maxKeys, ttl: keyTtlMs });
    this.unknownKeys = new LRUCache({ max: maxUnknownKeys, ttl: keyTtlMs });
    this.tokens = new LRUCache({ max: maxTokens, maxSize: maxTokenBytes, sizeCalculation: (_, token) => token.length + 200 });
  }

  /** The tenant of an API key (by hash): its id, null when found unknown lately, undefined when not remembered. */
  keyTenant(hash: string): string | null | undefined {
    return this.keys.get(hash) ?? (this.unknownKeys.get(hash) ? null : undefined);
  }

  /** Remembers what a key lookup found. */
  rememberKey(hash: string, tenantId: string | null): void {
    if (tenantId) this.keys.set(hash, tenantId);
    else this.unknownKeys.set(hash, true);
  }

  /** The principal of a token verified before and not yet expired. */
  token(credential: string): Principal | undefined {
    return this.tokens.get(credential);
  }

  /** Remembers a verified token until it expires. */
  rememberToken(credential: string, principal: Principal, expiresAtMs: number): void {
    const ttl = Math.floor(expiresAtMs - Date.now());
    if (ttl > 0) this.tokens.set(credential, principal, { ttl });
  }
}
