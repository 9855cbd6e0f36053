//! The README tells the truth: every command of its synopsis parses with
//! the flags it shows, every log message it names is one the source
//! writes, and every metric it names is served (`smtp.rs` scrapes them).

use std::path::Path;
use std::process::Command;

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap()
}

/// The text of the section headed `## {title}`, up to the next `## `.
fn section(text: &str, title: &str) -> String {
    let start = text
        .find(&format!("\n## {title}\n"))
        .unwrap_or_else(|| panic!("README has no section {title}"));
    let rest = &text[start + 4 + title.len()..];
    rest[..rest.find("\n## ").unwrap_or(rest.len())].to_owned()
}

/// Each `abuse-inbox …` command of the synopsis: its subcommand words and
/// every `--flag` shown for it (continuation lines included).
fn synopsis() -> Vec<(Vec<String>, Vec<String>)> {
    let text = section(&readme(), "Command line");
    let block = text.split("```").nth(1).expect("a synopsis block");
    let mut commands: Vec<(Vec<String>, Vec<String>)> = Vec::new();
    for line in block.lines().filter(|l| !l.trim().is_empty()) {
        let segments: Vec<&str> = line.split(" | ").collect();
        for (i, segment) in segments.iter().enumerate() {
            let words: Vec<&str> = segment.split_whitespace().collect();
            let words = match words.first() {
                Some(&"abuse-inbox") => &words[1..],
                _ => &words[..],
            };
            let is_command = i == 0 && !line.starts_with(' ')
                || words
                    .first()
                    .is_some_and(|w| w.chars().all(|c| c.is_ascii_lowercase()));
            if is_command {
                let path = words
                    .iter()
                    .take_while(|w| {
                        w.chars().all(|c| c.is_ascii_lowercase() || c == '-') && !w.starts_with('-')
                    })
                    .map(|w| w.to_string())
                    .collect();
                commands.push((path, Vec::new()));
            }
            let flags = words
                .iter()
                .map(|w| w.trim_start_matches('['))
                .filter(|w| w.starts_with("--"))
                .map(|w| w.split([']', ' ', '=']).next().unwrap().to_owned());
            commands
                .last_mut()
                .expect("a command first")
                .1
                .extend(flags);
        }
    }
    commands
}

#[test]
fn every_command_of_the_synopsis_parses_with_the_flags_it_shows() {
    let commands = synopsis();
    assert!(commands.len() >= 20, "{commands:?}");
    for (path, flags) in commands {
        let out = Command::new(env!("CARGO_BIN_EXE_abuse-inbox"))
            .args(&path)
            .arg("--help")
            .output()
            .unwrap();
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "abuse-inbox {path:?} --help failed: {out:?}"
        );
        for flag in flags {
            assert!(
                help.contains(&flag),
                "abuse-inbox {} has no {flag}:\n{help}",
                path.join(" ")
            );
        }
    }
}

/// Every file under `src`, read.
fn source() -> String {
    fn walk(dir: &Path, out: &mut String) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push_str(&std::fs::read_to_string(path).unwrap());
            }
        }
    }
    let mut out = String::new();
    walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut out);
    out
}

#[test]
fn every_log_message_the_readme_names_is_one_the_daemon_writes() {
    let text = section(&readme(), "Reading the logs");
    let source = source();
    let mut checked = 0;
    // The bullets: the backticked names before the first parenthesis.
    for bullet in text.split("\n- ").skip(1) {
        let bullet = bullet.split_whitespace().collect::<Vec<_>>().join(" ");
        let head = &bullet[..bullet.find(" (").unwrap_or(bullet.len())];
        for name in head.split('`').skip(1).step_by(2) {
            if name.contains('=') || name.contains('\\') {
                continue; // a field, not a message
            }
            assert!(
                source.contains(name),
                "the README names the log message {name:?}; src/ never writes it"
            );
            checked += 1;
        }
    }
    // The sample: each line's target is a module and its message is written.
    let sample = text.split("```").nth(1).expect("a sample log");
    for line in sample.lines().filter(|l| !l.is_empty()) {
        let after_level = line.split_once(' ').unwrap().1;
        let (target, message) = after_level
            .split(' ')
            .position(|w| w.starts_with("abuse_inbox") && w.ends_with(':'))
            .map(|i| {
                let words: Vec<&str> = after_level.split(' ').collect();
                (
                    words[i].trim_end_matches(':').to_owned(),
                    words[i + 1..].join(" "),
                )
            })
            .unwrap_or_else(|| panic!("no target in {line}"));
        let module = target
            .trim_start_matches("abuse_inbox")
            .trim_start_matches("::")
            .replace("::", "/");
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        assert!(
            src.join(format!("{module}.rs")).exists() || src.join(&module).join("mod.rs").exists(),
            "the README's sample log names the target {target}, which is no module: {line}"
        );
        // The message: the words before the first key=value field.
        let words: Vec<&str> = message
            .split(' ')
            .take_while(|w| !w.contains('='))
            .collect();
        let message = words.join(" ");
        assert!(
            source.contains(&format!("\"{message}\"")),
            "the sample log line {line:?}: src/ never writes {message:?}"
        );
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} names checked");
}

/// The series the README's Metrics section names, without the prefix,
/// labels and the `_total` a counter is served with.
pub fn readme_metrics() -> Vec<String> {
    let text = section(&readme(), "Metrics");
    let series = text.split("`abuse_inbox_`):").nth(1).expect("the series");
    let series = &series[..series.find("The two gauges").unwrap_or(series.len())];
    // Label values are inside parentheses: leave them out.
    let mut outside = String::new();
    let mut depth = 0;
    for c in series.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ if depth == 0 => outside.push(c),
            _ => {}
        }
    }
    outside
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|n| !n.ends_with('_'))
        .map(|n| {
            n.split('{')
                .next()
                .unwrap()
                .trim_end_matches("_total")
                .to_owned()
        })
        .collect()
}

/// The names `src/metrics.rs` registers.
pub fn registered_metrics() -> Vec<String> {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/metrics.rs"))
            .unwrap();
    text.split("register(")
        .skip(1)
        .filter_map(|rest| rest.split('"').nth(1).map(str::to_owned))
        .collect()
}

#[test]
fn every_metric_served_is_in_the_readme() {
    let named = readme_metrics();
    let registered = registered_metrics();
    assert!(registered.len() >= 15, "{registered:?}");
    for name in registered {
        assert!(
            named.contains(&name),
            "/metrics serves {name}; the README does not name it"
        );
    }
}
