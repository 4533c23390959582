//! The normal form both the phrase lists and the texts are matched in.
//!
//! A text becomes ` word word word `: lower-case ASCII letters, each word followed by one
//! space and the whole preceded by one, so a phrase compiled as ` kil myself ` can only
//! match whole words ("skills" is ` skils `, which does not contain ` kil `). On the way:
//!
//! - full-width forms become ASCII (`ｋｉｌｌ`), accents are dropped (canonical
//!   decomposition, then the combining marks: `zabić` is `zabic`), and a few letters
//!   with no decomposition are spelled out (`ł` is `l`, `ß` is `ss`);
//! - Cyrillic and Greek letters that look like Latin ones are read as those (`kіll` with
//!   a Cyrillic `і`), since that is how they are used to dodge a filter;
//! - inside a word that has at least one real letter, digits and `$ @ ! |` are read as
//!   the letters they stand for (`k1ll mys3lf`); a number on its own is not a word;
//! - apostrophes join (`don't` is `dont`); every other character separates words;
//! - three or more one-letter words in a row are one word (`s u i c i d e`, `k.i.l.l`);
//! - a letter repeated is written once (`kiiilll` and `kill` are both `kil`).
//!
//! Phrases go through the same function, so the two sides always agree.

use unicode_normalization::char::{decompose_canonical, is_combining_mark};

/// Fills `out` with the normal form of `text` (cleared first). The normal form is at
/// most `text.len() + 2` bytes (one byte per letter, which takes at least one byte of
/// text, and one space per word, after a separator), so it allocates only when `out`
/// has less capacity than that.
pub(crate) fn normalise(text: &str, out: &mut Vec<u8>) {
    out.clear();
    out.push(b' ');
    let mut word = WordState::new(out.len());
    for c in text.chars() {
        fold_char(c, &mut |unit| word.push(unit, out));
    }
    word.end(out);
    join_and_collapse(out);
}

/// What one character of the text is, once folded.
#[derive(Debug, Clone, Copy)]
enum Unit {
    /// A letter, already lower-case ASCII.
    Letter(u8),
    /// A digit or symbol that stands for this letter when inside a word.
    Leet(u8),
    /// An exclamation mark: `i` inside a word, nothing at its end (`help!`).
    Bang,
    /// Nothing: an apostrophe, or a combining mark.
    Skip,
    /// A word boundary.
    Separator,
}

/// The word being written: where it starts in the output, whether it has a real letter
/// (a number alone is dropped), and how many of its last bytes came from `!`.
struct WordState {
    start: usize,
    has_letter: bool,
    trailing_bangs: usize,
}

impl WordState {
    fn new(start: usize) -> Self {
        Self {
            start,
            has_letter: false,
            trailing_bangs: 0,
        }
    }

    fn push(&mut self, unit: Unit, out: &mut Vec<u8>) {
        match unit {
            Unit::Letter(b) => {
                out.push(b);
                self.has_letter = true;
                self.trailing_bangs = 0;
            }
            Unit::Leet(b) => {
                out.push(b);
                self.trailing_bangs = 0;
            }
            Unit::Bang => {
                out.push(b'i');
                self.trailing_bangs += 1;
            }
            Unit::Skip => {}
            Unit::Separator => self.end(out),
        }
    }

    /// Ends the word: drops its trailing `!`s, drops it whole if it has no letter, and
    /// otherwise writes the space after it.
    fn end(&mut self, out: &mut Vec<u8>) {
        out.truncate(out.len() - self.trailing_bangs);
        if out.len() > self.start {
            if self.has_letter {
                out.push(b' ');
            } else {
                out.truncate(self.start);
            }
        }
        *self = Self::new(out.len());
    }
}

/// Folds one character of the text into units, through its canonical decomposition.
fn fold_char(c: char, emit: &mut impl FnMut(Unit)) {
    if c.is_ascii() {
        emit(ascii_unit(c as u8));
        return;
    }
    // Full-width ASCII (U+FF01..U+FF5E) is ASCII shifted by 0xFEE0.
    if ('\u{FF01}'..='\u{FF5E}').contains(&c) {
        let ascii = u32::from(c) - 0xFEE0;
        // In range by the check above: 0x21..=0x7E.
        emit(ascii_unit(ascii as u8));
        return;
    }
    decompose_canonical(c, |d| emit(non_ascii_unit(d)));
}

fn ascii_unit(b: u8) -> Unit {
    match b {
        b'a'..=b'z' => Unit::Letter(b),
        b'A'..=b'Z' => Unit::Letter(b.to_ascii_lowercase()),
        b'\'' | b'`' => Unit::Skip,
        b'!' => Unit::Bang,
        b'0' => Unit::Leet(b'o'),
        b'1' | b'|' => Unit::Leet(b'i'),
        b'2' => Unit::Leet(b'z'),
        b'3' => Unit::Leet(b'e'),
        b'4' | b'@' => Unit::Leet(b'a'),
        b'5' | b'$' => Unit::Leet(b's'),
        b'6' => Unit::Leet(b'g'),
        b'7' => Unit::Leet(b't'),
        b'8' => Unit::Leet(b'b'),
        b'9' => Unit::Leet(b'g'),
        _ => Unit::Separator,
    }
}

