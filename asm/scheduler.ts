// Scheduler core: placeholder entry until the placement pipeline lands.
export function version(): i32 {
  return 1;
}
