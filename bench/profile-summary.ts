/**
 * Reads a V8 CPU profile (`node --cpu-prof`, a .cpuprofile JSON) and says where the time went: self time summed by
 * function and by area (a file of dist/ or src/, a package of node_modules, Node's internals, GC), as a share of the
 * busy time (idle excluded) and, given the number of requests the process served, in µs per request.
 *
 *   node --import tsx bench/profile-summary.ts <file.cpuprofile> [requests] [--top 25]
 *
 * `npm run bench -- --profile` writes the profiles and prints these summaries.
 */
import { readFileSync } from 'node:fs';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  /** Busy time (all samples but idle), µs. */
  busyUs: number;
  /** Whole profile, µs. */
  totalUs: number;
  functions: { name: string; us: number }[];
  areas: { name: string; us: number }[];
  text: string;
}

/** Where a script lives, in a few words: `gateway/pipeline.js`, `undici`, `node:internal/http`, … */
function areaOf(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native / V8 builtins)';
  const path = url.replace(/^file:\/\//, '');
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path);
  if (pkg) return pkg[1]!;
  const own = /\/(?:dist|src)\/(.+)$/.exec(path);
  if (own) return own[1]!;
  if (path.startsWith('node:')) {
    // node:internal/http/server → node:internal/http, node:_http_server stays
    const parts = path.split('/');
    return parts.length > 2 ? parts.slice(0, 2).join('/') : path;
  }
  const bench = /\/bench\/(.+)$/.exec(path);
  return bench ? `bench/${bench[1]}` : path;
}

function shortUrl(url: string): string {
  return url
    .replace(/^file:\/\//, '')
    .replace(/^.*\/node_modules\//, '')
    .replace(/^.*\/(dist|src)\//, '');
}

/**
 * `window`: only the samples taken between these two instants (µs of the monotonic clock V8 stamps samples with,
 * `process.hrtime.bigint() / 1000n` in any process of the machine), so start-up and idle gaps stay out.
 */
export function summariseProfile(
  file: string,
  requests = 0,
  top = 25,
  window?: { fromUs: number; toUs: number },
): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  // timeDeltas[i] is the time since the previous sample: charge it to sample i's node
  let at = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = Math.max(0, profile.timeDeltas[i] ?? 0);
    at += delta;
    if (window && (at < window.fromUs || at > window.toUs)) continue;
    const id = profile.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + delta);
  }
  const functions = new Map<string, number>();
  const areas = new Map<string, number>();
  let busyUs = 0;
  for (const [id, us] of selfUs) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    if (functionName === '(idle)') continue;
    busyUs += us;
    const name = `${functionName || '(anonymous)'}${url ? ` ${shortUrl(url)}:${lineNumber + 1}` : ''}`;
    functions.set(name, (functions.get(name) ?? 0) + us);
    const area = areaOf(url, functionName);
    areas.set(area, (areas.get(area) ?? 0) + us);
  }
  const sorted = (m: Map<string, number>) =>
    [...m].map(([name, us]) => ({ name, us })).sort((a, b) => b.us - a.us);
  const fns = sorted(functions);
  const ars = sorted(areas);
  const totalUs = window
    ? Math.min(window.toUs, profile.endTime) - Math.max(window.fromUs, profile.startTime)
    : profile.endTime - profile.startTime;
  const line = (name: string, us: number) =>
    `  ${((us / busyUs) * 100).toFixed(1).padStart(5)} %${requests > 0 ? `  ${(us / requests).toFixed(2).padStart(6)} µs/req` : ''}  ${name}`;
  const text = [
    `${file}: busy ${(busyUs / 1e6).toFixed(2)} s of ${(totalUs / 1e6).toFixed(2)} s${requests > 0 ? `, ${requests} requests, ${(busyUs / requests).toFixed(1)} µs of busy CPU per request` : ''}`,
    'self time by area:',
    ...ars.slice(0, top).map((a) => line(a.name, a.us)),
    'self time by function:',
    ...fns.slice(0, top).map((f) => line(f.name, f.us)),
  ].join('\n');
  return { busyUs, totalUs, functions: fns, areas: ars, text };
}

if (process.argv[1]?.endsWith('profile-summary.ts')) {
  const argv = process.argv.slice(2);
  const topAt = argv.indexOf('--top');
  const top = topAt === -1 ? 25 : Number(argv.splice(topAt, 2)[1]);
  const [file, requests] = argv;
  if (!file) {
    console.error(
      'usage: node --import tsx bench/profile-summary.ts <file.cpuprofile> [requests] [--top 25]',
    );
    process.exit(2);
  }
  console.log(summariseProfile(file, Number(requests ?? 0), top).text);
}
