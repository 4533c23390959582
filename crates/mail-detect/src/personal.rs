//! UK personal data in text. Each identifier is checked as far as its format allows, so a
//! look-alike (an order number, a phone number) is not counted:
//!
//! - National Insurance number: two letters, six digits, a suffix A–D, spaces optional
//!   (`AB 12 34 56 C`); the prefix letters HMRC never issues (D, F, I, Q, U, V; O second;
//!   BG, GB, KN, NK, NT, TN, ZZ) are refused.
//! - NHS number: ten digits (`943 476 5919`, `943-476-5919` or run together) whose last is
//!   the mod-11 check digit of the first nine (weights 10 down to 2).
//! - Unique pupil number (DfE): a check letter then twelve digits, the last of which may
//!   be a letter in a temporary UPN; the check letter is the weighted sum of characters
//!   2–13 (weights 2–13) mod 23 in the alphabet `ABCDEFGHJKLMNPQRTUVWXYZ`.
//! - Date of birth: a date (`12/03/2012`, `12-03-2012`, `2012-03-12`, `12 March 2012`)
//!   on a line that either says so (`DOB`, `date of birth`, `born`) or is a table row
//!   (cells split by commas, tabs, `|`, `;` or wide spaces) whose other cell is a name.
//!   A date in a sentence ("Parents' evening on 12/03/2025") is not a date of birth.
//!
//! Identifiers are counted once each (the same NHS number quoted twice is one person's);
//! dates of birth are counted per line (a class list's rows).

use std::collections::HashSet;

/// What [`personal_data`] found in one text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PersonalData {
    /// Distinct National Insurance numbers.
    pub ni_numbers: usize,
    /// Distinct NHS numbers with a valid check digit.
    pub nhs_numbers: usize,
    /// Distinct unique pupil numbers with a valid check letter.
    pub upns: usize,
    /// Lines carrying a date of birth.
    pub dates_of_birth: usize,
}

impl PersonalData {
    /// Every item found: the count a "bulk personal data" threshold is compared with.
    pub fn total(&self) -> usize {
        self.ni_numbers + self.nhs_numbers + self.upns + self.dates_of_birth
    }

    pub fn is_empty(&self) -> bool {
        self.total() == 0
    }

    /// Adds another text's findings (identifiers may then be counted once per text).
    pub fn add(&mut self, other: &PersonalData) {
        self.ni_numbers += other.ni_numbers;
        self.nhs_numbers += other.nhs_numbers;
        self.upns += other.upns;
        self.dates_of_birth += other.dates_of_birth;
    }

    /// The detector names that fired, for decisions and events (`ni-number`, ...).
    pub fn kinds(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        for (n, name) in [
            (self.ni_numbers, "ni-number"),
            (self.nhs_numbers, "nhs-number"),
            (self.upns, "upn"),
            (self.dates_of_birth, "date-of-birth"),
        ] {
            if n > 0 {
                out.push(name);
            }
        }
        out
    }
}

/// Finds the personal data in `text`.
pub fn personal_data(text: &str) -> PersonalData {
    let b = text.as_bytes();
    let (mut ni, mut nhs, mut upn) = (HashSet::new(), HashSet::new(), HashSet::new());
    let mut i = 0;
    while i < b.len() {
        let starts_word = i == 0 || !b[i - 1].is_ascii_alphanumeric();
        if starts_word {
            if let Some((end, norm)) = match_ni(b, i) {
                ni.insert(norm);
                i = end;
                continue;
            }
            if let Some((end, norm)) = match_nhs(b, i) {
                nhs.insert(norm);
                i = end;
                continue;
            }
            if let Some(end) = match_upn(b, i) {
                upn.insert(b[i..end].to_ascii_uppercase());
                i = end;
                continue;
            }
        }
        i += 1;
    }
    PersonalData {
        ni_numbers: ni.len(),
        nhs_numbers: nhs.len(),
        upns: upn.len(),
        dates_of_birth: text.lines().filter(|l| line_has_date_of_birth(l)).count(),
    }
}

fn ends_word(b: &[u8], end: usize) -> bool {
    end >= b.len() || !b[end].is_ascii_alphanumeric()
}