/// A character of a decomposition that is not ASCII: a combining mark (skipped), a
/// look-alike, a letter spelled another way, or anything else (a separator).
fn non_ascii_unit(c: char) -> Unit {
    if c.is_ascii() {
        return ascii_unit(c as u8);
    }
    if is_combining_mark(c) {
        return Unit::Skip;
    }
    // Right single quotation mark and modifier apostrophe: typed for `'`.
    if matches!(c, '\u{2019}' | '\u{02BC}') {
        return Unit::Skip;
    }
    look_alike(c).map_or(Unit::Separator, Unit::Letter)
}

/// The Latin letter a non-ASCII letter is read as: Cyrillic and Greek homoglyphs (both
/// cases), and Latin letters that have no canonical decomposition. `ß`, `æ` and `œ` are
/// read as one letter (`s`, `a`, `o`): no phrase in the lists needs more.
fn look_alike(c: char) -> Option<u8> {
    let letter = match c {
        // Cyrillic.
        'а' | 'А' => b'a',
        'в' | 'В' | 'Ь' | 'ь' => b'b',
        'с' | 'С' => b'c',
        'ԁ' => b'd',
        'е' | 'Е' | 'ё' | 'Ё' | 'є' | 'Є' => b'e',
        'һ' | 'Һ' | 'н' | 'Н' => b'h',
        'і' | 'І' | 'ї' | 'Ї' => b'i',
        'ј' | 'Ј' => b'j',
        'к' | 'К' => b'k',
        'м' | 'М' => b'm',
        'о' | 'О' => b'o',
        'р' | 'Р' => b'p',
        'ԛ' | 'Ԛ' => b'q',
        'ѕ' | 'Ѕ' => b's',
        'т' | 'Т' => b't',
        'и' | 'И' => b'u',
        'у' | 'У' => b'y',
        'ԝ' | 'Ԝ' => b'w',
        'х' | 'Х' => b'x',
        // Greek.
        'α' | 'Α' => b'a',
        'β' | 'Β' => b'b',
        'ε' | 'Ε' => b'e',
        'η' | 'Η' => b'h',
        'ι' | 'Ι' => b'i',
        'κ' | 'Κ' => b'k',
        'Μ' => b'm',
        'ν' | 'Ν' => b'n',
        'ο' | 'Ο' => b'o',
        'ρ' | 'Ρ' => b'p',
        'τ' | 'Τ' => b't',
        'υ' | 'Υ' => b'u',
        'χ' | 'Χ' => b'x',
        'Ζ' => b'z',
        // Latin letters with no canonical decomposition.
        'ł' | 'Ł' => b'l',
        'đ' | 'Đ' => b'd',
        'ø' | 'Ø' => b'o',
        'ı' => b'i',
        'ß' => b's',
        'æ' | 'Æ' => b'a',
        'œ' | 'Œ' => b'o',
        _ => return None,
    };
    Some(letter)
}

/// In place: joins runs of three or more one-letter words into one word, and writes each
/// repeated letter once. The output is never longer than the input, so one pass with a
/// write index behind the read index is enough.
fn join_and_collapse(buf: &mut Vec<u8>) {
    let len = buf.len();
    // buf[0] is the leading space; every word is followed by exactly one space.
    let mut write = 1;
    let mut read = 1;
    while read < len {
        let singles = count_single_letter_words(buf, read);
        let (end, joined) = if singles >= 3 {
            (read + 2 * singles, true)
        } else {
            let end = buf[read..]
                .iter()
                .position(|&b| b == b' ')
                .map_or(len, |p| read + p);
            (end, false)
        };
        let mut i = read;
        while i < end {
            let b = buf[i];
            if b != b' ' && buf[write - 1] != b {
                buf[write] = b;
                write += 1;
            }
            i += if joined { 2 } else { 1 };
        }
        buf[write] = b' ';
        write += 1;
        read = if joined { end } else { end + 1 };
    }
    buf.truncate(write);
}

/// How many one-letter words follow each other from `at` (the start of a word).
fn count_single_letter_words(buf: &[u8], at: usize) -> usize {
    let mut n = 0;
    let mut i = at;
    while i + 1 < buf.len() && buf[i] != b' ' && buf[i + 1] == b' ' {
        n += 1;
        i += 2;
    }
    n
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::normalise;

    fn n(text: &str) -> String {
        let mut out = Vec::new();
        normalise(text, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn forms() {
        assert_eq!(n(""), " ");
        assert_eq!(n("   "), " ");
        assert_eq!(n("Kill Myself"), " kil myself ");
        assert_eq!(n("k1ll mys3lf"), " kil myself ");
        assert_eq!(n("kiiilll   myself!!"), " kil myself ");
        assert_eq!(n("s u i c i d e"), " suicide ");
        assert_eq!(n("s.u.i.c.i.d.e now"), " suicide now ");
        assert_eq!(n("i am ok"), " i am ok ");
        assert_eq!(n("zabić się"), " zabic sie ");
        assert_eq!(n("ＫＩＬＬ"), " kil ");
        // Cyrillic і and о in "kіll mysеlf" / "pоrn".
        assert_eq!(n("k\u{456}ll mys\u{435}lf p\u{43E}rn"), " kil myself porn ");
        assert_eq!(n("year 2024, room 101"), " year rom ");
        assert_eq!(n("don't"), " dont ");
        assert_eq!(n("don\u{2019}t"), " dont ");
        assert_eq!(n("$uicide"), " suicide ");
        assert_eq!(n("k!ll"), " kil ");
        assert_eq!(n("help!"), " help ");
        assert_eq!(n("!!!"), " ");
        assert_eq!(n("a b"), " a b ");
        assert_eq!(n("Łódź"), " lodz ");
    }
}
