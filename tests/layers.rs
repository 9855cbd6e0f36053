//! The house rules of DESIGN.md's "Where code lives", read from the source:
//! every file is in one of the rooms, and no room reaches up past its
//! layer (`cli → daemon → smtp | pipeline | store → stages → model`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The rooms and their layers: a room may use its own layer and those below.
const ROOMS: &[(&str, u8)] = &[
    // Leaves: values and helpers every layer uses.
    ("model", 0),
    ("safe_text", 0),
    ("metrics", 0),
    ("config", 1),
    // The stages: pure functions over typed values.
    ("parse", 2),
    ("evidence", 2),
    ("classify", 2),
    ("owners", 2),
    ("reply", 2),
    ("notices", 2),
    ("export", 2),
    // Intake, the pipeline and the store, and what they run on.
    ("smtp", 3),
    ("pipeline", 3),
    ("store", 3),
    ("runtime", 3),
    // What runs them.
    ("daemon", 4),
    ("web", 4),
    ("import", 4),
    ("cli", 5),
    ("lib", 6),
    ("main", 6),
];

/// Known exceptions, each with its reason. A pair that no longer occurs
/// must leave this list (the test says so).
const EXCEPTIONS: &[(&str, &str, &str)] = &[
    (
        "reply/sender.rs",
        "store",
        "DESIGN.md puts the reply sender in reply/; it is the one I/O part there",
    ),
    (
        "reply/sender.rs",
        "runtime",
        "the sender takes each round's templates from the running configuration",
    ),
];

/// Store files that still call rules (follow-ups, settling, cases, queueing)
/// inside their transactions. DESIGN.md wants those as plans the store
/// executes; until they are, no other store file may start calling rules.
const STORE_FILES_WITH_RULES: &[&str] = &["store/checks.rs", "store/outbox.rs", "store/reports.rs"];

fn layer(room: &str) -> Option<u8> {
    ROOMS.iter().find(|(r, _)| *r == room).map(|(_, l)| *l)
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file: comments and its unit tests left out.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]\nmod tests").next().unwrap_or(text);
    text.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The rooms a file's code names: `crate::room…` and `use crate::{room, …}`.
fn rooms_used(code: &str) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for name in group.split(',') {
                let room = name.trim().split("::").next().unwrap_or("");
                used.insert(room.to_owned());
            }
        } else {
            let room: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            used.insert(room);
        }
    }
    used.retain(|room| !room.is_empty());
    used
}

struct File {
    /// Relative to `src/`, with `/`.
    name: String,
    room: String,
    code: String,
}

fn files() -> Vec<File> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut paths = Vec::new();
    sources(&src, &mut paths);
    paths
        .into_iter()
        .map(|path| {
            let name = path
                .strip_prefix(&src)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            let room = name
                .split('/')
                .next()
                .unwrap()
                .trim_end_matches(".rs")
                .to_owned();
            let code = code(&std::fs::read_to_string(&path).unwrap());
            File { name, room, code }
        })
        .collect()
}

#[test]
fn every_file_is_in_a_room_of_the_house() {
    let strays: Vec<String> = files()
        .into_iter()
        .filter(|f| layer(&f.room).is_none())
        .map(|f| f.name)
        .collect();
    assert!(
        strays.is_empty(),
        "files outside DESIGN.md's rooms (move them, or add the room to DESIGN.md and here): {strays:?}"
    );
}

#[test]
fn no_room_reaches_up_past_its_layer() {
    let mut against = Vec::new();
    let mut excused = BTreeSet::new();
    for file in files() {
        let Some(own) = layer(&file.room) else {
            continue;
        };
        for used in rooms_used(&file.code) {
            let Some(theirs) = layer(&used) else {
                continue;
            };
            if theirs <= own {
                continue;
            }
            match EXCEPTIONS
                .iter()
                .find(|(f, r, _)| *f == file.name && *r == used)
            {
                Some(exception) => {
                    excused.insert((exception.0, exception.1));
                }
                None => against.push(format!("{} uses crate::{used}", file.name)),
            }
        }
    }
    assert!(
        against.is_empty(),
        "imports against the layers (move the type down, or the code up): {against:#?}"
    );
    let stale: Vec<_> = EXCEPTIONS
        .iter()
        .filter(|(f, r, _)| !excused.contains(&(*f, *r)))
        .collect();
    assert!(
        stale.is_empty(),
        "exceptions that no longer occur: {stale:?}"
    );
}

#[test]
fn the_model_is_a_leaf() {
    for file in files().into_iter().filter(|f| f.room == "model") {
        let used: Vec<_> = rooms_used(&file.code)
            .into_iter()
            .filter(|r| r != "model")
            .collect();
        assert!(used.is_empty(), "{} uses {used:?}", file.name);
    }
}

#[test]
fn no_new_store_file_calls_rules() {
    let rules = ["reply", "classify", "pipeline", "evidence", "parse"];
    let mut calling = BTreeSet::new();
    for file in files().into_iter().filter(|f| f.room == "store") {
        // Types are fine; a path into a rule module with a lower-case last
        // segment followed by `(` is a call.
        let calls = rooms_used(&file.code)
            .iter()
            .any(|r| rules.contains(&r.as_str()))
            && rules.iter().any(|r| {
                file.code
                    .match_indices(&format!("crate::{r}::"))
                    .any(|(at, _)| {
                        let rest = &file.code[at..];
                        let path: String = rest
                            .chars()
                            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                            .collect();
                        let last = path.rsplit("::").next().unwrap_or("");
                        last.starts_with(|c: char| c.is_ascii_lowercase())
                            && rest[path.len()..].starts_with('(')
                    })
            });
        if calls {
            calling.insert(file.name);
        }
    }
    let allowed: BTreeSet<String> = STORE_FILES_WITH_RULES
        .iter()
        .map(|s| s.to_string())
        .collect();
    let new: Vec<_> = calling.difference(&allowed).collect();
    assert!(
        new.is_empty(),
        "store files that call rules (return a plan from the rule and let the store execute it): {new:?}"
    );
    let done: Vec<_> = allowed.difference(&calling).collect();
    assert!(
        done.is_empty(),
        "these store files call no rules any more: take them off STORE_FILES_WITH_RULES: {done:?}"
    );
}

#[test]
fn the_scanner_sees_what_it_should() {
    let code = code(
        "use crate::{model::X, store};\n// crate::cli in a comment\nlet a = crate::reply::settle(x);\n",
    );
    let used: Vec<String> = rooms_used(&code).into_iter().collect();
    assert_eq!(used, ["model", "reply", "store"]);
}

#[test]
fn every_regex_is_compiled_with_bounded_caches() {
    let direct: Vec<String> = files()
        .into_iter()
        .filter(|f| f.name != "model/pattern.rs")
        .filter(|f| {
            [
                "Regex::new(",
                "RegexSet::new(",
                "RegexBuilder::new(",
                "RegexSetBuilder::new(",
            ]
            .iter()
            .any(|call| f.code.contains(call))
        })
        .map(|f| f.name)
        .collect();
    assert!(
        direct.is_empty(),
        "compile regexes with crate::model::pattern (bounded caches; see its docs): {direct:?}"
    );
}
