//! `hallpass directory sync` against a real OpenLDAP `slapd` that each test starts as this
//! user on a free loopback port, seeded with a small school; the directory is then changed
//! with the real `ldapmodify` / `ldapdelete` tools between syncs. Under CI=true a missing
//! slapd fails the test; otherwise it is skipped, loudly.

use std::io::Write as _;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

const SLAPD: &str = "/usr/sbin/slapd";
const SLAPADD: &str = "/usr/sbin/slapadd";
const SUFFIX: &str = "dc=school,dc=test";
const ROOT_DN: &str = "cn=admin,dc=school,dc=test";
const ROOT_PW: &str = "not-a-real-secret";

const SEED: &str = "\
dn: dc=school,dc=test
objectClass: dcObject
objectClass: organization
o: Test School
dc: school

dn: ou=students,dc=school,dc=test
objectClass: organizationalUnit
ou: students

dn: ou=staff,dc=school,dc=test
objectClass: organizationalUnit
ou: staff

dn: ou=groups,dc=school,dc=test
objectClass: organizationalUnit
ou: groups

dn: uid=amy,ou=students,dc=school,dc=test
objectClass: inetOrgPerson
uid: amy
cn: Amy Adams
sn: Adams
displayName: Amy Adams
mail: amy@school.test
employeeNumber: M1
departmentNumber: 9
businessCategory: 9B

dn: uid=ben,ou=students,dc=school,dc=test
objectClass: inetOrgPerson
uid: ben
cn: Ben Brown
sn: Brown
displayName: Ben Brown
mail: ben@school.test
employeeNumber: M2
departmentNumber: 10
businessCategory: 10A

dn: uid=cal,ou=students,dc=school,dc=test
objectClass: inetOrgPerson
uid: cal
cn: Cal Cole
sn: Cole
displayName: Cal Cole
mail: cal@school.test
employeeNumber: M3
departmentNumber: 9
businessCategory: 9B

dn: uid=tom,ou=staff,dc=school,dc=test
objectClass: inetOrgPerson
uid: tom
cn: Tom Teach
sn: Teach
displayName: Tom Teach
mail: tom@school.test
employeeNumber: S1

dn: uid=zed,ou=students,dc=school,dc=test
objectClass: inetOrgPerson
uid: zed
cn: Zed Zane
sn: Zane
displayName: Zed Zane
mail: zed@school.test
employeeNumber: M4
departmentNumber: Year 9

dn: cn=No Uid,ou=students,dc=school,dc=test
objectClass: inetOrgPerson
cn: No Uid
sn: Uid
mail: nouid@school.test

dn: cn=year9,ou=groups,dc=school,dc=test
objectClass: groupOfNames
cn: year9
member: uid=amy,ou=students,dc=school,dc=test
member: uid=cal,ou=students,dc=school,dc=test

dn: cn=teachers,ou=groups,dc=school,dc=test
objectClass: groupOfNames
cn: teachers
member: uid=tom,ou=staff,dc=school,dc=test
";

