// Placement core: one pod against the node table, both already written into memory by the host
// (memory map in ./layout). Exports take only numbers; results are written to OUT and N_REASON.
// server/scheduler/reference.ts implements the same pipeline in TypeScript; both must agree exactly,
// so every score is integer arithmetic (f64 only where both sides round the same IEEE way).
import {
  MAX_LABELS, MAX_TAINTS, MAX_GPUS, MAX_PORTS, MAX_TERMS, MAX_TERM_SLOTS,
  POD_WORDS, NUM_REASONS, NUM_SCORES,
  R_OK, R_NOT_READY, R_UNSCHEDULABLE, R_ARCH, R_NODE_SELECTOR, R_NODE_AFFINITY, R_TAINT, R_PODS, R_CPU, R_MEMORY,
  R_HOST_PORT, R_POD_AFFINITY, R_POD_ANTI_AFFINITY, R_GPU_COUNT, R_GPU_MODEL, R_GPU_MEMORY, R_GPU_ID_ABSENT, R_GPU_ID_HELD,
  S_RESOURCES, S_BALANCED, S_NODE_AFFINITY, S_TAINT, S_POD_AFFINITY, S_GPU_FIT,
  F_READY, F_UNSCHEDULABLE, F_GPU_SHARED,
  OP_IN, OP_NOT_IN, OP_EXISTS, OP_DOES_NOT_EXIST, OP_GT, OP_LT,
  E_NO_SCHEDULE, E_PREFER_NO_SCHEDULE, E_NO_EXECUTE, TOL_EXISTS,
  T_REQUIRED_AFFINITY, T_REQUIRED_ANTI, T_PREFERRED_AFFINITY, T_PREFERRED_ANTI, T_EXISTING_ANTI, TOPO_ZONE, TERM_WORDS,
  STRATEGY_SPREAD,
  P_CPU, P_GPU_COUNT, P_GPU_SHARED, P_GPU_VENDOR, P_ARCH_LIMITED, P_ARCH_OFF, P_ARCH_WORDS, P_MODEL_OFF, P_MODEL_WORDS, P_GPU_PIN_MASK, P_GPU_PIN_NODE, P_STRATEGY, P_HASH, P_SEL_OFF, P_SEL_COUNT,
  P_REQ_OFF, P_REQ_COUNT, P_PREF_OFF, P_PREF_COUNT, P_TOL_OFF, P_TOL_COUNT, P_PORT_OFF, P_PORT_COUNT,
  P_TERM_OFF, P_TERM_COUNT, P_VAR_BASE, PF_MEMORY, PF_GPU_MEMORY_MIN,
  O_NODE, O_SCORE, O_FEASIBLE, O_PICKS, O_REASON_COUNTS,
  FIXED_BASE, CONFIG_CAP, CONFIG_SEED, CONFIG_WEIGHTS, POWER_TABLE, POD_I32, POD_F64, OUT,
  SCRATCH_TERM_TOTALS, SCRATCH_PICKS, NODE_BASE, NODE_BYTES,
  N_MEM_ALLOC, N_MEM_USED, N_GPU_MEMORY, N_LABEL_NUMBERS, N_CPU_ALLOC, N_CPU_USED, N_PODS_ALLOC, N_PODS_USED, N_FLAGS, N_ARCH,
  N_ZONE, N_HASH, N_REASON, N_LABEL_COUNT, N_LABEL_KEYS, N_LABEL_VALUES, N_TAINT_COUNT, N_TAINT_KEYS,
  N_TAINT_VALUES, N_TAINT_EFFECTS, N_GPU_COUNT, N_GPU_VENDOR, N_GPU_MODEL, N_GPU_HEALTHY, N_GPU_HOLDERS,
  N_GPU_EXCLUSIVE, N_PORT_COUNT, N_PORTS, N_PORT_REFS, N_TERM_COUNTS, N_ZONE_TERMS,
} from './layout';

// Layout probes: the host checks these against its copy of ./layout before trusting the memory map.
export function layoutNodeBase(): i32 { return NODE_BASE; }
export function layoutNodeBytes(): i32 { return NODE_BYTES; }
export function layoutPodI32(): i32 { return POD_I32; }
export function layoutOut(): i32 { return OUT; }
export function layoutFixedBase(): i32 { return FIXED_BASE; }

