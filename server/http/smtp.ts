/**
 * Outgoing e-mail (the MailTransport port): SMTP through nodemailer when
 * SMTP_URL is set, else a log line per message. Like webhooks
 * (./outbound.ts), this is the node talking out, not a route.
 *
 * Each message is its own SMTP conversation (no pool): a node that dies while
 * the server still owes its reply to DATA closes the connection, and the
 * server, not having answered, does not deliver it.
 */
import nodemailer from 'nodemailer';
import type { Logger, MailMessage, MailResult, MailTransport } from '../core/ports';

export function mailTransport(o: { smtpUrl?: string; timeoutMs: number; log: Logger }): MailTransport {
  if (!o.smtpUrl) {
    return {
      mode: 'log',
      async send(m: MailMessage): Promise<MailResult> {
        o.log.info({ to: m.to, subject: m.subject, messageId: m.messageId, calendar: m.calendar.method }, 'e-mail logged, not sent (SMTP_URL is not set)');
        return { outcome: 'logged' };
      },
    };
  }
  const transporter = nodemailer.createTransport({
    url: o.smtpUrl,
    connectionTimeout: o.timeoutMs,
    greetingTimeout: o.timeoutMs,
    socketTimeout: o.timeoutMs,
    dnsTimeout: o.timeoutMs,
  });
  return {
    mode: 'smtp',
    async send(m: MailMessage): Promise<MailResult> {
      try {
        const info = await transporter.sendMail({
          from: m.from,
          to: m.to,
          subject: m.subject,
          text: m.text,
          html: m.html,
          messageId: m.messageId,
          icalEvent: { method: m.calendar.method, content: m.calendar.content, filename: 'invite.ics' },
        });
        return { outcome: 'sent', response: String(info.response ?? '') };
      } catch (err) {
        const e = err as Error & { responseCode?: number; code?: string };
        const error = `${e.code ? `${e.code}: ` : ''}${e.message}`.slice(0, 500);
        // A 5xx to this message's envelope or content: the server will not take it, now or later. Anything else (4xx, no
        // connection, a timeout, refused credentials or TLS: the node's set-up, which an operator can fix) may pass later.
        const refused = e.responseCode !== undefined && e.responseCode >= 500 && (e.code === 'EENVELOPE' || e.code === 'EMESSAGE');
        return { outcome: refused ? 'permanent' : 'temporary', error };
      }
    },
  };
}
