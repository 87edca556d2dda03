/** A worker's configuration: JSON in argv[2], or `@file` holding it when it is too long for a command line. */
import { readFileSync } from 'node:fs';

export function workerConfig<T>(): T {
  const arg = process.argv[2] ?? '{}';
  return JSON.parse(arg.startsWith('@') ? readFileSync(arg.slice(1), 'utf8') : arg) as T;
}