let cap: i32 = 0; // node table capacity, read from CONFIG_CAP at each call
let b_N_ARCH: i32 = 0;
let b_N_CPU_ALLOC: i32 = 0;
let b_N_CPU_USED: i32 = 0;
let b_N_FLAGS: i32 = 0;
let b_N_GPU_COUNT: i32 = 0;
let b_N_GPU_EXCLUSIVE: i32 = 0;
let b_N_GPU_HEALTHY: i32 = 0;
let b_N_GPU_HOLDERS: i32 = 0;
let b_N_GPU_MEMORY: i32 = 0;
let b_N_GPU_MODEL: i32 = 0;
let b_N_GPU_VENDOR: i32 = 0;
let b_N_HASH: i32 = 0;
let b_N_LABEL_COUNT: i32 = 0;
let b_N_LABEL_KEYS: i32 = 0;
let b_N_LABEL_NUMBERS: i32 = 0;
let b_N_LABEL_VALUES: i32 = 0;
let b_N_MEM_ALLOC: i32 = 0;
let b_N_MEM_USED: i32 = 0;
let b_N_PODS_ALLOC: i32 = 0;
let b_N_PODS_USED: i32 = 0;
let b_N_PORTS: i32 = 0;
let b_N_PORT_COUNT: i32 = 0;
let b_N_REASON: i32 = 0;
let b_N_TAINT_COUNT: i32 = 0;
let b_N_TAINT_EFFECTS: i32 = 0;
let b_N_TAINT_KEYS: i32 = 0;
let b_N_TAINT_VALUES: i32 = 0;
let b_N_TERM_COUNTS: i32 = 0;
let b_N_ZONE: i32 = 0;
let b_N_ZONE_TERMS: i32 = 0;
function setBases(): void {
  b_N_ARCH = NODE_BASE + cap * N_ARCH;
  b_N_CPU_ALLOC = NODE_BASE + cap * N_CPU_ALLOC;
  b_N_CPU_USED = NODE_BASE + cap * N_CPU_USED;
  b_N_FLAGS = NODE_BASE + cap * N_FLAGS;
  b_N_GPU_COUNT = NODE_BASE + cap * N_GPU_COUNT;
  b_N_GPU_EXCLUSIVE = NODE_BASE + cap * N_GPU_EXCLUSIVE;
  b_N_GPU_HEALTHY = NODE_BASE + cap * N_GPU_HEALTHY;
  b_N_GPU_HOLDERS = NODE_BASE + cap * N_GPU_HOLDERS;
  b_N_GPU_MEMORY = NODE_BASE + cap * N_GPU_MEMORY;
  b_N_GPU_MODEL = NODE_BASE + cap * N_GPU_MODEL;
  b_N_GPU_VENDOR = NODE_BASE + cap * N_GPU_VENDOR;
  b_N_HASH = NODE_BASE + cap * N_HASH;
  b_N_LABEL_COUNT = NODE_BASE + cap * N_LABEL_COUNT;
  b_N_LABEL_KEYS = NODE_BASE + cap * N_LABEL_KEYS;
  b_N_LABEL_NUMBERS = NODE_BASE + cap * N_LABEL_NUMBERS;
  b_N_LABEL_VALUES = NODE_BASE + cap * N_LABEL_VALUES;
  b_N_MEM_ALLOC = NODE_BASE + cap * N_MEM_ALLOC;
  b_N_MEM_USED = NODE_BASE + cap * N_MEM_USED;
  b_N_PODS_ALLOC = NODE_BASE + cap * N_PODS_ALLOC;
  b_N_PODS_USED = NODE_BASE + cap * N_PODS_USED;
  b_N_PORTS = NODE_BASE + cap * N_PORTS;
  b_N_PORT_COUNT = NODE_BASE + cap * N_PORT_COUNT;
  b_N_REASON = NODE_BASE + cap * N_REASON;
  b_N_TAINT_COUNT = NODE_BASE + cap * N_TAINT_COUNT;
  b_N_TAINT_EFFECTS = NODE_BASE + cap * N_TAINT_EFFECTS;
  b_N_TAINT_KEYS = NODE_BASE + cap * N_TAINT_KEYS;
  b_N_TAINT_VALUES = NODE_BASE + cap * N_TAINT_VALUES;
  b_N_TERM_COUNTS = NODE_BASE + cap * N_TERM_COUNTS;
  b_N_ZONE = NODE_BASE + cap * N_ZONE;
  b_N_ZONE_TERMS = NODE_BASE + cap * N_ZONE_TERMS;
}

