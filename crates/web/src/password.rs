//! Passwords and secrets: the rules of policy 000 §10.4 ("select PINs that are not easily
//! guessed ... do not choose consecutive or repeated numbers"), a list of common and
//! breached-style passwords refused with the reason, Argon2id hashing, and the random
//! secrets behind sessions and tokens (stored only as their SHA-256).

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Shortest password accepted (a PIN, all digits, may be 6 long).
pub const MIN_PASSWORD: usize = 10;
pub const MIN_PIN: usize = 6;
/// Longest accepted: Argon2 would take anything, but a megabyte "password" is an attack.
pub const MAX_PASSWORD: usize = 256;

/// Common and breached-style passwords (and their stems: `Password123!` is `password`).
const COMMON: &[&str] = &[
    "password",
    "passw0rd",
    "p@ssword",
    "p@ssw0rd",
    "qwerty",
    "qwertyuiop",
    "asdfghjkl",
    "zxcvbnm",
    "letmein",
    "welcome",
    "iloveyou",
    "admin",
    "administrator",
    "abc123",
    "monkey",
    "dragon",
    "football",
    "baseball",
    "sunshine",
    "princess",
    "shadow",
    "master",
    "superman",
    "batman",
    "trustno1",
    "starwars",
    "whatever",
    "freedom",
    "computer",
    "internet",
    "secret",
    "changeme",
    "default",
    "school",
    "teacher",
    "student",
    "summer",
    "winter",
    "autumn",
    "spring",
    "london",
    "chelsea",
    "arsenal",
    "liverpool",
    "manchester",
    "hello",
    "login",
    "access",
    "flower",
    "cheese",
    "pokemon",
    "minecraft",
    "fortnite",
    "roblox",
    "charlie",
    "michael",
    "jordan",
    "hunter",
    "ranger",
    "buster",
    "soccer",
    "hockey",
    "killer",
    "george",
    "andrew",
    "thomas",
    "jessica",
    "ashley",
    "daniel",
    "pepper",
    "ginger",
    "loveme",
    "mustang",
    "harley",
    "maggie",
    "cookie",
    "banana",
    "chocolate",
    "qazwsx",
    "1q2w3e4r",
    "1qaz2wsx",
    "zaq12wsx",
    "aaaaaa",
    "abcdef",
    "abcdefgh",
    "letmein1",
    "hallpass",
    "westminster",
    "password1",
    "qwerty123",
    "iloveyou1",
    "welcome1",
    "monday",
    "friday",
    "january",
    "december",
];

/// Why a password is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordProblem {
    #[error("a PIN must have at least {MIN_PIN} digits")]
    PinTooShort,
    #[error("a PIN must not contain consecutive or repeated digits (like {0}): policy 000 §10.4")]
    PinGuessable(String),
    #[error(
        "a password must have at least {MIN_PASSWORD} characters (or use a PIN of {MIN_PIN}+ digits)"
    )]
    TooShort,
    #[error("a password may have at most {MAX_PASSWORD} characters")]
    TooLong,
    #[error("{0:?} is one of the most common passwords (found in breach lists): choose another")]
    Common(String),
    #[error("the password must not contain the username")]
    ContainsUsername,
    #[error("the password must not be one character repeated")]
    OneCharacter,
}

/// Check a new password against the rules; `Ok` or the first reason it is refused.
pub fn check_password(password: &str, username: &str) -> Result<(), PasswordProblem> {
    let chars: Vec<char> = password.chars().collect();
    if chars.len() > MAX_PASSWORD {
        return Err(PasswordProblem::TooLong);
    }
    if !chars.is_empty() && chars.iter().all(char::is_ascii_digit) {
        return check_pin(&chars);
    }
    if chars.len() < MIN_PASSWORD {
        return Err(PasswordProblem::TooShort);
    }
    if chars.windows(2).all(|w| w[0] == w[1]) {
        return Err(PasswordProblem::OneCharacter);
    }
    let lower = password.to_lowercase();
    let user = username.to_lowercase();
    let user_stem = user.split(['.', '_', '-', '@']).next().unwrap_or(&user);
    if !user.is_empty()
        && (lower.contains(&user) || (user_stem.len() >= 4 && lower.contains(user_stem)))
    {
        return Err(PasswordProblem::ContainsUsername);
    }
    // `Password123!`, `!!qwerty2024` and `Chelsea#1` all reduce to a common word.
    let stem: String = lower
        .trim_matches(|c: char| !c.is_ascii_alphabetic())
        .to_string();
    let leet: String = stem
        .chars()
        .map(|c| match c {
            '0' => 'o',
            '1' | '!' => 'i',
            '3' => 'e',
            '4' | '@' => 'a',
            '5' | '$' => 's',
            '7' => 't',
            c => c,
        })
        .collect();
    for candidate in [&lower, &stem, &leet] {
        if COMMON.contains(&candidate.as_str()) {
            return Err(PasswordProblem::Common(password.to_string()));
        }
    }
    Ok(())
}

