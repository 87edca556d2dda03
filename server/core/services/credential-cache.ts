/**
 * What authentication remembers between requests, bounded: API keys found
 * (their principal, for a short while) and user tokens verified (their
 * principal, until they expire). Both are LRUs, so neither guessed keys nor
 * many tokens can grow them, and nothing clears them wholesale on size (the
 * maps they replace were emptied at 10,000 entries, real keys included). A
 * key found unknown is remembered in a small LRU of its own: failed lookups
 * can never push a real key out.
 */
import { LRUCache } from 'lru-cache';
import type { Principal } from '../types';

type KeyPrincipal = Extract<Principal, { kind: 'tenant' }>;
type TokenPrincipal = Extract<Principal, { kind: 'user' }>;

export interface CredentialCacheOptions {
  /** API keys remembered, and for how long at most (revocations reach every node through the cluster channel sooner). */
  maxKeys?: number;
  keyTtlMs?: number;
  maxUnknownKeys?: number;
  /** Verified tokens remembered, by count and by bytes (a token is a few hundred bytes; a header may be 16 KiB). */
  maxTokens?: number;
  maxTokenBytes?: number;
}

/** Bounded memory of checked credentials (see the file comment). */
export class CredentialCache {
  private readonly keys: LRUCache<string, KeyPrincipal>;
  private readonly unknownKeys: LRUCache<string, true>;
  private readonly tokens: LRUCache<string, TokenPrincipal>;
  private readonly keyTtlMs: number;

  constructor({ maxKeys = 10_000, keyTtlMs = 30_000, maxUnknownKeys = 1_000, maxTokens = 10_000, maxTokenBytes = 8 * 1024 * 1024 }: CredentialCacheOptions = {}) {
    this.keyTtlMs = keyTtlMs;
    this.keys = new LRUCache({ max: maxKeys, ttl: keyTtlMs });
    this.unknownKeys = new LRUCache({ max: maxUnknownKeys, ttl: keyTtlMs });
    this.tokens = new LRUCache({ max: maxTokens, maxSize: maxTokenBytes, sizeCalculation: (_, token) => token.length + 200 });
  }

  /** The principal of an API key (by hash): itself, null when found unknown lately, undefined when not remembered. */
  key(hash: string): KeyPrincipal | null | undefined {
    return this.keys.get(hash) ?? (this.unknownKeys.get(hash) ? null : undefined);
  }

  /** Remembers what a key lookup found, for `ttlMs` (at most the configured key TTL). */
  rememberKey(hash: string, principal: KeyPrincipal | null, ttlMs = this.keyTtlMs): void {
    const ttl = Math.min(ttlMs, this.keyTtlMs);
    if (principal) {
      this.unknownKeys.delete(hash);
      this.keys.set(hash, principal, { ttl });
    } else this.unknownKeys.set(hash, true, { ttl });
  }

  /** Forgets every remembered lookup of one key (it was revoked or rotated). */
  forgetKey(keyId: string): void {
    for (const [hash, p] of this.keys.entries()) if (p.keyId === keyId) this.keys.delete(hash);
  }

  /** Forgets every key lookup (revocations may have been missed). */
  forgetKeys(): void {
    this.keys.clear();
    this.unknownKeys.clear();
  }

  /** The principal of a token verified before and not yet expired. */
  token(credential: string): TokenPrincipal | undefined {
    return this.tokens.get(credential);
  }

  /** Remembers a verified token until it expires. */
  rememberToken(credential: string, principal: TokenPrincipal): void {
    const ttl = Math.floor(principal.expiresAt - Date.now());
    if (ttl > 0) this.tokens.set(credential, principal, { ttl });
  }
}
