// An HTTP request as a client may really send it, which fetch refuses to: a body on GET or
// DELETE, a chunked body without Content-Length, header values fetch would reject.

import { request } from "node:http";

export interface RawRequest {
  method: string;
  headers?: Record<string, string>;
  body?: string | Uint8Array;
  /** Send the body chunked (no Content-Length), in pieces of this many bytes. */
  chunkBytes?: number;
}

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

export function rawRequest(url: string, init: RawRequest): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const body = typeof init.body === "string" ? Buffer.from(init.body) : init.body;
    const headers: Record<string, string | number> = { ...init.headers };
    if (body !== undefined && init.chunkBytes === undefined)
      headers["content-length"] = body.length;
    // A connection of its own: a body the server leaves unread must not spill into the next request.
    const req = request(url, { method: init.method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          text: Buffer.concat(chunks).toString("utf8"),
        }),
      );
      res.on("error", reject);
    });
    req.on("error", reject);
    if (body !== undefined && init.chunkBytes !== undefined) {
      for (let at = 0; at < body.length; at += init.chunkBytes) {
        req.write(body.subarray(at, at + init.chunkBytes));
      }
    } else if (body !== undefined) {
      req.write(body);
    }
    req.end();
  });
}
