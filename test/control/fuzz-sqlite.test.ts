/** The management API fuzzer's CI sample on SQLite (see fuzz-suite.ts). */
import { fuzzSuite } from './fuzz-suite.js';

fuzzSuite('sqlite');