// ---- memory accessors (addresses validated by validatePod / nodeCount <= cap) ----
// Region bases (NODE_BASE + cap * N_X) are computed once per call into b_N_X, so the per-node loop does a
// single add per access.
@inline function ni(base: i32, n: i32): i32 { return load<i32>(base + (n << 2)); }
@inline function nf(base: i32, n: i32): f64 { return load<f64>(base + (n << 3)); }
@inline function nai(base: i32, n: i32, slots: i32, i: i32): i32 { return load<i32>(base + ((n * slots + i) << 2)); }
@inline function naf(base: i32, n: i32, slots: i32, i: i32): f64 { return load<f64>(base + ((n * slots + i) << 3)); }
@inline function pw(i: i32): i32 { return load<i32>(POD_I32 + (i << 2)); }
@inline function pf(i: i32): f64 { return load<f64>(POD_F64 + (i << 3)); }
@inline function outSet(i: i32, v: i32): void { store<i32>(OUT + (i << 2), v); }
// Zone z (1..cap), pod term slot t: N_ZONE_TERMS entry z - 1.
@inline function zoneTermAddr(z: i32, t: i32): i32 { return b_N_ZONE_TERMS + (((z - 1) * MAX_TERM_SLOTS + t) << 2); }
// Whether id is in the pod's bit set of `words` words at word `off` (validated to lie in the pod region).
@inline function inSet(off: i32, words: i32, id: i32): bool {
  return id >= 0 && (id >>> 5) < words && ((<u32>pw(off + (id >>> 5)) >>> (id & 31)) & 1) != 0;
}

// murmur3 fmix32: the seeded tie-break hash, identical to reference.ts tieHash.
function tieHash(seed: u32, pod: u32, node: u32): u32 {
  let h: u32 = seed ^ pod ^ (node * 0x9e3779b1);
  h ^= h >> 16; h *= 0x85ebca6b; h ^= h >> 13; h *= 0xc2b2ae35; h ^= h >> 16;
  return h;
}

// Pod fields and weights used per node, read once per call after validation.
let q_P_CPU: i32 = 0;
let q_P_GPU_COUNT: i32 = 0;
let q_P_ARCH_LIMITED: i32 = 0;
let q_P_STRATEGY: i32 = 0;
let q_P_SEL_COUNT: i32 = 0;
let q_P_REQ_COUNT: i32 = 0;
let q_P_PREF_COUNT: i32 = 0;
let q_P_TOL_COUNT: i32 = 0;
let q_P_PORT_COUNT: i32 = 0;
let q_P_TERM_COUNT: i32 = 0;
let q_P_GPU_PIN_MASK: i32 = 0;
let q_PF_MEMORY: f64 = 0;
let w_S_RESOURCES: i32 = 0;
let w_S_BALANCED: i32 = 0;
let w_S_NODE_AFFINITY: i32 = 0;
let w_S_TAINT: i32 = 0;
let w_S_POD_AFFINITY: i32 = 0;
let w_S_GPU_FIT: i32 = 0;
function readPod(): void {
  q_P_CPU = pw(P_CPU);
  q_P_GPU_COUNT = pw(P_GPU_COUNT);
  q_P_ARCH_LIMITED = pw(P_ARCH_LIMITED);
  q_P_STRATEGY = pw(P_STRATEGY);
  q_P_SEL_COUNT = pw(P_SEL_COUNT);
  q_P_REQ_COUNT = pw(P_REQ_COUNT);
  q_P_PREF_COUNT = pw(P_PREF_COUNT);
  q_P_TOL_COUNT = pw(P_TOL_COUNT);
  q_P_PORT_COUNT = pw(P_PORT_COUNT);
  q_P_TERM_COUNT = pw(P_TERM_COUNT);
  q_P_GPU_PIN_MASK = pw(P_GPU_PIN_MASK);
  q_PF_MEMORY = pf(PF_MEMORY);
  w_S_RESOURCES = load<i32>(CONFIG_WEIGHTS + (S_RESOURCES << 2));
  w_S_BALANCED = load<i32>(CONFIG_WEIGHTS + (S_BALANCED << 2));
  w_S_NODE_AFFINITY = load<i32>(CONFIG_WEIGHTS + (S_NODE_AFFINITY << 2));
  w_S_TAINT = load<i32>(CONFIG_WEIGHTS + (S_TAINT << 2));
  w_S_POD_AFFINITY = load<i32>(CONFIG_WEIGHTS + (S_POD_AFFINITY << 2));
  w_S_GPU_FIT = load<i32>(CONFIG_WEIGHTS + (S_GPU_FIT << 2));
}

// ---- validation: the pod once per call; node counts and ids are clamped or masked where read, so any
// memory contents keep every access inside its region ----
function inPod(off: i32, words: i32): bool { return off >= P_VAR_BASE && words >= 0 && off + words <= POD_WORDS; }

