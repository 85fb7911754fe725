/**
 * The small API the demo service fronts: a quotes API, so a newcomer sees a real call go through the gateway.
 * It shows what the gateway adds: the secret token and forwarded headers arrive here, the consumer's key does not.
 */
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';

const quotes = [
  { id: 1, text: 'Make it work, make it right, make it fast.', author: 'Kent Beck' },
  { id: 2, text: 'Simplicity is prerequisite for reliability.', author: 'Edsger W. Dijkstra' },
  { id: 3, text: 'The best way to predict the future is to invent it.', author: 'Alan Kay' },
];

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function handle(req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://upstream');
  const seenByUpstream = {
    secretTokenPresent: typeof req.headers['x-trellis-secret'] === 'string',
    forwardedFor: req.headers['x-forwarded-for'] ?? null,
    requestId: req.headers['x-request-id'] ?? null,
  };
  if (req.method === 'GET' && url.pathname === '/quotes') {
    send(res, 200, { data: quotes, seenByUpstream });
    return;
  }
  const one = /^\/quotes\/(\d+)$/.exec(url.pathname);
  if (req.method === 'GET' && one) {
    const quote = quotes.find((q) => q.id === Number(one[1]));
    if (quote) send(res, 200, { ...quote, seenByUpstream });
    else send(res, 404, { error: 'no such quote' });
    return;
  }
  if (req.method === 'POST' && url.pathname === '/quotes') {
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
    });
    req.on('end', () => send(res, 201, { accepted: true, bytes: size, seenByUpstream }));
    return;
  }
  if (req.method === 'GET' && url.pathname === '/status') send(res, 200, { status: 'ok' });
  else send(res, 404, { error: 'not found' });
}

/** Creates the demo upstream server (not listening; the CLI listens). */
export function createDemoUpstream(): Server {
  return createServer(handle);
}
