/**
 * A cookie-keeping client for `app.inject`, like a browser without JavaScript: it stores cookies, reads the
 * CSRF token of the last page, and submits forms.
 */
import type { LightMyRequestResponse } from 'fastify';
import type { ControlApp } from '../../src/control/index.js';

/** Where an agent's requests come from: the socket address, and headers a proxy in front would add. */
export interface AgentOrigin {
  remoteAddress?: string;
  headers?: Record<string, string>;
}

export class WebAgent {
  readonly cookies = new Map<string, string>();
  lastHtml = '';

  constructor(
    private readonly app: ControlApp,
    private readonly from: AgentOrigin = {},
  ) {}

  private remember(res: LightMyRequestResponse): void {
    for (const c of res.cookies) {
      if (c.value === '' || (c.expires && c.expires.getTime() < Date.now())) this.cookies.delete(c.name);
      else this.cookies.set(c.name, c.value);
    }
    if (String(res.headers['content-type'] ?? '').startsWith('text/html')) this.lastHtml = res.body;
  }

  private cookieHeader(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  /** The `_csrf` value of the last HTML page. */
  csrf(): string {
    return /name="_csrf" value="([^"]+)"/.exec(this.lastHtml)?.[1] ?? '';
  }

  async get(url: string, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
    const res = await this.app.inject({
      method: 'GET',
      url,
      headers: { cookie: this.cookieHeader(), ...this.from.headers, ...headers },
      ...(this.from.remoteAddress && { remoteAddress: this.from.remoteAddress }),
    });
    this.remember(res);
    return res;
  }

  /**
   * Posts a form as a browser submits it: a 303 answer (POST → redirect → GET) is followed with a GET, and the
   * page reached is returned with the POST's own status as `posted`.
   */
  async submit(
    url: string,
    fields: Record<string, string | string[]>,
    options: { csrf?: string | null; headers?: Record<string, string> } = {},
  ): Promise<LightMyRequestResponse & { posted: number; location: string }> {
    const res = await this.post(url, fields, options);
    const location = String(res.headers.location ?? '');
    if (res.statusCode !== 303 || !location.startsWith('/')) {
      return Object.assign(res, { posted: res.statusCode, location: '' });
    }
    return Object.assign(await this.get(location), { posted: res.statusCode, location });
  }

  /** Posts a form; the CSRF token of the last page is added unless `csrf: null`. */
  async post(
    url: string,
    fields: Record<string, string | string[]>,
    options: { csrf?: string | null; headers?: Record<string, string> } = {},
  ): Promise<LightMyRequestResponse> {
    const params = new URLSearchParams();
    const token = options.csrf === undefined ? this.csrf() : options.csrf;
    if (token !== null) params.append('_csrf', token);
    for (const [k, v] of Object.entries(fields))
      for (const x of Array.isArray(v) ? v : [v]) params.append(k, x);
    const res = await this.app.inject({
      method: 'POST',
      url,
      headers: {
        cookie: this.cookieHeader(),
        'content-type': 'application/x-www-form-urlencoded',
        ...this.from.headers,
        ...options.headers,
      },
      ...(this.from.remoteAddress && { remoteAddress: this.from.remoteAddress }),
      payload: params.toString(),
    });
    this.remember(res);
    return res;
  }
}
