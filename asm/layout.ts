// Memory map of the scheduler core: the single source for asm/scheduler.ts and for the host
// (server/scheduler/layout.ts re-exports this file). Only integer constants live here, so the file is valid
// AssemblyScript (where they are i32) and valid TypeScript (where they are numbers).
//
// Regions, all byte offsets into the wasm linear memory:
//   [FIXED_BASE ..)       config, pod input, output, scratch
//   [NODE_BASE ..)        node table, struct-of-arrays. Region X of a table with capacity `cap` starts at
//                         NODE_BASE + cap * N_X; its element for node n, slot i, is at
//                         + (n * slots + i) * size. The host writes cap into CONFIG_CAP and moves regions
//                         when it grows the table, so N_* must stay sorted ascending in declaration order,
//                         and every N_* below the first i32 region must keep 8-byte alignment (f64 regions).
//
// Interned ids (label keys and values, GPU vendors, GPU models, architectures, zones) come from the host's
// reference-counted tables (server/scheduler/interner.ts): unbounded, reused once no node refers to them. So
// no region is indexed by a string id, except N_ZONE_TERMS by zone id, which the host keeps <= the capacity.

// Capacities per node and per pod. Inputs beyond them are refused by the host with an error.
export const MAX_LABELS = 24;
export const MAX_TAINTS = 8;
export const MAX_GPUS = 8;
export const MAX_PORTS = 16;
export const MAX_TERMS = 64; // pod-affinity label selectors whose counts are cached (LRU on the host)
export const MAX_POD_TERMS = 8; // pod (anti-)affinity terms a pod declares
// Term slots per pod: its own terms plus, per topology, one for the required anti-affinity of bound pods
// that matches it (Kubernetes' symmetric check).
export const MAX_TERM_SLOTS = MAX_POD_TERMS + 2;
// String id the host gives a pod-side string no node has (the tables give ids from 2), so it equals no node's.
export const STRING_UNKNOWN = 1;
export const POD_WORDS = 4096;
export const NUM_REASONS = 18;
export const NUM_SCORES = 6;
export const POWER_TABLE_LEN = 1001;

// Filter reason codes, in pipeline order (0 = feasible).
export const R_OK = 0;
export const R_NOT_READY = 1;
export const R_UNSCHEDULABLE = 2;
export const R_ARCH = 3;
export const R_NODE_SELECTOR = 4;
export const R_NODE_AFFINITY = 5;
export const R_TAINT = 6;
export const R_PODS = 7;
export const R_CPU = 8;
export const R_MEMORY = 9;
export const R_HOST_PORT = 10;
export const R_POD_AFFINITY = 11;
export const R_POD_ANTI_AFFINITY = 12;
export const R_GPU_COUNT = 13;
export const R_GPU_MODEL = 14;
export const R_GPU_MEMORY = 15;
// Pinned GPUs (flotilla.io/gpu-ids), checked before 13-15: the node holds them all; none is held by a pod
// it cannot share with.
export const R_GPU_ID_ABSENT = 16;
export const R_GPU_ID_HELD = 17;

// Scorers, index into CONFIG_WEIGHTS.
export const S_RESOURCES = 0; // binpack (BestFit v3) or spread (LeastAllocated)
export const S_BALANCED = 1;
export const S_NODE_AFFINITY = 2;
export const S_TAINT = 3;
export const S_POD_AFFINITY = 4;
export const S_GPU_FIT = 5;

// Node flag bits (N_FLAGS).
export const F_READY = 1;
export const F_UNSCHEDULABLE = 2;
export const F_GPU_SHARED = 4;

// Node selector / affinity operators.
export const OP_IN = 1;
export const OP_NOT_IN = 2;
export const OP_EXISTS = 3;
export const OP_DOES_NOT_EXIST = 4;
export const OP_GT = 5;
export const OP_LT = 6;

// Taint effects (0 in a toleration = every effect).
export const E_NO_SCHEDULE = 1;
export const E_PREFER_NO_SCHEDULE = 2;
export const E_NO_EXECUTE = 3;

