/**
 * The e-mail templates the provider edits (issue 13): every mail Trellis sends is written from one of them.
 *
 * The template language is deliberately tiny: `{{name}}` is replaced by the value of a variable the template
 * declares, and nothing else is special. No expressions, no helpers, no loops, no includes: a template cannot run
 * code, read anything it is not given, or loop forever, and its cost is one pass over its text. (A general engine
 * such as Liquid or Handlebars would need sandboxing and bounds to reach the same guarantee; the mails need
 * substitution only.) A template is checked when it is saved: a `{{` that does not close, or a name the template
 * does not declare, is refused with the line it is on.
 *
 * Mails are plain text, so values are inserted as they are; a subject's values lose their line breaks so no value
 * can add a header. Previews in the console are HTML-escaped by the page's templates like any other text.
 */
import { getPortalSettings } from '../access/index.js';
import { type Actor, type ChangeDeps, runChange } from '../events/index.js';
import { type FieldProblem, invalid, isoNow, notFound } from '../kernel/index.js';
import type { Executor } from '../store/index.js';
import type { MailMessage } from './mailer.js';
import {
  deleteTemplateRow,
  findTemplateRow,
  listTemplateRows,
  upsertTemplateRow,
} from './mail-templates.store.js';
import type {
  MailPreview,
  MailTemplate,
  MailTemplateKey,
  MailTemplatePreviewInput,
  MailTemplateWrite,
} from './schemas.js';

interface TemplateDefinition {
  key: MailTemplateKey;
  name: string;
  description: string;
  /** Variable name → what it holds; the portal's own (name, URL, contact) are added to every template. */
  variables: Record<string, string>;
  /** Values for the preview. */
  sample: Record<string, string>;
  subject: string;
  body: string;
}

const portalVariables: Record<string, string> = {
  portalName: 'the portal’s name (portal settings)',
  portalUrl: 'the portal’s address',
  contactEmail: 'the API contact address (portal settings; empty when not set)',
};

const portalSample = {
  portalName: 'Acme Developer Portal',
  portalUrl: 'https://developer.acme.example',
  contactEmail: 'api@acme.example',
};

