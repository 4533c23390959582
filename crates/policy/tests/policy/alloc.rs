//! `decide` allocates nothing once the policy is compiled: counted with a global
//! allocator that tallies allocations made on the current thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use hallpass_policy::{
    CategoryMask, FileType, Grant, GroupSet, Identity, Live, Override, OverrideTarget, Request,
    Subject,
};

struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator unchanged; only counts calls.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> usize {
    ALLOCS.with(Cell::get)
}

#[test]
fn decide_does_not_allocate() {
    let policy = super::compile("wcs.toml", super::WCS);
    let g = |n: &str| GroupSet::single(policy.group_id(n).unwrap());
    let cat = |n: &str| CategoryMask::EMPTY.with(policy.category_id(n).unwrap());
    let t = |s: &str| policy.parse_time(s).unwrap();
    let mut live = Live::none();
    live.overrides.push(Override {
        group: policy.group_id("students").unwrap(),
        target: OverrideTarget::Domain("discord.com".into()),
        until: t("2026-10-05 10:40"),
    });
    live.grants.push(Grant {
        subject: Subject::Person("s.pupil".into()),
        domain: "chess.com".into(),
        until: t("2026-10-06 00:00"),
    });
    let exe = Some(FileType {
        extension: Some("EXE"),
        mime: Some("application/x-msdownload"),
    });
    let requests = [
        Request::new(Identity::Groups(g("students")), "Portal.WCS.london."),
        Request {
            categories: cat("chat"),
            ..Request::new(Identity::Groups(g("students")), "discord.com")
        },
        Request {
            categories: cat("games"),
            person: Some("s.pupil"),
            ..Request::new(Identity::Groups(g("students")), "www.chess.com")
        },
        Request {
            file_type: exe,
            path: Some("/a/setup.exe"),
            ..Request::new(Identity::Groups(g("students")), "dl.example")
        },
        Request {
            categories: cat("audio-video"),
            ..Request::new(Identity::Groups(g("students")), "youtube.com")
        },
        Request::new(Identity::Ip("10.50.1.1".parse().unwrap()), "example.org"),
        Request::new(Identity::Ip("10.1.1.1".parse().unwrap()), "example.org"),
    ];
    let times = [
        t("2026-10-05 09:30"),
        t("2026-10-05 12:50"),
        t("2026-10-05 23:30"),
        t("2026-03-29 01:30"),
    ];
    // Warm up anything lazily initialised outside the policy (time zone caches).
    for r in &requests {
        for now in times {
            std::hint::black_box(policy.decide(r, &live, now));
        }
    }
    let before = allocations();
    for r in &requests {
        for now in times {
            std::hint::black_box(policy.decide(r, &live, now));
        }
    }
    assert_eq!(allocations() - before, 0, "decide allocated");
    // The counter does count: explain builds a trace.
    let before = allocations();
    std::hint::black_box(policy.explain(&requests[1], &live, times[0]));
    assert!(allocations() > before);
}
