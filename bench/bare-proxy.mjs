// The baseline: a bare Node reverse proxy (node:http + the gateway's undici pool relay, built: dist/) with no policy
// at all: one pass over the request headers (hop-by-hop and Host dropped), the relay, nothing else. It uses the same
// relay as the gateway, so the ratio measures what the policies cost.
// `node bench/bare-proxy.mjs <port> <upstream>` (no TypeScript loader); prints `ready <port> <pid>`.
import { createServer } from 'node:http';
import { UpstreamProxy, hopByHopHeaders } from '../dist/gateway/proxy.js';

const port = Number(process.argv[2] ?? 0);
const origin = new URL(process.argv[3] ?? 'http://127.0.0.1:9').origin;
const proxy = new UpstreamProxy({ connectTimeoutMs: 5000, responseTimeoutMs: 30_000 });

const server = createServer((req, res) => {
  const headers = [];
  const raw = req.rawHeaders;
  let hasBody = false;
  for (let i = 0; i < raw.length; i += 2) {
    const lower = raw[i].toLowerCase();
    if (lower === 'content-length' || lower === 'transfer-encoding') hasBody = true;
    if (hopByHopHeaders.has(lower) || lower === 'host') continue;
    headers.push(raw[i], raw[i + 1]);
  }
  const relay = proxy.forward({
    origin,
    path: req.url ?? '/',
    method: req.method ?? 'GET',
    headers,
    body: hasBody ? req : null,
    res,
    responseHeaders: {},
    onEnd() {},
    onFail() {
      res.writeHead(502).end();
    },
  });
  res.on('close', () => relay.clientGone());
});
server.keepAliveTimeout = 65_000;
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`ready ${server.address().port} ${process.pid}\n`);
});
process.on('SIGTERM', () => {
  server.close();
  void proxy.close().finally(() => process.exit(0));
});
