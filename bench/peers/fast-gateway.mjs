// The fastest Node gateway as a peer: fast-gateway (3.4.7: 5.x needs a fast-proxy-lite release the registry here
// does not have) on restana, with the equivalent of the Trellis chain's policies as route middlewares: a key check
// (the key in the same header, looked up in a Map of the same keys, each mapped to its application) and two rate
// limits counted per application with express-rate-limit, the middleware it is usually paired with (one per minute;
// the "month" one uses the longest window express-rate-limit's memory store accepts, 2^31 - 1 ms ≈ 24.9 days),
// sending the draft-8 RateLimit headers.
// `node bench/peers/fast-gateway.mjs <json: { port, upstream, keys }>` (keys: a JSON file of [key, application]
// pairs, written by bench/run.ts); prints `ready <port> <pid>`.
import { readFileSync } from 'node:fs';
import { ServerResponse } from 'node:http';
import { rateLimit } from 'express-rate-limit';
import fastGateway from 'fast-gateway';

// express-rate-limit's draft-8 headers (both limits, as Trellis sends them) use Express's `res.append`; restana's
// responses are Node's, which have `appendHeader`
ServerResponse.prototype.append = function append(name, value) {
  return this.appendHeader(name, value);
};

const o = JSON.parse(process.argv[2] ?? '{}');
const applications = new Map(JSON.parse(readFileSync(o.keys, 'utf8')));
const header = o.header.toLowerCase();

function keyCheck(req, res, next) {
  const key = req.headers[header];
  const application = key === undefined ? undefined : applications.get(key);
  if (application === undefined) {
    res.statusCode = key === undefined ? 401 : 403;
    res.setHeader('content-type', 'application/json');
    res.end('{"error":"invalid or missing key"}');
    return;
  }
  req.benchApplication = application;
  next();
}

const limit = (identifier, windowMs, max) =>
  rateLimit({
    identifier,
    windowMs,
    limit: max,
    keyGenerator: (req) => req.benchApplication,
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    validate: false,
  });

const server = fastGateway({
  routes: [
    {
      prefix: o.prefix,
      target: o.upstream,
      middlewares: [
        keyCheck,
        limit('minute', 60_000, 1_000_000_000),
        limit('month', 2 ** 31 - 1, 1_000_000_000_000),
      ],
    },
  ],
});
await server.start(o.port, '127.0.0.1');
process.stdout.write(`ready ${o.port} ${process.pid}\n`);
process.on('SIGTERM', () => {
  server.close().finally(() => process.exit(0));
});