function validExprs(off: i32, nExpr: i32): i32 {
  // returns the word after the expressions, or -1
  if (nExpr < 0 || nExpr > POD_WORDS) return -1;
  let p = off;
  for (let e = 0; e < nExpr; e++) {
    if (!inPod(p, 3)) return -1;
    const op = pw(p); const key = pw(p + 1); const nv = pw(p + 2);
    if (op < OP_IN || op > OP_LT || key <= 0) return -1;
    if (!inPod(p + 3, nv)) return -1;
    if ((op == OP_GT || op == OP_LT) && nv != 1) return -1;
    if (op == OP_IN || op == OP_NOT_IN) {
      for (let v = 0; v < nv; v++) if (pw(p + 3 + v) <= 0) return -1;
    }
    p += 3 + nv;
  }
  return p;
}

function validatePod(nodeCount: i32): bool {
  if (cap <= 0 || nodeCount < 0 || nodeCount > cap) return false;
  const gpus = pw(P_GPU_COUNT);
  if (pw(P_CPU) < 0 || gpus < 0 || gpus > MAX_GPUS) return false;
  if (!inPod(pw(P_SEL_OFF), pw(P_SEL_COUNT) * 2)) return false;
  let p = pw(P_REQ_OFF); const nReq = pw(P_REQ_COUNT);
  if (nReq < 0 || !inPod(p, 0)) return false;
  for (let t = 0; t < nReq; t++) { if (!inPod(p, 1)) return false; p = validExprs(p + 1, pw(p)); if (p < 0) return false; }
  p = pw(P_PREF_OFF); const nPref = pw(P_PREF_COUNT);
  if (nPref < 0 || !inPod(p, 0)) return false;
  for (let t = 0; t < nPref; t++) {
    if (!inPod(p, 2) || pw(p) < 0) return false;
    p = validExprs(p + 2, pw(p + 1)); if (p < 0) return false;
  }
  if (!inPod(pw(P_TOL_OFF), pw(P_TOL_COUNT) * 4)) return false;
  if (!inPod(pw(P_PORT_OFF), pw(P_PORT_COUNT))) return false;
  if (!inPod(pw(P_ARCH_OFF), pw(P_ARCH_WORDS)) || !inPod(pw(P_MODEL_OFF), pw(P_MODEL_WORDS))) return false;
  if (<u32>pw(P_GPU_PIN_MASK) >= (<u32>1 << MAX_GPUS)) return false;
  const nTerms = pw(P_TERM_COUNT);
  if (nTerms > MAX_TERM_SLOTS || !inPod(pw(P_TERM_OFF), nTerms * TERM_WORDS)) return false;
  for (let t = 0; t < nTerms; t++) {
    const q = pw(P_TERM_OFF) + t * TERM_WORDS;
    const kind = pw(q);
    if (kind < T_REQUIRED_AFFINITY || kind > T_EXISTING_ANTI) return false;
    if (pw(q + 1) < 0 || pw(q + 1) >= MAX_TERMS || pw(q + 2) < 0 || pw(q + 2) > TOPO_ZONE || pw(q + 3) < 0) return false;
  }
  return true;
}

// ---- filter helpers ----
// Label slot of `key` on node n, -1 when the node has no such label.
function labelSlot(n: i32, key: i32): i32 {
  const count = min<i32>(ni(b_N_LABEL_COUNT, n), MAX_LABELS);
  for (let i = 0; i < count; i++) if (nai(b_N_LABEL_KEYS, n, MAX_LABELS, i) == key) return i;
  return -1;
}
function labelValue(n: i32, key: i32): i32 {
  const i = labelSlot(n, key);
  return i < 0 ? 0 : nai(b_N_LABEL_VALUES, n, MAX_LABELS, i);
}

function exprMatches(n: i32, p: i32): bool {
  const op = pw(p); const nv = pw(p + 2);
  if (op == OP_GT || op == OP_LT) {
    const i = labelSlot(n, pw(p + 1));
    if (i < 0) return false;
    const num = naf(b_N_LABEL_NUMBERS, n, MAX_LABELS, i);
    return op == OP_GT ? num > <f64>pw(p + 3) : num < <f64>pw(p + 3);
  }
  const v = labelValue(n, pw(p + 1));
  if (op == OP_EXISTS) return v != 0;
  if (op == OP_DOES_NOT_EXIST) return v == 0;
  let found = false;
  if (v != 0) for (let i = 0; i < nv; i++) if (pw(p + 3 + i) == v) { found = true; break; }
  return op == OP_IN ? found : !found;
}

