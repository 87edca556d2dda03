/** Development sign-in: demo user tokens of the dev tenant (development mode only, 403 otherwise). */
import { z } from '@hono/zod-openapi';
import { Id, Instant } from '../../../shared/schemas';
import { body, route } from '../openapi';
import type { App, Services } from './types';

const DemoUser = z.object({ userId: z.string(), name: z.string(), role: z.enum(['member', 'organizer']) }).openapi('DemoUser');
const DemoUsers = z.object({ tenantId: Id, users: z.array(DemoUser) }).openapi('DemoUsers');
const DemoSignIn = z.strictObject({ userId: z.string().trim().min(1).max(200) }).openapi('DemoSignIn');
const DemoSession = z
  .object({ token: z.string(), id: Id, expiresAt: Instant, tenantId: Id, user: DemoUser })
  .openapi('DemoSession');

/** Registers GET /v1/dev/users and POST /v1/dev/tokens. */
export function devRoutes(app: App, s: Services): void {
  const refused = 'Not in development mode (ADMIN_TOKEN is set)';
  route(app, {
    method: 'get', path: '/v1/dev/users', tag: 'Development', auth: 'none',
    summary: 'The demo users of the dev tenant (development mode only)', answers: { 200: { schema: DemoUsers, description: 'The demo users' } }, errors: { 403: refused },
  }, (c) => c.json(s.demo.users()));

  route(app, {
    method: 'post', path: '/v1/dev/tokens', tag: 'Development', auth: 'none',
    summary: 'Sign in as a demo user: a user token of the dev tenant (development mode only)', body: DemoSignIn,
    answers: { 201: { schema: DemoSession, description: 'A user token for the demo user' } }, errors: { 403: refused, 404: 'No such demo user' },
  }, async (c) => {
    const { userId } = await body(c, DemoSignIn);
    return c.json(await s.demo.signIn(userId), 201);
  });
}
