//! What the proxy says to a browser or device (pure): the block page for a refused
//! URL or download, the short text for a refused `CONNECT`, and the PAC file that
//! points browsers at the proxy.

use std::fmt::Write as _;

/// Everything the block page shows about one decision.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockView {
    pub school: String,
    /// `block` or `warn`.
    pub verdict: &'static str,
    /// The URL that was asked for.
    pub url: String,
    pub message: String,
    pub document: String,
    pub clause: String,
    pub categories: Vec<String>,
    /// Username, or empty when the client is not signed in.
    pub person: String,
    /// Why a download was refused (its type), when that was the reason.
    pub file_type: Option<String>,
    /// The reference the person quotes to ICT Support.
    pub reference: String,
    /// The block page service (`http://ADDR/`), where access can be requested.
    pub portal: Option<String>,
}

/// The block page (HTML, every value escaped).
pub fn block_page(view: &BlockView) -> String {
    let title = if view.verdict == "warn" {
        "Think before you visit this page"
    } else if view.file_type.is_some() {
        "This download is blocked"
    } else {
        "This page is blocked"
    };
    let mut html = String::with_capacity(2048);
    html.push_str(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n",
    );
    let _ = writeln!(
        html,
        "<title>{} · {}</title>",
        escape(title),
        escape(&view.school)
    );
    html.push_str(
        "<style>body{font:1.05rem/1.5 system-ui,sans-serif;margin:0;background:#f6f6f4;color:#1b1b1b}\
         main{max-width:40rem;margin:0 auto;padding:1.25rem}\
         .card{background:#fff;border:1px solid #ccc;border-radius:.5rem;padding:1rem 1.25rem}\
         dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem;margin:0}\
         dt{font-weight:600}dd{margin:0;overflow-wrap:anywhere}</style>\n</head>\n<body>\n<main>\n",
    );
    let _ = writeln!(html, "<p>{}</p>", escape(&view.school));
    let _ = writeln!(
        html,
        "<h1 id=\"verdict\" data-verdict=\"{}\">{}</h1>",
        escape(view.verdict),
        escape(title)
    );
    html.push_str("<div class=\"card\"><dl>\n");
    let mut row = |id: &str, label: &str, value: &str| {
        if !value.is_empty() {
            let _ = writeln!(
                html,
                "<dt>{label}</dt><dd id=\"{id}\">{}</dd>",
                escape(value)
            );
        }
    };
    row("url", "Address", &view.url);
    row("message", "Why", &view.message);
    let clause = format!("{} {}", view.document, view.clause);
    row("clause", "Policy", clause.trim());
    row("categories", "Categories", &view.categories.join(", "));
    row(
        "file-type",
        "File type",
        view.file_type.as_deref().unwrap_or(""),
    );
    let person = if view.person.is_empty() {
        "not signed in"
    } else {
        &view.person
    };
    row("person", "You are", person);
    row("reference", "Reference", &view.reference);
    html.push_str("</dl></div>\n");
    if let Some(portal) = &view.portal {
        let _ = writeln!(
            html,
            "<p>If you need this for your work, <a id=\"portal\" href=\"{}\">ask for access</a> \
             and quote the reference.</p>",
            escape(portal)
        );
    } else {
        html.push_str(
            "<p>If you need this for your work, ask ICT Support and quote the reference.</p>\n",
        );
    }
    html.push_str("</main>\n</body>\n</html>\n");
    html
}

/// The body of a refused `CONNECT` (plain text: many clients show it in an error).
pub fn connect_refusal(
    host: &str,
    document: &str,
    clause: &str,
    message: &str,
    reference: &str,
) -> String {
    let cited = format!("{document} {clause}");
    let cited = cited.trim();
    let mut text = format!("Blocked by the school's acceptable-use policy: {host}\n");
    if !cited.is_empty() {
        let _ = writeln!(text, "Policy: {cited}");
    }
    if !message.is_empty() {
        let _ = writeln!(text, "Why: {message}");
    }
    let _ = writeln!(text, "Reference: {reference}");
    text
}

/// A proxy auto-configuration file (`proxy.pac`, `wpad.dat`) sending everything but
/// plain host names and loopback through `proxy` (`HOST:PORT`). No `DIRECT` fallback:
/// a device that cannot reach the proxy must not bypass the filter.
pub fn pac_script(proxy: &str) -> String {
    format!(
        "function FindProxyForURL(url, host) {{\n\
         \x20 if (isPlainHostName(host) || host == \"localhost\" || shExpMatch(host, \"127.*\") || host == \"[::1]\") {{\n\
         \x20   return \"DIRECT\";\n\
         \x20 }}\n\
         \x20 return \"PROXY {proxy}\";\n\
         }}\n"
    )
}

/// Whether `authority` (from a `Host` header) may be written into a PAC file: letters,
/// digits, dots, dashes, colons and brackets only, so it cannot break out of the string.
pub fn safe_authority(authority: &str) -> bool {
    !authority.is_empty()
        && authority.len() <= 260
        && authority
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

/// HTML-escapes text for element content and quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_page_shows_the_decision_escaped() {
        let html = block_page(&BlockView {
            school: "WCS".into(),
            verdict: "block",
            url: "http://x.test/<script>".into(),
            message: "Webmail is not permitted".into(),
            document: "wcs".into(),
            clause: "4.5.1".into(),
            categories: vec!["webmail".into(), "chat".into()],
            person: "ava.student".into(),
            file_type: None,
            reference: "web-42".into(),
            portal: Some("http://127.0.0.1:8081/".into()),
        });
        assert!(html.contains("<dd id=\"clause\">wcs 4.5.1</dd>"));
        assert!(html.contains("<dd id=\"categories\">webmail, chat</dd>"));
        assert!(html.contains("http://x.test/&lt;script&gt;"));
        assert!(!html.contains("<script>"));
        assert!(html.contains("web-42"));
        assert!(html.contains("ava.student"));
        assert!(html.contains("This page is blocked"));
    }

    #[test]
    fn download_and_unidentified() {
        let html = block_page(&BlockView {
            verdict: "block",
            file_type: Some("exe (application/vnd.microsoft.portable-executable)".into()),
            ..BlockView::default()
        });
        assert!(html.contains("This download is blocked"));
        assert!(html.contains("not signed in"));
        assert!(!html.contains("id=\"clause\""));
    }

    #[test]
    fn connect_text() {
        let text = connect_refusal("gmail.com", "wcs", "4.5.1", "No webmail", "web-1");
        assert!(text.contains("Policy: wcs 4.5.1\n"));
        assert!(text.contains("Why: No webmail\n"));
        let bare = connect_refusal("x.test", "", "", "", "web-2");
        assert!(!bare.contains("Policy"));
    }

    #[test]
    fn pac() {
        let pac = pac_script("10.0.0.1:3128");
        assert!(pac.contains("return \"PROXY 10.0.0.1:3128\";"));
        assert!(!pac.contains("DIRECT\";\n}"));
        assert!(safe_authority("proxy.school.example:3128"));
        assert!(safe_authority("[2001:db8::1]:3128"));
        assert!(!safe_authority("x\";alert(1);\""));
        assert!(!safe_authority(""));
    }
}
