//! Text from events, tags and AWS errors as the guard shows it anywhere: notices,
//! logs, reasons, errors and stored summaries. One sanitiser, so that hostile input
//! can neither shape the layout, forge log lines, nor hide or reorder what is shown.

/// `text` safe to show: control characters become spaces, the invisible ones that
/// reorder or hide text (bidi overrides and isolates, zero-width characters, BOM) are
/// dropped, and it fits in `max` characters (the last one `…` when it was cut).
pub fn shown(text: &str, max: usize) -> String {
    let mut visible = text.chars().filter_map(|c| match c {
        c if c.is_control() => Some(' '),
        c if hidden(c) => None,
        c => Some(c),
    });
    let mut out: String = visible.by_ref().take(max).collect();
    if max > 0 && visible.next().is_some() {
        out.pop();
        out.push('…');
    }
    out
}

fn hidden(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

#[cfg(test)]
mod tests {
    use super::shown;

    #[test]
    fn controls_become_spaces_and_invisible_characters_go() {
        assert_eq!(shown("a\nb\u{1b}[31mc", 80), "a b [31mc");
        assert_eq!(shown("i-0\u{202E}fdcba\u{200B}", 80), "i-0fdcba");
    }

    #[test]
    fn text_fits_in_max_characters_with_an_ellipsis_when_cut() {
        assert_eq!(shown("abcdef", 6), "abcdef");
        assert_eq!(shown("abcdefg", 6), "abcde…");
        assert_eq!(shown("ééééééé", 3), "éé…");
        assert_eq!(shown("\u{200B}\u{200B}ab", 2), "ab", "dropped characters do not count");
        assert_eq!(shown("abc", 0), "");
    }
}
