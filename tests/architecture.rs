//! The import rule of docs/architecture.md, checked on the source itself.
//!
//! Every file of `src/` belongs to the layer of its folder:
//! `ffi -> api -> worker -> {policy, transport, cache, privacy} -> model -> sys`. Each path a
//! file names (`use crate::...`, `crate::x::y` in code, `super::...`, `self::...` and a child
//! module's name) is mapped to the file that defines the module it goes through, and every
//! such arrow must point down: never up, never sideways between two folders of one layer
//! (save `policy -> transport/reply.rs`), never to the crate root. No group of files may
//! import each other in a circle, within a folder either.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The folders of `src/` and their layers, top first.
const LAYERS: &[(&str, u32)] = &[
    ("ffi", 6),
    ("api", 5),
    ("worker", 4),
    ("policy", 3),
    ("transport", 3),
    ("cache", 3),
    ("privacy", 3),
    ("model", 2),
    ("sys", 1),
];

/// Arrows allowed between two folders of one layer: (from folder, to file).
const SIDEWAYS: &[(&str, &str)] = &[("policy", "transport/reply.rs")];

/// `lib.rs` and `internals.rs`: they may name anything, and nothing may name them.
const ROOT: u32 = u32::MAX;

#[test]
fn arrows_point_down_the_layers() {
    let graph = Graph::of_crate();
    let mut wrong = Vec::new();
    for (from, targets) in &graph.edges {
        for to in targets {
            if let Err(why) = allowed(from, to) {
                wrong.push(format!("src/{from} -> src/{to}: {why}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the rule of docs/architecture.md:\n  {}",
        wrong.join("\n  ")
    );
}

#[test]
fn no_files_import_each_other_in_a_circle() {
    let graph = Graph::of_crate();
    let circles: Vec<String> = graph
        .circles()
        .into_iter()
        .map(|c| {
            let via: Vec<String> = c.iter().map(|f| format!("src/{f}")).collect();
            via.join(", ")
        })
        .collect();
    assert!(
        circles.is_empty(),
        "files that import each other in a circle:\n  {}",
        circles.join("\n  ")
    );
}

/// The checks above must see the imports: a reader that found none would pass anything.
#[test]
fn the_reader_sees_the_imports() {
    let graph = Graph::of_crate();
    let count: usize = graph.edges.values().map(BTreeSet::len).sum();
    assert!(count > 100, "only {count} arrows found in src/");
    for (from, to) in [
        ("ffi/mod.rs", "api/global.rs"),
        ("api/client.rs", "worker/handle.rs"),
        ("worker/mod.rs", "policy/decide.rs"),
        ("policy/decide.rs", "transport/reply.rs"),
        ("model/status.rs", "sys/log.rs"),
    ] {
        assert!(
            graph.edges.get(from).is_some_and(|t| t.contains(to)),
            "src/{from} -> src/{to} not seen"
        );
    }
    for folder in graph
        .files
        .iter()
        .filter_map(|f| f.split_once('/').map(|(d, _)| d))
    {
        assert!(
            LAYERS.iter().any(|(name, _)| *name == folder),
            "src/{folder}/ has no layer: add it to LAYERS and to docs/architecture.md"
        );
    }
}

#[test]
fn the_reader_resolves_paths_as_rust_does() {
    let files: BTreeSet<String> = [
        "lib.rs",
        "worker/mod.rs",
        "worker/batch.rs",
        "worker/queue.rs",
        "worker/shared.rs",
        "model/config.rs",
        "sys/log.rs",
        "sys/sync.rs",
    ]
    .map(String::from)
    .into();
    let modules = Graph::modules_of(&files);
    let source = r##"
        //! crate::sys::log in a comment is no arrow
        use crate::model::{config::{self, Config}, /* crate::sys::log */};
        use super::shared::Shared as S;
        fn f() -> &'static str {
            let _ = crate::sys::sync::Mutex::new(());
            let _ = ['\'', '"'];
            let _ = br#"crate::sys::log"#;
            "crate::sys::log"
        }
        mod tests { use super::*; use super::super::batch; }
    "##;
    let targets = Graph::targets(&modules, &module_of("worker/queue.rs"), source);
    let want: BTreeSet<String> = [
        "model/config.rs",
        "sys/sync.rs",
        "worker/batch.rs",
        "worker/shared.rs",
    ]
    .map(String::from)
    .into();
    assert_eq!(targets, want);
}

fn layer(file: &str) -> Result<(u32, &str), String> {
    match file.split_once('/') {
        None if file == "lib.rs" || file == "internals.rs" => Ok((ROOT, "")),
        None => Err(format!(
            "src/{file} sits beside lib.rs: put it in its layer's folder"
        )),
        Some((folder, _)) => LAYERS
            .iter()
            .find(|(name, _)| *name == folder)
            .map(|(name, l)| (*l, *name))
            .ok_or_else(|| format!("src/{folder}/ has no layer")),
    }
}

fn allowed(from: &str, to: &str) -> Result<(), String> {
    let (lf, ff) = layer(from)?;
    let (lt, ft) = layer(to)?;
    if lt == ROOT {
        return Err("points up to the crate root (name the module that defines the item)".into());
    }
    if lf == ROOT || ff == ft || lf > lt {
        return Ok(());
    }
    if lf == lt {
        if SIDEWAYS.contains(&(ff, to)) {
            return Ok(());
        }
        return Err(format!(
            "{ff}/ and {ft}/ are one layer: neither names the other"
        ));
    }
    Err(format!("points up, from {ff}/ to {ft}/"))
}

struct Graph {
    files: BTreeSet<String>,
    /// File -> the files it names (itself left out).
    edges: BTreeMap<String, BTreeSet<String>>,
}

impl Graph {
    fn of_crate() -> Graph {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut paths = Vec::new();
        collect(&src, &mut paths);
        let files: BTreeSet<String> = paths.iter().map(|p| relative(&src, p)).collect();
        let modules = Graph::modules_of(&files);
        let mut edges = BTreeMap::new();
        for path in &paths {
            let file = relative(&src, path);
            let text = std::fs::read_to_string(path).unwrap();
            let module = module_of(&file);
            edges.insert(file, Graph::targets(&modules, &module, &text));
        }
        Graph { files, edges }
    }

    /// Module path (`["worker", "queue"]`) -> the file that defines it.
    fn modules_of(files: &BTreeSet<String>) -> BTreeMap<Vec<String>, String> {
        files.iter().map(|f| (module_of(f), f.clone())).collect()
    }

    /// The files `text`, the source of module `module`, names (itself left out).
    fn targets(
        modules: &BTreeMap<Vec<String>, String>,
        module: &[String],
        text: &str,
    ) -> BTreeSet<String> {
        let own = modules.get(module).cloned().unwrap_or_default();
        let tokens = tokens(text);
        let mut out = BTreeSet::new();
        // Inline modules (`mod tests { ... }`) and the brace depth each opened at.
        let mut inline: Vec<(String, usize)> = Vec::new();
        let mut depth = 0usize;
        let mut i = 0;
        while i < tokens.len() {
            let here: Vec<String> = module
                .iter()
                .cloned()
                .chain(inline.iter().map(|(m, _)| m.clone()))
                .collect();
            match tokens[i].as_str() {
                "{" => depth += 1,
                "}" => {
                    depth = depth.saturating_sub(1);
                    if inline.last().is_some_and(|(_, d)| *d == depth) {
                        inline.pop();
                    }
                }
                "mod" if tokens.get(i + 2).is_some_and(|t| t == "{") => {
                    inline.push((tokens[i + 1].clone(), depth));
                    depth += 1;
                    i += 3;
                    continue;
                }
                "use" => {
                    let end = tokens[i..]
                        .iter()
                        .position(|t| t == ";")
                        .map_or(tokens.len(), |p| i + p);
                    let mut paths = Vec::new();
                    use_tree(&tokens[i + 1..end], &[], &mut paths);
                    for path in paths {
                        out.extend(resolve(modules, &here, &path));
                    }
                    i = end + 1;
                    continue;
                }
                _ if is_path_start(&tokens, i) => {
                    let mut path = vec![tokens[i].clone()];
                    let mut j = i + 1;
                    while tokens.get(j).is_some_and(|t| t == "::")
                        && tokens.get(j + 1).is_some_and(|t| is_ident(t))
                    {
                        path.push(tokens[j + 1].clone());
                        j += 2;
                    }
                    out.extend(resolve(modules, &here, &path));
                    i = j;
                    continue;
                }
                _ => {}
            }
            i += 1;
        }
        out.remove(&own);
        out
    }

    /// Groups of two or more files that reach each other (strongly connected components).
    fn circles(&self) -> Vec<Vec<String>> {
        let names: Vec<&String> = self.files.iter().collect();
        let index: BTreeMap<&String, usize> =
            names.iter().enumerate().map(|(i, n)| (*n, i)).collect();
        let next: Vec<Vec<usize>> = names
            .iter()
            .map(|n| {
                self.edges
                    .get(*n)
                    .into_iter()
                    .flatten()
                    .filter_map(|t| index.get(t).copied())
                    .collect()
            })
            .collect();
        let reach = |from: usize| {
            let mut seen = vec![false; names.len()];
            let mut todo = vec![from];
            while let Some(n) = todo.pop() {
                for &m in &next[n] {
                    if !seen[m] {
                        seen[m] = true;
                        todo.push(m);
                    }
                }
            }
            seen
        };
        let reached: Vec<Vec<bool>> = (0..names.len()).map(reach).collect();
        let mut done = vec![false; names.len()];
        let mut circles = Vec::new();
        for a in 0..names.len() {
            if done[a] || !reached[a][a] {
                continue;
            }
            let group: Vec<String> = (0..names.len())
                .filter(|&b| reached[a][b] && reached[b][a])
                .inspect(|&b| done[b] = true)
                .map(|b| names[b].clone())
                .collect();
            if group.len() > 1 {
                circles.push(group);
            }
        }
        circles
    }
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn relative(src: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(src).unwrap();
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// `worker/queue.rs` -> `["worker", "queue"]`; `worker/mod.rs` -> `["worker"]`; `lib.rs` -> `[]`.
fn module_of(file: &str) -> Vec<String> {
    let mut parts: Vec<String> = file.split('/').map(String::from).collect();
    let last = parts.pop().unwrap();
    match last.strip_suffix(".rs").unwrap() {
        "mod" | "lib" => {}
        name => parts.push(name.to_owned()),
    }
    parts
}

/// The file of the longest module prefix of `path`, named from module `here`.
fn resolve(
    modules: &BTreeMap<Vec<String>, String>,
    here: &[String],
    path: &[String],
) -> Option<String> {
    let mut abs: Vec<String> = match path.first()?.as_str() {
        "crate" => Vec::new(),
        "self" => here.to_vec(),
        "super" => here.to_vec(),
        // A child module of `here`, named without `self::` (a `use` of an outside crate is not).
        first => {
            let mut child = here.to_vec();
            child.push(first.to_owned());
            if !modules.contains_key(&child) {
                return None;
            }
            here.to_vec()
        }
    };
    let mut rest = match path[0].as_str() {
        "crate" | "self" => &path[1..],
        _ => path,
    };
    while rest.first().is_some_and(|s| s == "super") {
        abs.pop()?;
        rest = &rest[1..];
    }
    abs.extend(rest.iter().filter(|s| *s != "self").cloned());
    (0..=abs.len())
        .rev()
        .find_map(|n| modules.get(&abs[..n]).cloned())
}

/// Expands a `use` tree (`a::{b, c::{self, D}}`) into its paths.
fn use_tree(tokens: &[String], prefix: &[String], out: &mut Vec<Vec<String>>) {
    let mut i = 0;
    let mut path = prefix.to_vec();
    while i < tokens.len() {
        match tokens[i].as_str() {
            "::" => {}
            "{" => {
                let close = matching(tokens, i);
                for part in split_top(&tokens[i + 1..close]) {
                    use_tree(part, &path, out);
                }
                return;
            }
            "as" => break,
            "*" => break,
            t if is_ident(t) => path.push(t.to_owned()),
            _ => {}
        }
        i += 1;
    }
    if !path.is_empty() {
        out.push(path);
    }
}

fn matching(tokens: &[String], open: usize) -> usize {
    let mut depth = 0;
    for (i, t) in tokens.iter().enumerate().skip(open) {
        match t.as_str() {
            "{" => depth += 1,
            "}" => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    tokens.len()
}

fn split_top(tokens: &[String]) -> Vec<&[String]> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, t) in tokens.iter().enumerate() {
        match t.as_str() {
            "{" => depth += 1,
            "}" => depth -= 1,
            "," if depth == 0 => {
                parts.push(&tokens[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&tokens[start..]);
    parts.into_iter().filter(|p| !p.is_empty()).collect()
}

fn is_ident(t: &str) -> bool {
    t.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
}

/// A path in code: `crate::`, `super::` or `self::`, or `name::` that may be a child module,
/// not preceded by `::` (the middle of a longer path) or `$` (a macro's `$crate`).
fn is_path_start(tokens: &[String], i: usize) -> bool {
    is_ident(&tokens[i])
        && tokens.get(i + 1).is_some_and(|t| t == "::")
        && !(i > 0 && (tokens[i - 1] == "::" || tokens[i - 1] == "$"))
}

/// Identifiers, `::` and single punctuation characters, without comments, strings and
/// character literals.
fn tokens(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
        } else if c == '\'' {
            // A character literal ('a', '\n', '\u{7f}'), or a lifetime ('a, 'static).
            if next == Some('\\') {
                i += 3;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if chars.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
            }
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            match word.as_str() {
                // b"...": the string follows.
                "b" if chars.get(i) == Some(&'"') => {}
                // r"...", r#"..."#, br"...", br#"..."#
                "r" | "br" if raw_string_at(&chars, i) => i = past_raw(&chars, i),
                _ => out.push(word),
            }
        } else if c == ':' && next == Some(':') {
            out.push("::".into());
            i += 2;
        } else if c.is_whitespace() || c.is_ascii_digit() {
            i += 1;
        } else {
            out.push(c.to_string());
            i += 1;
        }
    }
    out
}

/// Whether a raw string's `#`s or opening quote are at `i` (not a raw identifier, `r#type`).
fn raw_string_at(chars: &[char], i: usize) -> bool {
    let hashes = chars[i..].iter().take_while(|c| **c == '#').count();
    chars.get(i + hashes) == Some(&'"')
}

/// The end of a raw string whose `#`s or opening quote are at `i`.
fn past_raw(chars: &[char], i: usize) -> usize {
    let hashes = chars[i..].iter().take_while(|c| **c == '#').count();
    let mut j = i + hashes + 1;
    while j < chars.len() {
        if chars[j] == '"'
            && chars[j + 1..]
                .iter()
                .take(hashes)
                .filter(|c| **c == '#')
                .count()
                == hashes
        {
            return j + 1 + hashes;
        }
        j += 1;
    }
    j
}