// Toleration operators.
export const TOL_EQUAL = 0;
export const TOL_EXISTS = 1;

// Pod term kinds and topologies.
export const T_REQUIRED_AFFINITY = 1;
export const T_REQUIRED_ANTI = 2;
export const T_PREFERRED_AFFINITY = 3;
export const T_PREFERRED_ANTI = 4;
// Bound pods in the domain carry a required anti-affinity term that matches this pod: the term id names a
// column counting those carriers per node. Only the filter reads it.
export const T_EXISTING_ANTI = 5;
export const TOPO_HOSTNAME = 0;
export const TOPO_ZONE = 1;
export const TERM_WORDS = 5; // kind, term id, topology, weight, pod matches its own selector (0/1)

// Placement strategies.
export const STRATEGY_BINPACK = 0;
export const STRATEGY_SPREAD = 1;

// Pod input: i32 words at POD_I32 (header, then variable sections), f64 at POD_F64.
// Sections hold word offsets (from POD_I32) and counts:
//   architectures, GPU models: count words of a bit set over ids (bit id & 31 of word id >> 5); an id past
//     the words is not in the set
//   selector: count pairs [key, value]
//   required node affinity: count terms, each [nExpr, expr...]; expr = [op, key, nValues, value...]
//     (Gt/Lt: one value, the integer itself)
//   preferred node affinity: count terms, each [weight, nExpr, expr...]
//   tolerations: count entries [key (0 = any), operator, value, effect (0 = any)]
//   host ports: count words (port | protocol << 16)
//   pod terms: count entries of TERM_WORDS
export const P_CPU = 0;
export const P_GPU_COUNT = 1;
export const P_GPU_SHARED = 2;
export const P_GPU_VENDOR = 3;
export const P_ARCH_LIMITED = 4; // 0 = any architecture, else only those in the architecture set
export const P_STRATEGY = 5;
export const P_HASH = 6;
export const P_SEL_OFF = 7;
export const P_SEL_COUNT = 8;
export const P_REQ_OFF = 9;
export const P_REQ_COUNT = 10;
export const P_PREF_OFF = 11;
export const P_PREF_COUNT = 12;
export const P_TOL_OFF = 13;
export const P_TOL_COUNT = 14;
export const P_PORT_OFF = 15;
export const P_PORT_COUNT = 16;
export const P_TERM_OFF = 17;
export const P_TERM_COUNT = 18;
export const P_ARCH_OFF = 19; // set of the architecture ids the image exists for
export const P_ARCH_WORDS = 20;
export const P_MODEL_OFF = 21; // set of the GPU model ids whose vendor and model the pod accepts
export const P_MODEL_WORDS = 22;
// Pinned GPUs: a mask of GPU slots of node P_GPU_PIN_NODE, the only GPUs the pod may get (0 = not pinned;
// the node is -1 when no node holds them all).
export const P_GPU_PIN_MASK = 23;
export const P_GPU_PIN_NODE = 24;
export const P_VAR_BASE = 32;
export const PF_MEMORY = 0; // bytes
export const PF_GPU_MEMORY_MIN = 1; // bytes, per GPU

// Output words at OUT.
export const O_NODE = 0; // chosen node index, -1 none
export const O_SCORE = 1;
export const O_FEASIBLE = 2;
export const O_PICKS = 8; // MAX_GPUS GPU slots of the chosen node
export const O_REASON_COUNTS = 16; // NUM_REASONS
export const OUT_WORDS = 40;

