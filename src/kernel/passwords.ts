import argon2 from 'argon2';

/** Passwords are hashed with argon2id (OWASP: m=19 MiB, t=2, p=1 is the floor; we use the library's defaults). */
export function hashPassword(password: string): Promise<string> {
  return argon2.hash(password, { type: argon2.argon2id });
}

export async function verifyPassword(hash: string, password: string): Promise<boolean> {
  try {
    return await argon2.verify(hash, password);
  } catch {
    return false;
  }
}
