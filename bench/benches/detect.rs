//! Risk-phrase detection throughput (MB/s of text) with the built-in lists, over two
//! shapes of text: search-term-like lines (short, a few risky, some obfuscated) and
//! paragraphs (homework and message-like prose). One reused Scratch, as a caller would.
//! Run: `cargo bench -p hallpass-bench --bench detect`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hallpass_detect::{Lists, Scratch};

const SEARCH_TERMS: &[&str] = &[
    "bbc bitesize maths",
    "how to revise for gcse science",
    "minecraft servers",
    "Scunthorpe United results",
    "how to k1ll mys3lf",
    "year 9 history homework world war 1",
    "weather tomorrow",
    "therapist near me",
    "free porn",
    "assassin's creed history homework",
    "buy weed near me",
    "youtube music",
    "s u i c i d e",
    "photosynthesis equation",
    "zabić się",
    "google translate polish english",
    "roblox codes",
    "is cannabis legal in the uk PSHE",
    "how many calories in a banana",
    "ｐｏｒｎ",
];

const PARAGRAPHS: &[&str] = &[
    "The causes of the First World War are usually summarised as militarism, alliances, \
     imperialism and nationalism. In this essay I will argue that the alliance system turned \
     a regional crisis in the Balkans into a continental war, because each great power felt \
     bound to support its partners once mobilisation had begun.",
    "hey are you coming to the match on saturday? mum says she can drive us if we are ready \
     by ten. bring your boots and a drink, last time we had nothing and it was boiling. also \
     did you finish the chemistry worksheet because i am stuck on question four",
    "Photosynthesis is the process by which green plants use light energy to make glucose \
     from carbon dioxide and water. It takes place in the chloroplasts, which contain the \
     pigment chlorophyll. Oxygen is released as a by-product.",
    "nobody likes you and everyone hates you, just go and k y s already, we all saw what you \
     posted and it was pathetic. dont bother coming in tomorrow",
];

fn bench(c: &mut Criterion) {
    let matcher = Lists::builtin().unwrap().matcher().unwrap();
    let mut scratch = Scratch::new();
    let mut group = c.benchmark_group("detect");
    for (name, texts) in [("search_terms", SEARCH_TERMS), ("paragraphs", PARAGRAPHS)] {
        let bytes: usize = texts.iter().map(|t| t.len()).sum();
        group.throughput(Throughput::Bytes(bytes as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut severities = 0u32;
                for text in texts {
                    for phrase in matcher.find(black_box(text), &mut scratch) {
                        severities += u32::from(phrase.severity);
                    }
                }
                severities
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
