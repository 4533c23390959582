//! Directory entries -> roster records, without any IO: each entry's attributes and
//! memberships become a [`PersonRecord`], checked by the same rules as a CSV roster row
//! (they go through [`parse_roster`]). An entry that cannot be mapped is skipped and
//! reported by its DN; the rest are kept.

use std::collections::{BTreeSet, HashMap, HashSet};

use hallpass_store::people::{PersonRecord, parse_roster};

use super::config::{DirectoryConfig, Membership};

/// One entry as the directory returned it: attribute names as the server spelled them.
#[derive(Debug, Clone, Default)]
pub struct Entry {
    pub dn: String,
    pub attrs: HashMap<String, Vec<String>>,
}

/// An entry left out, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub dn: String,
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct Mapped {
    pub records: Vec<PersonRecord>,
    pub skipped: Vec<Skipped>,
    /// Usernames of skipped entries: still in the directory, so never disabled as leavers.
    pub protected: Vec<String>,
}

/// DNs compare without case and without spaces around `,` and `=`
/// (`CN=Year 9, OU=Groups` is `cn=year 9,ou=groups`).
pub fn normalise_dn(dn: &str) -> String {
    dn.split(',')
        .map(|rdn| rdn.split('=').map(str::trim).collect::<Vec<_>>().join("="))
        .collect::<Vec<_>>()
        .join(",")
        .to_lowercase()
}

impl Entry {
    /// The values of `name` (attribute names are case-insensitive in LDAP).
    fn values(&self, name: &str) -> &[String] {
        self.attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map_or(&[], |(_, v)| v.as_slice())
    }

    /// The single value of `name`: `Ok(None)` when absent, an error when it has several
    /// values or a control character (a line break would not be one roster row).
    fn single(&self, name: &str) -> Result<Option<&str>, String> {
        match self.values(name) {
            [] => Ok(None),
            [one] if one.chars().any(char::is_control) => {
                Err(format!("attribute {name} contains a control character"))
            }
            [one] => Ok(Some(one.trim())),
            many => Err(format!(
                "attribute {name} has {} values where one is expected",
                many.len()
            )),
        }
    }
}

/// The fields of one entry before the roster checks.
struct Fields {
    username: String,
    display_name: String,
    role: String,
    year_group: String,
    form: String,
    email: String,
    mis_id: String,
    groups: Vec<String>,
}