// Evaluates nExpr expressions from word p (ANDed). Returns the next word, negated minus one on a miss.
function termMatches(n: i32, p: i32, nExpr: i32): bool {
  for (let e = 0; e < nExpr; e++) {
    if (!exprMatches(n, p)) return false;
    p += 3 + pw(p + 2);
  }
  return true;
}
function skipExprs(p: i32, nExpr: i32): i32 { for (let e = 0; e < nExpr; e++) p += 3 + pw(p + 2); return p; }

function tolerated(key: i32, value: i32, effect: i32): bool {
  const off = pw(P_TOL_OFF); const count = q_P_TOL_COUNT;
  for (let t = 0; t < count; t++) {
    const q = off + t * 4;
    const tk = pw(q); const op = pw(q + 1); const te = pw(q + 3);
    if (te != 0 && te != effect) continue;
    if (tk == 0) { if (op == TOL_EXISTS) return true; continue; }
    if (tk == key && (op == TOL_EXISTS || pw(q + 2) == value)) return true;
  }
  return false;
}

// Count of matching pods in the node's topology domain for pod term t, -1 when the node has no domain.
function domainCount(n: i32, t: i32): i32 {
  const q = pw(P_TERM_OFF) + t * TERM_WORDS;
  if (pw(q + 2) == TOPO_ZONE) {
    const z = ni(b_N_ZONE, n);
    return z < 1 || z > cap ? -1 : load<i32>(zoneTermAddr(z, t));
  }
  return nai(b_N_TERM_COUNTS, n, MAX_TERMS, pw(q + 1));
}

// GPU on node n usable by the pod (health, vendor, sharing), before model and memory constraints.
function gpuAvailable(n: i32, i: i32, shared: bool): bool {
  if (nai(b_N_GPU_HEALTHY, n, MAX_GPUS, i) == 0) return false;
  if (nai(b_N_GPU_VENDOR, n, MAX_GPUS, i) != pw(P_GPU_VENDOR)) return false;
  if (nai(b_N_GPU_HOLDERS, n, MAX_GPUS, i) == 0) return true;
  return shared && (ni(b_N_FLAGS, n) & F_GPU_SHARED) != 0 && nai(b_N_GPU_EXCLUSIVE, n, MAX_GPUS, i) == 0;
}
// Whether slot i is one the pod may get: any, or one of its pinned GPUs (the node passed the pin filter).
@inline function gpuEligible(i: i32): bool { return q_P_GPU_PIN_MASK == 0 || ((q_P_GPU_PIN_MASK >>> i) & 1) != 0; }
function gpuFits(n: i32, i: i32, shared: bool, memMin: f64): bool {
  return gpuEligible(i) && gpuAvailable(n, i, shared) && inSet(pw(P_MODEL_OFF), pw(P_MODEL_WORDS), nai(b_N_GPU_MODEL, n, MAX_GPUS, i))
    && naf(b_N_GPU_MEMORY, n, MAX_GPUS, i) >= memMin;
}

