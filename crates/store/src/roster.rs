//! Reading a roster: the CSV export of a school's MIS, checked whole before anything is
//! written. Every bad line is reported with its line number and column; a file with any
//! bad line imports nothing ([`crate::people::People::import`] takes the records).

use std::collections::HashMap;
use std::io::Read;

use serde::Serialize;

/// One person as imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PersonRecord {
    pub username: String,
    pub display_name: String,
    /// `student`, `staff`, ... (lowercase).
    pub role: String,
    pub year_group: Option<String>,
    pub form: Option<String>,
    pub email: Option<String>,
    pub mis_id: Option<String>,
    /// Site (school) code, for trusts with several schools.
    pub site: Option<String>,
    /// Group names, when the file has a `groups` column (`;` separated). `None` leaves the
    /// person's memberships as they are.
    pub groups: Option<Vec<String>>,
}

/// One problem in a roster file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RosterError {
    /// 1-based line in the file (1 is the header).
    pub line: u64,
    /// The column concerned, when there is one.
    pub column: Option<String>,
    pub message: String,
}

/// `LINE: column NAME: message`, to be prefixed with the file name (`FILE:LINE: ...`).
impl std::fmt::Display for RosterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.column {
            Some(c) => write!(f, "{}: column {c}: {}", self.line, self.message),
            None => write!(f, "{}: {}", self.line, self.message),
        }
    }
}

const REQUIRED: [&str; 7] = [
    "username",
    "display_name",
    "role",
    "year_group",
    "form",
    "email",
    "mis_id",
];
const OPTIONAL: [&str; 2] = ["site", "groups"];

/// Characters a username may not contain: they separate values in the CSV files and lists
/// (`groups`, reports) that carry usernames.
const FORBIDDEN_IN_USERNAME: [char; 2] = [',', ';'];

/// The year groups of English schools: Reception (R), Nursery (N) and Years 1 to 13.
const YEAR_GROUPS: &str = "1 to 13, R (reception) or N (nursery)";

/// `Some` canonical year group (`9`, `R`) when `text` is one of [`YEAR_GROUPS`].
fn normalise_year_group(text: &str) -> Option<String> {
    match text {
        "R" | "r" => return Some("R".into()),
        "N" | "n" => return Some("N".into()),
        _ => {}
    }
    // Digits only: `+9`, `09 ` and `-3` are not how an MIS writes a year.
    if text.is_empty() || text.len() > 2 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let year: u8 = text.parse().ok()?;
    (1..=13).contains(&year).then(|| year.to_string())
}

