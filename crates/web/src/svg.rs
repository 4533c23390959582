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

/// One column per day: allowed (grey) with blocked and warned (red) stacked on top, on a
/// square-root scale so a day of three blocks still shows beside a day of 3,000 queries.
/// `days`: (label, allowed, blocked or warned), oldest first.
pub fn day_columns(title: &str, days: &[(String, i64, i64)]) -> String {
    const HEIGHT: i64 = 160;
    let col = if days.len() > 120 { 3 } else { 6 };
    let width = (days.len().max(1) as i64) * col + 4;
    let top = days.iter().map(|d| d.1 + d.2).max().unwrap_or(0).max(1);
    let scale = |n: i64| ((n as f64).sqrt() / (top as f64).sqrt() * (HEIGHT - 4) as f64) as i64;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox="0 0 {width} {HEIGHT}" width="{width}" height="{HEIGHT}"><title>{}</title>"#,
        escape(title)
    );
    for (i, (label, allowed, flagged)) in days.iter().enumerate() {
        let x = i as i64 * col + 2;
        let whole = scale(allowed + flagged);
        let red = if *flagged > 0 {
            (whole - scale(*allowed)).max(2)
        } else {
            0
        };
        let _ = write!(
            svg,
            r##"<g><title>{}: {allowed} allowed, {flagged} blocked or warned</title><rect x="{x}" y="{}" width="{}" height="{}" fill="#9e9e9e"/><rect class="flagged" x="{x}" y="{}" width="{}" height="{red}" fill="#b3261e"/></g>"##,
            escape(label),
            HEIGHT - whole + red,
            col - 1,
            whole - red,
            HEIGHT - whole,
            col - 1,
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_columns_stack_flagged_on_allowed_and_escape_labels() {
        let days = vec![
            ("<mon>".to_string(), 100, 0),
            ("tue".to_string(), 0, 3),
            ("wed".to_string(), 0, 0),
        ];
        let svg = day_columns("t", &days);
        assert!(svg.contains("&lt;mon&gt;: 100 allowed"));
        assert_eq!(svg.matches(r#"class="flagged""#).count(), 3);
        // Only the day with blocks has a visible red part.
        assert_eq!(
            svg.matches(r##"height="0" fill="#b3261e""##).count(),
            2,
            "{svg}"
        );
        assert!(svg.contains(r#"y="4" width="5" height="156""#), "{svg}");
    }

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