// Fixed regions. FIXED_BASE leaves the first page to the AssemblyScript static data.
export const FIXED_BASE = 65536;
export const CONFIG_CAP = FIXED_BASE; // node table capacity (host-written)
export const CONFIG_SEED = FIXED_BASE + 4;
export const CONFIG_WEIGHTS = FIXED_BASE + 16; // NUM_SCORES i32
export const POWER_TABLE = FIXED_BASE + 64; // POWER_TABLE_LEN i32: round(1000 * 10^(p/1000))
export const POD_I32 = POWER_TABLE + 4 * 1024;
export const POD_F64 = POD_I32 + 4 * POD_WORDS;
export const OUT = POD_F64 + 64;
export const SCRATCH_TERM_TOTALS = OUT + 4 * OUT_WORDS; // MAX_TERM_SLOTS i32
export const SCRATCH_PICKS = SCRATCH_TERM_TOTALS + 4 * MAX_TERM_SLOTS; // MAX_GPUS i32
export const NODE_BASE = SCRATCH_PICKS + 4 * MAX_GPUS;

// Node regions: bytes per node before each region (prefix sums). f64 regions first.
export const N_MEM_ALLOC = 0;
export const N_MEM_USED = N_MEM_ALLOC + 8;
export const N_GPU_MEMORY = N_MEM_USED + 8; // MAX_GPUS f64
export const N_LABEL_NUMBERS = N_GPU_MEMORY + 8 * MAX_GPUS; // MAX_LABELS f64: label value as an integer, NaN if none (Gt/Lt)
export const N_CPU_ALLOC = N_LABEL_NUMBERS + 8 * MAX_LABELS;
export const N_CPU_USED = N_CPU_ALLOC + 4;
export const N_PODS_ALLOC = N_CPU_USED + 4;
export const N_PODS_USED = N_PODS_ALLOC + 4;
export const N_FLAGS = N_PODS_USED + 4;
export const N_ARCH = N_FLAGS + 4;
export const N_ZONE = N_ARCH + 4;
export const N_HASH = N_ZONE + 4;
export const N_REASON = N_HASH + 4; // output: reason code of the last scheduling pass
export const N_LABEL_COUNT = N_REASON + 4;
export const N_LABEL_KEYS = N_LABEL_COUNT + 4; // MAX_LABELS
export const N_LABEL_VALUES = N_LABEL_KEYS + 4 * MAX_LABELS; // MAX_LABELS
export const N_TAINT_COUNT = N_LABEL_VALUES + 4 * MAX_LABELS;
export const N_TAINT_KEYS = N_TAINT_COUNT + 4; // MAX_TAINTS
export const N_TAINT_VALUES = N_TAINT_KEYS + 4 * MAX_TAINTS;
export const N_TAINT_EFFECTS = N_TAINT_VALUES + 4 * MAX_TAINTS;
export const N_GPU_COUNT = N_TAINT_EFFECTS + 4 * MAX_TAINTS;
export const N_GPU_VENDOR = N_GPU_COUNT + 4; // MAX_GPUS
export const N_GPU_MODEL = N_GPU_VENDOR + 4 * MAX_GPUS;
export const N_GPU_HEALTHY = N_GPU_MODEL + 4 * MAX_GPUS;
export const N_GPU_HOLDERS = N_GPU_HEALTHY + 4 * MAX_GPUS; // pods holding the GPU
export const N_GPU_EXCLUSIVE = N_GPU_HOLDERS + 4 * MAX_GPUS; // 1 when a non-sharing pod holds it
export const N_PORT_COUNT = N_GPU_EXCLUSIVE + 4 * MAX_GPUS;
export const N_PORTS = N_PORT_COUNT + 4; // MAX_PORTS
export const N_PORT_REFS = N_PORTS + 4 * MAX_PORTS;
export const N_TERM_COUNTS = N_PORT_REFS + 4 * MAX_PORTS; // MAX_TERMS: bound pods matching each tracked term
// Scratch indexed by zone id - 1, not by node: per zone, per pod term slot, the bound pods in the zone matching
// the term (zone ids are 1..capacity: a zone id is never larger than the count of zones in use when given).
export const N_ZONE_TERMS = N_TERM_COUNTS + 4 * MAX_TERMS; // MAX_TERM_SLOTS
export const NODE_BYTES = N_ZONE_TERMS + 4 * MAX_TERM_SLOTS;
