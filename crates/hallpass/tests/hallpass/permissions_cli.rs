//! The data directory's permissions through the built binary, with real files and modes:
//! created 0700 with every file 0600, tightened when an older version left them readable,
//! refused when other users can write it, and a permissions problem explained as one.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn hallpass(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hallpass"));
    command
        .args(args)
        .env_remove("HALLPASS_DATABASE")
        .env_remove("HALLPASS_DATA_DIR")
        .env_remove("HALLPASS_AUDIT_KEY");
    command
}

fn run(args: &[&str]) -> Output {
    hallpass(args).output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn roster(dir: &Path) -> String {
    let path = dir.join("roster.csv");
    std::fs::write(
        &path,
        "username,display_name,role,year_group,form,email,mis_id\n\
         alice,Alice,student,9,9B,alice@school.example,M1\n",
    )
    .unwrap();
    path.to_str().unwrap().to_string()
}

/// Every file directly in `dir` with its mode.
fn modes(dir: &Path) -> Vec<(String, u32)> {
    let mut out: Vec<(String, u32)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                mode(&e.path()),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn a_new_data_directory_is_private_and_so_is_every_file_in_it() {
    let root = tempfile::tempdir().unwrap();
    let roster = roster(root.path());
    let data = root.path().join("new/data");
    let o = run(&[
        "people",
        "import",
        &roster,
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(mode(&data), 0o700, "the data directory");
    let files = modes(&data);
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    for want in ["audit.key", "hallpass.db"] {
        assert!(names.contains(&want), "{want} missing: {files:?}");
    }
    for (name, mode) in &files {
        assert_eq!(*mode, 0o600, "{name} must be 0600: {files:?}");
    }

    // `serve` too: database, WAL, shared memory, spill file and key, all 0600.
    let serve_dir = root.path().join("serve");
    let mut child = hallpass(&[
        "serve",
        "--data-dir",
        serve_dir.to_str().unwrap(),
        "--dns-listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
        "--web-listen",
        "127.0.0.1:0",
        "--upstream",
        "127.0.0.1:9",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut banner = String::new();
    let mut buf = [0u8; 4096];
    while !banner.contains("Stop with Ctrl-C") {
        let n = std::io::Read::read(&mut stdout, &mut buf).unwrap();
        assert!(n > 0, "serve ended before its banner: {banner}");
        banner.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let files = modes(&serve_dir);
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let _ = child.wait();
    assert_eq!(mode(&serve_dir), 0o700);
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    for want in [
        "audit.key",
        "events.spill",
        "hallpass.db",
        "hallpass.db-shm",
        "hallpass.db-wal",
    ] {
        assert!(names.contains(&want), "{want} missing: {files:?}");
    }
    for (name, mode) in &files {
        assert_eq!(*mode, 0o600, "{name} must be 0600: {files:?}");
    }
}

#[test]
fn files_an_older_version_left_readable_are_made_private() {
    let root = tempfile::tempdir().unwrap();
    let roster = roster(root.path());
    let data = root.path().join("data");
    let o = run(&[
        "people",
        "import",
        &roster,
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    for (name, _) in modes(&data) {
        std::fs::set_permissions(data.join(name), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let o = run(&["people", "list", "--data-dir", data.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(mode(&data), 0o700);
    for (name, mode) in modes(&data) {
        assert_eq!(mode, 0o600, "{name}");
    }
}

#[test]
fn a_data_directory_other_users_can_write_is_refused_by_every_command_and_serve() {
    let root = tempfile::tempdir().unwrap();
    let roster = roster(root.path());
    for open in [0o777, 0o770, 0o1777] {
        let data = root.path().join(format!("open-{open:o}"));
        std::fs::create_dir(&data).unwrap();
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(open)).unwrap();
        let shown = data.display().to_string();
        for args in [
            vec!["people", "import", &roster],
            vec!["session", "list"],
            vec!["audit", "verify"],
            vec![
                "serve",
                "--dns-listen",
                "127.0.0.1:0",
                "--admin-listen",
                "127.0.0.1:0",
                "--web-listen",
                "127.0.0.1:0",
                "--upstream",
                "127.0.0.1:9",
            ],
        ] {
            let mut args = args.clone();
            args.extend(["--data-dir", &shown]);
            let o = hallpass(&args).stdin(Stdio::null()).output().unwrap();
            let said = text(&o);
            assert_eq!(o.status.code(), Some(2), "{args:?}: {said}");
            assert!(
                said.contains(&format!(
                    "the data directory {shown} can be written by other users (mode {open:04o})"
                )) && said.contains(&format!("chmod 700 {shown}")),
                "{args:?}: {said}"
            );
            assert_eq!(
                std::fs::read_dir(&data).unwrap().count(),
                0,
                "{args:?} created nothing in it"
            );
        }
        assert_eq!(
            mode(&data),
            open,
            "never changed behind the operator's back"
        );
    }
}

/// As root, runs the child as `nobody` so permissions apply; as anyone else, as itself.
fn as_unprivileged(command: &mut Command) -> &mut Command {
    if std::fs::metadata("/proc/self").unwrap().uid() == 0 {
        command.uid(65534).gid(65534);
    }
    command
}

#[test]
fn a_permissions_problem_says_what_to_fix() {
    let root = tempfile::tempdir().unwrap();
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let roster = roster(root.path());
    std::fs::set_permissions(&roster, std::fs::Permissions::from_mode(0o644)).unwrap();
    let data = root.path().join("data");
    let o = run(&[
        "people",
        "import",
        &roster,
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let root_run = std::fs::metadata("/proc/self").unwrap().uid() == 0;
    if !root_run {
        // Our own directory, but not writable: SQLite could not open the database.
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o500)).unwrap();
        std::fs::remove_file(data.join("hallpass.db-wal")).ok();
    }
    let shown = data.display().to_string();
    for args in [
        vec!["session", "list", "--data-dir", &shown],
        vec!["people", "import", &roster, "--data-dir", &shown],
    ] {
        let o = as_unprivileged(&mut hallpass(&args)).output().unwrap();
        let said = text(&o);
        assert_eq!(o.status.code(), Some(2), "{said}");
        let fix = if root_run { "chown" } else { "chmod 700" };
        assert!(said.contains(&shown) && said.contains(fix), "{said}");
        assert!(!said.contains("unable to open database file"), "{said}");
        assert_eq!(said.matches("error:").count(), 1, "said once: {said}");
    }
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
}