// ---- the pipeline ----
// Filters, in order; the first that rejects names the node's reason.
function filter(n: i32): i32 {
  const flags = ni(b_N_FLAGS, n);
  // 1. Node Ready condition is True.
  if ((flags & F_READY) == 0) return R_NOT_READY;
  // 2. Not cordoned (spec.unschedulable).
  if ((flags & F_UNSCHEDULABLE) != 0) return R_UNSCHEDULABLE;
  // 3. Image architectures (flotilla.io/image-arch) include the node's kubernetes.io/arch.
  if (q_P_ARCH_LIMITED != 0 && !inSet(pw(P_ARCH_OFF), pw(P_ARCH_WORDS), ni(b_N_ARCH, n))) return R_ARCH;
  // 4. nodeSelector: every pair present.
  const selOff = pw(P_SEL_OFF); const selCount = q_P_SEL_COUNT;
  for (let i = 0; i < selCount; i++) {
    if (labelValue(n, pw(selOff + 2 * i)) != pw(selOff + 2 * i + 1)) return R_NODE_SELECTOR;
  }
  // 5. Required node affinity: any term (ORed) whose expressions all match.
  const reqCount = q_P_REQ_COUNT;
  if (reqCount > 0) {
    let p = pw(P_REQ_OFF); let any = false;
    for (let t = 0; t < reqCount; t++) {
      const nExpr = pw(p);
      if (termMatches(n, p + 1, nExpr)) { any = true; break; }
      p = skipExprs(p + 1, nExpr);
    }
    if (!any) return R_NODE_AFFINITY;
  }
  // 6. Every NoSchedule / NoExecute taint tolerated.
  const taints = min<i32>(ni(b_N_TAINT_COUNT, n), MAX_TAINTS);
  for (let i = 0; i < taints; i++) {
    const effect = nai(b_N_TAINT_EFFECTS, n, MAX_TAINTS, i);
    if (effect == E_PREFER_NO_SCHEDULE) continue;
    if (!tolerated(nai(b_N_TAINT_KEYS, n, MAX_TAINTS, i), nai(b_N_TAINT_VALUES, n, MAX_TAINTS, i), effect)) return R_TAINT;
  }
  // 7-9. Resources fit: pod slots, CPU millicores, memory bytes.
  if (ni(b_N_PODS_USED, n) + 1 > ni(b_N_PODS_ALLOC, n)) return R_PODS;
  if (ni(b_N_CPU_USED, n) + q_P_CPU > ni(b_N_CPU_ALLOC, n)) return R_CPU;
  if (nf(b_N_MEM_USED, n) + q_PF_MEMORY > nf(b_N_MEM_ALLOC, n)) return R_MEMORY;
  // 10. Host ports free.
  const portOff = pw(P_PORT_OFF); const portCount = q_P_PORT_COUNT; const nodePorts = min<i32>(ni(b_N_PORT_COUNT, n), MAX_PORTS);
  for (let i = 0; i < portCount; i++) {
    const port = pw(portOff + i);
    for (let j = 0; j < nodePorts; j++) if (nai(b_N_PORTS, n, MAX_PORTS, j) == port) return R_HOST_PORT;
  }
  // 11-12. Required pod affinity (a matching pod in the domain, or none anywhere and the pod matches itself)
  // and anti-affinity both ways (no matching pod in the domain; no pod in the domain whose own required
  // anti-affinity matches this pod).
  const terms = q_P_TERM_COUNT; const termOff = pw(P_TERM_OFF);
  for (let t = 0; t < terms; t++) {
    const kind = pw(termOff + t * TERM_WORDS);
    if (kind == T_REQUIRED_AFFINITY) {
      const c = domainCount(n, t);
      const total = load<i32>(SCRATCH_TERM_TOTALS + (t << 2));
      if (c < 0 || (c == 0 && !(total == 0 && pw(termOff + t * TERM_WORDS + 4) != 0))) return R_POD_AFFINITY;
    } else if (kind == T_REQUIRED_ANTI || kind == T_EXISTING_ANTI) {
      if (domainCount(n, t) > 0) return R_POD_ANTI_AFFINITY;
    }
  }
  // 13-15. GPUs: the pinned ones on this node and not held, then enough usable, then enough of the wanted
  // model, then enough with the memory minimum (among the pinned ones when pinned).
  const want = q_P_GPU_COUNT;
  if (want > 0) {
    const shared = pw(P_GPU_SHARED) != 0; const memMin = pf(PF_GPU_MEMORY_MIN);
    const count = min<i32>(ni(b_N_GPU_COUNT, n), MAX_GPUS);
    if (q_P_GPU_PIN_MASK != 0) {
      if (n != pw(P_GPU_PIN_NODE) || (q_P_GPU_PIN_MASK >>> count) != 0) return R_GPU_ID_ABSENT;
      for (let i = 0; i < count; i++) {
        if (gpuEligible(i) && nai(b_N_GPU_HOLDERS, n, MAX_GPUS, i) != 0
          && !(shared && (ni(b_N_FLAGS, n) & F_GPU_SHARED) != 0 && nai(b_N_GPU_EXCLUSIVE, n, MAX_GPUS, i) == 0)) return R_GPU_ID_HELD;
      }
    }
    let avail = 0; let model = 0; let fit = 0;
    for (let i = 0; i < count; i++) {
      if (!gpuEligible(i) || !gpuAvailable(n, i, shared)) continue;
      avail++;
      if (!inSet(pw(P_MODEL_OFF), pw(P_MODEL_WORDS), nai(b_N_GPU_MODEL, n, MAX_GPUS, i))) continue;
      model++;
      if (naf(b_N_GPU_MEMORY, n, MAX_GPUS, i) >= memMin) fit++;
    }
    if (avail < want) return R_GPU_COUNT;
    if (model < want) return R_GPU_MODEL;
    if (fit < want) return R_GPU_MEMORY;
  }
  return R_OK;
}

