/**
 * The dashboard: traffic today and over 30 days, the error rate, the busiest hours of the day and days of the
 * week, and the applications that called most.
 */
import type { FastifyInstance } from 'fastify';
import { listAccounts, listApplications } from '../access/index.js';
import { getPlan } from '../catalog/index.js';
import { queryTraffic } from '../usage/index.js';
import type { ConsoleFace } from './console-face.js';

const hour = 3600_000;
const day = 24 * hour;
/** Top applications are ranked among this many most recent ones (one traffic query each). */
const rankedApplications = 100;
const weekdays = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];

export function dashboardRoutes(scope: FastifyInstance, face: ConsoleFace): void {
  const { db } = face;

  scope.get('/', async (req, reply) => {
    await face.requireAdmin(req);
    const now = face.cd.clock.now();
    const startOfToday = now - (now % day);
    const from30 = startOfToday - 29 * day;
    const [today, daily, hourly] = await Promise.all([
      queryTraffic(db, { granularity: 'hour', from: new Date(startOfToday), to: new Date(now + 1) }),
      queryTraffic(db, { granularity: 'day', from: new Date(from30), to: new Date(now + 1) }),
      queryTraffic(db, { granularity: 'hour', from: new Date(from30), to: new Date(now + 1) }),
    ]);
    const sum = (points: typeof daily, key: 'calls' | 'clientErrors' | 'serverErrors') =>
      points.reduce((s, p) => s + p[key], 0);
    const calls30 = sum(daily, 'calls');
    const byHour = Array.from({ length: 24 }, () => 0);
    for (const p of hourly) byHour[new Date(p.at).getUTCHours()]! += p.calls;
    const byWeekday = Array.from({ length: 7 }, () => 0);
    for (const p of daily) byWeekday[new Date(p.at).getUTCDay()]! += p.calls;

    const apps = (await listApplications(db, {}, { limit: 200 })).data.slice(-rankedApplications);
    const ranked = await Promise.all(
      apps.map(async (a) => {
        const t = await queryTraffic(db, {
          granularity: 'day',
          applicationId: a.id,
          from: new Date(from30),
          to: new Date(now + 1),
        });
        return { app: a, calls: t.reduce((s, p) => s + p.calls, 0) };
      }),
    );
    const top = ranked
      .filter((r) => r.calls > 0)
      .sort((a, b) => b.calls - a.calls)
      .slice(0, 10);

    // The inbox: what waits for the provider, each with its one-click answer (issue 13).
    const [pendingAccounts, pendingApps, recent] = await Promise.all([
      listAccounts(db, { state: 'pending' }, { limit: 50 }),
      listApplications(db, { state: 'pending' }, { limit: 50 }),
      listApplications(db, {}, { limit: 200 }),
    ]);
    const planRequests = await Promise.all(
      recent.data
        .filter((a) => a.requestedPlanId !== null)
        .map(async (a) => ({
          app: a,
          from: await getPlan(db, a.planId),
          to: await getPlan(db, a.requestedPlanId!),
        })),
    );
    return face.page(req, reply, 'dashboard', {
      title: 'Dashboard',
      inbox: { accounts: pendingAccounts.data, applications: pendingApps.data, planRequests },
      today: {
        calls: sum(today, 'calls'),
        errors: sum(today, 'clientErrors') + sum(today, 'serverErrors'),
        chart: {
          unit: 'hour',
          labels: today.map((p) => p.at),
          values: today.map((p) => p.calls),
          limit: null,
        },
      },
      month: {
        calls: calls30,
        clientErrors: sum(daily, 'clientErrors'),
        serverErrors: sum(daily, 'serverErrors'),
        errorRate: calls30 ? (sum(daily, 'clientErrors') + sum(daily, 'serverErrors')) / calls30 : 0,
        chart: {
          unit: 'day',
          labels: daily.map((p) => p.at),
          values: daily.map((p) => p.calls),
          limit: null,
        },
      },
      busiestHours: {
        unit: 'raw',
        labels: byHour.map((_, i) => `${String(i).padStart(2, '0')}:00`),
        values: byHour,
        limit: null,
      },
      busiestDays: { unit: 'raw', labels: weekdays, values: byWeekday, limit: null },
      top,
    });
  });
}
