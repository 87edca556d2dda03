/**
 * A real local SMTP server (the `smtp-server` package) that keeps what it
 * accepts, parsed with `mailparser`, and can refuse or hold back its answer
 * to a message as a test asks: a temporary (451) or permanent (550) refusal,
 * or an answer held until the client hangs up (a message whose sender went
 * away before the server answered is discarded, as real servers do).
 */
import type { AddressInfo } from 'node:net';
import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import ICAL from 'ical.js';

export interface Received {
  /** The envelope: MAIL FROM and RCPT TO. */
  from: string;
  to: string[];
  mail: ParsedMail;
  raw: string;
}

/** What the server answers to a message's data: accept it, refuse it for now or for good, or hold the answer (the sender must hang up). */
export type Verdict = 'accept' | 'temporary' | 'permanent' | 'hold';

export interface SmtpSink {
  url: string;
  /** Messages accepted, in order. */
  got: Received[];
  /** Messages refused or discarded, with why. */
  refused: { to: string[]; subject: string; why: Verdict | 'discarded' }[];
  /** Messages whose answer is being held now. */
  held(): number;
  close(): Promise<void>;
}

const refusal = (code: number, text: string) => Object.assign(new Error(text), { responseCode: code });

export async function smtpSink(verdict: (m: { to: string[]; subject: string; n: number }) => Verdict = () => 'accept'): Promise<SmtpSink> {
  const got: Received[] = [];
  const refused: SmtpSink['refused'] = [];
  const closed = new Set<string>();
  let n = 0;
  let holding = 0;
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onClose(session) {
      closed.add(session.id);
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', async () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const mail = await simpleParser(raw);
        const to = session.envelope.rcptTo.map((r) => r.address);
        const subject = mail.subject ?? '';
        const v = verdict({ to, subject, n: n++ });
        if (v === 'temporary') {
          refused.push({ to, subject, why: v });
          return callback(refusal(451, 'try again later'));
        }
        if (v === 'permanent') {
          refused.push({ to, subject, why: v });
          return callback(refusal(550, 'mailbox unavailable'));
        }
        if (v === 'hold') {
          // No answer until the client goes away; then the message is dropped, never delivered.
          holding++;
          const wait = setInterval(() => {
            if (!closed.has(session.id)) return;
            clearInterval(wait);
            holding--;
            refused.push({ to, subject, why: 'discarded' });
          }, 20);
          return;
        }
        got.push({ from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '', to, mail, raw });
        callback();
      });
    },
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.server.address() as AddressInfo).port;
  return {
    url: `smtp://127.0.0.1:${port}`,
    got,
    refused,
    held: () => holding,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** The message's iCalendar invitation: METHOD and its one VEVENT, parsed with ical.js. */
export function invitationOf(mail: ParsedMail) {
  const part = mail.attachments.find((a) => /^text\/calendar|^application\/ics/.test(a.contentType));
  if (!part) throw new Error(`no calendar part in "${mail.subject}"`);
  const cal = new ICAL.Component(ICAL.parse(part.content.toString('utf8')));
  const event = cal.getFirstSubcomponent('vevent');
  if (!event) throw new Error('no VEVENT');
  const start = event.getFirstProperty('dtstart')!;
  return {
    method: cal.getFirstPropertyValue('method') as string,
    uid: event.getFirstPropertyValue('uid') as string,
    sequence: Number(event.getFirstPropertyValue('sequence')),
    status: event.getFirstPropertyValue('status') as string,
    tzid: (start.getParameter('tzid') as string | undefined) ?? null,
    start: new ICAL.Event(event).startDate.toJSDate().getTime(),
    // URI schemes are case-insensitive (ical-generator writes MAILTO: for attendees).
    organizer: String(event.getFirstPropertyValue('organizer')).replace(/^mailto:/i, 'mailto:'),
    attendees: event.getAllProperties('attendee').map((p) => String(p.getFirstValue()).replace(/^mailto:/i, 'mailto:')),
    timezones: cal.getAllSubcomponents('vtimezone').map((z) => z.getFirstPropertyValue('tzid') as string),
  };
}
