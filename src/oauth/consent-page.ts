/**
 * The consent page an end user sees before an application may act for them, in the portal's branding. Every
 * value is escaped for its context (text, attribute, CSS); the page loads nothing but the provider's logo.
 */
import type { PortalSettings } from '../access/index.js';
import { escapeHtml } from './authorization-server.js';
import type { ScopeInfo } from './scopes.js';

export interface ConsentView {
  branding: PortalSettings;
  applicationName: string;
  serviceName: string;
  /** The scopes asked for, with their catalogue names. */
  scopes: ScopeInfo[];
  /** Whether the application asks to act while the user is away (a refresh token). */
  offline: boolean;
  /** Where the form posts (…/confirm and …/abort under it). */
  action: string;
  csrf: string;
}

const colour = (value: string, fallback: string) => (/^#[0-9a-fA-F]{3,8}$/.test(value) ? value : fallback);

/** Custom CSS goes inside <style>; nothing in it may close the element or open markup. */
const cssText = (css: string) => css.replace(/</g, '\\3c ');

const safeImageUrl = (url: string) => {
  try {
    const u = new URL(url);
    return u.protocol === 'https:' || u.protocol === 'http:' ? u.href : '';
  } catch {
    return '';
  }
};

/** Content-Security-Policy of the page: inline styles only, images from anywhere over http(s), no scripts. */
export const consentPageCsp =
  "default-src 'none'; style-src 'unsafe-inline'; img-src https: http: data:; frame-ancestors 'none'; base-uri 'none'";

export function renderConsentPage(v: ConsentView): string {
  const b = v.branding;
  const primary = colour(b.primaryColor, '#1f6f5c');
  const logo = safeImageUrl(b.logoUrl);
  const scopeItems = v.scopes
    .map(
      (s) =>
        `<li><strong>${escapeHtml(s.friendlyName || s.name)}</strong> <code>${escapeHtml(s.name)}</code>${
          s.description ? `<br><span class="muted">${escapeHtml(s.description)}</span>` : ''
        }</li>`,
    )
    .join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Authorize ${escapeHtml(v.applicationName)} · ${escapeHtml(b.name)}</title>
<style>
body{font-family:system-ui,-apple-system,sans-serif;margin:0;background:#f5f6f7;color:#1d2327}
header{background:${primary};color:#fff;padding:1rem 1.5rem;display:flex;align-items:center;gap:.75rem}
header img{height:32px}
main{max-width:34rem;margin:2rem auto;background:#fff;border-radius:8px;padding:1.5rem 2rem;box-shadow:0 1px 3px rgba(0,0,0,.15)}
.muted{color:#5b6770;font-size:.9em}
ul{padding-left:1.2rem}li{margin:.5rem 0}
.actions{display:flex;gap:1rem;margin-top:1.5rem}
button{font-size:1rem;padding:.6rem 1.2rem;border-radius:6px;border:1px solid ${primary};cursor:pointer}
button.allow{background:${primary};color:#fff}button.deny{background:#fff;color:${primary}}
</style>
<style>${cssText(b.customCss)}</style>
</head><body>
<header>${logo ? `<img src="${escapeHtml(logo)}" alt="">` : ''}<span>${escapeHtml(b.name)}</span></header>
<main>
<h1>Authorize ${escapeHtml(v.applicationName)}</h1>
<p><strong>${escapeHtml(v.applicationName)}</strong> asks to use <strong>${escapeHtml(v.serviceName)}</strong> on your behalf.</p>
${scopeItems ? `<p>It will be able to:</p><ul id="scopes">${scopeItems}</ul>` : '<p>It asks for no particular permission.</p>'}
${v.offline ? '<p class="muted">It may keep this access while you are away, until you revoke it.</p>' : ''}
<div class="actions">
<form method="post" action="${escapeHtml(v.action)}/confirm"><input type="hidden" name="csrf" value="${escapeHtml(v.csrf)}"><button class="allow" type="submit" id="allow">Allow</button></form>
<form method="post" action="${escapeHtml(v.action)}/abort"><input type="hidden" name="csrf" value="${escapeHtml(v.csrf)}"><button class="deny" type="submit" id="deny">Deny</button></form>
</div>
</main></body></html>`;
}
