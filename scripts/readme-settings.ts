// Rewrites the configuration table of the README from src/config (run: npm run docs:settings).
import { readFileSync, writeFileSync } from 'node:fs';
import { settingsTable } from '../src/config/index.js';
const p = 'README.md';
const s = readFileSync(p, 'utf8');
const start = s.indexOf('<!-- settings:start');
const startEnd = s.indexOf('\n', start) + 1;
const end = s.indexOf('<!-- settings:end -->');
writeFileSync(p, s.slice(0, startEnd) + settingsTable() + '\n' + s.slice(end));
