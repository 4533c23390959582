//! Benchmark helpers: data generators shared by the criterion suites and the
//! whole-service scripts under `bench/*/run.sh`.

pub mod domains;
