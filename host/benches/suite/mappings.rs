//! The kernel's limit on memory mappings per process (`vm.max_map_count`,
//! 65530 by default) and how many instances fit under it.
//!
//! wasmtime's pooling allocator maps a fiber stack and its guard page for
//! every instance slot when the pool is made. An instance maps its memory
//! image, the rest of its heap and its tables when it lands in memory and
//! table slots that no instance used before, and those mappings stay when
//! it goes; in slots used before it maps nothing new. Which slots it gets
//! is the pool's choice, so each instance counts as new. A scenario that
//! passed the limit would fail half way with `Cannot allocate memory`, or
//! abort when the allocator cannot map: it is scaled down to what fits
//! instead, and the run says so.

/// Mappings of one instance slot, made with its pool.
pub const PER_SLOT: usize = 2;

/// Mappings an instance adds at most when it takes a slot.
pub const PER_INSTANCE: usize = 4;

/// Mappings left for the rest of the process, past a scenario: the pools
/// of the hosts made after it (a host's pool stays mapped as long as the
/// process runs), thread stacks, the allocator's arenas.
const RESERVED: usize = 1_500;

/// How many of `wanted` instances fit, and why fewer when they do not.
pub struct Fit {
    /// The instances to make.
    pub n: usize,
    /// What was scaled down and why, if it was.
    pub note: Option<String>,
}

/// The largest `n` up to `wanted` whose `maps_for(n)` mappings fit beside
/// the `in_use` ones the process holds already. `what` names the scenario
/// in the note.
pub fn fit(what: &str, wanted: usize, in_use: usize, maps_for: impl Fn(usize) -> usize) -> Fit {
    let Some(limit) = max_map_count() else {
        return Fit { n: wanted, note: None };
    };
    let room = limit.saturating_sub(in_use + RESERVED);
    if maps_for(wanted) <= room {
        return Fit { n: wanted, note: None };
    }
    // `maps_for` grows with `n`: the largest that fits, by bisection.
    let (mut fits, mut too_many) = (0, wanted);
    while too_many - fits > 1 {
        let mid = fits + (too_many - fits) / 2;
        if maps_for(mid) <= room { fits = mid } else { too_many = mid }
    }
    // A round figure, for a row that reads as one.
    let n = if fits >= 1_000 { fits / 100 * 100 } else { fits };
    let held = if in_use > 0 { format!(" and {in_use} mappings are in use") } else { String::new() };
    let note = format!(
        "{what}: {n} instead of {wanted}. vm.max_map_count is {limit}{held}; {wanted} would need up to {} \
         (wasmtime maps {PER_SLOT} per instance slot and up to {PER_INSTANCE} per instance). Raise the limit \
         to measure {wanted} (README, \"Many actors\").",
        maps_for(wanted)
    );
    Fit { n, note: Some(note) }
}

/// The mappings this process holds now.
pub fn in_use() -> usize {
    std::fs::read_to_string("/proc/self/maps").map(|maps| maps.lines().count()).unwrap_or(0)
}

/// The kernel's limit, where there is one to read (Linux).
fn max_map_count() -> Option<usize> {
    std::fs::read_to_string("/proc/sys/vm/max_map_count").ok()?.trim().parse().ok()
}