/// `AB123456C` / `AB 12 34 56 C` at `i`: the end and the number without spaces. Called
/// at every word start of every text, so it allocates nothing.
fn match_ni(b: &[u8], i: usize) -> Option<(usize, [u8; 9])> {
    let mut norm = [0u8; 9];
    let mut n = 0;
    let mut j = i;
    let mut take = |j: &mut usize, want_digit: bool| -> bool {
        match b.get(*j) {
            Some(c) if want_digit && c.is_ascii_digit() => {
                norm[n] = *c;
                n += 1;
                *j += 1;
                true
            }
            Some(c) if !want_digit && c.is_ascii_alphabetic() => {
                norm[n] = c.to_ascii_uppercase();
                n += 1;
                *j += 1;
                true
            }
            _ => false,
        }
    };
    let space = |j: &mut usize| {
        if b.get(*j) == Some(&b' ') {
            *j += 1;
        }
    };
    if !(take(&mut j, false) && take(&mut j, false)) {
        return None;
    }
    for _ in 0..3 {
        space(&mut j);
        if !(take(&mut j, true) && take(&mut j, true)) {
            return None;
        }
    }
    space(&mut j);
    if !take(&mut j, false) || !ends_word(b, j) {
        return None;
    }
    is_ni_number(std::str::from_utf8(&norm).ok()?).then_some((j, norm))
}

/// A National Insurance number without spaces, upper case: `AB123456C`.
pub fn is_ni_number(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 9
        || !b[..2].iter().all(u8::is_ascii_uppercase)
        || !b[2..8].iter().all(u8::is_ascii_digit)
        || !(b'A'..=b'D').contains(&b[8])
    {
        return false;
    }
    let never = b"DFIQUV";
    if never.contains(&b[0]) || never.contains(&b[1]) || b[1] == b'O' {
        return false;
    }
    !matches!(&s[..2], "BG" | "GB" | "KN" | "NK" | "NT" | "TN" | "ZZ")
}

/// Ten digits, run together or grouped 3-3-4 by one space or hyphen each.
fn match_nhs(b: &[u8], i: usize) -> Option<(usize, [u8; 10])> {
    let mut digits = [0u8; 10];
    let mut n = 0;
    let mut j = i;
    let mut sep: Option<u8> = None;
    while n < 10 {
        let c = *b.get(j)?;
        if c.is_ascii_digit() {
            digits[n] = c;
            n += 1;
            j += 1;
            continue;
        }
        let at_group = n == 3 || n == 6;
        if !at_group || !(c == b' ' || c == b'-') {
            return None;
        }
        // Either no separators or the same one at both group boundaries.
        match sep {
            None if n == 3 => sep = Some(c),
            Some(s) if s == c && n == 6 => {}
            _ => return None,
        }
        j += 1;
    }
    if sep.is_some() && b.get(i + 3) != sep.as_ref() {
        return None;
    }
    let grouped_fully = sep.is_none() || b.get(i + 7) == sep.as_ref();
    let trailing_digit = b.get(j).is_some_and(u8::is_ascii_digit);
    if !grouped_fully || trailing_digit || !ends_word(b, j) {
        return None;
    }
    is_nhs_number(std::str::from_utf8(&digits).ok()?).then_some((j, digits))
}

/// Ten digits whose last is the mod-11 check digit of the first nine.
pub fn is_nhs_number(digits: &str) -> bool {
    let b = digits.as_bytes();
    if b.len() != 10 || !b.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let sum: u32 = b[..9]
        .iter()
        .zip((2..=10).rev())
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    let check = match 11 - sum % 11 {
        11 => 0,
        10 => return false,
        c => c,
    };
    // All-same-digit numbers pass the checksum but are never issued.
    check == u32::from(b[9] - b'0') && !b.iter().all(|d| *d == b[0])
}

const UPN_ALPHABET: &[u8; 23] = b"ABCDEFGHJKLMNPQRTUVWXYZ";

fn match_upn(b: &[u8], i: usize) -> Option<usize> {
    let end = i + 13;
    let s = b.get(i..end)?;
    (ends_word(b, end) && is_upn(std::str::from_utf8(s).ok()?)).then_some(end)
}

