/** Everything the edges (REST routes, the Socket.IO and Yjs gateways) call into the core, wired by node.ts. */
import type { HoldCommands } from '../commands';
import type { Pipeline } from '../pipeline';
import type { AvailabilityService } from './availability';
import type { BookingService } from './bookings';
import type { CalendarFeedService } from './calendar-feeds';
import type { CredentialService } from './credentials';
import type { DemoService } from './demo';
import type { EventService } from './events';
import type { GroupService } from './groups';
import type { HoldService } from './holds';
import type { ProtectionService } from './protection';
import type { ResourceService } from './resources';
import type { TenantService } from './tenants';
import type { WebhookService } from './webhooks';

export interface Services {
  /** parse → authorize → once per Idempotency-Key → result or problem, for every edge. */
  pipeline: Pipeline;
  /** The commands both REST and Socket.IO carry. */
  commands: HoldCommands;
  tenants: TenantService;
  credentials: CredentialService;
  protection: ProtectionService;
  resources: ResourceService;
  availability: AvailabilityService;
  holds: HoldService;
  bookings: BookingService;
  events: EventService;
  groups: GroupService;
  /** Development mode's demo users and resources (refuses outside it). */
  demo: DemoService;
  /** Webhook endpoints and their delivery log (delivery itself runs in the workers). */
  webhooks: WebhookService;
  /** Calendar feeds (iCalendar) and their tokens. */
  calendarFeeds: CalendarFeedService;
}