// Picks the pod's GPUs on node n into SCRATCH_PICKS: the `want` smallest fitting GPUs (memory, then index),
// so large GPUs stay free. Returns the sum of their memory. The node passed filter 13-15.
function pickGpus(n: i32): f64 {
  const want = q_P_GPU_COUNT; const shared = pw(P_GPU_SHARED) != 0; const memMin = pf(PF_GPU_MEMORY_MIN);
  const count = min<i32>(ni(b_N_GPU_COUNT, n), MAX_GPUS);
  let taken: u32 = 0; let sum: f64 = 0;
  for (let k = 0; k < want; k++) {
    let best = -1; let bestMem: f64 = 0;
    for (let i = 0; i < count; i++) {
      if ((taken & (<u32>1 << i)) != 0 || !gpuFits(n, i, shared, memMin)) continue;
      const m = naf(b_N_GPU_MEMORY, n, MAX_GPUS, i);
      if (best < 0 || m < bestMem) { best = i; bestMem = m; }
    }
    taken |= <u32>1 << best;
    store<i32>(SCRATCH_PICKS + (k << 2), best);
    sum += bestMem;
  }
  return sum;
}

@inline function permille(part: f64, whole: f64): i32 {
  if (whole <= 0) return 0;
  const p = Math.floor(part * 1000 / whole);
  return p < 0 ? 0 : p > 1000 ? 1000 : <i32>p;
}

// Scorers, each 0..100, summed with CONFIG_WEIGHTS. Evaluated as if the pod were placed (Nomad style).
function score(n: i32, gpuMemSum: f64): i32 {
  const cpuAlloc = <f64>ni(b_N_CPU_ALLOC, n); const memAlloc = nf(b_N_MEM_ALLOC, n);
  const cpuUsed = <f64>(ni(b_N_CPU_USED, n) + q_P_CPU); const memUsed = nf(b_N_MEM_USED, n) + q_PF_MEMORY;
  const freeCpu = permille(cpuAlloc - cpuUsed, cpuAlloc); const freeMem = permille(memAlloc - memUsed, memAlloc);
  let total = 0;
  // a. Resources: binpack = BestFit v3, 20 - (10^freeCpu + 10^freeMem) clamped to [0, 18], scaled to 0..100
  //    (POWER_TABLE holds 1000 * 10^x); spread = LeastAllocated, mean free percentage.
  let resources: i32;
  if (q_P_STRATEGY == STRATEGY_SPREAD) {
    resources = (freeCpu + freeMem) / 20;
  } else {
    let raw = 20000 - load<i32>(POWER_TABLE + (freeCpu << 2)) - load<i32>(POWER_TABLE + (freeMem << 2));
    raw = raw < 0 ? 0 : raw > 18000 ? 18000 : raw;
    resources = raw * 100 / 18000;
  }
  total += w_S_RESOURCES * resources;
  // b. Balanced: 100 minus the CPU/memory used-fraction gap, in percent.
  const gap = freeCpu - freeMem;
  total += w_S_BALANCED * (100 - (gap < 0 ? -gap : gap) / 10);
  // c. Preferred node affinity: matched weight over total weight.
  const prefCount = q_P_PREF_COUNT;
  if (prefCount > 0) {
    let p = pw(P_PREF_OFF); let sum = 0; let matched = 0;
    for (let t = 0; t < prefCount; t++) {
      const w = pw(p); const nExpr = pw(p + 1);
      sum += w;
      if (termMatches(n, p + 2, nExpr)) matched += w;
      p = skipExprs(p + 2, nExpr);
    }
    if (sum > 0) total += w_S_NODE_AFFINITY * (matched * 100 / sum);
  }
  // d. PreferNoSchedule taints not tolerated: 25 points off each.
  const taints = min<i32>(ni(b_N_TAINT_COUNT, n), MAX_TAINTS); let untolerated = 0;
  for (let i = 0; i < taints; i++) {
    if (nai(b_N_TAINT_EFFECTS, n, MAX_TAINTS, i) != E_PREFER_NO_SCHEDULE) continue;
    if (!tolerated(nai(b_N_TAINT_KEYS, n, MAX_TAINTS, i), nai(b_N_TAINT_VALUES, n, MAX_TAINTS, i), E_PREFER_NO_SCHEDULE)) untolerated++;
  }
  total += w_S_TAINT * (untolerated >= 4 ? 0 : 100 - 25 * untolerated);
  // e. Preferred pod affinity / anti-affinity: weight of satisfied terms over total weight.
  const terms = q_P_TERM_COUNT; const termOff = pw(P_TERM_OFF);
  let pSum = 0; let pMet = 0;
  for (let t = 0; t < terms; t++) {
    const q = termOff + t * TERM_WORDS; const kind = pw(q);
    if (kind != T_PREFERRED_AFFINITY && kind != T_PREFERRED_ANTI) continue;
    const w = pw(q + 3); const c = domainCount(n, t);
    pSum += w;
    if (kind == T_PREFERRED_AFFINITY ? c > 0 : c <= 0) pMet += w;
  }
  if (pSum > 0) total += w_S_POD_AFFINITY * (pMet * 100 / pSum);
  // f. GPU fit: GPU pods prefer nodes whose GPUs end up busy and whose picked GPUs are tight on memory;
  //    pods without GPUs avoid opening an idle GPU node (score 0), keeping it for GPU work, but may fill
  //    one whose GPUs are already in use (100, like a node without GPUs).
  const gpuCount = min<i32>(ni(b_N_GPU_COUNT, n), MAX_GPUS); const want = q_P_GPU_COUNT;
  let busy = 0;
  for (let i = 0; i < gpuCount; i++) if (nai(b_N_GPU_HOLDERS, n, MAX_GPUS, i) > 0) busy++;
  let gpuScore: i32;
  if (want == 0) {
    gpuScore = gpuCount == 0 || busy > 0 ? 100 : 0;
  } else {
    let occupancy = (busy + want) * 100 / gpuCount; if (occupancy > 100) occupancy = 100;
    const memMin = pf(PF_GPU_MEMORY_MIN);
    const tight = memMin > 0 && gpuMemSum > 0 ? <i32>Math.floor(memMin * <f64>want * 100 / gpuMemSum) : 100;
    gpuScore = (occupancy + tight) / 2;
  }
  total += w_S_GPU_FIT * gpuScore;
  return total;
}

