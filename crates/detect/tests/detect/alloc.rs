//! Steady-state matching allocates nothing: a counting global allocator (this test
//! binary's own) counts the allocations made on the test's thread while it matches.

#![allow(unsafe_code)] // a GlobalAlloc is an unsafe trait; this one only counts and forwards

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use hallpass_detect::Scratch;

use crate::builtin;

struct Counting;

thread_local! {
    // Const-initialised Cell: reading it never allocates, so the allocator can use it.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; counting touches
// only a thread-local Cell.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract for `dealloc` is passed on as is.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: the caller's contract for `realloc` is passed on as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

const TEXTS: [&str; 6] = [
    "how to k1ll mys3lf",
    "Scunthorpe United results",
    "s u i c i d e",
    "zabić się ｐｏｒｎ kіll",
    "buy cocaine then kill myself and join isis, everyone hates you",
    "a long ordinary paragraph about the causes of the first world war, written for history homework, with nothing in it",
];

#[test]
fn matching_allocates_nothing_once_the_scratch_has_grown() {
    let matcher = builtin();
    let mut scratch = Scratch::new();
    let mut found = 0;
    // Warm-up: the scratch grows to the longest text.
    for text in TEXTS {
        found += matcher.find(text, &mut scratch).count();
    }
    assert!(
        found > 0,
        "the texts must match something, or nothing is measured"
    );

    let before = allocations();
    let mut severity_sum = 0u64;
    for _ in 0..100 {
        for text in TEXTS {
            for phrase in matcher.find(text, &mut scratch) {
                severity_sum += u64::from(phrase.severity);
            }
        }
    }
    let during = allocations() - before;
    assert!(severity_sum > 0);
    assert_eq!(during, 0, "matching allocated {during} times");
}

#[test]
fn the_counter_counts() {
    // Without this, a broken counter would make the test above pass vacuously.
    let before = allocations();
    let v = std::hint::black_box(vec![1u8; 64]);
    assert!(allocations() > before);
    drop(v);
}

#[test]
fn a_scratch_sized_for_the_text_never_grows() {
    let matcher = builtin();
    let text = TEXTS[5];
    let mut scratch = Scratch::with_capacity(text.len());
    let before = allocations();
    let n = matcher.find(text, &mut scratch).count();
    assert_eq!(allocations() - before, 0, "{n} matches");
}