/// Map every entry. `group_members` (normalised group DN -> normalised member DNs) is read
/// from the directory when `membership = "group_member"`; unused otherwise.
pub fn map_entries(
    cfg: &DirectoryConfig,
    entries: &[Entry],
    group_members: &HashMap<String, HashSet<String>>,
) -> Mapped {
    let mut mapped = Mapped::default();
    let mut fields: Vec<(&Entry, Fields)> = Vec::new();
    for entry in entries {
        match entry_fields(cfg, entry, group_members) {
            Ok(f) => fields.push((entry, f)),
            Err(reason) => {
                if let Ok(Some(u)) = entry.single(&cfg.attributes.username) {
                    mapped.protected.push(u.to_string());
                }
                mapped.skipped.push(Skipped {
                    dn: entry.dn.clone(),
                    reason,
                });
            }
        }
    }
    // A username two entries share: neither is the person for certain, so both are
    // skipped (and the person, still in the directory, is kept as they are).
    let mut by_name: HashMap<String, Vec<&str>> = HashMap::new();
    for (entry, f) in &fields {
        by_name
            .entry(f.username.to_lowercase())
            .or_default()
            .push(&entry.dn);
    }
    fields.retain(|(entry, f)| {
        // Every username in `fields` is a key of `by_name`, built from the same list.
        let dns = &by_name[&f.username.to_lowercase()];
        if dns.len() == 1 {
            return true;
        }
        let others: Vec<&str> = dns.iter().copied().filter(|d| *d != entry.dn).collect();
        mapped.protected.push(f.username.clone());
        mapped.skipped.push(Skipped {
            dn: entry.dn.clone(),
            reason: format!(
                "username {:?} is also the username of {}",
                f.username,
                others.join("; ")
            ),
        });
        false
    });
    // The roster's own checks, row by row: a rejected row is that entry, skipped. The
    // checks that compare rows (a mis_id used twice) reject the later row, so re-check
    // until the rest pass; each round removes at least one entry.
    loop {
        match parse_roster(roster_csv(cfg, &fields).as_bytes()) {
            Ok(records) => {
                mapped.records = records;
                break;
            }
            Err(errors) => {
                let mut reasons: HashMap<usize, Vec<String>> = HashMap::new();
                for e in &errors {
                    // Line 1 is the header, line 2 the first entry.
                    let index = usize::try_from(e.line.saturating_sub(2)).unwrap_or(usize::MAX);
                    let what = match &e.column {
                        Some(c) => format!("{}: {}", attribute_of(cfg, c), e.message),
                        None => e.message.clone(),
                    };
                    reasons.entry(index).or_default().push(what);
                }
                if !reasons.keys().any(|i| *i < fields.len()) {
                    // Not one row's fault (cannot happen with the header we write): skip
                    // nothing silently, report it against the base.
                    mapped.skipped.push(Skipped {
                        dn: cfg.base_dn.clone(),
                        reason: errors
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join("; "),
                    });
                    break;
                }
                let mut i = 0;
                fields.retain(|(entry, f)| {
                    let keep = match reasons.remove(&i) {
                        None => true,
                        Some(why) => {
                            mapped.protected.push(f.username.clone());
                            mapped.skipped.push(Skipped {
                                dn: entry.dn.clone(),
                                reason: why.join("; "),
                            });
                            false
                        }
                    };
                    i += 1;
                    keep
                });
            }
        }
    }
    mapped.protected.sort();
    mapped.protected.dedup();
    mapped
}

/// Which directory attribute a roster column came from, for messages about an entry.
fn attribute_of(cfg: &DirectoryConfig, column: &str) -> String {
    let a = &cfg.attributes;
    let name = match column {
        "username" => Some(a.username.as_str()),
        "display_name" => Some(a.display_name.as_str()),
        "email" => Some(a.email.as_str()),
        "mis_id" => Some(a.mis_id.as_str()),
        "year_group" => a.year_group.as_deref(),
        "form" => a.form.as_deref(),
        _ => None,
    };
    match name {
        Some(attr) => format!("{column} (attribute {attr})"),
        None => column.to_string(),
    }
}

