//! The email (and SNS `default`) text of a notice, from its `View`: what is wrong
//! first, then what the guard did, the numbered next steps with their commands, and
//! the details. Plain text, each line said once.

use super::view::{NoticeKind, PartState, View};
use super::{SECTION_MAX, time};
use std::fmt::Write;

/// The longest text: the whole structured message must stay under SNS's 256 KiB.
pub const TEXT_MAX: usize = 80_000;

/// The text an operator reads once.
pub fn text(view: &View) -> String {
    let mut out = String::new();
    let c = &view.context;
    let _ = writeln!(out, "{}", view.headline());
    let _ = writeln!(
        out,
        "{} | {} | account {} | environment {} | checked {}{}",
        view.severity.as_str().to_uppercase(),
        c.region,
        c.account.as_deref().unwrap_or("unknown"),
        c.environment,
        time(Some(c.checked_at)),
        c.trigger.as_ref().map(|t| format!(" | {t}")).unwrap_or_default()
    );
    for w in &view.warnings {
        let _ = writeln!(out, "{w}");
    }
    if let Some(error) = &view.error {
        let _ = writeln!(
            out,
            "\nError: {error}\nNothing was changed. The scheduled sweep still checks every group and stopped instance."
        );
    }
    if view.parts.len() > 1 {
        let others: Vec<String> = view.parts[1..].iter().map(|p| p.headline.clone()).collect();
        section(&mut out, "ALSO", &others);
    }
    if view.notice == NoticeKind::Problem {
        let mut did = view.done_lines();
        did.extend(view.not_done_lines());
        if did.is_empty() {
            did.push("nothing: no change was due or allowed".into());
        }
        section(&mut out, if c.dry_run { "WHAT THE GUARD WOULD DO (DRY RUN)" } else { "WHAT THE GUARD DID" }, &did);
    } else if !view.outcomes.is_empty() {
        section(&mut out, "WHAT THE GUARD DID", &view.done_lines());
    }
    steps(&mut out, view);
    details(&mut out, view);
    section(&mut out, "ESCALATION", &view.escalation);
    cut(out)
}

fn steps(out: &mut String, view: &View) {
    if view.steps.is_empty() {
        return;
    }
    let _ = writeln!(out, "\nNEXT STEPS");
    for (n, step) in view.steps.iter().take(SECTION_MAX).enumerate() {
        let _ = writeln!(out, "  {}. {}", n + 1, step.title);
        for command in &step.commands {
            let _ = writeln!(out, "       {command}");
        }
    }
    if view.steps.len() > SECTION_MAX {
        let _ = writeln!(out, "  … and {} more steps (see the JSON document)", view.steps.len() - SECTION_MAX);
    }
}

fn details(out: &mut String, view: &View) {
    if view.parts.is_empty() {
        return;
    }
    let _ = writeln!(out, "\nDETAILS");
    for part in view.parts.iter().take(SECTION_MAX) {
        let state = match part.state {
            PartState::Open => "",
            PartState::Repaired => " (repaired)",
            PartState::Resolved => " (resolved)",
        };
        let _ = writeln!(out, "  {}{state}", part.subject);
        for line in part.details.iter().take(SECTION_MAX) {
            let _ = writeln!(out, "    - {line}");
        }
        if part.details.len() > SECTION_MAX {
            let _ = writeln!(
                out,
                "    … and {} more (see the JSON document and the function's log)",
                part.details.len() - SECTION_MAX
            );
        }
    }
    if view.parts.len() > SECTION_MAX {
        let _ = writeln!(
            out,
            "  … and {} more (see the JSON document and the function's log)",
            view.parts.len() - SECTION_MAX
        );
    }
}

/// A titled list, at most `SECTION_MAX` lines.
pub fn section(out: &mut String, title: &str, lines: &[String]) {
    if lines.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n{title}");
    for line in lines.iter().take(SECTION_MAX) {
        let _ = writeln!(out, "  - {line}");
    }
    if lines.len() > SECTION_MAX {
        let _ =
            writeln!(out, "  … and {} more (see the JSON document and the function's log)", lines.len() - SECTION_MAX);
    }
}

fn cut(mut out: String) -> String {
    if out.len() > TEXT_MAX {
        let mut at = TEXT_MAX;
        while !out.is_char_boundary(at) {
            at -= 1;
        }
        out.truncate(at);
        out.push_str("\n… (cut; the full report is in the function's log)\n");
    }
    out
}
