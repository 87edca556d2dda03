/** The /openapi.json a node serves, built in-process from the app factory without a database. */
import pino from 'pino';
import { Registry } from 'prom-client';
import { loadConfig } from '../../server/config';
import { createHttpApp } from '../../server/http/app';
import type { Services } from '../../server/core/services';
import { VERSION } from '../../server/node';

/**
 * Builds the HTTP app with services that are never called (registering
 * routes only describes them), and asks it for GET /openapi.json. The one
 * service that route touches, the address budget, admits everything;
 * the availability limit routes name in their descriptions is the default.
 */
export async function openApiDocument(): Promise<Record<string, unknown>> {
  const unused = (name: string) => new Proxy({}, { get: (_, key) => { throw new Error(`openApiDocument: services.${name}.${String(key)} is not available here`); } });
  const { limits } = loadConfig({});
  const known = {
    protection: { admitAddress: async () => null },
    // Read while routes register (their descriptions name it): the default, as a node without AVAILABILITY_MAX_SLOTS has.
    availability: { limits: { maxSlots: limits.answers.availabilityMaxSlots } },
  };
  const services = new Proxy(known as unknown as Services, {
    get: (target, key: string) => (key in target ? target[key as keyof Services] : unused(key)),
  });
  const app = createHttpApp({
    services, registry: new Registry(), log: pino({ level: 'silent' }), version: VERSION, limits,
    readiness: { check: async () => ({}) },
  });
  const res = await app.request('/openapi.json');
  if (res.status !== 200) throw new Error(`GET /openapi.json answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as Record<string, unknown>;
}