/// A unique pupil number: check letter, eleven digits, then a digit or (temporary UPN)
/// a letter of the UPN alphabet.
pub fn is_upn(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 13 || !b[1..12].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let last = b[12].to_ascii_uppercase();
    let last_value = if last.is_ascii_digit() {
        u32::from(last - b'0')
    } else if let Some(p) = UPN_ALPHABET.iter().position(|c| *c == last) {
        p as u32
    } else {
        return false;
    };
    let mut sum: u32 = b[1..12]
        .iter()
        .zip(2u32..)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    sum += last_value * 13;
    UPN_ALPHABET[(sum % 23) as usize] == b[0].to_ascii_uppercase()
}

const DOB_WORDS: [&str; 5] = ["dob", "d.o.b", "date of birth", "born", "birthday"];

fn line_has_date_of_birth(line: &str) -> bool {
    if !line.bytes().any(|c| c.is_ascii_digit()) {
        return false;
    }
    let lower = line.to_ascii_lowercase();
    let says_so = DOB_WORDS.iter().any(|w| contains_word(&lower, w));
    let cells = split_cells(line);
    if cells.len() >= 2 {
        let date_cell = cells.iter().position(|c| is_date(c));
        let name_cell = cells.iter().any(|c| is_name(c));
        return date_cell.is_some() && (name_cell || says_so);
    }
    says_so && (line.split([' ', ':', '(', ')']).any(is_date) || contains_long_date(line))
}