// Per-pod precomputation for zone-topology terms and the "no matching pod anywhere" rule.
function countTermDomains(nodeCount: i32): void {
  const terms = q_P_TERM_COUNT; const termOff = pw(P_TERM_OFF);
  for (let t = 0; t < terms; t++) {
    const q = termOff + t * TERM_WORDS; const id = pw(q + 1); const zone = pw(q + 2) == TOPO_ZONE;
    if (zone) {
      for (let n = 0; n < nodeCount; n++) {
        const z = ni(b_N_ZONE, n);
        if (z >= 1 && z <= cap) store<i32>(zoneTermAddr(z, t), 0);
      }
    }
    let total = 0;
    for (let n = 0; n < nodeCount; n++) {
      const c = nai(b_N_TERM_COUNTS, n, MAX_TERMS, id);
      if (c == 0) continue;
      total += c;
      const z = ni(b_N_ZONE, n);
      if (zone && z >= 1 && z <= cap) { const a = zoneTermAddr(z, t); store<i32>(a, load<i32>(a) + c); }
    }
    store<i32>(SCRATCH_TERM_TOTALS + (t << 2), total);
  }
}

// Places the pod in POD_I32/POD_F64 on one of nodes [0, nodeCount). Returns the node index, -1 when no node
// fits, -2 when the input is malformed (nothing else written then). Writes OUT and N_REASON of every node.
export function schedule(nodeCount: i32): i32 {
  cap = load<i32>(CONFIG_CAP);
  if (!validatePod(nodeCount)) return -2;
  setBases();
  readPod();
  memory.fill(OUT + (O_REASON_COUNTS << 2), 0, NUM_REASONS << 2);
  countTermDomains(nodeCount);
  const seed = <u32>load<i32>(CONFIG_SEED); const podHash = <u32>pw(P_HASH);
  const want = q_P_GPU_COUNT;
  let best = -1; let bestScore = 0; let bestHash: u32 = 0; let feasible = 0;
  for (let n = 0; n < nodeCount; n++) {
    const reason = filter(n);
    store<i32>(b_N_REASON + (n << 2), reason);
    if (reason != R_OK) {
      const a = OUT + ((O_REASON_COUNTS + reason) << 2);
      store<i32>(a, load<i32>(a) + 1);
      continue;
    }
    feasible++;
    const s = score(n, want > 0 ? pickGpus(n) : 0);
    const h = tieHash(seed, podHash, <u32>ni(b_N_HASH, n));
    // Highest score; ties by highest hash, then lowest index.
    if (best < 0 || s > bestScore || (s == bestScore && h > bestHash)) { best = n; bestScore = s; bestHash = h; }
  }
  outSet(O_NODE, best); outSet(O_SCORE, bestScore); outSet(O_FEASIBLE, feasible);
  if (best >= 0 && want > 0) {
    pickGpus(best);
    for (let k = 0; k < want; k++) outSet(O_PICKS + k, load<i32>(SCRATCH_PICKS + (k << 2)));
  }
  return best;
}