/** Every mail Trellis sends, with the text it sends by default. */
export const mailTemplateDefinitions: readonly TemplateDefinition[] = [
  {
    key: 'signup',
    name: 'Welcome after signup',
    description: 'Sent to a developer who signed up in the portal.',
    variables: {
      name: 'the developer’s name',
      email: 'the developer’s e-mail address',
      organization: 'the account (organization) name',
      accountState: '`approved`, or `pending` when the provider approves accounts first',
      nextStep: 'a sentence saying what happens next (create an application, or wait for approval)',
      loginUrl: 'the sign-in page',
    },
    sample: {
      name: 'Dana Developer',
      email: 'dana@partner.example',
      organization: 'Partner Ltd',
      accountState: 'approved',
      nextStep: 'Create an application to get your first key.',
      loginUrl: 'https://developer.acme.example/login',
    },
    subject: 'Welcome to {{portalName}}',
    body: 'Hello {{name}},\n\nyour account {{organization}} on {{portalName}} is ready to use.\n\n{{nextStep}}\n\nSign in: {{loginUrl}}\n',
  },
  {
    key: 'invitation',
    name: 'Invitation to an account',
    description: 'Sent when an admin of an account invites someone to join it.',
    variables: {
      inviterName: 'who invites',
      accountName: 'the account invited to',
      email: 'the invited address',
      role: '`admin` or `member`',
      acceptUrl: 'the link that accepts the invitation (valid a week)',
    },
    sample: {
      inviterName: 'Dana Developer',
      accountName: 'Partner Ltd',
      email: 'sam@partner.example',
      role: 'member',
      acceptUrl: 'https://developer.acme.example/invitations/tri_sample',
    },
    subject: '{{inviterName}} invites you to {{accountName}}',
    body: '{{inviterName}} invites you to join {{accountName}} on the developer portal.\n\nAccept within a week:\n{{acceptUrl}}\n',
  },
  {
    key: 'password_reset',
    name: 'Password reset',
    description: 'Sent when someone asks to reset the password of a developer’s address.',
    variables: {
      email: 'the address the reset is for',
      resetUrl: 'the link that chooses a new password (valid an hour, once)',
    },
    sample: {
      email: 'dana@partner.example',
      resetUrl: 'https://developer.acme.example/password-reset/sample',
    },
    subject: 'Reset your password',
    body: 'Someone (we hope you) asked to reset the password of {{email}}.\n\nChoose a new one here within an hour:\n{{resetUrl}}\n\nIf it was not you, ignore this mail.',
  },
  {
    key: 'quota_alert',
    name: 'Quota alert',
    description: 'Sent to an account’s admins when an application has used 50, 80 or 90 % of a limit.',
    variables: quotaVariables(),
    sample: quotaSample(90),
    subject: '{{applicationName}}: {{percent}} % of the {{period}} limit on {{metricName}} used',
    body: 'Your application "{{applicationName}}" has used {{used}} of its {{period}} limit of {{limit}} on {{metricName}} ({{percent}} %).\n\nWhen the limit is reached, further calls are refused with 429 Too Many Requests until the window resets.\n\n{{resetsAt}}\n\nSee your usage and quotas: {{usageUrl}}',
  },
  {
    key: 'quota_reached',
    name: 'Quota reached',
    description: 'Sent to an account’s admins when an application has used all of a limit.',
    variables: quotaVariables(),
    sample: quotaSample(100),
    subject: '{{applicationName}}: the {{period}} limit on {{metricName}} is reached',
    body: 'Your application "{{applicationName}}" has used {{used}} of its {{period}} limit of {{limit}} on {{metricName}} ({{percent}} %).\n\nFurther calls are refused with 429 Too Many Requests until the window resets.\n\n{{resetsAt}}\n\nSee your usage and quotas: {{usageUrl}}',
  },
  {
    key: 'account_approved',
    name: 'Account approved',
    description:
      'Sent to the account’s admins when the provider approves an account that waited (signup with approval).',
    variables: {
      accountName: 'the account (organization)',
      appsUrl: 'the portal’s page of the account’s applications',
    },
    sample: { accountName: 'Partner Ltd', appsUrl: 'https://developer.acme.example/apps' },
    subject: 'Your account {{accountName}} on {{portalName}} is approved',
    body: 'Your account {{accountName}} on {{portalName}} is approved: you can create applications and get keys now.\n\n{{appsUrl}}\n',
  },
  {
    key: 'application_approved',
    name: 'Application approved',
    description: 'Sent to the account’s admins when the provider approves a pending application.',
    variables: {
      ...applicationVariables(),
      planName: 'the application’s plan',
    },
    sample: { ...applicationSample(), planName: 'Pro' },
    subject: 'Your application {{applicationName}} is approved',
    body: 'Your application "{{applicationName}}" for {{serviceName}} on {{portalName}} is approved and live on the {{planName}} plan: its keys work now.\n\nSee it here: {{applicationUrl}}\n',
  },
  {
    key: 'plan_changed',
    name: 'Plan changed',
    description:
      'Sent to the account’s admins when an application moves to another plan (the provider’s change, or a request approved or applied at once).',
    variables: {
      ...applicationVariables(),
      previousPlanName: 'the plan it was on',
      planName: 'the plan it is on now',
    },
    sample: { ...applicationSample(), previousPlanName: 'Free', planName: 'Pro' },
    subject: '{{applicationName}} is now on the {{planName}} plan',
    body: 'Your application "{{applicationName}}" for {{serviceName}} moved from the {{previousPlanName}} plan to the {{planName}} plan. Its keys stay the same; the new plan’s limits apply from now on.\n\nSee it here: {{applicationUrl}}\n',
  },
  {
    key: 'plan_change_declined',
    name: 'Plan request declined',
    description:
      'Sent to the account’s admins when the provider declines an application’s request for another plan.',
    variables: {
      ...applicationVariables(),
      requestedPlanName: 'the plan asked for',
      planName: 'the plan the application stays on',
    },
    sample: { ...applicationSample(), requestedPlanName: 'Pro', planName: 'Free' },
    subject: '{{applicationName}}: the {{requestedPlanName}} plan was declined',
    body: 'The request of your application "{{applicationName}}" for the {{requestedPlanName}} plan of {{serviceName}} was declined; it stays on the {{planName}} plan.\n\nQuestions: {{contactEmail}}\n{{applicationUrl}}\n',
  },
  {
    key: 'golive_decided',
    name: 'Go-live decided',
    description:
      'Sent to the account’s admins when the provider approves or rejects an application’s go-live request, with the provider’s comment.',
    variables: {
      ...applicationVariables(),
      decision: '`approved` or `rejected`',
      comment: 'the provider’s comment (may be empty on approval)',
      nextStep:
        'a sentence saying what happens next (collect the production key, or fix what the comment says and ask again)',
      goLiveUrl: 'the application’s go-live page in the portal',
    },
    sample: {
      ...applicationSample(),
      decision: 'approved',
      comment: 'Certification passed; welcome to production.',
      nextStep: 'Collect your production key (shown once) on the go-live page.',
      goLiveUrl: 'https://developer.acme.example/apps/app_sample/golive',
    },
    subject: 'Go-live of {{applicationName}}: {{decision}}',
    body: 'The go-live request of your application "{{applicationName}}" for {{serviceName}} is {{decision}}.\n\nComment: {{comment}}\n\n{{nextStep}}\n{{goLiveUrl}}\n',
  },
  {
    key: 'production_revoked',
    name: 'Production revoked',
    description:
      'Sent to the account’s admins when the provider revokes an application’s production access (its production keys stop working), with the provider’s comment.',
    variables: {
      ...applicationVariables(),
      productionApplicationName: 'the production application that was suspended',
      comment: 'the provider’s comment: why production was revoked',
      goLiveUrl: 'the application’s go-live page in the portal, where it may ask again',
    },
    sample: {
      ...applicationSample(),
      productionApplicationName: 'Shop sync (production)',
      comment: 'Your integration ignored 429 responses.',
      goLiveUrl: 'https://developer.acme.example/apps/app_sample/golive',
    },
    subject: 'Production access of {{applicationName}} revoked',
    body: 'The provider revoked production access of your application "{{applicationName}}" for {{serviceName}}: {{productionApplicationName}} is suspended and its keys no longer work. The sandbox application carries on.\n\nComment: {{comment}}\n\nWhen you have fixed what the comment says, ask again to go live on the go-live page:\n{{goLiveUrl}}\n\nQuestions: {{contactEmail}}\n',
  },
  {
    key: 'webhook_endpoint_disabled',
    name: 'Webhook endpoint disabled',
    description:
      'Sent to an endpoint’s owner (the account’s admins for a partner’s endpoint, else the provider’s admins) when Trellis disables an endpoint that kept failing.',
    variables: {
      url: 'the endpoint’s address',
      endpointId: 'the endpoint’s id',
      failingSince: 'when the deliveries started failing (ISO 8601, UTC)',
      days: 'for how many days every delivery failed',
    },
    sample: {
      url: 'https://hooks.partner.example/trellis',
      endpointId: 'whe_sample',
      failingSince: '2026-05-27T12:00:00.000Z',
      days: '5',
    },
    subject: 'Webhook endpoint disabled: {{url}}',
    body: 'Trellis disabled the webhook endpoint {{url}} ({{endpointId}}): every delivery to it has failed since {{failingSince}}, for {{days}} days.\n\nIts messages are kept. When the endpoint answers again, enable it; the messages still pending are then delivered, and those that gave up can be sent again with "recover".',
  },
];

