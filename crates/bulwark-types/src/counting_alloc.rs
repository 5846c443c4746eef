//! A global allocator that counts the bytes it hands out, for tests that bound what an
//! operation allocates instead of timing it (deterministic, and it fails on any build that
//! copies what it should share). Compiled only with the `counting-allocator` feature, which
//! only dev-dependencies enable. A test binary installs it as its own global allocator:
//!
//! ```ignore
//! use bulwark_types::counting_alloc::Counting;
//! #[global_allocator]
//! static GLOBAL: Counting = Counting;
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// The system allocator, counting the bytes of every allocation and reallocation.
pub struct Counting;

static ALLOCATED: AtomicU64 = AtomicU64::new(0);

/// The counter is the process's: measurements take turns.
static MEASURING: Mutex<()> = Mutex::new(());

// SAFETY: every call is passed to the system allocator unchanged; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: the caller's layout, passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATED.fetch_add(new_size as u64, Ordering::Relaxed);
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// What `f` returns and the bytes allocated while it ran (by any thread: measurements take
/// turns, and a test binary's other threads should be idle). Meaningful only in a binary whose
/// global allocator is [`Counting`].
pub fn allocated_by<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let _turn = MEASURING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let before = ALLOCATED.load(Ordering::SeqCst);
    let out = f();
    (out, ALLOCATED.load(Ordering::SeqCst) - before)
}
