// The Node API-management peer: express-gateway (1.16, the last release) with its own key-auth and rate-limit
// policies in front of the bench's upstream. bench/run.ts writes its configuration directory (gateway.config.json:
// the pipeline key-auth → rate-limit per minute → rate-limit per month → proxy; system.config.json: the emulated,
// in-process Redis, its default; the models) and the keys (keys.json: [keyId, keySecret] pairs).
// express-gateway's key-auth reads `keyId:keySecret` from the header, so its key i is the Trellis key i, a colon and
// a secret; each key has its own consumer (user), and the limits count per consumer as Trellis counts per application.
// `node bench/peers/express-gateway.mjs <json: { dir }>`; prints `ready <port> <pid>` once the keys are in.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const require = createRequire(import.meta.url);
const o = JSON.parse(process.argv[2] ?? '{}');
process.env.EG_CONFIG_DIR = o.dir;
process.env.LOG_LEVEL = 'error';

const gateway = require('express-gateway');
await gateway().load(o.dir).run();
const services = require('express-gateway/lib/services');
const keys = JSON.parse(readFileSync(join(o.dir, 'keys.json'), 'utf8'));
for (let i = 0; i < keys.length; i++) {
  const [keyId, keySecret] = keys[i];
  const user = await services.user.insert({ username: `bench${i}`, firstname: 'Bench', lastname: `${i}` });
  await services.credential.insertCredential(user.id, 'key-auth', { keyId, keySecret });
}
const port = JSON.parse(readFileSync(join(o.dir, 'gateway.config.json'), 'utf8')).http.port;
process.stdout.write(`ready ${port} ${process.pid}\n`);
process.on('SIGTERM', () => process.exit(0));