/** The variables of every mail about one application. */
function applicationVariables(): Record<string, string> {
  return {
    accountName: 'the account (organization) the application belongs to',
    applicationName: 'the application',
    applicationId: 'the application’s id',
    serviceName: 'the API the application uses',
    applicationUrl: 'the application’s page in the portal',
  };
}

function applicationSample(): Record<string, string> {
  return {
    accountName: 'Partner Ltd',
    applicationName: 'Shop sync',
    applicationId: 'app_sample',
    serviceName: 'Weather API',
    applicationUrl: 'https://developer.acme.example/apps/app_sample',
  };
}

function quotaVariables(): Record<string, string> {
  return {
    applicationName: 'the application',
    metricName: 'the metric or method limited',
    period: 'minute, hour, day, week, month, year or eternity',
    used: 'calls counted in the window',
    limit: 'the limit',
    percent: 'the share used, a whole number',
    resetsAt: 'a sentence saying when the window resets (or that the limit does not)',
    usageUrl: 'the portal’s usage page',
  };
}

function quotaSample(percent: number): Record<string, string> {
  return {
    applicationName: 'Shop sync',
    metricName: 'hits',
    period: 'day',
    used: String(percent * 10),
    limit: '1000',
    percent: String(percent),
    resetsAt: 'The window resets at 2026-06-02T00:00:00.000Z.',
    usageUrl: 'https://developer.acme.example/apps',
  };
}