fn roster_csv(cfg: &DirectoryConfig, fields: &[(&Entry, Fields)]) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let header = [
        "username",
        "display_name",
        "role",
        "year_group",
        "form",
        "email",
        "mis_id",
        "site",
        "groups",
    ];
    // Writing to a Vec cannot fail but for a bug in csv; an error leaves those rows out,
    // and parse_roster then reports them against their line.
    let _ = w.write_record(header);
    let site = cfg.site.as_deref().unwrap_or("");
    for (_, f) in fields {
        let groups = f.groups.join(";");
        let _ = w.write_record([
            f.username.as_str(),
            &f.display_name,
            &f.role,
            &f.year_group,
            &f.form,
            &f.email,
            &f.mis_id,
            site,
            &groups,
        ]);
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

fn entry_fields(
    cfg: &DirectoryConfig,
    entry: &Entry,
    group_members: &HashMap<String, HashSet<String>>,
) -> Result<Fields, String> {
    let a = &cfg.attributes;
    let username = entry
        .single(&a.username)?
        .ok_or_else(|| format!("has no {} attribute (the username)", a.username))?
        .to_string();
    let text = |name: Option<&String>| -> Result<String, String> {
        Ok(match name {
            Some(n) => entry.single(n)?.unwrap_or_default().to_string(),
            None => String::new(),
        })
    };
    let dn = normalise_dn(&entry.dn);
    let member_of: BTreeSet<String> = match cfg.membership {
        Membership::MemberOf => entry
            .values(&a.member_of)
            .iter()
            .map(|g| normalise_dn(g))
            .collect(),
        Membership::GroupMember => group_members
            .iter()
            .filter(|(_, members)| members.contains(&dn))
            .map(|(g, _)| g.clone())
            .collect(),
    };
    let role = cfg
        .roles
        .iter()
        .find(|rule| match (&rule.group, &rule.ou) {
            (Some(g), _) => member_of.contains(&normalise_dn(g)),
            (None, Some(ou)) => dn.ends_with(&format!(",{}", normalise_dn(ou))),
            (None, None) => false,
        })
        .map(|rule| rule.role.clone())
        .or_else(|| cfg.default_role.clone())
        .ok_or_else(|| {
            "matches no role rule in [[directory.roles]] and there is no default_role".to_string()
        })?;
    let mut groups: Vec<String> = cfg
        .groups
        .iter()
        .filter(|(g, _)| member_of.contains(&normalise_dn(g)))
        .map(|(_, name)| name.clone())
        .collect();
    groups.sort();
    groups.dedup();
    Ok(Fields {
        username,
        display_name: text(Some(&a.display_name))?,
        role,
        year_group: text(a.year_group.as_ref())?,
        form: text(a.form.as_ref())?,
        email: text(Some(&a.email))?,
        mis_id: text(Some(&a.mis_id))?,
        groups,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const AD: &str = r#"
[directory]
url = "ldaps://dc1.school.local"
base_dn = "DC=school,DC=local"
[directory.attributes]
username = "sAMAccountName"
year_group = "extensionAttribute1"
form = "department"
mis_id = "employeeID"
[[directory.roles]]
role = "student"
group = "CN=Students,OU=Groups,DC=school,DC=local"
[[directory.roles]]
role = "staff"
ou = "OU=Staff,DC=school,DC=local"
[directory.groups]
"CN=Year 9,OU=Groups,DC=school,DC=local" = "year9"
"#;

    fn entry(dn: &str, attrs: &[(&str, &[&str])]) -> Entry {
        Entry {
            dn: dn.into(),
            attrs: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
                .collect(),
        }
    }

    fn student(name: &str, year: &str, id: &str) -> Entry {
        entry(
            &format!("CN={name},OU=Pupils,DC=school,DC=local"),
            &[
                ("sAMAccountName", &[name]),
                ("displayName", &["A Pupil"]),
                ("mail", &[&format!("{name}@school.local")]),
                ("employeeID", &[id]),
                ("extensionAttribute1", &[year]),
                ("department", &["9B"]),
                // AD spells DNs as it likes: compared without case or spaces.
                (
                    "memberOf",
                    &[
                        "cn=students, ou=groups, dc=school, dc=local",
                        "CN=Year 9,OU=Groups,DC=school,DC=local",
                        "CN=Other,DC=school,DC=local",
                    ],
                ),
            ],
        )
    }

    #[test]
    fn attributes_roles_and_groups_map_to_a_roster_record() {
        let cfg = DirectoryConfig::parse(AD).unwrap();
        let staff = entry(
            "CN=Bob,OU=Staff,DC=school,DC=local",
            &[
                ("samaccountname", &["bob"]),
                ("displayName", &["Bob B"]),
                ("mail", &["bob@school.local"]),
                ("employeeID", &["S1"]),
            ],
        );
        let m = map_entries(
            &cfg,
            &[student("amy", "Year 9", "M1"), staff],
            &HashMap::new(),
        );
        // "Year 9" is not how the roster writes a year: skipped, and reported by DN.
        assert_eq!(m.skipped.len(), 1, "{:?}", m.skipped);
        assert_eq!(m.skipped[0].dn, "CN=amy,OU=Pupils,DC=school,DC=local");
        assert!(
            m.skipped[0]
                .reason
                .contains("year_group (attribute extensionAttribute1)"),
            "{}",
            m.skipped[0].reason
        );
        assert_eq!(m.protected, vec!["amy".to_string()]);
        assert_eq!(m.records.len(), 1);
        assert_eq!(m.records[0].role, "staff");
        assert_eq!(m.records[0].groups, Some(vec![]));

        let m = map_entries(&cfg, &[student("amy", "9", "M1")], &HashMap::new());
        let r = &m.records[0];
        assert_eq!((r.username.as_str(), r.role.as_str()), ("amy", "student"));
        assert_eq!(r.year_group.as_deref(), Some("9"));
        assert_eq!(r.form.as_deref(), Some("9B"));
        assert_eq!(r.groups, Some(vec!["year9".to_string()]));
    }

    #[test]
    fn bad_entries_are_skipped_by_dn_and_the_rest_kept() {
        let cfg = DirectoryConfig::parse(AD).unwrap();
        let no_name = entry(
            "CN=Ghost,OU=Staff,DC=school,DC=local",
            &[("mail", &["g@s"])],
        );
        let no_role = entry(
            "CN=svc,OU=Service,DC=school,DC=local",
            &[
                ("sAMAccountName", &["svc"]),
                ("displayName", &["S"]),
                ("mail", &["s@s"]),
                ("employeeID", &["X"]),
            ],
        );
        let two_names = entry(
            "CN=Two,OU=Staff,DC=school,DC=local",
            &[("sAMAccountName", &["a", "b"])],
        );
        let mut dup = student("amy", "9", "M9");
        dup.dn = "CN=amy2,OU=Pupils,DC=school,DC=local".into();
        let same_id = student("cat", "9", "M2");
        let mut line_break = student("dan", "9", "M3");
        line_break
            .attrs
            .insert("displayName".into(), vec!["Dan\nEvil".into()]);
        let entries = [
            student("amy", "9", "M1"),
            no_name,
            no_role,
            two_names,
            dup,
            student("bea", "10", "M2"),
            same_id,
            line_break,
            student("eve", "11", "M4"),
        ];
        let m = map_entries(&cfg, &entries, &HashMap::new());
        let kept: Vec<_> = m.records.iter().map(|r| r.username.as_str()).collect();
        assert_eq!(kept, vec!["bea", "eve"]);
        let reasons: HashMap<&str, &str> = m
            .skipped
            .iter()
            .map(|s| (s.dn.as_str(), s.reason.as_str()))
            .collect();
        assert_eq!(reasons.len(), 7, "{reasons:?}");
        assert!(reasons["CN=Ghost,OU=Staff,DC=school,DC=local"].contains("no sAMAccountName"));
        assert!(reasons["CN=svc,OU=Service,DC=school,DC=local"].contains("no role rule"));
        assert!(reasons["CN=Two,OU=Staff,DC=school,DC=local"].contains("2 values"));
        assert!(reasons["CN=amy,OU=Pupils,DC=school,DC=local"].contains("CN=amy2"));
        assert!(reasons["CN=cat,OU=Pupils,DC=school,DC=local"].contains("mis_id"));
        assert!(reasons["CN=dan,OU=Pupils,DC=school,DC=local"].contains("control character"));
        assert_eq!(m.protected, vec!["amy", "cat", "dan", "svc"]);
    }

    #[test]
    fn group_objects_give_memberships_when_configured() {
        let text = AD.replace(
            "[directory.attributes]",
            "membership = \"group_member\"\n[directory.attributes]",
        );
        let cfg = DirectoryConfig::parse(&text).unwrap();
        let mut amy = student("amy", "9", "M1");
        amy.attrs.remove("memberOf");
        let mut members = HashMap::new();
        members.insert(
            normalise_dn("CN=Students,OU=Groups,DC=school,DC=local"),
            HashSet::from([normalise_dn(&amy.dn)]),
        );
        let m = map_entries(&cfg, &[amy], &members);
        assert_eq!(m.records[0].role, "student");
        assert_eq!(m.records[0].groups, Some(vec![]));
    }
}
