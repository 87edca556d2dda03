/** What every routes file receives. */
import type { OpenAPIHono } from '@hono/zod-openapi';
import type { AvailabilityService } from '../../core/services/availability';
import type { BookingService } from '../../core/services/bookings';
import type { CredentialService } from '../../core/services/credentials';
import type { ProtectionService } from '../../core/services/protection';
import type { eventService } from '../../core/services/events';
import type { GroupService } from '../../core/services/groups';
import type { HoldService } from '../../core/services/holds';
import type { ResourceService } from '../../core/services/resources';
import type { TenantService } from '../../core/services/tenants';
import type { AuthEnv } from '../middleware/auth';

export interface Services {
  tenants: TenantService;
  credentials: CredentialService;
  protection: ProtectionService;
  resources: ResourceService;
  availability: AvailabilityService;
  holds: HoldService;
  bookings: BookingService;
  events: ReturnType<typeof eventService>;
  groups: GroupService;
}

export type App = OpenAPIHono<AuthEnv>;
