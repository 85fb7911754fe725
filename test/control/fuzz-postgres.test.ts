/** The management API fuzzer's CI sample on PostgreSQL (see fuzz-suite.ts). */
import { fuzzSuite } from './fuzz-suite.js';

fuzzSuite('postgres');
