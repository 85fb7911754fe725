export { createDemoUpstream } from './demo-upstream.js';
export { type DemoSeed, seedDemo } from './seed-demo.js';
