/** Real small images and multipart forms for the certification evidence tests. */
import { crc32, deflateSync } from 'node:zlib';
import type { WebAgent } from '../portal/web-agent.js';
import type { Programme } from '../programmes/programme-harness.js';

function chunk(type: string, data: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

/** A valid PNG (RFC 2083) of one colour, as a screenshot tool would write it. */
export function makePng(
  width: number,
  height: number,
  rgb: [number, number, number] = [30, 120, 200],
): Buffer {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8); // 8-bit RGB, deflate, no filter method variants, no interlace
  const row = Buffer.concat([Buffer.from([0]), Buffer.from(Array.from({ length: width }, () => rgb).flat())]);
  const pixels = Buffer.concat(Array.from({ length: height }, () => row));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(pixels)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** A form as a browser sends `enctype="multipart/form-data"`: its body and content type (with the boundary). */
export async function multipartForm(
  fields: Record<string, string>,
  file?: { name: string; filename: string; type: string; bytes: Buffer },
): Promise<{ body: Buffer; contentType: string }> {
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  if (file) form.append(file.name, new Blob([file.bytes], { type: file.type }), file.filename);
  const request = new Request('http://form.test/', { method: 'POST', body: form });
  return {
    body: Buffer.from(await request.arrayBuffer()),
    contentType: request.headers.get('content-type') ?? '',
  };
}

/**
 * Uploads `bytes` as the evidence of `item` from the certification page the agent is on (its CSRF token), as the
 * portal's form does; the answer is the POST's (303 when stored).
 */
export async function uploadFromPortal(
  p: Programme,
  agent: WebAgent,
  appId: string,
  runId: string,
  item: string,
  file: { filename: string; type: string; bytes: Buffer },
  csrf = agent.csrf(),
) {
  const form = await multipartForm({ _csrf: csrf, run: runId, item }, { name: 'file', ...file });
  const res = await p.control.inject({
    method: 'POST',
    url: `/apps/${appId}/certification/evidence`,
    headers: {
      cookie: [...agent.cookies].map(([k, v]) => `${k}=${v}`).join('; '),
      'content-type': form.contentType,
    },
    payload: form.body,
  });
  // the flash the page shows after the redirect travels in a cookie, as for the agent's own forms
  for (const c of res.cookies) if (c.value !== '') agent.cookies.set(c.name, c.value);
  return res;
}