/// PINs (all digits): long enough, and no run of three consecutive (123, 987) or
/// repeated (111) digits.
fn check_pin(digits: &[char]) -> Result<(), PasswordProblem> {
    if digits.len() < MIN_PIN {
        return Err(PasswordProblem::PinTooShort);
    }
    for w in digits.windows(3) {
        let d: Vec<i32> = w.iter().map(|c| *c as i32 - '0' as i32).collect();
        let repeated = d[0] == d[1] && d[1] == d[2];
        let up = d[1] == d[0] + 1 && d[2] == d[1] + 1;
        let down = d[1] == d[0] - 1 && d[2] == d[1] - 1;
        if repeated || up || down {
            return Err(PasswordProblem::PinGuessable(w.iter().collect()));
        }
    }
    Ok(())
}

/// Why hashing failed (a bug or an exhausted random source, not bad input).
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

/// An Argon2id hash (PHC string, with its own random salt and parameters).
pub fn hash_password(password: &str) -> Result<String, HashError> {
    let hash = argon2::Argon2::default()
        .hash_password(password.as_bytes())
        .map_err(|e| HashError(e.to_string()))?;
    Ok(hash.to_string())
}

/// Whether `password` matches the stored PHC hash (false for a malformed hash).
pub fn verify_password(password: &str, hash: &str) -> bool {
    argon2::Argon2::default()
        .verify_password(password.as_bytes(), hash)
        .is_ok()
}

/// A fresh random secret: 32 bytes, hex.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// A guest code for the captive portal: ten letters and digits that cannot be misread
/// (about 57 bits), grouped `XXXXX-XXXXX` for reading aloud.
pub fn guest_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    let mut out = String::with_capacity(11);
    for i in 0..10 {
        if i == 5 {
            out.push('-');
        }
        let at = (rng.next_u32() as usize) % ALPHABET.len();
        out.push(char::from(ALPHABET[at]));
    }
    out
}

/// A guest code as typed: upper case, without spaces or dashes (hashed like this).
pub fn normalise_guest_code(typed: &str) -> String {
    typed
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// What the database keeps of a secret.
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A password that passes [`check_password`], for the demo and for `account add` without
/// `--password-stdin`: four groups of letters and digits.
pub fn generate_password(username: &str) -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ23456789";
    loop {
        let mut rng = rand::rng();
        let mut out = String::new();
        for group in 0..4 {
            if group > 0 {
                out.push('-');
            }
            for _ in 0..4 {
                let i = (rng.next_u32() as usize) % ALPHABET.len();
                out.push(char::from(ALPHABET[i]));
            }
        }
        if check_password(&out, username).is_ok() {
            return out;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn pins_without_runs_pass_and_runs_are_named() {
        assert_eq!(check_password("914702", "ava"), Ok(()));
        assert_eq!(
            check_password("481234", "ava"),
            Err(PasswordProblem::PinGuessable("123".into()))
        );
        assert_eq!(
            check_password("905550", "ava"),
            Err(PasswordProblem::PinGuessable("555".into()))
        );
        assert_eq!(
            check_password("98765", "ava"),
            Err(PasswordProblem::PinTooShort)
        );
        assert_eq!(
            check_password("297651", "ava"),
            Err(PasswordProblem::PinGuessable("765".into()))
        );
    }

    #[test]
    fn common_and_weak_passwords_are_refused_with_the_reason() {
        assert!(matches!(
            check_password("Password123!", "ava"),
            Err(PasswordProblem::Common(_))
        ));
        assert!(matches!(
            check_password("!!qwertyuiop2024", "ava"),
            Err(PasswordProblem::Common(_))
        ));
        assert!(matches!(
            check_password("P@ssw0rd2024", "ava"),
            Err(PasswordProblem::Common(_))
        ));
        assert_eq!(
            check_password("short1!", "ava"),
            Err(PasswordProblem::TooShort)
        );
        assert_eq!(
            check_password("ava.student-2024", "ava.student"),
            Err(PasswordProblem::ContainsUsername)
        );
        assert_eq!(
            check_password("zzzzzzzzzzzz", "ava"),
            Err(PasswordProblem::OneCharacter)
        );
        assert_eq!(check_password("violet-kettle-58-drums", "ava"), Ok(()));
        let reason = check_password("Password123!", "ava")
            .unwrap_err()
            .to_string();
        assert!(reason.contains("common"), "{reason}");
    }

    #[test]
    fn hashes_are_argon2id_and_verify() {
        let h = hash_password("violet-kettle-58-drums").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password("violet-kettle-58-drums", &h));
        assert!(!verify_password("violet-kettle-58-drumz", &h));
        assert!(!verify_password("x", "not a hash"));
        let g = generate_password("ava");
        assert_eq!(check_password(&g, "ava"), Ok(()));
    }
}