function definitionOf(key: string): TemplateDefinition {
  const def = mailTemplateDefinitions.find((d) => d.key === key);
  if (!def) throw notFound('mail template', key);
  return def;
}

function variablesOf(def: TemplateDefinition): Record<string, string> {
  return { ...def.variables, ...portalVariables };
}

type Piece = { text: string } | { variable: string };

const placeholder = /^\{\{\s*([A-Za-z][A-Za-z0-9_]*)\s*\}\}/;

/**
 * Splits a template into text and `{{name}}` pieces; problems (an unclosed or malformed `{{`, an unknown name)
 * are collected with their line, under `field`.
 */
function parse(source: string, known: Set<string>, field: string, problems: FieldProblem[]): Piece[] {
  const pieces: Piece[] = [];
  let i = 0;
  let text = '';
  while (i < source.length) {
    const open = source.indexOf('{{', i);
    if (open < 0) {
      text += source.slice(i);
      break;
    }
    text += source.slice(i, open);
    const line = source.slice(0, open).split('\n').length;
    const m = placeholder.exec(source.slice(open, open + 200));
    if (!m) {
      const close = source.indexOf('}}', open);
      const shown = close < 0 ? source.slice(open, open + 20) : source.slice(open, close + 2).slice(0, 60);
      problems.push({
        field,
        message:
          close < 0
            ? `line ${line}: "${shown}" is not closed with }}`
            : `line ${line}: "${shown}" is not a variable (write {{name}} with a letter, digits and _)`,
      });
      i = close < 0 ? source.length : close + 2;
      continue;
    }
    const name = m[1] as string;
    if (!known.has(name)) {
      problems.push({
        field,
        message: `line ${line}: unknown variable {{${name}}}; this template knows ${[...known].map((k) => `{{${k}}}`).join(', ')}`,
      });
    }
    if (text) pieces.push({ text });
    text = '';
    pieces.push({ variable: name });
    i = open + m[0].length;
  }
  if (text) pieces.push({ text });
  return pieces;
}

interface Compiled {
  subject: Piece[];
  body: Piece[];
}

/** Checks a subject and body against a template's variables; throws `validation_failed` naming each problem. */
function compile(def: TemplateDefinition, input: MailTemplateWrite): Compiled {
  const known = new Set(Object.keys(variablesOf(def)));
  const problems: FieldProblem[] = [];
  const subject = parse(input.subject, known, 'subject', problems);
  const body = parse(input.body, known, 'body', problems);
  if (problems.length > 0) throw invalid(problems);
  return { subject, body };
}

function fill(pieces: Piece[], values: Record<string, string>, oneLine: boolean): string {
  return pieces
    .map((p) => {
      if ('text' in p) return p.text;
      const v = values[p.variable] ?? '';
      return oneLine ? v.replace(/[\r\n]+/g, ' ') : v;
    })
    .join('');
}

/** A template's subject and body: the provider's own, or the default. */
async function sourceOf(
  db: Executor,
  def: TemplateDefinition,
): Promise<{ subject: string; body: string; updatedAt: string | null }> {
  const row = await findTemplateRow(db, def.key);
  return row
    ? { subject: row.subject, body: row.body, updatedAt: row.updated_at }
    : { subject: def.subject, body: def.body, updatedAt: null };
}

