// The pod sandbox image, made on the node itself: no registry, no compiler (a Pi has neither to spare).
// The image holds one file, /pause, a hand-assembled static ELF of under 200 bytes that
//   1. blocks SIGTERM and SIGINT (rt_sigprocmask),
//   2. waits for one of them (rt_sigtimedwait, retried on EINTR),
//   3. exits 0 (exit_group).
// Blocking instead of installing handlers matters: as PID 1 of its namespace, a process with the default
// disposition never receives SIGTERM at all, but a blocked signal is queued and can be waited for.
// Every other signal keeps its default disposition, which for PID 1 means it is ignored.

export const PAUSE_IMAGE = 'flotilla/pause:1';
export const PAUSE_COMMAND = ['/pause'];

const LOAD_ADDRESS = 0x400000n;
const ELF_HEADER_SIZE = 64;
const PROGRAM_HEADER_SIZE = 56;
const CODE_OFFSET = ELF_HEADER_SIZE + PROGRAM_HEADER_SIZE;
/** Signal set {SIGINT (2), SIGTERM (15)}: bit (signo - 1). */
const WAITED_SIGNALS = (1n << 1n) | (1n << 14n);
/** Code layout shared by both machines: the signal set sits at this offset from the first instruction. */
const SET_OFFSET = 64;

export type PauseArch = 'amd64' | 'arm64';

/** The x86-64 program; instruction offsets in the comments, `set` at 64. */
function amd64Code(): Uint8Array {
  const leaRel = (nextIp: number) => le32(SET_OFFSET - nextIp);
  const code = [
    0xb8, ...le32(14),                 //  0 mov eax, SYS_rt_sigprocmask
    0x31, 0xff,                        //  5 xor edi, edi            (SIG_BLOCK)
    0x48, 0x8d, 0x35, ...leaRel(14),   //  7 lea rsi, [rip + set]
    0x31, 0xd2,                        // 14 xor edx, edx            (no old set)
    0x41, 0xba, ...le32(8),            // 16 mov r10d, 8             (sigset size)
    0x0f, 0x05,                        // 22 syscall
    0xb8, ...le32(128),                // 24 loop: mov eax, SYS_rt_sigtimedwait
    0x48, 0x8d, 0x3d, ...leaRel(36),   // 29 lea rdi, [rip + set]
    0x31, 0xf6,                        // 36 xor esi, esi            (no siginfo)
    0x31, 0xd2,                        // 38 xor edx, edx            (no timeout)
    0x41, 0xba, ...le32(8),            // 40 mov r10d, 8
    0x0f, 0x05,                        // 46 syscall
    0x85, 0xc0,                        // 48 test eax, eax
    0x78, (24 - 52) & 0xff,            // 50 js loop                 (-EINTR: wait again)
    0xb8, ...le32(231),                // 52 mov eax, SYS_exit_group
    0x31, 0xff,                        // 57 xor edi, edi            (status 0)
    0x0f, 0x05,                        // 59 syscall
    0xcc, 0xcc, 0xcc,                  // 61 int3 padding up to set
  ];
  return withSignalSet(code);
}

/** The AArch64 program: fixed 4-byte instructions, `set` at 64. */
function arm64Code(): Uint8Array {
  const movz = (rd: number, imm16: number) => 0xd2800000 | (imm16 << 5) | rd;
  const adr = (rd: number, at: number) => {
    const imm = SET_OFFSET - at;
    return 0x10000000 | ((imm & 3) << 29) | ((imm >> 2) << 5) | rd;
  };
  const svc0 = 0xd4000001;
  // tbnz w0, #31, label: branch when the result is negative (an -errno).
  const tbnzSign = (at: number, target: number) => 0x37000000 | (31 << 19) | ((((target - at) >> 2) & 0x3fff) << 5);
  const words = [
    movz(0, 0),        //  0 x0 = SIG_BLOCK
    adr(1, 4),         //  4 x1 = &set
    movz(2, 0),        //  8 x2 = NULL (no old set)
    movz(3, 8),        // 12 x3 = sigset size
    movz(8, 135),      // 16 x8 = SYS_rt_sigprocmask
    svc0,              // 20
    adr(0, 24),        // 24 loop: x0 = &set
    movz(1, 0),        // 28 x1 = NULL (no siginfo)
    movz(2, 0),        // 32 x2 = NULL (no timeout)
    movz(3, 8),        // 36 x3 = sigset size
    movz(8, 137),      // 40 x8 = SYS_rt_sigtimedwait
    svc0,              // 44
    tbnzSign(48, 24),  // 48 negative: wait again
    movz(0, 0),        // 52 x0 = status 0
    movz(8, 94),       // 56 x8 = SYS_exit_group
    svc0,              // 60
  ];
  return withSignalSet(words.flatMap((w) => le32(w)));
}

