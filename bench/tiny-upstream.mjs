// An upstream for bench/cpu-per-request.ts where nginx is not installed: a raw TCP server that answers every
// request head with the same small JSON response (what the nginx upstream of bench/run.ts returns), keep-alive,
// no body parsing (the bench sends GETs only). Cheap, so the proxy under test is what the CPU is spent on.
// `node bench/tiny-upstream.mjs [port]`; prints `ready <port> <pid>`.
import { createServer } from 'node:net';

const RESPONSE = Buffer.from(
  'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\nconnection: keep-alive\r\n\r\n{"ok":true}',
  'latin1',
);
const END = Buffer.from('\r\n\r\n', 'latin1');

const server = createServer((socket) => {
  socket.setNoDelay(true);
  let pending = Buffer.alloc(0);
  socket.on('data', (chunk) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    let from = 0;
    let answers = 0;
    for (;;) {
      const end = pending.indexOf(END, from);
      if (end === -1) break;
      answers++;
      from = end + 4;
    }
    pending = from === pending.length ? Buffer.alloc(0) : pending.subarray(from);
    if (answers === 1) socket.write(RESPONSE);
    else if (answers > 1) socket.write(Buffer.concat(Array.from({ length: answers }, () => RESPONSE)));
  });
  socket.on('error', () => socket.destroy());
});
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
  process.stdout.write(`ready ${server.address().port} ${process.pid}\n`);
});
process.on('SIGTERM', () => process.exit(0));
