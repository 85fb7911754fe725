/**
 * Reads a declarative configuration file (YAML or JSON) and validates it, reporting problems with their line.
 */
import { readFile } from 'node:fs/promises';
import Ajv from 'ajv';
import { LineCounter, parseDocument } from 'yaml';
import { DeclarativeConfig, repeatedRules } from '../catalog/index.js';
import { CliError, exitCodes } from './cli-error.js';

export async function readDeclarativeFile(path: string): Promise<DeclarativeConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as { code?: string }).code;
    throw new CliError(
      exitCodes.badInput,
      code === 'ENOENT' ? `No such file: ${path}` : `Cannot read ${path}: ${(err as Error).message}`,
    );
  }
  return parseDeclarative(text, path);
}

/** Parses and validates; every problem is named with `file:line:column`. */
export function parseDeclarative(text: string, name: string): DeclarativeConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  if (doc.errors.length > 0) {
    const lines = doc.errors.map((e) => {
      const pos = lineCounter.linePos(e.pos[0]);
      return `${name}:${pos.line}:${pos.col}: ${e.message.split('\n')[0]}`;
    });
    throw new CliError(exitCodes.badInput, `Invalid YAML:\n${lines.join('\n')}`);
  }
  const value: unknown = doc.toJS();
  /** `file:line:column` of a place in the document (its start when the place is not in it). */
  const placeOf = (path: (string | number)[]) => {
    const node = doc.getIn(path, true) as { range?: [number, number, number] } | undefined;
    const pos = node?.range ? lineCounter.linePos(node.range[0]) : { line: 1, col: 1 };
    return `${name}:${pos.line}:${pos.col}`;
  };
  const ajv = new Ajv.default({ allErrors: true, strict: false });
  const validate = ajv.compile(DeclarativeConfig);
  if (validate(value)) {
    const config = value as DeclarativeConfig;
    // what the schema cannot say: a mapping rule declared twice in a service (it would count each call twice)
    const repeated = repeatedRules(config);
    if (repeated.length === 0) return config;
    const lines = repeated.map((p) => `${placeOf(p.path)}: ${p.path.join('.')}: ${p.message}`);
    throw new CliError(exitCodes.badInput, `Invalid configuration:\n${lines.join('\n')}`);
  }
  const lines = (validate.errors ?? []).map((e) => {
    const path = e.instancePath
      .split('/')
      .filter(Boolean)
      .map((p) => (/^\d+$/.test(p) ? Number(p) : p));
    const params = e.params as Record<string, unknown>;
    const field = [
      ...path,
      ...(params.additionalProperty ? [String(params.additionalProperty)] : []),
      ...(params.missingProperty ? [String(params.missingProperty)] : []),
    ].join('.');
    const message = params.additionalProperty
      ? 'unknown field'
      : params.missingProperty
        ? 'is required'
        : e.message;
    return `${placeOf(path)}: ${field || '(document)'}: ${message}`;
  });
  throw new CliError(exitCodes.badInput, `Invalid configuration:\n${[...new Set(lines)].join('\n')}`);
}
