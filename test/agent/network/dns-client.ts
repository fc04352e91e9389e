// A DNS client for tests: one query over UDP (optionally with an EDNS0 payload size) or TCP, with dns-packet; and
// raw exchanges of bytes, for what a resolver would never send.
import dgram from 'node:dgram';
import net from 'node:net';
import packet, { type DecodedPacket, type RecordType } from 'dns-packet';

let nextId = 1;
/** One query over UDP (EDNS payload size when given) or TCP. */
export async function ask(port: number, name: string, type: RecordType, opts: { tcp?: boolean; edns?: number; host?: string } = {}): Promise<DecodedPacket & { rcode?: string }> {
  const host = opts.host ?? '127.0.0.1';
  const query = packet.encode({
    id: nextId++ & 0xffff, type: 'query', flags: packet.RECURSION_DESIRED, questions: [{ type, name, class: 'IN' }],
    ...(opts.edns ? { additionals: [{ type: 'OPT', name: '.', udpPayloadSize: opts.edns, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }] } : {}),
  });
  if (opts.tcp) {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port }, () => socket.write(framed(query)));
      let buf = Buffer.alloc(0);
      socket.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          socket.destroy();
          resolve(packet.decode(buf.subarray(2)));
        }
      });
      socket.on('error', reject);
      socket.setTimeout(10_000, () => reject(new Error(`no TCP answer for ${name}`)));
    });
  }
  const socket = dgram.createSocket('udp4');
  try {
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no UDP answer for ${name}`)), 10_000);
      socket.on('message', (msg) => {
        clearTimeout(timer);
        resolve(packet.decode(msg));
      });
      socket.send(query, port, host);
    });
  } finally {
    socket.close();
  }
}


/** Sends `messages` over UDP from one socket, in order, and resolves with the replies got until one has id `lastId`. */
export async function udpExchange(port: number, messages: Buffer[], lastId: number, host = '127.0.0.1'): Promise<Buffer[]> {
  const socket = dgram.createSocket('udp4');
  try {
    return await new Promise((resolve, reject) => {
      const got: Buffer[] = [];
      const timer = setTimeout(() => reject(new Error(`no UDP reply with id ${lastId}`)), 10_000);
      socket.on('message', (msg) => {
        got.push(msg);
        if (msg.length >= 2 && msg.readUInt16BE(0) === lastId) {
          clearTimeout(timer);
          resolve(got);
        }
      });
      for (const m of messages) socket.send(m, port, host);
    });
  } finally {
    socket.close();
  }
}

/** Writes `chunks` to one TCP connection as they are given and resolves with `count` replies, without their length prefix. */
export async function tcpExchange(port: number, chunks: Buffer[], count: number, host = '127.0.0.1'): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    socket.setNoDelay(true);
    const got: Buffer[] = [];
    let buf = Buffer.alloc(0);
    socket.on('connect', () => {
      // One write per chunk, each after the previous one was flushed, so that the server sees them apart.
      const next = (i: number): void => { if (i < chunks.length) socket.write(chunks[i]!, () => next(i + 1)); };
      next(0);
    });
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        got.push(buf.subarray(2, 2 + buf.readUInt16BE(0)));
        buf = buf.subarray(2 + buf.readUInt16BE(0));
      }
      if (got.length >= count) {
        socket.destroy();
        resolve(got);
      }
    });
    socket.on('error', reject);
    socket.setTimeout(10_000, () => { socket.destroy(); reject(new Error(`${got.length} of ${count} TCP replies`)); });
  });
}

/** `msg` with its 2-byte TCP length prefix. */
export function framed(msg: Buffer): Buffer {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(msg.length);
  return Buffer.concat([len, msg]);
}
