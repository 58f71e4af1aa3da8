//! The one helper that puts a name into SQL text: everything else reaches a statement as a bound value.

/// `name` as a quoted PostgreSQL identifier: wrapped in `"`, each `"` inside doubled, so no name can end
/// the identifier early or change its case.
pub fn quote_ident(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    for c in name.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::quote_ident;

    #[test]
    fn a_plain_name_is_wrapped_in_double_quotes() {
        assert_eq!(quote_ident("churn_test_1"), "\"churn_test_1\"");
    }

    #[test]
    fn a_double_quote_inside_is_doubled() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_ident("\""), "\"\"\"\"");
    }

    #[test]
    fn case_and_other_characters_are_kept_as_they_are() {
        assert_eq!(quote_ident("Mixed Case; drop"), "\"Mixed Case; drop\"");
        assert_eq!(quote_ident(""), "\"\"");
    }
}