function withSignalSet(code: number[]): Uint8Array {
  if (code.length !== SET_OFFSET) throw new Error(`pause program is ${code.length} bytes, expected ${SET_OFFSET} before the signal set`);
  const out = new Uint8Array(SET_OFFSET + 8);
  out.set(code);
  new DataView(out.buffer).setBigUint64(SET_OFFSET, WAITED_SIGNALS, true);
  return out;
}

/** A complete static ELF64 executable: header, one PT_LOAD segment mapping the whole file read+execute, code. */
export function pauseElf(arch: PauseArch): Uint8Array {
  const code = arch === 'amd64' ? amd64Code() : arm64Code();
  const size = CODE_OFFSET + code.length;
  const elf = new Uint8Array(size);
  const v = new DataView(elf.buffer);
  elf.set([0x7f, 0x45, 0x4c, 0x46, 2 /* 64-bit */, 1 /* little endian */, 1 /* version */, 0 /* System V */]);
  v.setUint16(16, 2, true); // ET_EXEC
  v.setUint16(18, arch === 'amd64' ? 62 : 183, true); // EM_X86_64 / EM_AARCH64
  v.setUint32(20, 1, true);
  v.setBigUint64(24, LOAD_ADDRESS + BigInt(CODE_OFFSET), true); // entry
  v.setBigUint64(32, BigInt(ELF_HEADER_SIZE), true); // program headers right after this header
  v.setUint16(52, ELF_HEADER_SIZE, true);
  v.setUint16(54, PROGRAM_HEADER_SIZE, true);
  v.setUint16(56, 1, true);
  const ph = ELF_HEADER_SIZE;
  v.setUint32(ph, 1, true); // PT_LOAD
  v.setUint32(ph + 4, 5, true); // PF_R | PF_X
  v.setBigUint64(ph + 16, LOAD_ADDRESS, true); // vaddr (offset 0 maps the headers too)
  v.setBigUint64(ph + 24, LOAD_ADDRESS, true); // paddr
  v.setBigUint64(ph + 32, BigInt(size), true); // filesz
  v.setBigUint64(ph + 40, BigInt(size), true); // memsz
  v.setBigUint64(ph + 48, 0x1000n, true); // align
  elf.set(code, CODE_OFFSET);
  return elf;
}

/** A POSIX ustar archive holding one executable file: what `docker import` takes as a root filesystem. */
export function singleFileTar(name: string, content: Uint8Array, mode = 0o755): Uint8Array {
  if (name.length > 99) throw new Error(`tar member name "${name}" is longer than 99 bytes`);
  const header = new Uint8Array(512);
  const put = (offset: number, text: string) => header.set(new TextEncoder().encode(text), offset);
  const octal = (n: number, width: number) => n.toString(8).padStart(width - 1, '0') + '\0';
  put(0, name);
  put(100, octal(mode, 8));
  put(108, octal(0, 8));
  put(116, octal(0, 8));
  put(124, octal(content.length, 12));
  put(136, octal(0, 12));
  put(148, '        '); // checksum is computed with its own field as spaces
  put(156, '0');
  put(257, 'ustar\0');
  put(263, '00');
  const sum = header.reduce((a, b) => a + b, 0);
  put(148, sum.toString(8).padStart(6, '0') + '\0 ');
  const body = Math.ceil(content.length / 512) * 512;
  const tar = new Uint8Array(512 + body + 1024); // two zero blocks end the archive
  tar.set(header);
  tar.set(content, 512);
  return tar;
}

/** The node's architecture in the names Docker and Kubernetes use, or undefined where no pause program exists. */
export function pauseArchOf(nodeArch: string): PauseArch | undefined {
  if (nodeArch === 'x64' || nodeArch === 'amd64' || nodeArch === 'x86_64') return 'amd64';
  if (nodeArch === 'arm64' || nodeArch === 'aarch64') return 'arm64';
  return undefined;
}

function le32(n: number): number[] {
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
}
