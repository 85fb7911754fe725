// A load client for bench/cpu-per-request.ts where wrk is not installed: `concurrency` keep-alive connections,
// each sending one GET at a time (a key of the list per request, in rotation), raw sockets so the client itself
// stays cheap. Long-lived: each line `run <n>` on stdin sends exactly n requests and prints
// `done <n> <non-2xx> <ms>`; `quit` ends it. The measured process's CPU time is read by the driver around a run.
// `node bench/load.mjs <json: { url, header?, keysFile?, concurrency }>`; prints `ready` once connected.
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { createInterface } from 'node:readline';

const o = JSON.parse(process.argv[2] ?? '{}');
const url = new URL(o.url);
const keys = o.keysFile ? readFileSync(o.keysFile, 'utf8').split('\n').filter(Boolean) : [''];
const requests = keys.map((key) =>
  Buffer.from(
    `GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\n${o.header && key ? `${o.header}: ${key}\r\n` : ''}\r\n`,
    'latin1',
  ),
);
const END = Buffer.from('\r\n\r\n', 'latin1');
const LENGTH = Buffer.from('\r\ncontent-length:', 'latin1');

let next = 0;
let toSend = 0;
let outstanding = 0;
let bad = 0;
let finished = null;

/** One connection: a request in flight at a time, the next sent as soon as the response is whole. */
function open() {
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname, () => resolve(conn));
    socket.setNoDelay(true);
    let pending = Buffer.alloc(0);
    let bodyLeft = -1;
    const conn = {
      busy: false,
      send() {
        if (toSend === 0) {
          conn.busy = false;
          return;
        }
        toSend--;
        conn.busy = true;
        socket.write(requests[next++ % requests.length]);
      },
    };
    socket.on('error', reject);
    socket.on('close', () => {
      if (finished) {
        console.error('load: a connection closed during a run');
        process.exit(1);
      }
    });
    socket.on('data', (chunk) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      for (;;) {
        if (bodyLeft === -1) {
          const end = pending.indexOf(END);
          if (end === -1) return;
          const head = pending
            .subarray(0, end + 2)
            .toString('latin1')
            .toLowerCase();
          if (head.charCodeAt(9) !== 50) bad++; // status not 2xx
          const at = head.indexOf(LENGTH.toString('latin1'));
          bodyLeft = at === -1 ? 0 : Number.parseInt(head.slice(at + LENGTH.length), 10);
          pending = pending.subarray(end + 4);
        }
        if (pending.length < bodyLeft) return;
        pending = pending.subarray(bodyLeft);
        bodyLeft = -1;
        outstanding--;
        if (outstanding === 0) {
          conn.busy = false;
          const done = finished;
          finished = null;
          done?.();
          return;
        }
        conn.send();
      }
    });
  });
}

const conns = await Promise.all(Array.from({ length: o.concurrency ?? 64 }, open));
process.stdout.write('ready\n');

function run(n) {
  return new Promise((resolve) => {
    bad = 0;
    toSend = n;
    outstanding = n;
    finished = resolve;
    for (const c of conns) c.send();
  });
}

for await (const line of createInterface({ input: process.stdin })) {
  const [cmd, arg] = line.trim().split(' ');
  if (cmd === 'quit') break;
  if (cmd !== 'run') continue;
  const n = Number(arg);
  const started = performance.now();
  await run(n);
  process.stdout.write(`done ${n} ${bad} ${(performance.now() - started).toFixed(1)}\n`);
}
process.exit(0);
