/** What every routes file receives. */
import type { OpenAPIHono } from '@hono/zod-openapi';
import type { AuthEnv } from '../middleware/auth';

export type { Services } from '../../core/services';
export type App = OpenAPIHono<AuthEnv>;
