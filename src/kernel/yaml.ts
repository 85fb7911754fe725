/**
 * Reading YAML (or JSON, which YAML includes) that a client sent: OpenAPI documents, by the management API and
 * the console. The yaml library composes values recursively, one call per nesting level: a document nested
 * thousands deep exhausts the stack, and near the stack's end V8 may abort the whole process (a regexp compiled
 * there fails "out of memory"), which no `catch` can stop. So the nesting is measured first, on the parser's
 * syntax tree (built without recursion) with a walk of our own stack, and a deeper document is refused.
 */
import { Parser, parse } from 'yaml';
import { invalid } from './errors.js';

/** Deeper than any real OpenAPI document; far from where the yaml library's recursion gets dangerous. */
export const maxYamlNesting = 64;

interface CstNode {
  type?: string;
  value?: CstNode;
  key?: CstNode;
  items?: { key?: CstNode | null; value?: CstNode | null }[];
}

const collections = new Set(['block-map', 'block-seq', 'flow-collection']);

/** Whether a YAML text nests collections more than `max` levels deep. */
export function yamlNestsDeeperThan(text: string, max: number): boolean {
  for (const doc of new Parser().parse(text)) {
    const stack: [CstNode, number][] = [[doc as CstNode, 0]];
    while (stack.length > 0) {
      const [node, outer] = stack.pop()!;
      const depth = node.type && collections.has(node.type) ? outer + 1 : outer;
      if (depth > max) return true;
      if (node.value) stack.push([node.value, depth]);
      for (const item of node.items ?? []) {
        if (item.key) stack.push([item.key, depth]);
        if (item.value) stack.push([item.value, depth]);
      }
    }
  }
  return false;
}

/**
 * Parses a client's YAML or JSON text, or throws `validation_failed` naming `field`: too deep, or not YAML.
 * The parser's warnings (unknown tags, versions) are the document's, not the server's: none reach the process.
 */
export function readClientYaml(text: string, field: string): unknown {
  if (yamlNestsDeeperThan(text, maxYamlNesting)) {
    throw invalid([{ field, message: `is nested more than ${maxYamlNesting} levels deep` }]);
  }
  try {
    return parse(text, { logLevel: 'error' });
  } catch (err) {
    throw invalid([{ field, message: `not JSON or YAML: ${(err as Error).message.split('\n')[0]}` }]);
  }
}