function view(def: TemplateDefinition, source: { subject: string; body: string; updatedAt: string | null }) {
  return {
    key: def.key,
    name: def.name,
    description: def.description,
    variables: Object.entries(variablesOf(def)).map(([name, description]) => ({ name, description })),
    subject: source.subject,
    body: source.body,
    customized: source.updatedAt !== null,
    updatedAt: source.updatedAt,
  } satisfies MailTemplate;
}

export async function listMailTemplates(db: Executor): Promise<MailTemplate[]> {
  const rows = new Map((await listTemplateRows(db)).map((r) => [r.key, r]));
  return mailTemplateDefinitions.map((def) => {
    const row = rows.get(def.key);
    return view(
      def,
      row
        ? { subject: row.subject, body: row.body, updatedAt: row.updated_at }
        : { subject: def.subject, body: def.body, updatedAt: null },
    );
  });
}

export async function getMailTemplate(db: Executor, key: string): Promise<MailTemplate> {
  const def = definitionOf(key);
  return view(def, await sourceOf(db, def));
}

/** Saves the provider's version of a template after checking it. */
export async function saveMailTemplate(
  deps: ChangeDeps,
  actor: Actor,
  key: string,
  input: MailTemplateWrite,
): Promise<MailTemplate> {
  const def = definitionOf(key);
  compile(def, input);
  return runChange(deps, actor, async (tx, record) => {
    const updatedAt = isoNow(deps.clock);
    await upsertTemplateRow(tx, {
      key: def.key,
      subject: input.subject,
      body: input.body,
      updated_at: updatedAt,
    });
    const template = view(def, { subject: input.subject, body: input.body, updatedAt });
    await record({
      type: 'mail_template.updated',
      entityType: 'mail_template',
      entityId: def.key,
      payload: { template },
    });
    return template;
  });
}

/** Back to the default Trellis ships. */
export async function resetMailTemplate(deps: ChangeDeps, actor: Actor, key: string): Promise<MailTemplate> {
  const def = definitionOf(key);
  return runChange(deps, actor, async (tx, record) => {
    const template = view(def, { subject: def.subject, body: def.body, updatedAt: null });
    if (await deleteTemplateRow(tx, def.key)) {
      await record({
        type: 'mail_template.reset',
        entityType: 'mail_template',
        entityId: def.key,
        payload: { template },
      });
    }
    return template;
  });
}

/** The mail a template makes with sample values: the saved template, or `input` (an unsaved draft). */
export async function previewMailTemplate(
  db: Executor,
  key: string,
  input: MailTemplatePreviewInput = {},
): Promise<MailPreview> {
  const def = definitionOf(key);
  const saved = await sourceOf(db, def);
  const compiled = compile(def, { subject: input.subject ?? saved.subject, body: input.body ?? saved.body });
  const values = { ...portalSample, ...(await portalValues(db)), ...def.sample };
  return {
    subject: fill(compiled.subject, values, true),
    text: fill(compiled.body, values, false),
    variables: values,
  };
}

async function portalValues(db: Executor): Promise<Record<string, string>> {
  const s = await getPortalSettings(db);
  return { portalName: s.name, ...(s.contactEmail && { contactEmail: s.contactEmail }) };
}

/**
 * The mail one template makes for one recipient, from the provider's template (or the default), with the
 * sender address of the portal settings when one is set.
 * @example await mailer.send(await composeMail(db, 'password_reset', user.email, { email, resetUrl }, portalUrl))
 */
export async function composeMail(
  db: Executor,
  key: MailTemplateKey,
  to: string,
  values: Record<string, string>,
  portalUrl: string,
): Promise<MailMessage> {
  const def = definitionOf(key);
  const settings = await getPortalSettings(db);
  const source = await sourceOf(db, def);
  let compiled: Compiled;
  try {
    compiled = compile(def, source);
  } catch {
    // A saved template was checked when saved; one that no longer checks (a variable retired by an upgrade)
    // must not stop the mail: the default goes out instead.
    compiled = compile(def, { subject: def.subject, body: def.body });
  }
  const all = { portalName: settings.name, portalUrl, contactEmail: settings.contactEmail, ...values };
  return {
    to,
    subject: fill(compiled.subject, all, true),
    text: fill(compiled.body, all, false),
    ...(settings.senderAddress && { from: settings.senderAddress }),
  };
}
