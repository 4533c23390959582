//! Host lookups allocate nothing: a counting global allocator proves it. It counts the
//! allocations of the current thread only, so the other tests of this binary, running
//! in parallel, do not disturb the count.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use hallpass_catalog::{Catalog, CatalogBuilder};

struct Counting;

thread_local! {
    // Const-initialised and without a destructor: safe to touch from the allocator,
    // even while a thread is being torn down.
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

fn allocations() -> usize {
    ALLOCS.with(Cell::get)
}

// SAFETY: forwards to the system allocator unchanged; only counts calls.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn lookups_do_not_allocate() {
    let mut b = CatalogBuilder::new();
    for i in 0..2000 {
        b.add_domain(["a", "b", "c"][i % 3], &format!("site{i}.example"))
            .unwrap();
    }
    b.add_domain("a", "10.1.2.3").unwrap();
    b.add_domain("a", "2001:db8::1").unwrap();
    b.add_url("b", "site1.example/path").unwrap();
    b.add_expression("c", "/ban+ers?/").unwrap();
    let dir = std::env::temp_dir().join(format!("hallpass-alloc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("c.idx");
    b.write_to(&path).unwrap();
    let mapped = Catalog::open(&path).unwrap();
    let owned = Catalog::demo().unwrap();
    // Both are served by the in-memory host table; the fst walk is checked too.
    assert!(mapped.stats().lookup_table_bytes > 0);
    assert!(owned.stats().lookup_table_bytes > 0);

    let hosts = [
        "site5.example",
        "www.SITE6.example.",
        "deep.sub.site7.example",
        "missing.example",
        "gmail.com",
        "www.facebook.com",
        "10.1.2.3",
        "[2001:db8::1]",
        "x",
        "",
        "Deep.Sub.Site8.Example",
        "10.1.2",
        "site9.example..",
        "a.b.c.d.e.f.g.h.i.j.site10.example",
    ];
    let urls = [
        "http://www.site1.example/path/more?x=1",
        "https://nothing.example:8443/banners/1.gif",
        "site1.example",
    ];
    // Warm up (regex caches are filled lazily, once per thread).
    for c in [&mapped, &owned] {
        for h in hosts {
            std::hint::black_box(c.lookup_host(h));
        }
        for u in urls {
            std::hint::black_box(c.lookup_url(u));
        }
    }
    let before = allocations();
    let mut hits = 0;
    for _ in 0..1000 {
        for c in [&mapped, &owned] {
            for h in hosts {
                hits += c.lookup_host(std::hint::black_box(h)).len();
                hits += c.lookup_host_walk(std::hint::black_box(h)).len();
            }
        }
    }
    let after_hosts = allocations();
    for _ in 0..1000 {
        for u in urls {
            hits += mapped.lookup_url(std::hint::black_box(u)).len();
        }
    }
    let after_urls = allocations();
    assert!(hits > 0);
    assert_eq!(after_hosts - before, 0, "host lookups allocated");
    assert_eq!(after_urls - after_hosts, 0, "URL lookups allocated");
    std::fs::remove_dir_all(&dir).ok();
}
