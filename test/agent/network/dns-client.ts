// A DNS client for tests: one query over UDP (optionally with an EDNS0 payload size) or TCP, with dns-packet.
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
      const socket = net.connect({ host, port }, () => {
        const len = Buffer.alloc(2);
        len.writeUInt16BE(query.length);
        socket.write(Buffer.concat([len, query]));
      });
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

