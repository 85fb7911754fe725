/**
 * The console application page's health panel (issue 10): the last 24 hours as the partner saw them, overall and
 * per route (mapping rule) — calls, p50/p95/p99 within the histogram's ±9.6 %, and the shares of 4xx, 429 and 5xx
 * — from calls recorded with known latencies and statuses.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccount, createApplication } from '../../src/access/index.js';
import { createMappingRule } from '../../src/catalog/index.js';
import { systemActor } from '../../src/events/index.js';
import { UsageRecorder } from '../../src/usage/index.js';
import { type PortalHarness, startPortal } from '../portal/portal-harness.js';

describe('console health panel', () => {
  let h: PortalHarness;
  let appId: string;
  let searchRule: string;
  let createRule: string;

  beforeAll(async () => {
    h = await startPortal();
    const deps = { db: h.store.db, clock: h.clock };
    const account = await createAccount(deps, systemActor, { name: 'Health Co' });
    const app = await createApplication(deps, systemActor, {
      accountId: account.id,
      serviceId: h.serviceId,
      planId: h.plans.free,
      name: 'Healthy',
    });
    appId = app.id;
    searchRule = (
      await createMappingRule(deps, systemActor, h.serviceId, {
        httpMethod: 'GET',
        pattern: '/search',
        metricId: h.hitsId,
      })
    ).id;
    createRule = (
      await createMappingRule(deps, systemActor, h.serviceId, {
        httpMethod: 'POST',
        pattern: '/orders',
        metricId: h.hitsId,
      })
    ).id;
    const recorder = new UsageRecorder({ db: h.store.db, clock: h.clock, flushIntervalMs: 0 });
    const record = (route: string, method: string, status: number, latencyMs: number) =>
      recorder.record({
        at: h.clock.now(),
        serviceId: h.serviceId,
        applicationId: appId,
        accountId: app.accountId,
        metrics: [],
        status,
        latencyMs,
        bytesIn: 0,
        bytesOut: 0,
        endUser: null,
        clientIp: '127.0.0.1',
        method,
        route,
        retryAfterS: status === 429 ? 10 : 0,
      });
    // /search: 100 calls, 90 at 10 ms and 10 at 200 ms; 20 of them 429
    for (let i = 0; i < 100; i++) record(searchRule, 'GET', i < 20 ? 429 : 200, i < 90 ? 10 : 200);
    // /orders: 10 calls at 50 ms, 2 of them 400 and 1 of them 503
    for (let i = 0; i < 10; i++) record(createRule, 'POST', i < 2 ? 400 : i === 2 ? 503 : 201, 50);
    await recorder.close();
  });
  afterAll(() => h.close());

  it('shows calls, p50/p95/p99 and the 4xx/429/5xx shares per route', async () => {
    const admin = h.agent();
    await admin.get('/admin/login');
    expect(
      (await admin.post('/admin/login', { email: h.adminEmail, password: h.adminPassword })).statusCode,
    ).toBe(303);
    const page = await admin.get(`/admin/applications/${appId}`);
    expect(page.statusCode).toBe(200);
    const row = (route: string) => {
      const m = new RegExp(`<tr data-route="${route}">(.*?)</tr>`).exec(page.body);
      expect(m).not.toBeNull();
      return [...(m?.[1] ?? '').matchAll(/<t[dh][^>]*>(.*?)<\/t[dh]>/g)].map((c) => c[1]);
    };
    const near = (text: string | undefined, ms: number) => {
      const v = Number(text);
      expect(Math.abs(v - ms) / ms).toBeLessThanOrEqual(0.096);
    };
    const search = row(searchRule);
    expect(search[0]).toBe('GET /search');
    expect(search[1]).toBe('100');
    near(search[2], 10);
    near(search[3], 200);
    near(search[4], 200);
    expect(search.slice(5)).toEqual(['0.0 %', '20.0 %', '0.0 %']);
    const orders = row(createRule);
    expect(orders[0]).toBe('POST /orders');
    expect(orders[1]).toBe('10');
    for (const cell of orders.slice(2, 5)) near(cell, 50);
    expect(orders.slice(5)).toEqual(['20.0 %', '0.0 %', '10.0 %']);
    // overall: 110 calls
    expect(page.body).toMatch(/data-testid="health">\s*110 calls · latency p50/);
  });
});