/// An address with one `@`, something either side, and no spaces or control characters.
fn is_email(text: &str) -> bool {
    let mut parts = text.split('@');
    matches!(
        (parts.next(), parts.next(), parts.next()),
        (Some(local), Some(domain), None) if !local.is_empty() && !domain.is_empty()
    ) && !text.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Parse and validate a whole roster. Columns may come in any order; unknown columns are
/// ignored (MIS exports carry many). Returns every problem found, or the records.
pub fn parse_roster(input: impl Read) -> Result<Vec<PersonRecord>, Vec<RosterError>> {
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(input);
    let mut errors = Vec::new();
    let headers = match rdr.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            return Err(vec![RosterError {
                line: 1,
                column: None,
                message: format!("cannot read the header row: {e}"),
            }]);
        }
    };
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, h) in headers.iter().enumerate() {
        let name = h.trim_start_matches('\u{feff}');
        let key = REQUIRED
            .iter()
            .chain(OPTIONAL.iter())
            .find(|k| k.eq_ignore_ascii_case(name));
        if let Some(k) = key
            && index.insert(k, i).is_some()
        {
            errors.push(RosterError {
                line: 1,
                column: Some((*k).to_string()),
                message: "column appears twice in the header".into(),
            });
        }
    }
    for k in REQUIRED {
        if !index.contains_key(k) {
            errors.push(RosterError {
                line: 1,
                column: Some(k.to_string()),
                message: format!(
                    "required column is missing from the header (found: {})",
                    headers.iter().collect::<Vec<_>>().join(", ")
                ),
            });
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut out = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut seen_mis_ids: HashMap<String, u64> = HashMap::new();
    for rec in rdr.records() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                errors.push(RosterError {
                    line,
                    column: None,
                    message: format!("unreadable row: {e}"),
                });
                continue;
            }
        };
        let line = rec.position().map_or(0, |p| p.line());
        if rec.iter().all(|f| f.is_empty()) {
            continue;
        }
        if rec.len() != headers.len() {
            errors.push(RosterError {
                line,
                column: None,
                message: format!(
                    "has {} fields but the header has {}",
                    rec.len(),
                    headers.len()
                ),
            });
            continue;
        }
        let get = |k: &str| -> &str { index.get(k).and_then(|&i| rec.get(i)).unwrap_or("") };
        let opt = |k: &str| -> Option<String> {
            let v = get(k);
            (!v.is_empty()).then(|| v.to_string())
        };
        let before = errors.len();
        let mut err = |column: &str, message: String| {
            errors.push(RosterError {
                line,
                column: Some(column.to_string()),
                message,
            })
        };
        let username = get("username");
        if username.is_empty() {
            err("username", "is empty".into());
        } else if let Some(c) = username.chars().find(|c| c.is_control()) {
            err(
                "username",
                format!(
                    "{username:?} contains a control character (U+{:04X})",
                    u32::from(c)
                ),
            );
        } else if username.chars().any(char::is_whitespace) {
            err("username", format!("{username:?} contains a space"));
        } else if let Some(c) = username.chars().find(|c| FORBIDDEN_IN_USERNAME.contains(c)) {
            err(
                "username",
                format!(
                    "{username:?} contains {}, which separates values in lists",
                    match c {
                        ',' => "a comma",
                        _ => "a semicolon",
                    }
                ),
            );
        } else if username.len() > 128 {
            err("username", "is longer than 128 characters".into());
        } else if let Some(first) = seen.get(&username.to_lowercase()) {
            err(
                "username",
                format!("{username:?} already appears on line {first}"),
            );
        } else {
            seen.insert(username.to_lowercase(), line);
        }
        let display_name = get("display_name");
        if display_name.is_empty() {
            err("display_name", "is empty".into());
        }
        let role = get("role").to_lowercase();
        if role.is_empty() {
            err(
                "role",
                "is empty (expected a role such as student or staff)".into(),
            );
        } else if !role
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            err(
                "role",
                format!("{role:?} is not a role name (letters, digits, - and _)"),
            );
        }
        let year_group = opt("year_group");
        if role == "student" && year_group.is_none() {
            err("year_group", "is required for a student".into());
        }
        let year_group = match year_group {
            Some(y) => match normalise_year_group(&y) {
                Some(y) => Some(y),
                None => {
                    err(
                        "year_group",
                        format!("{y:?} is not a year group: expected {YEAR_GROUPS}"),
                    );
                    None
                }
            },
            None => None,
        };
        let email = opt("email");
        match &email {
            None => err(
                "email",
                "is empty (every person needs an email address)".into(),
            ),
            Some(e) if !is_email(e) => err("email", format!("{e:?} is not an email address")),
            Some(_) => {}
        }
        let mis_id = opt("mis_id");
        match &mis_id {
            None => err(
                "mis_id",
                "is empty (the MIS's own id for the person is required)".into(),
            ),
            Some(id) if id.chars().any(char::is_control) => {
                err("mis_id", format!("{id:?} contains a control character"))
            }
            Some(id) => {
                if let Some(first) = seen_mis_ids.get(id) {
                    err("mis_id", format!("{id:?} already appears on line {first}"));
                } else {
                    seen_mis_ids.insert(id.clone(), line);
                }
            }
        }
        let groups = index.contains_key("groups").then(|| {
            get("groups")
                .split(';')
                .map(str::trim)
                .filter(|g| !g.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        });
        if errors.len() == before {
            out.push(PersonRecord {
                username: username.to_string(),
                display_name: display_name.to_string(),
                role,
                year_group,
                form: opt("form"),
                email,
                mis_id,
                site: opt("site"),
                groups,
            });
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn columns_in_any_order_and_every_bad_line_reported() {
        let good = "email,username,role,display_name,year_group,form,mis_id,Extra\n\
                    a@s.sch.uk,alice,Student,Alice A,9,9B,M1,x\n\
                    b@s.sch.uk,bob,staff,Bob B,,,M2,y\n";
        let people = parse_roster(good.as_bytes()).unwrap();
        assert_eq!(people.len(), 2);
        assert_eq!(people[0].role, "student");
        assert_eq!(people[1].year_group, None);

        let bad = "username,display_name,role,year_group,form,email,mis_id\n\
                   alice,Alice,student,9,9B,not-an-email,M1\n\
                   ,Nobody,staff,,,,M2\n\
                   carol,Carol,student,,,c@s.sch.uk,M3\n\
                   alice,Alice Again,student,9,9B,a2@s.sch.uk,M4\n\
                   dave,Dave\n";
        let errs = parse_roster(bad.as_bytes()).unwrap_err();
        let lines: Vec<(u64, Option<&str>)> =
            errs.iter().map(|e| (e.line, e.column.as_deref())).collect();
        assert_eq!(
            lines,
            vec![
                (2, Some("email")),
                (3, Some("username")),
                (3, Some("email")),
                (4, Some("year_group")),
                (5, Some("username")),
                (6, None),
            ],
            "{errs:?}"
        );
    }

    #[test]
    fn year_groups_ids_and_usernames_are_checked_in_the_right_words() {
        let header = "username,display_name,role,year_group,form,email,mis_id\n";
        let problem = |row: &str| -> Vec<String> {
            match parse_roster(format!("{header}{row}\n").as_bytes()) {
                Ok(people) => panic!("{row:?} was accepted: {people:?}"),
                Err(errors) => errors.iter().map(ToString::to_string).collect(),
            }
        };
        for year in ["nine", "0", "-3", "14", "+9", "9.5", "Year 9"] {
            assert_eq!(
                problem(&format!("a,A,student,{year},9B,a@s.sch.uk,M1")),
                vec![format!(
                    "2: column year_group: {year:?} is not a year group: expected 1 to 13, \
                     R (reception) or N (nursery)"
                )]
            );
        }
        assert_eq!(
            problem("a,A,student,9,9B,,M1"),
            vec!["2: column email: is empty (every person needs an email address)"]
        );
        assert_eq!(
            problem("a,A,student,9,9B,a@s.sch.uk,"),
            vec!["2: column mis_id: is empty (the MIS's own id for the person is required)"]
        );
        assert_eq!(
            problem("a,A,student,9,9B,a@s.sch.uk,M1\nb,B,student,9,9B,b@s.sch.uk,M1"),
            vec!["3: column mis_id: \"M1\" already appears on line 2"]
        );
        assert_eq!(
            problem("\"a,b\",A,staff,,,a@s.sch.uk,M1"),
            vec!["2: column username: \"a,b\" contains a comma, which separates values in lists"]
        );
        assert_eq!(
            problem("a\u{7}b,A,staff,,,a@s.sch.uk,M1"),
            vec!["2: column username: \"a\\u{7}b\" contains a control character (U+0007)"]
        );
        assert_eq!(
            problem("\"a b\",A,staff,,,a@s.sch.uk,M1"),
            vec!["2: column username: \"a b\" contains a space"]
        );
        assert_eq!(
            problem("a,A,staff,,,a@b@c,M1"),
            vec!["2: column email: \"a@b@c\" is not an email address"]
        );
        // The valid forms, normalised.
        let people = parse_roster(
            format!("{header}a,A,student,R,RB,a@s.sch.uk,M1\nb,B,student,13,13X,b@s.sch.uk,M2\nc,C,student,n,,c@s.sch.uk,M3\n")
                .as_bytes(),
        )
        .unwrap();
        let years: Vec<_> = people.iter().map(|p| p.year_group.as_deref()).collect();
        assert_eq!(years, vec![Some("R"), Some("13"), Some("N")]);
    }

    #[test]
    fn missing_columns_are_named() {
        let errs = parse_roster("username,role\nx,staff\n".as_bytes()).unwrap_err();
        let cols: Vec<_> = errs.iter().filter_map(|e| e.column.clone()).collect();
        assert!(cols.contains(&"display_name".to_string()));
        assert!(cols.contains(&"mis_id".to_string()));
        assert!(errs.iter().all(|e| e.line == 1));
    }
}
