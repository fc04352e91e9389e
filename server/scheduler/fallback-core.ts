// The fallback placement core: the pipeline of asm/scheduler.ts in TypeScript, reading and writing the same
// memory map (./layout) through typed arrays, for when the wasm module cannot load. Same encoding, same
// results, at a fraction of the speed; any change here must be made in asm/scheduler.ts too. (The test
// oracle is ./reference.ts, which works on the objects and so checks the encoding as well.)
import { tieHash } from './hash.js';
import * as L from './layout.js';

/** Typed-array views over one memory image in the ./layout map. */
export interface CoreViews { i32: Int32Array; f64: Float64Array }

/** Places the pod written at POD_I32/POD_F64; same contract as the wasm export `schedule`. */
export function fallbackSchedule(v: CoreViews, nodeCount: number): number {
  const I = v.i32; const F = v.f64;
  const cap = I[L.CONFIG_CAP >> 2]!;
  const nb = L.NODE_BASE;
  const ni = (region: number, n: number): number => I[(nb + cap * region >> 2) + n]!;
  const nf = (region: number, n: number): number => F[(nb + cap * region >> 3) + n]!;
  const nai = (region: number, n: number, slots: number, i: number): number => I[(nb + cap * region >> 2) + n * slots + i]!;
  const naf = (region: number, n: number, slots: number, i: number): number => F[(nb + cap * region >> 3) + n * slots + i]!;
  const podBase = L.POD_I32 >> 2;
  const pw = (i: number): number => I[podBase + i]!;
  const pf = (i: number): number => F[(L.POD_F64 >> 3) + i]!;
  const out = L.OUT >> 2;

  // ---- validation: the pod once; node counts and ids are clamped or masked where read ----
  const inPod = (off: number, words: number): boolean => off >= L.P_VAR_BASE && words >= 0 && off + words <= L.POD_WORDS;
  const validExprs = (off: number, nExpr: number): number => {
    if (nExpr < 0 || nExpr > L.POD_WORDS) return -1;
    let p = off;
    for (let e = 0; e < nExpr; e++) {
      if (!inPod(p, 3)) return -1;
      const op = pw(p); const key = pw(p + 1); const nv = pw(p + 2);
      if (op < L.OP_IN || op > L.OP_LT || key <= 0) return -1;
      if (!inPod(p + 3, nv)) return -1;
      if ((op === L.OP_GT || op === L.OP_LT) && nv !== 1) return -1;
      if (op === L.OP_IN || op === L.OP_NOT_IN) {
        for (let k = 0; k < nv; k++) if (pw(p + 3 + k) <= 0) return -1;
      }
      p += 3 + nv;
    }
    return p;
  };
  const validatePod = (): boolean => {
    if (cap <= 0 || nodeCount < 0 || nodeCount > cap) return false;
    const gpus = pw(L.P_GPU_COUNT);
    if (pw(L.P_CPU) < 0 || gpus < 0 || gpus > L.MAX_GPUS) return false;
    if (!inPod(pw(L.P_SEL_OFF), pw(L.P_SEL_COUNT) * 2)) return false;
    let p = pw(L.P_REQ_OFF); const nReq = pw(L.P_REQ_COUNT);
    if (nReq < 0 || !inPod(p, 0)) return false;
    for (let t = 0; t < nReq; t++) { if (!inPod(p, 1)) return false; p = validExprs(p + 1, pw(p)); if (p < 0) return false; }
    p = pw(L.P_PREF_OFF); const nPref = pw(L.P_PREF_COUNT);
    if (nPref < 0 || !inPod(p, 0)) return false;
    for (let t = 0; t < nPref; t++) {
      if (!inPod(p, 2) || pw(p) < 0) return false;
      p = validExprs(p + 2, pw(p + 1)); if (p < 0) return false;
    }
    if (!inPod(pw(L.P_TOL_OFF), pw(L.P_TOL_COUNT) * 4)) return false;
    if (!inPod(pw(L.P_PORT_OFF), pw(L.P_PORT_COUNT))) return false;
    if (!inPod(pw(L.P_ARCH_OFF), pw(L.P_ARCH_WORDS)) || !inPod(pw(L.P_MODEL_OFF), pw(L.P_MODEL_WORDS))) return false;
    if ((pw(L.P_GPU_PIN_MASK) >>> 0) >= (1 << L.MAX_GPUS)) return false;
    const nTerms = pw(L.P_TERM_COUNT);
    if (nTerms > L.MAX_TERM_SLOTS || !inPod(pw(L.P_TERM_OFF), nTerms * L.TERM_WORDS)) return false;
    for (let t = 0; t < nTerms; t++) {
      const q = pw(L.P_TERM_OFF) + t * L.TERM_WORDS;
      const kind = pw(q);
      if (kind < L.T_REQUIRED_AFFINITY || kind > L.T_EXISTING_ANTI) return false;
      if (pw(q + 1) < 0 || pw(q + 1) >= L.MAX_TERMS || pw(q + 2) < 0 || pw(q + 2) > L.TOPO_ZONE || pw(q + 3) < 0) return false;
    }
    return true;
  };

  // ---- filter helpers ----
  const labelSlot = (n: number, key: number): number => {
    const count = Math.min(ni(L.N_LABEL_COUNT, n), L.MAX_LABELS);
    for (let i = 0; i < count; i++) if (nai(L.N_LABEL_KEYS, n, L.MAX_LABELS, i) === key) return i;
    return -1;
  };
  const labelValue = (n: number, key: number): number => {
    const i = labelSlot(n, key);
    return i < 0 ? 0 : nai(L.N_LABEL_VALUES, n, L.MAX_LABELS, i);
  };
  const exprMatches = (n: number, p: number): boolean => {
    const op = pw(p); const nv = pw(p + 2);
    if (op === L.OP_GT || op === L.OP_LT) {
      const i = labelSlot(n, pw(p + 1));
      if (i < 0) return false;
      const num = naf(L.N_LABEL_NUMBERS, n, L.MAX_LABELS, i);
      return op === L.OP_GT ? num > pw(p + 3) : num < pw(p + 3);
    }
    const val = labelValue(n, pw(p + 1));
    if (op === L.OP_EXISTS) return val !== 0;
    if (op === L.OP_DOES_NOT_EXIST) return val === 0;
    let found = false;
    if (val !== 0) for (let i = 0; i < nv; i++) if (pw(p + 3 + i) === val) { found = true; break; }
    return op === L.OP_IN ? found : !found;
  };
  const termMatches = (n: number, p: number, nExpr: number): boolean => {
    for (let e = 0; e < nExpr; e++) {
      if (!exprMatches(n, p)) return false;
      p += 3 + pw(p + 2);
    }
    return true;
  };
  const skipExprs = (p: number, nExpr: number): number => { for (let e = 0; e < nExpr; e++) p += 3 + pw(p + 2); return p; };
  const tolerated = (key: number, value: number, effect: number): boolean => {
    const off = pw(L.P_TOL_OFF); const count = pw(L.P_TOL_COUNT);
    for (let t = 0; t < count; t++) {
      const q = off + t * 4;
      const tk = pw(q); const op = pw(q + 1); const te = pw(q + 3);
      if (te !== 0 && te !== effect) continue;
      if (tk === 0) { if (op === L.TOL_EXISTS) return true; continue; }
      if (tk === key && (op === L.TOL_EXISTS || pw(q + 2) === value)) return true;
    }
    return false;
  };
  // Zone z (1..cap), pod term slot t: word of N_ZONE_TERMS entry z - 1.
  const zoneTermWord = (z: number, t: number): number => ((nb + cap * L.N_ZONE_TERMS) >> 2) + (z - 1) * L.MAX_TERM_SLOTS + t;
  // Whether id is in the pod's bit set of `words` words at word `off` (validated to lie in the pod region).
  const inSet = (off: number, words: number, id: number): boolean =>
    id >= 0 && (id >>> 5) < words && ((pw(off + (id >>> 5)) >>> (id & 31)) & 1) !== 0;
  const totalsBase = L.SCRATCH_TERM_TOTALS >> 2;
  const domainCount = (n: number, t: number): number => {
    const q = pw(L.P_TERM_OFF) + t * L.TERM_WORDS;
    if (pw(q + 2) === L.TOPO_ZONE) {
      const z = ni(L.N_ZONE, n);
      return z < 1 || z > cap ? -1 : I[zoneTermWord(z, t)]!;
    }
    return nai(L.N_TERM_COUNTS, n, L.MAX_TERMS, pw(q + 1));
  };
  const gpuAvailable = (n: number, i: number, shared: boolean): boolean => {
    if (nai(L.N_GPU_HEALTHY, n, L.MAX_GPUS, i) === 0) return false;
    if (nai(L.N_GPU_VENDOR, n, L.MAX_GPUS, i) !== pw(L.P_GPU_VENDOR)) return false;
    if (nai(L.N_GPU_HOLDERS, n, L.MAX_GPUS, i) === 0) return true;
    return shared && (ni(L.N_FLAGS, n) & L.F_GPU_SHARED) !== 0 && nai(L.N_GPU_EXCLUSIVE, n, L.MAX_GPUS, i) === 0;
  };
  // Slot i is one the pod may get: any, or one of its pinned GPUs (the node passed the pin filter).
  const gpuEligible = (i: number): boolean => { const mask = pw(L.P_GPU_PIN_MASK); return mask === 0 || ((mask >>> i) & 1) !== 0; };
  const gpuFits = (n: number, i: number, shared: boolean, memMin: number): boolean =>
    gpuEligible(i) && gpuAvailable(n, i, shared) && inSet(pw(L.P_MODEL_OFF), pw(L.P_MODEL_WORDS), nai(L.N_GPU_MODEL, n, L.MAX_GPUS, i))
    && naf(L.N_GPU_MEMORY, n, L.MAX_GPUS, i) >= memMin;

  // ---- the pipeline: filters in order, the first that rejects names the node's reason ----
  const filter = (n: number): number => {
    const flags = ni(L.N_FLAGS, n);
    // 1. Node Ready condition is True.
    if ((flags & L.F_READY) === 0) return L.R_NOT_READY;
    // 2. Not cordoned (spec.unschedulable).
    if ((flags & L.F_UNSCHEDULABLE) !== 0) return L.R_UNSCHEDULABLE;
    // 3. Image architectures (flotilla.io/image-arch) include the node's kubernetes.io/arch.
    if (pw(L.P_ARCH_LIMITED) !== 0 && !inSet(pw(L.P_ARCH_OFF), pw(L.P_ARCH_WORDS), ni(L.N_ARCH, n))) return L.R_ARCH;
    // 4. nodeSelector: every pair present.
    const selOff = pw(L.P_SEL_OFF); const selCount = pw(L.P_SEL_COUNT);
    for (let i = 0; i < selCount; i++) {
      if (labelValue(n, pw(selOff + 2 * i)) !== pw(selOff + 2 * i + 1)) return L.R_NODE_SELECTOR;
    }
    // 5. Required node affinity: any term (ORed) whose expressions all match.
    const reqCount = pw(L.P_REQ_COUNT);
    if (reqCount > 0) {
      let p = pw(L.P_REQ_OFF); let any = false;
      for (let t = 0; t < reqCount; t++) {
        const nExpr = pw(p);
        if (termMatches(n, p + 1, nExpr)) { any = true; break; }
        p = skipExprs(p + 1, nExpr);
      }
      if (!any) return L.R_NODE_AFFINITY;
    }
    // 6. Every NoSchedule / NoExecute taint tolerated.
    const taints = Math.min(ni(L.N_TAINT_COUNT, n), L.MAX_TAINTS);
    for (let i = 0; i < taints; i++) {
      const effect = nai(L.N_TAINT_EFFECTS, n, L.MAX_TAINTS, i);
      if (effect === L.E_PREFER_NO_SCHEDULE) continue;
      if (!tolerated(nai(L.N_TAINT_KEYS, n, L.MAX_TAINTS, i), nai(L.N_TAINT_VALUES, n, L.MAX_TAINTS, i), effect)) return L.R_TAINT;
    }
    // 7-9. Resources fit: pod slots, CPU millicores, memory bytes.
    if (ni(L.N_PODS_USED, n) + 1 > ni(L.N_PODS_ALLOC, n)) return L.R_PODS;
    if (ni(L.N_CPU_USED, n) + pw(L.P_CPU) > ni(L.N_CPU_ALLOC, n)) return L.R_CPU;
    if (nf(L.N_MEM_USED, n) + pf(L.PF_MEMORY) > nf(L.N_MEM_ALLOC, n)) return L.R_MEMORY;
    // 10. Host ports free.
    const portOff = pw(L.P_PORT_OFF); const portCount = pw(L.P_PORT_COUNT); const nodePorts = Math.min(ni(L.N_PORT_COUNT, n), L.MAX_PORTS);
    for (let i = 0; i < portCount; i++) {
      const port = pw(portOff + i);
      for (let j = 0; j < nodePorts; j++) if (nai(L.N_PORTS, n, L.MAX_PORTS, j) === port) return L.R_HOST_PORT;
    }
    // 11-12. Required pod affinity (a matching pod in the domain, or none anywhere and the pod matches
    // itself) and anti-affinity both ways (no matching pod in the domain; no pod in the domain whose own
    // required anti-affinity matches this pod).
    const terms = pw(L.P_TERM_COUNT); const termOff = pw(L.P_TERM_OFF);
    for (let t = 0; t < terms; t++) {
      const kind = pw(termOff + t * L.TERM_WORDS);
      if (kind === L.T_REQUIRED_AFFINITY) {
        const c = domainCount(n, t);
        const total = I[totalsBase + t]!;
        if (c < 0 || (c === 0 && !(total === 0 && pw(termOff + t * L.TERM_WORDS + 4) !== 0))) return L.R_POD_AFFINITY;
      } else if (kind === L.T_REQUIRED_ANTI || kind === L.T_EXISTING_ANTI) {
        if (domainCount(n, t) > 0) return L.R_POD_ANTI_AFFINITY;
      }
    }
    // 13-15. GPUs: the pinned ones on this node and not held, then enough usable, then enough of the wanted
    // model, then enough with the memory minimum (among the pinned ones when pinned).
    const want = pw(L.P_GPU_COUNT);
    if (want > 0) {
      const shared = pw(L.P_GPU_SHARED) !== 0; const memMin = pf(L.PF_GPU_MEMORY_MIN);
      const count = Math.min(ni(L.N_GPU_COUNT, n), L.MAX_GPUS);
      const pin = pw(L.P_GPU_PIN_MASK);
      if (pin !== 0) {
        if (n !== pw(L.P_GPU_PIN_NODE) || (pin >>> count) !== 0) return L.R_GPU_ID_ABSENT;
        for (let i = 0; i < count; i++) {
          if (gpuEligible(i) && nai(L.N_GPU_HOLDERS, n, L.MAX_GPUS, i) !== 0
            && !(shared && (ni(L.N_FLAGS, n) & L.F_GPU_SHARED) !== 0 && nai(L.N_GPU_EXCLUSIVE, n, L.MAX_GPUS, i) === 0)) return L.R_GPU_ID_HELD;
        }
      }
      let avail = 0; let model = 0; let fit = 0;
      for (let i = 0; i < count; i++) {
        if (!gpuEligible(i) || !gpuAvailable(n, i, shared)) continue;
        avail++;
        if (!inSet(pw(L.P_MODEL_OFF), pw(L.P_MODEL_WORDS), nai(L.N_GPU_MODEL, n, L.MAX_GPUS, i))) continue;
        model++;
        if (naf(L.N_GPU_MEMORY, n, L.MAX_GPUS, i) >= memMin) fit++;
      }
      if (avail < want) return L.R_GPU_COUNT;
      if (model < want) return L.R_GPU_MODEL;
      if (fit < want) return L.R_GPU_MEMORY;
    }
    return L.R_OK;
  };

  // The `want` smallest fitting GPUs (memory, then index) into SCRATCH_PICKS; returns their memory sum.
  const picksBase = L.SCRATCH_PICKS >> 2;
  const pickGpus = (n: number): number => {
    const want = pw(L.P_GPU_COUNT); const shared = pw(L.P_GPU_SHARED) !== 0; const memMin = pf(L.PF_GPU_MEMORY_MIN);
    const count = Math.min(ni(L.N_GPU_COUNT, n), L.MAX_GPUS);
    let taken = 0; let sum = 0;
    for (let k = 0; k < want; k++) {
      let best = -1; let bestMem = 0;
      for (let i = 0; i < count; i++) {
        if ((taken & (1 << i)) !== 0 || !gpuFits(n, i, shared, memMin)) continue;
        const m = naf(L.N_GPU_MEMORY, n, L.MAX_GPUS, i);
        if (best < 0 || m < bestMem) { best = i; bestMem = m; }
      }
      taken |= 1 << best;
      I[picksBase + k] = best;
      sum += bestMem;
    }
    return sum;
  };

  const permille = (part: number, whole: number): number => {
    if (whole <= 0) return 0;
    const p = Math.floor(part * 1000 / whole);
    return p < 0 ? 0 : p > 1000 ? 1000 : p;
  };
  const weightsBase = L.CONFIG_WEIGHTS >> 2;
  const weight = (s: number): number => I[weightsBase + s]!;
  const powerBase = L.POWER_TABLE >> 2;

  // Scorers, each 0..100, summed with CONFIG_WEIGHTS, evaluated as if the pod were placed (Nomad style).
  const score = (n: number, gpuMemSum: number): number => {
    const cpuAlloc = ni(L.N_CPU_ALLOC, n); const memAlloc = nf(L.N_MEM_ALLOC, n);
    const cpuUsed = ni(L.N_CPU_USED, n) + pw(L.P_CPU); const memUsed = nf(L.N_MEM_USED, n) + pf(L.PF_MEMORY);
    const freeCpu = permille(cpuAlloc - cpuUsed, cpuAlloc); const freeMem = permille(memAlloc - memUsed, memAlloc);
    let total = 0;
    // a. Resources: binpack = BestFit v3 scaled to 0..100; spread = LeastAllocated.
    let resources: number;
    if (pw(L.P_STRATEGY) === L.STRATEGY_SPREAD) {
      resources = Math.floor((freeCpu + freeMem) / 20);
    } else {
      let raw = 20000 - I[powerBase + freeCpu]! - I[powerBase + freeMem]!;
      raw = raw < 0 ? 0 : raw > 18000 ? 18000 : raw;
      resources = Math.floor(raw * 100 / 18000);
    }
    total += weight(L.S_RESOURCES) * resources;
    // b. Balanced: 100 minus the CPU/memory used-fraction gap, in percent.
    const gap = freeCpu - freeMem;
    total += weight(L.S_BALANCED) * (100 - Math.floor((gap < 0 ? -gap : gap) / 10));
    // c. Preferred node affinity: matched weight over total weight.
    const prefCount = pw(L.P_PREF_COUNT);
    if (prefCount > 0) {
      let p = pw(L.P_PREF_OFF); let sum = 0; let matched = 0;
      for (let t = 0; t < prefCount; t++) {
        const w = pw(p); const nExpr = pw(p + 1);
        sum += w;
        if (termMatches(n, p + 2, nExpr)) matched += w;
        p = skipExprs(p + 2, nExpr);
      }
      if (sum > 0) total += weight(L.S_NODE_AFFINITY) * Math.floor(matched * 100 / sum);
    }
    // d. PreferNoSchedule taints not tolerated: 25 points off each.
    const taints = Math.min(ni(L.N_TAINT_COUNT, n), L.MAX_TAINTS); let untolerated = 0;
    for (let i = 0; i < taints; i++) {
      if (nai(L.N_TAINT_EFFECTS, n, L.MAX_TAINTS, i) !== L.E_PREFER_NO_SCHEDULE) continue;
      if (!tolerated(nai(L.N_TAINT_KEYS, n, L.MAX_TAINTS, i), nai(L.N_TAINT_VALUES, n, L.MAX_TAINTS, i), L.E_PREFER_NO_SCHEDULE)) untolerated++;
    }
    total += weight(L.S_TAINT) * (untolerated >= 4 ? 0 : 100 - 25 * untolerated);
    // e. Preferred pod affinity / anti-affinity: weight of satisfied terms over total weight.
    const terms = pw(L.P_TERM_COUNT); const termOff = pw(L.P_TERM_OFF);
    let pSum = 0; let pMet = 0;
    for (let t = 0; t < terms; t++) {
      const q = termOff + t * L.TERM_WORDS; const kind = pw(q);
      if (kind !== L.T_PREFERRED_AFFINITY && kind !== L.T_PREFERRED_ANTI) continue;
      const w = pw(q + 3); const c = domainCount(n, t);
      pSum += w;
      if (kind === L.T_PREFERRED_AFFINITY ? c > 0 : c <= 0) pMet += w;
    }
    if (pSum > 0) total += weight(L.S_POD_AFFINITY) * Math.floor(pMet * 100 / pSum);
    // f. GPU fit: GPU pods prefer busy GPU nodes and tight memory fits; other pods avoid opening an idle GPU
    //    node (0) but may fill one whose GPUs are in use (100, like a node without GPUs).
    const gpuCount = Math.min(ni(L.N_GPU_COUNT, n), L.MAX_GPUS); const want = pw(L.P_GPU_COUNT);
    let busy = 0;
    for (let i = 0; i < gpuCount; i++) if (nai(L.N_GPU_HOLDERS, n, L.MAX_GPUS, i) > 0) busy++;
    let gpuScore: number;
    if (want === 0) {
      gpuScore = gpuCount === 0 || busy > 0 ? 100 : 0;
    } else {
      let occupancy = Math.floor((busy + want) * 100 / gpuCount); if (occupancy > 100) occupancy = 100;
      const memMin = pf(L.PF_GPU_MEMORY_MIN);
      const tight = memMin > 0 && gpuMemSum > 0 ? Math.floor(memMin * want * 100 / gpuMemSum) : 100;
      gpuScore = Math.floor((occupancy + tight) / 2);
    }
    total += weight(L.S_GPU_FIT) * gpuScore;
    return total;
  };

  // Per-pod precomputation for zone-topology terms and the "no matching pod anywhere" rule.
  const countTermDomains = (): void => {
    const terms = pw(L.P_TERM_COUNT); const termOff = pw(L.P_TERM_OFF);
    for (let t = 0; t < terms; t++) {
      const q = termOff + t * L.TERM_WORDS; const id = pw(q + 1); const zone = pw(q + 2) === L.TOPO_ZONE;
      if (zone) {
        for (let n = 0; n < nodeCount; n++) {
          const z = ni(L.N_ZONE, n);
          if (z >= 1 && z <= cap) I[zoneTermWord(z, t)] = 0;
        }
      }
      let total = 0;
      for (let n = 0; n < nodeCount; n++) {
        const c = nai(L.N_TERM_COUNTS, n, L.MAX_TERMS, id);
        if (c === 0) continue;
        total += c;
        const z = ni(L.N_ZONE, n);
        if (zone && z >= 1 && z <= cap) I[zoneTermWord(z, t)]! += c;
      }
      I[totalsBase + t] = total;
    }
  };

  if (!validatePod()) return -2;
  I.fill(0, out + L.O_REASON_COUNTS, out + L.O_REASON_COUNTS + L.NUM_REASONS);
  countTermDomains();
  const seed = I[L.CONFIG_SEED >> 2]! >>> 0; const podHash = pw(L.P_HASH) >>> 0;
  const want = pw(L.P_GPU_COUNT);
  const reasonBase = nb + cap * L.N_REASON >> 2;
  let best = -1; let bestScore = 0; let bestHash = 0; let feasible = 0;
  for (let n = 0; n < nodeCount; n++) {
    const reason = filter(n);
    I[reasonBase + n] = reason;
    if (reason !== L.R_OK) { I[out + L.O_REASON_COUNTS + reason]! += 1; continue; }
    feasible++;
    const s = score(n, want > 0 ? pickGpus(n) : 0);
    const h = tieHash(seed, podHash, ni(L.N_HASH, n) >>> 0);
    // Highest score; ties by highest hash, then lowest index.
    if (best < 0 || s > bestScore || (s === bestScore && h > bestHash)) { best = n; bestScore = s; bestHash = h; }
  }
  I[out + L.O_NODE] = best; I[out + L.O_SCORE] = bestScore; I[out + L.O_FEASIBLE] = feasible;
  if (best >= 0 && want > 0) {
    pickGpus(best);
    for (let k = 0; k < want; k++) I[out + L.O_PICKS + k] = I[picksBase + k]!;
  }
  return best;
}
