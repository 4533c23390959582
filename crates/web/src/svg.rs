//! Charts drawn on the server as SVG: horizontal bars, one per key, labelled with the
//! key and the count. Text is escaped; nothing is scripted.

use std::fmt::Write as _;

use crate::ops::Count;

fn escape(text: &str) -> String {
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

/// A bar chart of `rows` (at most `max_rows`), titled for screen readers.
pub fn bars(title: &str, rows: &[Count], max_rows: usize) -> String {
    const WIDTH: i64 = 640;
    const LABEL: i64 = 220;
    const ROW: i64 = 26;
    let rows = &rows[..rows.len().min(max_rows)];
    let height = (rows.len().max(1) as i64) * ROW + 8;
    let top = rows.iter().map(|c| c.count).max().unwrap_or(0).max(1);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}"><title>{}</title>"#,
        escape(title)
    );
    if rows.is_empty() {
        let _ = write!(
            svg,
            r##"<text x="4" y="20" fill="#555" font-size="14">nothing blocked in this period</text>"##
        );
    }
    for (i, c) in rows.iter().enumerate() {
        let y = i as i64 * ROW + 4;
        let bar = ((WIDTH - LABEL - 70) * c.count / top).max(2);
        let label: String = c.key.chars().take(30).collect();
        let _ = write!(
            svg,
            r##"<text x="{}" y="{}" text-anchor="end" font-size="13" fill="#222">{}</text><rect class="bar" x="{LABEL}" y="{y}" width="{bar}" height="{}" fill="#b3261e"/><text x="{}" y="{}" font-size="13" fill="#222">{}</text>"##,
            LABEL - 8,
            y + 16,
            escape(&label),
            ROW - 8,
            LABEL + bar + 6,
            y + 16,
            c.count
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_largest_and_escape_labels() {
        let rows = vec![
            Count {
                key: "<adult>".into(),
                count: 10,
            },
            Count {
                key: "games".into(),
                count: 5,
            },
        ];
        let svg = bars("t", &rows, 10);
        assert!(svg.contains("&lt;adult&gt;"));
        assert!(!svg.contains("<adult>"));
        assert_eq!(svg.matches("<rect").count(), 2);
        assert!(svg.contains(r#"width="350""#), "{svg}");
        assert!(svg.contains(r#"width="175""#), "{svg}");
    }
}
