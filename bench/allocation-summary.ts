/**
 * Reads a sampling heap profile written by bench/gateway-server.mjs with `allocProfile` (the inspector's sampling
 * heap profiler with the objects collected by GC kept, so short-lived garbage counts) and says how many bytes a
 * request allocates, by function and by the nearest frame of Trellis's own code (dist/) on the stack.
 *
 *   node --import tsx bench/allocation-summary.ts <file.heapprofile> <requests> [--top 25]
 *
 * `bench/cpu-per-request.ts --alloc-profile <dir>` writes the profiles and prints these summaries.
 */
import { readFileSync } from 'node:fs';

interface HeapNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: HeapNode[];
}

function nameOf(frame: HeapNode['callFrame']): string {
  const where = frame.url.replace(/^file:\/\//, '').replace(/^.*\/(?:dist|node_modules)\//, '');
  return `${frame.functionName || '(anonymous)'} ${where}:${frame.lineNumber + 1}`;
}

export function summariseAllocations(file: string, requests: number, top = 25): string {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as { head: HeapNode };
  const self = new Map<string, number>();
  const own = new Map<string, number>();
  let total = 0;
  const walk = (node: HeapNode, trellis: string | null): void => {
    const name = nameOf(node.callFrame);
    const nearest = node.callFrame.url.includes('/dist/') ? name : trellis;
    total += node.selfSize;
    self.set(name, (self.get(name) ?? 0) + node.selfSize);
    if (nearest !== null) own.set(nearest, (own.get(nearest) ?? 0) + node.selfSize);
    for (const child of node.children) walk(child, nearest);
  };
  walk(profile.head, null);
  const lines = [`${Math.round(total / requests)} bytes allocated per request (sampled)`];
  for (const [title, m] of [
    ['by function', self],
    ['by the nearest frame of Trellis code', own],
  ] as const) {
    lines.push(`  ${title}:`);
    for (const [name, bytes] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top))
      lines.push(`    ${String(Math.round(bytes / requests)).padStart(6)} B  ${name}`);
  }
  return lines.join('\n');
}

if (process.argv[1]?.endsWith('allocation-summary.ts')) {
  const [file, requests] = process.argv.slice(2);
  const topAt = process.argv.indexOf('--top');
  if (!file || !requests) {
    console.error(
      'usage: node --import tsx bench/allocation-summary.ts <file.heapprofile> <requests> [--top 25]',
    );
    process.exit(2);
  }
  console.log(
    summariseAllocations(file, Number(requests), topAt === -1 ? 25 : Number(process.argv[topAt + 1])),
  );
}