fn contains_word(hay: &str, word: &str) -> bool {
    hay.match_indices(word).any(|(k, _)| {
        let before = hay[..k].chars().next_back();
        let after = hay[k + word.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

/// Cells of a table row: commas, tabs, `|`, `;`, or two spaces or more.
fn split_cells(line: &str) -> Vec<&str> {
    line.split([',', '\t', '|', ';'])
        .flat_map(|c| c.split("  "))
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect()
}

/// One to four capitalised words of letters (`O'Neil`, `Smith-Jones` allowed).
fn is_name(cell: &str) -> bool {
    let words: Vec<&str> = cell.split_whitespace().collect();
    (1..=4).contains(&words.len())
        && words.iter().all(|w| {
            let mut cs = w.chars();
            cs.next().is_some_and(char::is_uppercase)
                && w.chars().count() >= 2
                && cs.all(|c| c.is_alphabetic() || c == '\'' || c == '-')
        })
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

fn is_date(cell: &str) -> bool {
    let cell = cell.trim();
    let parts: Vec<&str> = cell.split(['/', '-', '.']).collect();
    if parts.len() == 3 && parts.iter().all(|p| p.bytes().all(|c| c.is_ascii_digit())) {
        let n: Vec<u32> = parts.iter().filter_map(|p| p.parse().ok()).collect();
        if n.len() != 3 {
            return false;
        }
        return match (parts[0].len(), parts[1].len(), parts[2].len()) {
            (4, 1..=2, 1..=2) => valid_date(n[0], n[1], n[2]),
            (1..=2, 1..=2, 4) => valid_date(n[2], n[1], n[0]),
            _ => false,
        };
    }
    is_long_date(cell)
}

/// `12 March 2012`, `3 Sept 2011`.
fn is_long_date(cell: &str) -> bool {
    let words: Vec<&str> = cell.split_whitespace().collect();
    words.len() == 3 && long_date_at(&words, 0)
}

fn long_date_at(words: &[&str], k: usize) -> bool {
    let (Some(d), Some(m), Some(y)) = (words.get(k), words.get(k + 1), words.get(k + 2)) else {
        return false;
    };
    let day = d
        .trim_end_matches(|c: char| c.is_ascii_alphabetic())
        .parse::<u32>();
    let month = m.to_ascii_lowercase();
    let month_no = MONTHS
        .iter()
        .position(|p| month.len() >= 3 && month.starts_with(p))
        .map(|p| p as u32 + 1);
    let year = y.trim_end_matches([',', '.', ')']).parse::<u32>();
    match (day, month_no, year) {
        (Ok(d), Some(m), Ok(y)) => valid_date(y, m, d),
        _ => false,
    }
}

fn contains_long_date(line: &str) -> bool {
    let words: Vec<&str> = line.split_whitespace().collect();
    (0..words.len()).any(|k| long_date_at(&words, k))
}

fn valid_date(y: u32, m: u32, d: u32) -> bool {
    (1900..=2099).contains(&y) && (1..=12).contains(&m) && (1..=31).contains(&d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ni_numbers_with_and_without_spaces() {
        let f = personal_data("NI AB123456C and ab 12 34 56 d, again AB 12 34 56 C.");
        assert_eq!(f.ni_numbers, 2, "{f:?}");
    }

    #[test]
    fn ni_look_alikes_are_not_counted() {
        for text in [
            "QQ123456C",      // Q never issued (the specimen number)
            "GB123456A",      // unallocated prefix
            "AO123456A",      // O never second
            "AB123456E",      // suffix beyond D
            "AB1234567C",     // seven digits
            "XAB123456C",     // inside a longer word
            "AB123456CX",     // followed by letters
            "order AB12345C", // five digits
        ] {
            assert_eq!(personal_data(text).ni_numbers, 0, "{text}");
        }
    }

    #[test]
    fn nhs_numbers_need_the_check_digit() {
        assert!(is_nhs_number("9434765919"));
        assert!(!is_nhs_number("9434765918"));
        assert!(!is_nhs_number("1111111111"));
        let f = personal_data("NHS 943 476 5919, also 943-476-5919 and 4010232137");
        assert_eq!(f.nhs_numbers, 2, "{f:?}");
    }

    #[test]
    fn nhs_look_alikes_are_not_counted() {
        for text in [
            "9434765918",        // wrong check digit
            "943 4765919",       // half grouped
            "943 476-5919",      // mixed separators
            "94347659190",       // eleven digits
            "tel 020 7946 0958", // phone number
            "ref 943476591",     // nine digits
        ] {
            assert_eq!(personal_data(text).nhs_numbers, 0, "{text}");
        }
    }

    fn with_check_letter(body: &str) -> String {
        for c in UPN_ALPHABET {
            let s = format!("{}{body}", *c as char);
            if is_upn(&s) {
                return s;
            }
        }
        unreachable!("every body has exactly one check letter")
    }

    #[test]
    fn upn_check_letter() {
        // Worked by hand: 2·2 + 0·3 + 1·4 + 3·5 + 4·6 + 5·7 + 6·8 + 1·9 + 1·10 + 0·11 +
        // 0·12 + 1·13 = 162; 162 mod 23 = 1 -> B.
        assert!(is_upn("B201345611001"));
        assert!(!is_upn("C201345611001"));
        let temp = with_check_letter("20134561100A");
        assert!(is_upn(&temp));
        let f = personal_data(&format!("UPN: {temp}; B201345611001 / b201345611001"));
        assert_eq!(f.upns, 2, "{f:?}");
    }

    #[test]
    fn upn_look_alikes_are_not_counted() {
        for text in [
            "C201345611001",
            "B20134561100",
            "B2013456110011",
            "B20134561100I",
        ] {
            assert_eq!(personal_data(text).upns, 0, "{text}");
        }
    }

    #[test]
    fn dates_of_birth_in_a_class_list_and_in_prose() {
        let list = "Name,DOB,Form\nAlice Smith,12/03/2012,7B\nBob Jones,2012-11-30,7B\n\
                    O'Neil\t3 March 2012\nDate of birth: 01.09.2011\nCharlie was born 4 May 2011.";
        assert_eq!(personal_data(list).dates_of_birth, 5);
    }

    #[test]
    fn other_dates_are_not_dates_of_birth() {
        for text in [
            "Parents' Evening on 12/03/2025 in the Main Hall",
            "Invoice 2025-01-31, total 40",
            "12/03/2012,7B,42",        // a row without a name
            "Alice Smith, 31/02/1812", // year out of range
            "Alice Smith, 12/13/2012", // month 13
            "DOB unknown",
        ] {
            assert_eq!(personal_data(text).dates_of_birth, 0, "{text}");
        }
    }

    #[test]
    fn totals_and_kinds() {
        let f = personal_data("AB123456C 9434765919\nAlice Smith, 12/03/2012");
        assert_eq!(f.total(), 3);
        assert_eq!(f.kinds(), ["ni-number", "nhs-number", "date-of-birth"]);
    }
}