/// A slapd of our own, killed when dropped.
struct Slapd {
    child: Child,
    url: String,
    dir: tempfile::TempDir,
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Slapd {
    /// `None` (after saying so) when slapd is not installed and CI is not set.
    fn start() -> Option<Slapd> {
        if !Path::new(SLAPD).exists()
            || !Path::new(SLAPADD).exists()
            || which("ldapmodify").is_none()
        {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set but slapd or ldap-utils is missing: .ci/run installs them \
                 (apt-get install slapd ldap-utils)"
            );
            eprintln!(
                "SKIPPED directory sync tests: {SLAPD} or ldapmodify not found \
                 (apt-get install slapd ldap-utils)"
            );
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("db")).unwrap();
        let conf = dir.path().join("slapd.conf");
        std::fs::write(
            &conf,
            format!(
                "include /etc/ldap/schema/core.schema\n\
                 include /etc/ldap/schema/cosine.schema\n\
                 include /etc/ldap/schema/inetorgperson.schema\n\
                 include /etc/ldap/schema/nis.schema\n\
                 modulepath /usr/lib/ldap\n\
                 moduleload back_mdb\n\
                 pidfile {dir}/slapd.pid\n\
                 database mdb\n\
                 maxsize 10485760\n\
                 suffix \"{SUFFIX}\"\n\
                 rootdn \"{ROOT_DN}\"\n\
                 rootpw {ROOT_PW}\n\
                 directory {dir}/db\n",
                dir = dir.path().display()
            ),
        )
        .unwrap();
        let seed = dir.path().join("seed.ldif");
        std::fs::write(&seed, SEED).unwrap();
        let o = Command::new(SLAPADD)
            .arg("-f")
            .arg(&conf)
            .arg("-l")
            .arg(&seed)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "slapadd: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let port = free_port();
        let url = format!("ldap://127.0.0.1:{port}");
        let child = Command::new(SLAPD)
            .arg("-f")
            .arg(&conf)
            .arg("-h")
            .arg(format!("{url}/"))
            // -d keeps it in the foreground, so the child is slapd itself and the guard
            // kills it.
            .args(["-d", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let slapd = Slapd { child, url, dir };
        for _ in 0..200 {
            if TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
                return Some(slapd);
            }
            hallpass_clock::sleep_thread(Duration::from_millis(25));
        }
        panic!("slapd did not listen on {} within 5 s", slapd.url);
    }

    /// Run an ldap-utils tool as the directory's administrator with `ldif` on stdin.
    fn ldap_tool(&self, tool: &str, args: &[&str], ldif: &str) {
        let mut child = Command::new(tool)
            .args(["-x", "-H", &self.url, "-D", ROOT_DN, "-w", ROOT_PW])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(ldif.as_bytes())
            .unwrap();
        let o = child.wait_with_output().unwrap();
        assert!(
            o.status.success(),
            "{tool}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    fn modify(&self, ldif: &str) {
        self.ldap_tool("ldapmodify", &[], ldif);
    }

    fn delete(&self, dn: &str) {
        self.ldap_tool("ldapdelete", &[dn], "");
    }

    /// A configuration for this server, with `extra` lines in the [directory] table.
    fn config(&self, extra: &str) -> PathBuf {
        let password = self.dir.path().join("bind.password");
        std::fs::write(&password, format!("{ROOT_PW}\n")).unwrap();
        let path = self.dir.path().join("directory.toml");
        std::fs::write(
            &path,
            format!(
                r#"[directory]
url = "{url}"
bind_dn = "{ROOT_DN}"
password_file = "{password}"
base_dn = "{SUFFIX}"
filter = "(objectClass=inetOrgPerson)"
page_size = 2
membership = "group_member"
{extra}
[directory.attributes]
year_group = "departmentNumber"
form = "businessCategory"

[[directory.roles]]
role = "teacher"
group = "cn=teachers,ou=groups,{SUFFIX}"

[[directory.roles]]
role = "student"
ou = "ou=students,{SUFFIX}"

[directory.groups]
"CN=year9, OU=groups, {SUFFIX}" = "Year 9"
"#,
                url = self.url,
                password = password.display()
            ),
        )
        .unwrap();
        path
    }
}

fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(tool))
            .find(|p| p.exists())
    })
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn hallpass(data_dir: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let o: Output = Command::new(env!("CARGO_BIN_EXE_hallpass"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("HALLPASS_DATABASE")
        .output()
        .unwrap();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn sync(data: &Path, config: &Path, more: &[&str]) -> (Option<i32>, String, String) {
    let mut args = vec!["directory", "sync", "--config", config.to_str().unwrap()];
    args.extend(more);
    hallpass(data, &args)
}

fn people(data: &Path) -> String {
    let (code, out, err) = hallpass(data, &["people", "list"]);
    assert_eq!(code, Some(0), "{err}");
    out
}

fn audit_entries(data: &Path) -> usize {
    let (code, out, err) = hallpass(data, &["audit", "list", "--last", "1000"]);
    assert_eq!(code, Some(0), "{err}");
    out.lines().count()
}

fn line_of<'a>(list: &'a str, user: &str) -> &'a str {
    list.lines()
        .find(|l| l.starts_with(&format!("{user}\t")))
        .unwrap_or_else(|| panic!("{user} is not in:\n{list}"))
}

#[test]
fn sync_creates_then_changes_nothing_then_disables_a_leaver() {
    let Some(ldap) = Slapd::start() else { return };
    let data = tempfile::tempdir().unwrap();
    let data = data.path().join("data");
    let config = ldap.config("");
    let skipped_zed = "skipped uid=zed,ou=students,dc=school,dc=test: year_group (attribute \
                       departmentNumber): \"Year 9\" is not a year group";
    let skipped_nouid = "skipped cn=No Uid,ou=students,dc=school,dc=test: has no uid attribute";

    // A dry run shows the diff and writes nothing.
    let (code, out, err) = sync(&data, &config, &["--dry-run"]);
    assert_eq!(code, Some(1), "entries were skipped: {out}{err}");
    assert!(out.contains("would add amy (student, year 9)"), "{out}");
    assert!(
        out.contains("dry run: 4 added, 0 changed, 0 disabled, 0 unchanged, 2 skipped"),
        "{out}"
    );
    assert_eq!(people(&data), "", "a dry run wrote people");

    // First run: creates everyone well formed; the two malformed entries are named by DN.
    let (code, out, err) = sync(&data, &config, &[]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(out.contains(skipped_zed), "{out}");
    assert!(out.contains(skipped_nouid), "{out}");
    for want in [
        "added amy (student, year 9)",
        "added ben (student, year 10)",
        "added cal",
        "added tom (teacher)",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    assert!(
        out.contains("4 added, 0 changed, 0 disabled, 0 unchanged, 2 skipped (audit entry"),
        "{out}"
    );
    let list = people(&data);
    assert_eq!(
        line_of(&list, "amy"),
        "amy\tAmy Adams\tstudent\t9\t9B\tYear 9"
    );
    assert_eq!(line_of(&list, "ben"), "ben\tBen Brown\tstudent\t10\t10A\t");
    assert_eq!(line_of(&list, "tom"), "tom\tTom Teach\tteacher\t-\t-\t");
    assert!(!list.contains("zed"), "{list}");

    // Second run, nothing changed in the directory: nothing written, not even audit.
    let audit_before = audit_entries(&data);
    let (code, out, _) = sync(&data, &config, &[]);
    assert_eq!(code, Some(1));
    assert!(
        out.contains("0 added, 0 changed, 0 disabled, 4 unchanged, 2 skipped (no changes)"),
        "{out}"
    );
    assert_eq!(
        audit_entries(&data),
        audit_before,
        "an idle sync wrote to the audit log"
    );
    assert_eq!(people(&data), list);

    // Ben is logged on; then he leaves, Cal moves up a year and Amy's entry breaks.
    let (code, _, err) = hallpass(
        &data,
        &["session", "start", "--user", "ben", "--ip", "10.9.9.9"],
    );
    assert_eq!(code, Some(0), "{err}");
    ldap.delete("uid=ben,ou=students,dc=school,dc=test");
    ldap.modify(
        "dn: uid=cal,ou=students,dc=school,dc=test\nchangetype: modify\nreplace: departmentNumber\ndepartmentNumber: 10\n\n\
         dn: uid=amy,ou=students,dc=school,dc=test\nchangetype: modify\nreplace: departmentNumber\ndepartmentNumber: nine\n",
    );
    let (code, out, _) = sync(&data, &config, &["--dry-run"]);
    assert_eq!(code, Some(1));
    assert!(
        out.contains("would disable ben: no longer in the directory"),
        "{out}"
    );
    assert_eq!(people(&data), list, "a dry run changed people");
    let (code, out, _) = sync(&data, &config, &[]);
    assert_eq!(code, Some(1));
    assert!(
        out.contains("disabled ben: no longer in the directory"),
        "{out}"
    );
    assert!(out.contains("changed cal: year_group: 9 -> 10"), "{out}");
    assert!(
        out.contains("skipped uid=amy,ou=students,dc=school,dc=test: year_group"),
        "{out}"
    );
    assert!(
        out.contains("0 added, 1 changed, 1 disabled, 1 unchanged, 3 skipped"),
        "{out}"
    );
    let after = people(&data);
    assert!(
        line_of(&after, "ben").contains("\tleft "),
        "ben is not shown as left:\n{after}"
    );
    // Amy's entry was skipped, not taken as her leaving.
    assert_eq!(
        line_of(&after, "amy"),
        "amy\tAmy Adams\tstudent\t9\t9B\tYear 9"
    );
    let (_, sessions, _) = hallpass(&data, &["session", "list"]);
    assert!(
        !sessions.contains("ben"),
        "the leaver is still logged on: {sessions}"
    );
    let (code, _, err) = hallpass(
        &data,
        &["session", "start", "--user", "ben", "--ip", "10.9.9.9"],
    );
    assert_eq!(code, Some(2));
    assert!(err.contains("\"ben\" has left"), "{err}");
    // Disabling is idempotent too.
    let (_, out, _) = sync(&data, &config, &[]);
    assert!(
        out.contains("0 added, 0 changed, 0 disabled, 2 unchanged, 3 skipped (no changes)"),
        "{out}"
    );

    // Ben comes back: re-enabled, and may log on again.
    ldap.ldap_tool(
        "ldapadd",
        &[],
        "dn: uid=ben,ou=students,dc=school,dc=test\nobjectClass: inetOrgPerson\nuid: ben\ncn: Ben Brown\nsn: Brown\n\
         displayName: Ben Brown\nmail: ben@school.test\nemployeeNumber: M2\ndepartmentNumber: 10\nbusinessCategory: 10A\n",
    );
    let (_, out, _) = sync(&data, &config, &[]);
    assert!(out.contains("changed ben: left: "), "{out}");
    assert!(!line_of(&people(&data), "ben").contains("left"));
    let (code, _, err) = hallpass(
        &data,
        &["session", "start", "--user", "ben", "--ip", "10.9.9.9"],
    );
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn bad_credentials_servers_and_configurations_change_nothing() {
    let Some(ldap) = Slapd::start() else { return };
    let data = tempfile::tempdir().unwrap();
    let data = data.path().join("data");
    let config = ldap.config("");
    let good = std::fs::read_to_string(&config).unwrap();
    let with = |from: &str, to: &str| {
        assert!(good.contains(from), "{from}");
        std::fs::write(&config, good.replace(from, to)).unwrap();
    };
    let expect_error = |want: &str| {
        let (code, out, err) = sync(&data, &config, &[]);
        assert_eq!(code, Some(2), "{want}: {out}{err}");
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
        assert!(
            !err.contains(ROOT_PW) && !out.contains(ROOT_PW),
            "the password was printed"
        );
    };
    let wrong = ldap.dir.path().join("wrong.password");
    std::fs::write(&wrong, "wrong\n").unwrap();
    with("bind.password", "wrong.password");
    expect_error("invalid credentials (check bind_dn and the password) (LDAP result 49)");
    with(&ldap.url, &format!("ldap://127.0.0.1:{}", free_port()));
    expect_error("connecting to the directory at ldap://127.0.0.1:");
    // A port that takes the connection and never answers: the timeout ends the wait.
    let silent = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let silent_url = format!("ldap://{}", silent.local_addr().unwrap());
    std::fs::write(
        &config,
        good.replace(&ldap.url, &silent_url)
            .replace("page_size = 2", "page_size = 2\ntimeout_seconds = 1"),
    )
    .unwrap();
    expect_error("no answer within timeout_seconds");
    drop(silent);
    with(
        &format!("base_dn = \"{SUFFIX}\""),
        "base_dn = \"ou=nowhere,dc=school,dc=test\"",
    );
    expect_error("no such object (check base_dn)");
    with("(objectClass=inetOrgPerson)", "(uid=nobody-at-all)");
    expect_error("found no entries: nothing was changed");
    with(
        "[directory.attributes]",
        "[directory.attributes]\nusername = \"carLicense\"",
    );
    expect_error("none of the 6 entries found could be synced");
    with("cn=teachers,ou=groups", "cn=nobody,ou=groups");
    expect_error(
        "the group cn=nobody,ou=groups,dc=school,dc=test named in the configuration is not in the directory",
    );
    with("page_size = 2", "page_sise = 2");
    expect_error("unknown field `page_sise`");
    with(
        "password_file",
        "password_env = \"HALLPASS_TEST_NO_SUCH_VAR\"\n#",
    );
    expect_error("environment variable HALLPASS_TEST_NO_SUCH_VAR is not set");
    // Nothing above reached the store.
    assert_eq!(people(&data), "");
    // And the good configuration still works.
    std::fs::write(&config, &good).unwrap();
    let (code, out, err) = sync(&data, &config, &[]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(out.contains("4 added"), "{out}");
}
