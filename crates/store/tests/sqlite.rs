//! The store suite against SQLite (runs in plain `cargo test`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod suite;

macro_rules! sqlite_tests {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let db = suite::TestDb::sqlite();
            suite::$name(&db).await;
        }
    )*};
}

sqlite_tests!(
    hourly_activity_rolls_up_what_the_writer_records,
    hourly_activity_retention_keeps_a_year_and_held_people,
    migration_0012_rolls_up_existing_rows,
    sanctions_incidents_and_investigations,
    alerts_fold_route_and_follow_the_person,
    exceptions_requests_grants_overrides,
    declarations_accepted_once_per_version,
    guest_codes_and_portal_sessions,
    mail_quarantine_and_journal,
    mail_journal_by_person_held_exported_erased,
    events_round_trip,
    reports,
    audit_chain_detects_tampering,
    audit_chain_is_anchored_by_its_key,
    roster_import,
    directory_sync_disables_leavers,
    sessions,
    retention,
    retention_of_recorded_events,
    reports_of_recorded_events,
    timeline_pages_newest_first,
    export_everything_about_one_person,
    erase_refused_under_hold_then_done,
    unavailable_at_start,
    outage_spills_and_replays,
    overflow_spills_without_blocking,
    concurrent_recorders_lose_nothing,
    byte_bound_spills_big_events,
    crash_loses_nothing_acknowledged,
    linger_never_delays_what_is_awaited,
    migration_0003_keys_events_by_integer,
    migration_0007_moves_rows_and_segments,
    replay_skips_batches_already_committed,
    a_locked_database_spills_what_waited_a_second,
    acks_follow_the_sync,
    crash_with_the_database_locked_loses_at_most_a_second,
);
