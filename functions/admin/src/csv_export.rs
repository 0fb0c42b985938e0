//! The one way the admin API writes CSV, for any export: every cell is
//! defused against formula injection whatever its column (attackers choose
//! their email address, a grant's target, a user agent), every cell is
//! bounded, and a page stops before the row that would take it past its
//! budget, so an export always fits in a Lambda response.

use platform::paging::{cut_text, escaped_len};

/// Largest cell, counted escaped as in the page budget; longer ones are cut
/// with a marker. With a few dozen columns at most, any one row fits in a
/// page whatever it holds.
pub const MAX_CELL_BYTES: usize = 64 * 1024;

/// A CSV body being filled up to a byte budget (counted as the bytes the
/// body takes once JSON-escaped into a Lambda response).
pub struct CsvPage {
    body: Vec<u8>,
    escaped: usize,
    budget: usize,
}

impl CsvPage {
    /// A page that starts with the `header` row.
    pub fn new(header: &[&str], budget: usize) -> Result<Self, csv::Error> {
        let mut page = Self {
            body: Vec::new(),
            escaped: 0,
            budget,
        };
        page.push(header.iter().copied())?;
        Ok(page)
    }

    /// Adds the row if it fits in the budget; `false` when the page is full.
    pub fn push<'a>(
        &mut self,
        cells: impl IntoIterator<Item = &'a str>,
    ) -> Result<bool, csv::Error> {
        let cells: Vec<String> = cells
            .into_iter()
            .map(|cell| defused(&cut_text(cell, MAX_CELL_BYTES)))
            .collect();
        let mut row = csv::Writer::from_writer(Vec::new());
        row.write_record(&cells)?;
        let row = row.into_inner().map_err(|e| e.into_error())?;
        let cost = escaped_len(&String::from_utf8_lossy(&row));
        if self.escaped + cost > self.budget {
            return Ok(false);
        }
        self.escaped += cost;
        self.body.extend_from_slice(&row);
        Ok(true)
    }

    pub fn into_body(self) -> Vec<u8> {
        self.body
    }
}

/// A cell a spreadsheet would run as a formula (one starting, after any
/// spaces, with `=`, `+`, `-`, `@`, a tab or a line break, or their
/// full-width forms) is prefixed with `'`, which spreadsheets show as text
/// (OWASP, "CSV Injection").
pub fn defused(cell: &str) -> String {
    let starts_a_formula = cell.trim_start_matches(' ').starts_with([
        '=', '+', '-', '@', '\t', '\r', '\n', '\u{FF1D}', '\u{FF0B}', '\u{FF0D}', '\u{FF20}',
    ]);
    if starts_a_formula {
        format!("'{cell}")
    } else {
        cell.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_defused_whatever_they_start_with() {
        for cell in [
            "=HYPERLINK(\"x\")",
            "+1",
            "-1+2",
            "@SUM(A1)",
            "\t=1",
            "\r=1",
            "  =1",
            "\u{FF1D}1+1",
        ] {
            assert!(defused(cell).starts_with('\''), "{cell:?}");
        }
        assert_eq!(defused("plain"), "plain");
        assert_eq!(defused("a=b"), "a=b");
    }

    #[test]
    fn a_page_stops_before_the_row_that_would_exceed_its_budget() {
        let mut page = CsvPage::new(&["a"], 100).expect("page");
        assert!(page.push(["x".repeat(40).as_str()]).expect("row"));
        assert!(!page.push(["y".repeat(60).as_str()]).expect("row"));
        assert!(escaped_len(&String::from_utf8_lossy(&page.into_body())) <= 100);
    }

    #[test]
    fn an_oversized_cell_is_cut_with_a_marker() {
        let mut page = CsvPage::new(&["a"], usize::MAX).expect("page");
        page.push(["z".repeat(MAX_CELL_BYTES * 2).as_str()])
            .expect("row");
        let body = String::from_utf8(page.into_body()).expect("utf-8");
        assert!(body.len() < MAX_CELL_BYTES + 100);
        assert!(body.contains("more bytes]"));
    }
}
