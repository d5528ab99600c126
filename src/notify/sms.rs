//! The SMS text of a notice (the pager tier): what, where, how bad, in at most 140
//! bytes of plain ASCII (one GSM-7 message, never the 70-character UCS-2 kind).

use super::view::View;

/// One SMS message.
pub const SMS_MAX: usize = 140;

/// `CRITICAL es-data: 2/6 stopped by retirement, not replaced | us-east-1 123456789012`.
pub fn text(view: &View) -> String {
    let c = &view.context;
    let head = format!("{}{}", if c.dry_run { "DRY RUN " } else { "" }, view.severity.as_str().to_uppercase());
    let tail = format!(" | {} {}", c.region, c.account.as_deref().unwrap_or(""));
    let tail = ascii(tail.trim_end());
    let room = SMS_MAX.saturating_sub(head.len() + 1 + tail.len());
    let what = fit(&ascii(&view.short()), room);
    format!("{head} {what}{tail}")
}

/// Printable ASCII only: anything else becomes `?` (a GSM-7 message stays one message).
fn ascii(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '…' => '.',
            c if c.is_ascii_graphic() || c == ' ' => c,
            c if c.is_whitespace() => ' ',
            _ => '?',
        })
        .collect()
}

/// At most `max` bytes (ASCII: characters), `..` at the end when cut.
fn fit(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    format!("{}..", &text[..max.saturating_sub(2)])
}
