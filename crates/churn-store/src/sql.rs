//! SQL text helpers for the statements that cannot be checked at compile time.

/// `name` as a quoted PostgreSQL identifier: wrapped in `"`, with every `"` inside doubled.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
