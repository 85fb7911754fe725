import type { ChildProcess } from 'node:child_process';

/** The next IPC message of `type` from a forked child, or a failure after `ms`. */
export function nextMessage<T>(child: ChildProcess, type: string, ms = 30_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${type} within ${ms} ms`)), ms);
    const listener = (message: unknown) => {
      if ((message as { type?: string }).type !== type) return;
      clearTimeout(timer);
      child.off('message', listener);
      resolve(message as T);
    };
    child.on('message', listener);
  });
}
